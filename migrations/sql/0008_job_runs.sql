-- How often each timed job has run (in whichever process held its lock) and how the last run went.
CREATE TABLE job_runs
(
    job         text PRIMARY KEY,
    runs        bigint      NOT NULL DEFAULT 0,
    failures    bigint      NOT NULL DEFAULT 0,
    last_run_at timestamptz NOT NULL DEFAULT now(),
    last_error  text
);
