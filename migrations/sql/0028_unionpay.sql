-- The bank-card acquirer (UnionPay's online gateway) identifies every transaction by our
-- order number and the time we sent it (`txnTime`, Beijing): both are needed to query it later.
CREATE TABLE unionpay_orders
(
    order_id   text PRIMARY KEY,
    payment_id uuid        NOT NULL,
    -- `consume` or `refund`.
    kind       text        NOT NULL,
    txn_time   text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
