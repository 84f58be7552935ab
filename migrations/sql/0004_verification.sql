-- One-time codes that confirm a phone number or e-mail address, and the development outboxes
-- that stand in for an SMS gateway and a mail server when none is configured.

CREATE TABLE verification_codes
(
    code_id     uuid PRIMARY KEY,
    purpose     text        NOT NULL CHECK (purpose IN ('register', 'sign_in', 'reset_password')),
    destination text        NOT NULL,
    -- HMAC of the code under the server's key: a leaked table does not give codes away.
    code_mac    bytea       NOT NULL,
    attempts    integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    consumed_at timestamptz,
    client_ip   text
);
CREATE INDEX verification_codes_by_destination ON verification_codes (destination, purpose, created_at DESC);
CREATE INDEX verification_codes_by_ip ON verification_codes (client_ip, created_at DESC);

CREATE TABLE outbox_messages
(
    message_id  uuid PRIMARY KEY,
    channel     text        NOT NULL CHECK (channel IN ('sms', 'email')),
    destination text        NOT NULL,
    subject     text,
    body        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_messages_by_destination ON outbox_messages (destination, created_at DESC);

-- Replays of a created resource keep pointing at it.
ALTER TABLE idempotency ADD COLUMN location text;

-- Each person's data key, wrapped (AES-256-GCM) under the platform's key-encryption key.
-- Erasing a person destroys the wrapped key: every value sealed under it, in the event log
-- too, becomes unreadable, while the events themselves (and their hash chain) stay intact.
CREATE TABLE person_keys
(
    person_id   uuid PRIMARY KEY,
    wrapped_key bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);
