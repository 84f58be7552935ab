-- Tables that are not event streams: log-following checkpoints, idempotency, credentials and secrets.

-- One row per projection: which generation of its read model the API reads.
CREATE TABLE projections
(
    name              text PRIMARY KEY,
    active_generation integer     NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- One checkpoint per projection generation: the last (transaction id, position) it applied.
CREATE TABLE projection_checkpoints
(
    projection     text        NOT NULL,
    generation     integer     NOT NULL,
    last_xid       xid8        NOT NULL DEFAULT '0'::xid8,
    last_position  bigint      NOT NULL DEFAULT 0,
    applied_events bigint      NOT NULL DEFAULT 0,
    last_error     text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, generation)
);

-- The first response to each Idempotency-Key, per caller and route, kept so a retry returns it.
CREATE TABLE idempotency
(
    caller        text        NOT NULL,
    key           text        NOT NULL,
    method        text        NOT NULL,
    route         text        NOT NULL,
    request_hash  bytea       NOT NULL,
    status        smallint,
    response_body bytea,
    content_type  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    PRIMARY KEY (caller, key)
);

-- Login credentials. Profiles live in the Customer and Worker event streams; the password hash does not.
CREATE TABLE credentials
(
    user_id       uuid PRIMARY KEY,
    login         text        NOT NULL UNIQUE,
    role          text        NOT NULL CHECK (role IN ('customer', 'worker', 'admin', 'analyst')),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Secrets every server process must share (for example the access-token signing key).
CREATE TABLE server_secrets
(
    name       text PRIMARY KEY,
    value      bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
