-- Unpaid orders that name a worker hold that worker's time until they are paid or expire.
-- Each is recorded here, under the customer's lock, before the worker is booked, so a customer
-- cannot hold more of them at once than the limit, even with parallel requests.
CREATE TABLE named_holds
(
    order_id    uuid PRIMARY KEY,
    customer_id uuid        NOT NULL,
    held_until  timestamptz NOT NULL
);
CREATE INDEX named_holds_by_customer ON named_holds (customer_id, held_until);
