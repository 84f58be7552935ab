-- The reminder outbox also carries interview reminders: a reminder is about an order or an
-- interview, never both.
ALTER TABLE reminders ALTER COLUMN order_id DROP NOT NULL;
ALTER TABLE reminders ADD COLUMN interview_id uuid;
ALTER TABLE reminders ADD CONSTRAINT reminders_one_subject
    CHECK ((order_id IS NULL) <> (interview_id IS NULL));
CREATE INDEX reminders_interview ON reminders (interview_id) WHERE interview_id IS NOT NULL;
