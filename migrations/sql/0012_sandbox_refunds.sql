-- Refunds the sandbox provider paid back, for its statements.
CREATE TABLE sandbox_refunds
(
    refund_id         uuid PRIMARY KEY,
    payment_id        uuid        NOT NULL,
    provider_refund   text        NOT NULL UNIQUE,
    amount            bigint      NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
