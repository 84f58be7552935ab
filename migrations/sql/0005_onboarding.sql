-- Worker onboarding: the offline copy of the list of dishonest persons subject to enforcement
-- (失信被执行人名单), and notifications to people inside the platform.

-- Identity numbers are kept only as SHA-256 hashes: enough to match, not to read.
CREATE TABLE blacklist_entries
(
    id_number_hash bytea       NOT NULL,
    name           text        NOT NULL,
    case_number    text        NOT NULL,
    court          text,
    published_on   date,
    imported_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id_number_hash, case_number)
);

CREATE TABLE notifications
(
    notification_id uuid PRIMARY KEY,
    recipient_id    uuid,
    -- Set instead of recipient_id for a message to everyone with a role (e.g. all admins).
    recipient_role  text,
    kind            text        NOT NULL,
    title           text        NOT NULL,
    body            text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    read_at         timestamptz,
    CHECK ((recipient_id IS NULL) <> (recipient_role IS NULL))
);
CREATE INDEX notifications_by_recipient ON notifications (recipient_id, created_at DESC);
CREATE INDEX notifications_by_role ON notifications (recipient_role, created_at DESC);
