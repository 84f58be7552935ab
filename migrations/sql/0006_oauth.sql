-- Signing in through a third party (OAuth 2.0 authorization code, modelled on WeChat web login).

-- One row per authorization attempt: the `state` that must come back, used once.
CREATE TABLE oauth_states
(
    state        text PRIMARY KEY,
    provider     text        NOT NULL,
    -- Set when a signed-in person started the flow to link the provider to their account.
    link_user_id uuid REFERENCES credentials (user_id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);

-- Which provider identity belongs to which account.
CREATE TABLE external_identities
(
    provider  text        NOT NULL,
    subject   text        NOT NULL,
    user_id   uuid        NOT NULL REFERENCES credentials (user_id),
    linked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);
CREATE INDEX external_identities_by_user ON external_identities (user_id);

-- A provider identity not linked to any account yet, waiting for its owner to sign in and link it.
CREATE TABLE oauth_link_tickets
(
    ticket_hash bytea PRIMARY KEY,
    provider    text        NOT NULL,
    subject     text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
