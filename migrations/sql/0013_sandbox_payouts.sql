-- Transfers the sandbox bank made (or refused), one per withdrawal: asking again for the same
-- withdrawal returns the first answer and pays nothing more.
CREATE TABLE sandbox_payouts
(
    withdrawal_id  uuid PRIMARY KEY,
    account_masked text        NOT NULL,
    amount         bigint      NOT NULL,
    succeeded      boolean     NOT NULL,
    bank_reference text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
