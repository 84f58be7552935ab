-- Sign-in sessions with rotating refresh tokens, and brute-force lock-outs.

-- One row per sign-in. Its refresh tokens form one family: reusing a spent one revokes it.
CREATE TABLE sessions
(
    session_id     uuid PRIMARY KEY,
    user_id        uuid        NOT NULL REFERENCES credentials (user_id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    client_ip      text,
    user_agent     text
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at DESC);

-- Refresh tokens are stored only as SHA-256 hashes.
CREATE TABLE refresh_tokens
(
    token_hash bytea PRIMARY KEY,
    session_id uuid        NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    spent_at   timestamptz
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

-- Failed sign-ins per account and per client address, with the lock-out they earned.
CREATE TABLE sign_in_failures
(
    scope           text        NOT NULL CHECK (scope IN ('login', 'ip')),
    subject         text        NOT NULL,
    failures        integer     NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    last_failure_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, subject)
);
