-- The live streams open now, in every process, so one person's are capped across all of them.
-- A stream renews `seen_at` every few seconds; one not seen for 20 s was a stopped process's.
CREATE TABLE live_streams
(
    stream_id uuid PRIMARY KEY,
    person_id uuid        NOT NULL,
    opened_at timestamptz NOT NULL DEFAULT now(),
    seen_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX live_streams_by_person ON live_streams (person_id, seen_at);
