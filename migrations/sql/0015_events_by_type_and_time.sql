-- no-transaction
-- Reconciliation reads a day's captures and refunds, and the audit log filters by event type
-- and time: both by (event_type, recorded_at). Built concurrently so a large log keeps taking
-- writes while it is built.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_by_type_and_time ON events (event_type, recorded_at);
