-- Signaling rooms shared by every process: who holds a seat in which room, through which
-- process (node) and connection, and whether they are away within the grace period. A node
-- that stops renewing `signaling_nodes.seen_at` no longer holds its seats.
CREATE TABLE signaling_nodes (
    node uuid PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE signaling_seats (
    room uuid NOT NULL,
    participant uuid NOT NULL,
    node uuid NOT NULL,
    connection uuid NOT NULL,
    away_since timestamptz,
    seated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room, participant)
);

-- Relayed messages too large for a NOTIFY payload (8000 bytes) wait here for the nodes to
-- read them; they are removed after a minute.
CREATE TABLE signaling_mail (
    id bigserial PRIMARY KEY,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signaling_mail_created_at ON signaling_mail (created_at);
