-- The event store that postgres-es writes, plus what the rest of the system needs from it.
-- postgres-es inserts only its own seven columns; every added column has a default so its inserts stay unchanged.

CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    -- Global order of insertion. Not commit order: readers order by (transaction_id, position).
    position       bigint GENERATED ALWAYS AS IDENTITY,
    -- The writing transaction, so log followers can skip nothing that commits late.
    transaction_id xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    -- The server's clock at insertion, in UTC.
    recorded_at    timestamptz                  NOT NULL DEFAULT clock_timestamp(),
    -- Per-stream hash chain, written by the trigger below.
    prev_hash      bytea                        NOT NULL DEFAULT '\x'::bytea,
    hash           bytea                        NOT NULL DEFAULT '\x'::bytea,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_position ON events (position);
CREATE INDEX events_log_order ON events (transaction_id, position);

-- Only needed if snapshotting is used; postgres-es expects it to exist.
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- The hash of one event covers the previous event's hash in the same stream and this event's
-- stream, sequence, type, version, payload and metadata. Each part enters as its own digest, so
-- no two different events can produce the same input by moving bytes between fields, and an
-- event cannot be moved to another stream unnoticed.
CREATE FUNCTION event_hash(prev bytea, aggregate_type text, aggregate_id text, seq bigint,
                           event_type text, event_version text, payload text, metadata text)
    RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT
AS $$
SELECT sha256(prev || sha256(convert_to(aggregate_type, 'UTF8')) || sha256(convert_to(aggregate_id, 'UTF8'))
              || int8send(seq)
              || sha256(convert_to(event_type, 'UTF8'))
              || sha256(convert_to(event_version, 'UTF8'))
              || sha256(convert_to(payload, 'UTF8'))
              || sha256(convert_to(metadata, 'UTF8')))
$$;

CREATE FUNCTION events_chain() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    previous bytea;
BEGIN
    IF NEW.sequence > 1 THEN
        SELECT hash INTO previous FROM events
         WHERE aggregate_type = NEW.aggregate_type
           AND aggregate_id = NEW.aggregate_id
           AND sequence = NEW.sequence - 1;
        IF previous IS NULL THEN
            RAISE EXCEPTION 'event % of %/% has no predecessor', NEW.sequence, NEW.aggregate_type, NEW.aggregate_id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSE
        previous := '\x'::bytea;
    END IF;
    -- Every event gets its own id in its metadata; a command's events share the rest.
    IF NEW.metadata::jsonb ->> 'event_id' IS NULL THEN
        NEW.metadata := (NEW.metadata::jsonb || jsonb_build_object('event_id', gen_random_uuid()))::json;
    END IF;
    NEW.prev_hash := previous;
    NEW.hash := event_hash(previous, NEW.aggregate_type, NEW.aggregate_id, NEW.sequence, NEW.event_type, NEW.event_version, NEW.payload::text, NEW.metadata::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER events_chain BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_chain();

-- The log is append-only. A superuser can still disable this trigger; the hash chain shows it if they do.
CREATE FUNCTION events_append_only() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
