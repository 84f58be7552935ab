-- Linking a third-party sign-in needs a fresh re-authentication of the session that asks.
ALTER TABLE sessions ADD COLUMN reauthenticated_at timestamptz;
-- The OAuth flow is bound to the client that started it: the S256 hash of a verifier only that
-- client holds, which it must show with the callback.
ALTER TABLE oauth_states ADD COLUMN challenge text;
