//! The money read model: every posting's legs and each account's balance, folded from payment
//! and wallet events by the same functions the domain defines (so rebuilding this projection
//! from position zero is rebuilding the ledger), plus payments by order and workers' incomes
//! for the settlement job and the income views.

use anyhow::Context;
use domain::ledger::Posting;
use domain::order::OrderEvent;
use domain::payment::{Payment, PaymentEvent};
use domain::wallet::{Wallet, WalletEvent};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::projector::Projection;

pub struct LedgerProjection;

#[async_trait::async_trait]
impl Projection for LedgerProjection {
    fn name(&self) -> &'static str {
        "ledger"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "ledger_legs",
            "account_balances",
            "payments",
            "wallet_incomes",
            "withdrawals",
            "dispute_recoveries",
            "refunds",
            "cancellations",
        ]
    }

    fn create_tables(&self, schema: &str) -> String {
        format!(
            "CREATE TABLE {schema}.ledger_legs (
                position     bigint      NOT NULL,
                posting      smallint    NOT NULL,
                leg          smallint    NOT NULL,
                kind         text        NOT NULL,
                account      text        NOT NULL,
                amount       bigint      NOT NULL,
                aggregate_id text        NOT NULL,
                recorded_at  timestamptz NOT NULL,
                PRIMARY KEY (position, posting, leg)
            );
            CREATE INDEX ON {schema}.ledger_legs (account, position);
            CREATE TABLE {schema}.account_balances (
                account      text PRIMARY KEY,
                debit_normal boolean NOT NULL,
                -- Debit-positive sum of every leg.
                signed_sum   bigint  NOT NULL
            );
            CREATE TABLE {schema}.payments (
                payment_id    uuid PRIMARY KEY,
                order_id      uuid        NOT NULL,
                customer_id   uuid        NOT NULL,
                status        text        NOT NULL,
                method        text        NOT NULL,
                provider      text        NOT NULL,
                amount        bigint      NOT NULL,
                provider_transaction text,
                created_at    timestamptz NOT NULL,
                updated_at    timestamptz NOT NULL
            );
            CREATE INDEX ON {schema}.payments (order_id);
            CREATE INDEX ON {schema}.payments (status, updated_at);
            -- The admins' list of payments, newest first.
            CREATE INDEX ON {schema}.payments (created_at DESC, payment_id DESC);
            CREATE TABLE {schema}.wallet_incomes (
                worker_id   uuid        NOT NULL,
                order_id    uuid        NOT NULL,
                amount      bigint      NOT NULL,
                -- `service` or `cancellation_fee`.
                kind        text        NOT NULL DEFAULT 'service',
                recorded_at timestamptz NOT NULL,
                settles_at  timestamptz NOT NULL,
                settled_at  timestamptz,
                PRIMARY KEY (worker_id, order_id)
            );
            CREATE INDEX ON {schema}.wallet_incomes (settles_at) WHERE settled_at IS NULL;
            CREATE TABLE {schema}.withdrawals (
                withdrawal_id uuid PRIMARY KEY,
                worker_id     uuid        NOT NULL,
                amount        bigint      NOT NULL,
                status        text        NOT NULL,
                reason        text,
                bank_reference text,
                requested_at  timestamptz NOT NULL,
                updated_at    timestamptz NOT NULL
            );
            CREATE INDEX ON {schema}.withdrawals (status, requested_at);
            CREATE TABLE {schema}.dispute_recoveries (
                refund_id    uuid PRIMARY KEY,
                payment_id   uuid        NOT NULL,
                order_id     uuid        NOT NULL,
                worker_id    uuid        NOT NULL,
                amount       bigint      NOT NULL,
                issued_at    timestamptz NOT NULL,
                recovered_at timestamptz
            );
            CREATE INDEX ON {schema}.dispute_recoveries (issued_at) WHERE recovered_at IS NULL;
            -- Every refund issued from escrow, fee-only ones (amount 0) included.
            CREATE TABLE {schema}.refunds (
                refund_id       uuid PRIMARY KEY,
                payment_id      uuid        NOT NULL,
                amount          bigint      NOT NULL,
                fee             bigint      NOT NULL DEFAULT 0,
                fee_worker_id   uuid,
                fee_to_worker   bigint      NOT NULL DEFAULT 0,
                issued_at       timestamptz NOT NULL,
                provider_refund text,
                completed_at    timestamptz
            );
            CREATE INDEX ON {schema}.refunds (issued_at) WHERE completed_at IS NULL AND amount > 0;
            CREATE INDEX ON {schema}.refunds (payment_id);
            -- Paid orders' cancellations, until their refund is issued and the accepted
            -- worker's share of the fee is in their wallet (the money job finishes the rest).
            CREATE TABLE {schema}.cancellations (
                order_id        uuid PRIMARY KEY,
                payment_id      uuid        NOT NULL,
                refund_id       uuid        NOT NULL UNIQUE,
                refund          bigint      NOT NULL,
                fee             bigint      NOT NULL,
                fee_worker_id   uuid,
                fee_to_worker   bigint      NOT NULL,
                cancelled_at    timestamptz NOT NULL,
                refund_issued   boolean     NOT NULL DEFAULT false,
                income_recorded boolean     NOT NULL
            );
            CREATE INDEX ON {schema}.cancellations (cancelled_at)
             WHERE NOT (refund_issued AND income_recorded);"
        )
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        schema: &str,
        event: &StoredEvent,
    ) -> anyhow::Result<()> {
        let postings: Vec<Posting> = match event.aggregate_type.as_str() {
            "payment" => {
                let decoded = event.decode::<PaymentEvent>()?;
                track_payment(connection, schema, event, &decoded).await?;
                Payment::postings(&decoded)
            }
            "wallet" => {
                let worker_id: Uuid = event.aggregate_id.parse().context("wallet id")?;
                let decoded = event.decode::<WalletEvent>()?;
                track_income(connection, schema, worker_id, &decoded).await?;
                Wallet::postings(worker_id, &decoded)
            }
            "order" if event.event_type == "OrderCancelled" => {
                return track_cancellation(connection, schema, event).await;
            }
            _ => return Ok(()),
        };
        for (posting_index, posting) in postings.iter().enumerate() {
            anyhow::ensure!(
                posting.is_balanced(),
                "an unbalanced posting at position {}",
                event.position
            );
            for (leg_index, leg) in posting.legs.iter().enumerate() {
                let inserted = sqlx::query(&format!(
                    "INSERT INTO {schema}.ledger_legs
                         (position, posting, leg, kind, account, amount, aggregate_id, recorded_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
                ))
                .bind(event.position)
                .bind(posting_index as i16)
                .bind(leg_index as i16)
                .bind(posting.kind)
                .bind(leg.account.code())
                .bind(leg.amount)
                .bind(&event.aggregate_id)
                .bind(event.recorded_at)
                .execute(&mut *connection)
                .await?
                .rows_affected();
                if inserted == 1 {
                    sqlx::query(&format!(
                        "INSERT INTO {schema}.account_balances (account, debit_normal, signed_sum)
                         VALUES ($1, $2, $3)
                         ON CONFLICT (account) DO UPDATE
                         SET signed_sum = {schema}.account_balances.signed_sum + $3"
                    ))
                    .bind(leg.account.code())
                    .bind(leg.account.debit_normal())
                    .bind(leg.amount)
                    .execute(&mut *connection)
                    .await?;
                }
            }
        }
        Ok(())
    }
}

