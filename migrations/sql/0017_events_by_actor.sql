-- no-transaction
-- The global audit log filters by who acted, newest first.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_by_actor ON events ((metadata ->> 'actor_id'), position);
