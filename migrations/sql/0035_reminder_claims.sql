-- A reminder run no longer holds a transaction open while e-mail and SMS go out. It claims the
-- due reminders for a while (`claim_id`, `claimed_until`) and puts them in the inbox
-- (`in_inbox_at`) in one short transaction, sends outside any transaction, each one only while
-- its claim still holds, then marks it delivered. Holding its transaction id through the
-- sends, a run held back every projector of every process (they read the log only below the
-- oldest transaction in progress) for as long as a gateway took.
ALTER TABLE reminders
    ADD COLUMN claim_id      uuid,
    ADD COLUMN claimed_until timestamptz,
    ADD COLUMN in_inbox_at   timestamptz;