/// A paid order's cancellation, from its recorded terms.
async fn track_cancellation(
    connection: &mut PgConnection,
    schema: &str,
    event: &StoredEvent,
) -> anyhow::Result<()> {
    let order_id: Uuid = event.aggregate_id.parse().context("order id")?;
    let OrderEvent::OrderCancelled {
        settlement: Some(settlement),
        cancelled_at,
        ..
    } = event.decode::<OrderEvent>()?
    else {
        return Ok(());
    };
    let share = settlement.to_worker;
    sqlx::query(&format!(
        "INSERT INTO {schema}.cancellations (order_id, payment_id, refund_id, refund, fee,
             fee_worker_id, fee_to_worker, cancelled_at, refund_issued, income_recorded)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                 EXISTS (SELECT 1 FROM {schema}.refunds WHERE refund_id = $3),
                 $6 IS NULL OR EXISTS (SELECT 1 FROM {schema}.wallet_incomes
                                        WHERE worker_id = $6 AND order_id = $1))
         ON CONFLICT DO NOTHING"
    ))
    .bind(order_id)
    .bind(settlement.payment_id)
    .bind(settlement.refund_id(order_id))
    .bind(settlement.refund.get())
    .bind(settlement.fee.get())
    .bind(share.map(|share| share.worker_id))
    .bind(share.map_or(0, |share| share.amount.get()))
    .bind(cancelled_at)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

