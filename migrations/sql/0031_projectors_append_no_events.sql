-- The followers of the log leave projectors' transactions out of the horizon below which no
-- event can still commit (projections::log::HORIZON), so that one projector's long batch does
-- not hold all of them back. That holds only while a projector's connection never appends an
-- event: refused here.
CREATE FUNCTION events_not_from_projectors() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF current_setting('application_name') = 'anjia-projector' THEN
        RAISE EXCEPTION 'a projector''s connection may not append events';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_not_from_projectors BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_not_from_projectors();
