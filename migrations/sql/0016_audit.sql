-- The audit trail's verifications: each run of `anjia audit verify` (or its job), and the head
-- of every stream as last verified, so a later run notices events cut off a stream's end or a
-- history rewritten wholesale with a freshly computed chain.
CREATE TABLE audit_verifications
(
    run_id      uuid PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    streams     bigint      NOT NULL,
    events      bigint      NOT NULL,
    problems    jsonb       NOT NULL,
    ok          boolean     NOT NULL
);
CREATE INDEX audit_verifications_latest ON audit_verifications (finished_at DESC);

CREATE TABLE audit_stream_heads
(
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    last_sequence  bigint NOT NULL,
    last_hash      bytea  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
