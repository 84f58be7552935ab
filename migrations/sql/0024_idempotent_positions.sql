-- A replayed answer carries the log position of the first answer (`Anjia-Position`), so a
-- client that retried can still read its own write.
ALTER TABLE idempotency ADD COLUMN log_position text;
