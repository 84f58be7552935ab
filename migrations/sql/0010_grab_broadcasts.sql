-- Orders whose grab offer has been sent to the eligible workers: written in the transaction that
-- writes those reminders, so each order is broadcast once.
CREATE TABLE grab_broadcasts
(
    order_id uuid PRIMARY KEY,
    workers  integer     NOT NULL,
    sent_at  timestamptz NOT NULL DEFAULT now()
);
