-- What each automatic dispatch round did, for the admins' view and for tuning.
CREATE TABLE dispatch_rounds
(
    round_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ran_at     timestamptz NOT NULL DEFAULT now(),
    orders     integer     NOT NULL,
    workers    integer     NOT NULL,
    assigned   integer     NOT NULL,
    unassigned integer     NOT NULL,
    refused    integer     NOT NULL,
    total_cost bigint      NOT NULL,
    millis     bigint      NOT NULL
);

-- The reminder outbox. A reminder is written once per (order, kind, recipient) — the key makes a
-- repeat a no-op — and delivered once: the delivery job claims due rows with SKIP LOCKED and
-- marks them delivered in the same transaction, whichever process runs it.
CREATE TABLE reminders
(
    reminder_key   text PRIMARY KEY,
    order_id       uuid        NOT NULL,
    kind           text        NOT NULL,
    recipient_id   uuid        NOT NULL,
    recipient_role text        NOT NULL,
    due_at         timestamptz NOT NULL,
    title          text        NOT NULL,
    body           text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    delivered_at   timestamptz,
    channels       text[]      NOT NULL DEFAULT '{}',
    attempts       integer     NOT NULL DEFAULT 0,
    last_error     text,
    cancelled_at   timestamptz
);
CREATE INDEX reminders_due ON reminders (due_at) WHERE delivered_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX reminders_by_order ON reminders (order_id);