async fn track_payment(
    connection: &mut PgConnection,
    schema: &str,
    event: &StoredEvent,
    decoded: &PaymentEvent,
) -> anyhow::Result<()> {
    let payment_id: Uuid = event.aggregate_id.parse().context("payment id")?;
    if let PaymentEvent::PaymentCreated {
        order_id,
        customer_id,
        amount,
        method,
        provider,
        created_at,
        ..
    } = decoded
    {
        sqlx::query(&format!(
            "INSERT INTO {schema}.payments (payment_id, order_id, customer_id, status, method,
                 provider, amount, created_at, updated_at)
             VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING"
        ))
        .bind(payment_id)
        .bind(order_id)
        .bind(customer_id)
        .bind(method.as_str())
        .bind(provider)
        .bind(amount.get())
        .bind(created_at)
        .execute(&mut *connection)
        .await?;
        return Ok(());
    }
    match decoded {
        PaymentEvent::RefundIssued {
            refund_id,
            amount,
            fee,
            fee_to_worker,
            issued_at,
            ..
        } => {
            sqlx::query(&format!(
                "INSERT INTO {schema}.refunds
                     (refund_id, payment_id, amount, fee, fee_worker_id, fee_to_worker, issued_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
            ))
            .bind(refund_id)
            .bind(payment_id)
            .bind(amount.get())
            .bind(fee.get())
            .bind(fee_to_worker.map(|share| share.worker_id))
            .bind(fee_to_worker.map_or(0, |share| share.amount.get()))
            .bind(issued_at)
            .execute(&mut *connection)
            .await?;
            sqlx::query(&format!(
                "UPDATE {schema}.cancellations SET refund_issued = true WHERE refund_id = $1"
            ))
            .bind(refund_id)
            .execute(&mut *connection)
            .await?;
        }
        PaymentEvent::RefundClawedBack {
            refund_id,
            amount,
            issued_at,
            ..
        } if amount.get() > 0 => {
            sqlx::query(&format!(
                "INSERT INTO {schema}.refunds (refund_id, payment_id, amount, issued_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
            ))
            .bind(refund_id)
            .bind(payment_id)
            .bind(amount.get())
            .bind(issued_at)
            .execute(&mut *connection)
            .await?;
        }
        PaymentEvent::RefundCompleted {
            refund_id,
            provider_refund,
            completed_at,
            ..
        } => {
            sqlx::query(&format!(
                "UPDATE {schema}.refunds SET provider_refund = $2, completed_at = $3
                  WHERE refund_id = $1"
            ))
            .bind(refund_id)
            .bind(provider_refund)
            .bind(completed_at)
            .execute(&mut *connection)
            .await?;
        }
        _ => {}
    }
    if let PaymentEvent::RefundClawedBack {
        refund_id,
        worker_id,
        from_worker,
        issued_at,
        ..
    } = decoded
    {
        if from_worker.get() == 0 {
            // All of it came back from the commission: nothing to take from the worker.
            return Ok(());
        }
        sqlx::query(&format!(
            "INSERT INTO {schema}.dispute_recoveries
                 (refund_id, payment_id, order_id, worker_id, amount, issued_at)
             SELECT $1, payment_id, order_id, $2, $3, $4 FROM {schema}.payments WHERE payment_id = $5
             ON CONFLICT DO NOTHING"
        ))
        .bind(refund_id)
        .bind(worker_id)
        .bind(from_worker.get())
        .bind(issued_at)
        .bind(payment_id)
        .execute(&mut *connection)
        .await?;
        return Ok(());
    }
    let (status, transaction) = match decoded {
        PaymentEvent::PaymentCaptured {
            provider_transaction,
            ..
        } => ("captured", Some(provider_transaction.clone())),
        PaymentEvent::PaymentFailed { .. } => ("failed", None),
        PaymentEvent::EscrowReleased { .. } => ("released", None),
        _ => return Ok(()),
    };
    sqlx::query(&format!(
        "UPDATE {schema}.payments SET status = $2,
             provider_transaction = COALESCE($3, provider_transaction), updated_at = $4
         WHERE payment_id = $1"
    ))
    .bind(payment_id)
    .bind(status)
    .bind(transaction)
    .bind(event.recorded_at)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

async fn track_income(
    connection: &mut PgConnection,
    schema: &str,
    worker_id: Uuid,
    decoded: &WalletEvent,
) -> anyhow::Result<()> {
    match decoded {
        WalletEvent::IncomeRecorded {
            order_id,
            amount,
            kind,
            settles_at,
            recorded_at,
            ..
        } => {
            sqlx::query(&format!(
                "INSERT INTO {schema}.wallet_incomes (worker_id, order_id, amount, kind, recorded_at, settles_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
            ))
            .bind(worker_id)
            .bind(order_id)
            .bind(amount.get())
            .bind(kind.as_str())
            .bind(recorded_at)
            .bind(settles_at)
            .execute(&mut *connection)
            .await?;
            sqlx::query(&format!(
                "UPDATE {schema}.cancellations SET income_recorded = true
                  WHERE order_id = $1 AND fee_worker_id = $2"
            ))
            .bind(order_id)
            .bind(worker_id)
            .execute(&mut *connection)
            .await?;
        }
        WalletEvent::IncomeSettled {
            order_id,
            settled_at,
            ..
        } => {
            sqlx::query(&format!(
                "UPDATE {schema}.wallet_incomes SET settled_at = $3
                  WHERE worker_id = $1 AND order_id = $2"
            ))
            .bind(worker_id)
            .bind(order_id)
            .bind(settled_at)
            .execute(&mut *connection)
            .await?;
        }
        WalletEvent::WithdrawalRequested {
            withdrawal_id,
            amount,
            requested_at,
            ..
        } => {
            sqlx::query(&format!(
                "INSERT INTO {schema}.withdrawals (withdrawal_id, worker_id, amount, status, requested_at, updated_at)
                 VALUES ($1, $2, $3, 'requested', $4, $4) ON CONFLICT DO NOTHING"
            ))
            .bind(withdrawal_id)
            .bind(worker_id)
            .bind(amount.get())
            .bind(requested_at)
            .execute(&mut *connection)
            .await?;
        }
        WalletEvent::WithdrawalApproved {
            withdrawal_id,
            approved_at,
            ..
        } => {
            withdrawal_status(
                connection,
                schema,
                *withdrawal_id,
                "approved",
                None,
                None,
                *approved_at,
            )
            .await?
        }
        WalletEvent::WithdrawalRejected {
            withdrawal_id,
            reason,
            rejected_at,
            ..
        } => {
            withdrawal_status(
                connection,
                schema,
                *withdrawal_id,
                "rejected",
                Some(reason),
                None,
                *rejected_at,
            )
            .await?
        }
        WalletEvent::WithdrawalCancelled {
            withdrawal_id,
            reason,
            cancelled_at,
            ..
        } => {
            withdrawal_status(
                connection,
                schema,
                *withdrawal_id,
                "cancelled",
                Some(reason),
                None,
                *cancelled_at,
            )
            .await?
        }
        WalletEvent::PayoutSucceeded {
            withdrawal_id,
            bank_reference,
            paid_at,
            ..
        } => {
            withdrawal_status(
                connection,
                schema,
                *withdrawal_id,
                "paid",
                None,
                Some(bank_reference),
                *paid_at,
            )
            .await?
        }
        WalletEvent::DisputeRecovered {
            refund_id,
            order_id,
            from_pending,
            from_available,
            recovered_at,
        } => {
            sqlx::query(&format!(
                "UPDATE {schema}.dispute_recoveries SET recovered_at = $2 WHERE refund_id = $1"
            ))
            .bind(refund_id)
            .bind(recovered_at)
            .execute(&mut *connection)
            .await?;
            // The worker's income from that order is less by what was taken back.
            sqlx::query(&format!(
                "UPDATE {schema}.wallet_incomes SET amount = amount - $3
                  WHERE worker_id = $1 AND order_id = $2"
            ))
            .bind(worker_id)
            .bind(order_id)
            .bind(from_pending.get() + from_available.get())
            .execute(&mut *connection)
            .await?;
        }
        WalletEvent::PayoutFailed {
            withdrawal_id,
            bank_reference,
            failed_at,
            ..
        } => {
            withdrawal_status(
                connection,
                schema,
                *withdrawal_id,
                "failed",
                None,
                Some(bank_reference),
                *failed_at,
            )
            .await?
        }
        _ => {}
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn withdrawal_status(
    connection: &mut PgConnection,
    schema: &str,
    withdrawal_id: Uuid,
    status: &str,
    reason: Option<&String>,
    bank_reference: Option<&String>,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "UPDATE {schema}.withdrawals SET status = $2, reason = COALESCE($3, reason),
             bank_reference = COALESCE($4, bank_reference), updated_at = $5
         WHERE withdrawal_id = $1"
    ))
    .bind(withdrawal_id)
    .bind(status)
    .bind(reason)
    .bind(bank_reference)
    .bind(at)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Every account's balance on its normal side, by account code.
pub async fn balances(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT account, CASE WHEN debit_normal THEN signed_sum ELSE -signed_sum END
           FROM read_account_balances ORDER BY account",
    )
    .fetch_all(pool)
    .await
}

/// The debit-positive sum of every leg ever posted: zero when the books balance.
pub async fn trial_balance(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COALESCE(sum(signed_sum), 0)::bigint FROM read_account_balances")
        .fetch_one(pool)
        .await
}
