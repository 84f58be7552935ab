-- `event_hash` was declared IMMUTABLE, but `convert_to` is only STABLE, so PostgreSQL would not
-- inline it: every transaction that appended an event parsed and planned the function's query
-- afresh (about 30 µs of the server's time). Declared STABLE, as its body is, it is inlined
-- into the trigger's expression, whose plan each connection keeps. The hash it computes is the
-- same (the audit recomputes it independently and compares).
ALTER FUNCTION event_hash(bytea, text, text, bigint, text, text, text, text) STABLE;
