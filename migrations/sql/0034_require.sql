-- `anjia_require(ok, code)`: true, or an error with the SQLSTATE `code`. A request that wrote a
-- single command ends with one statement appending its events and claiming its idempotency key
-- (no BEGIN, no COMMIT); the statement calls this to fail whole, so that nothing of it stands,
-- when the new stream it meant to start was there already (AJ002) or the key is another
-- request's (AJ001).
CREATE FUNCTION anjia_require(ok boolean, code text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION 'anjia_require: % not met', code USING ERRCODE = code;
    END IF;
    RETURN true;
END
$$;
