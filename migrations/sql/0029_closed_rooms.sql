-- Signaling rooms whose interview was cancelled or concluded: no seat is taken in them again,
-- whatever room token is shown.
CREATE TABLE signaling_closed_rooms
(
    room      uuid PRIMARY KEY,
    closed_at timestamptz NOT NULL DEFAULT now()
);
