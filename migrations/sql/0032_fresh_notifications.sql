-- What processes keep in memory and serve on every request (application::fresh): a session's
-- life, a customer's stream, a person's data key. Each change to them is announced on the
-- channel `anjia_fresh` from the database itself, so that no writer, not even a hand-written
-- statement, can change one without every process hearing it. A notification is delivered
-- when its transaction commits; identical ones in one transaction are delivered once.
CREATE FUNCTION announce_fresh() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    changed record;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    CASE TG_TABLE_NAME
        WHEN 'sessions' THEN
            PERFORM pg_notify('anjia_fresh', 'session:' || changed.session_id);
        WHEN 'person_keys' THEN
            PERFORM pg_notify('anjia_fresh', 'key:' || changed.person_id);
        WHEN 'events' THEN
            PERFORM pg_notify('anjia_fresh', changed.aggregate_type || ':' || changed.aggregate_id);
    END CASE;
    RETURN NULL;
END;
$$;

-- A session's life changes when it is revoked or its expiry moves (not when it is used).
CREATE TRIGGER sessions_announce AFTER UPDATE ON sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
                       OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
                       OR OLD.user_id IS DISTINCT FROM NEW.user_id)
    EXECUTE FUNCTION announce_fresh();

CREATE TRIGGER sessions_announce_removal AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION announce_fresh();

CREATE TRIGGER person_keys_announce AFTER UPDATE OR DELETE ON person_keys
    FOR EACH ROW EXECUTE FUNCTION announce_fresh();

-- Of the streams, only customers' are kept in memory (their standing is read on every order).
CREATE TRIGGER customer_events_announce AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.aggregate_type = 'customer')
    EXECUTE FUNCTION announce_fresh();
