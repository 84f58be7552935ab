-- Events a projection could not apply. A stream with a parked event is set aside for that
-- projection (its later events are parked behind it, so a stream is never applied out of
-- order) while every other stream keeps flowing. Admins list them and retry them after a fix.
CREATE TABLE projection_parked (
    projection      text        NOT NULL,
    generation      integer     NOT NULL,
    position        bigint      NOT NULL,
    transaction_id  xid8        NOT NULL,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL,
    event_type      text        NOT NULL,
    error           text        NOT NULL,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, generation, position)
);
CREATE INDEX projection_parked_by_stream
    ON projection_parked (projection, generation, aggregate_type, aggregate_id, position);
