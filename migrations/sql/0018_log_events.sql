-- Warnings and errors the processes logged, for the admins' view of recent problems. Kept two
-- weeks by the housekeeping job; the full logs go to standard error as JSON.
CREATE TABLE log_events
(
    log_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_at timestamptz NOT NULL,
    level       text        NOT NULL,
    target      text        NOT NULL,
    message     text        NOT NULL,
    fields      jsonb       NOT NULL,
    request_id  text,
    process     text        NOT NULL
);
CREATE INDEX log_events_recent ON log_events (recorded_at DESC);
CREATE INDEX log_events_by_level ON log_events (level, log_id DESC);
