-- Every payment notification that reached us, accepted or not, for the admins. Processing is
-- idempotent in the Payment aggregate itself (one provider transaction captures once), so a
-- replayed notification is logged as a duplicate and changes nothing.
CREATE TABLE payment_notifications
(
    log_id          uuid PRIMARY KEY,
    provider        text        NOT NULL,
    notification_id text,
    payment_id      uuid,
    outcome         text        NOT NULL CHECK (outcome IN ('accepted', 'duplicate', 'rejected')),
    reason          text,
    client_ip       text,
    body            text        NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_notifications_rejected ON payment_notifications (received_at DESC) WHERE outcome = 'rejected';

-- The built-in sandbox provider's own books: what it was asked to collect and what it did, so it
-- can answer queries and produce statements like a real provider.
CREATE TABLE sandbox_transactions
(
    payment_id           uuid PRIMARY KEY,
    provider_transaction text        NOT NULL UNIQUE,
    amount               bigint      NOT NULL,
    behaviour            text        NOT NULL,
    status               text        NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    settled_at           timestamptz
);
