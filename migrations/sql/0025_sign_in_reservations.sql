-- Sign-in attempts are reserved before a password or code is checked: `in_flight` counts the
-- attempts being checked right now (a reservation older than a minute is a stopped process's
-- and no longer counts), so parallel guesses cannot all pass one lock-out check.
ALTER TABLE sign_in_failures
    ADD COLUMN in_flight   integer NOT NULL DEFAULT 0,
    ADD COLUMN reserved_at timestamptz;
