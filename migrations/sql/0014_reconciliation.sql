-- Each reconciliation of a provider's statement against the ledger, for the admins.
CREATE TABLE reconciliation_runs
(
    run_id      uuid PRIMARY KEY,
    provider    text        NOT NULL,
    day         date        NOT NULL,
    matched     integer     NOT NULL,
    differences integer     NOT NULL,
    report      jsonb       NOT NULL,
    ran_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reconciliation_runs_by_day ON reconciliation_runs (day DESC, ran_at DESC);
