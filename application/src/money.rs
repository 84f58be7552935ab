//! From a finished service to a worker's available balance: the escrow is released (commission
//! to revenue, the rest to the worker's pending income), and after the settlement period the
//! settlement job makes it available. Each step is a command on one stream and safe to repeat;
//! the job also finishes any release a stopped process left undone.

use chrono::{DateTime, Utc};
use domain::commission::{CommissionSchedule, SCHEDULE_ID};
use domain::order::{Order, OrderStatus};
use domain::payment::{Payment, PaymentCommand, PaymentStatus};
use domain::wallet::WalletCommand;
use domain::worker::Worker;
use domain::Fen;
use uuid::Uuid;

use crate::commands::CommandContext;
use crate::services::Services;

/// Releases a completed order's escrow to its worker and records their pending income.
/// Does nothing for an order not completed or not paid through a provider.
pub async fn release_for_order(
    services: &Services,
    order_id: Uuid,
    context: &CommandContext,
) -> crate::Result<bool> {
    let (order, _): (Order, usize) = services.orders.load(order_id).await?;
    if !matches!(order.status, OrderStatus::Completed | OrderStatus::Reviewed) {
        return Ok(false);
    }
    let (Some(worker_id), Some(service)) = (order.worker_id, order.service) else {
        return Ok(false);
    };
    let payment_id: Option<Uuid> = sqlx::query_scalar(
        "SELECT payment_id FROM read_payments
          WHERE order_id = $1 AND status IN ('captured', 'released')
          ORDER BY created_at LIMIT 1",
    )
    .bind(order_id)
    .fetch_optional(&services.pool)
    .await?;
    let Some(payment_id) = payment_id else {
        return Ok(false);
    };
    let (payment, _): (Payment, usize) = services.payments.load(payment_id).await?;
    let released = match payment.status {
        PaymentStatus::Released => payment,
        PaymentStatus::Captured => {
            let (worker, _): (Worker, usize) = services.workers.load(worker_id).await?;
            let (schedule, _): (CommissionSchedule, usize) =
                services.commissions.load(SCHEDULE_ID).await?;
            let booked_at = order.placed_at.unwrap_or(context.occurred_at);
            let command = PaymentCommand::Release {
                worker_id,
                commission_bp: schedule.rate_at(service, worker.level, booked_at),
                now: context.occurred_at,
            };
            services
                .payments
                .execute_deciding_again(payment_id, command, context)
                .await?
                .state
        }
        _ => return Ok(false),
    };
    let Some((to, share)) = released.released_to else {
        return Ok(false);
    };
    let income = WalletCommand::RecordIncome {
        worker_id: to,
        order_id,
        amount: Fen::literal(share),
        kind: domain::wallet::IncomeKind::Service,
        settles_at: context.occurred_at + services.money.settlement_period,
        now: context.occurred_at,
    };
    services
        .wallets
        .execute_deciding_again(to, income, context)
        .await?;
    Ok(true)
}

/// What a money tick did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct MoneyReport {
    pub queried: usize,
    pub released: usize,
    pub settled_wallets: usize,
    pub payouts: usize,
    pub recovered: usize,
    pub refunds_paid: usize,
    pub cancellations_settled: usize,
}

/// Finishes releases left undone, then settles every wallet with income past its date.
pub async fn tick(services: &Services, now: DateTime<Utc>) -> anyhow::Result<MoneyReport> {
    let context = CommandContext {
        occurred_at: now,
        ..CommandContext::system()
    };
    let mut report = MoneyReport {
        queried: crate::payments::query_pending(services, services.money.query_after, &context)
            .await?,
        ..MoneyReport::default()
    };
    let unreleased: Vec<Uuid> = sqlx::query_scalar(
        "SELECT o.order_id FROM read_orders o
           JOIN read_payments p ON p.order_id = o.order_id AND p.status = 'captured'
          WHERE o.status IN ('completed', 'reviewed') LIMIT 500",
    )
    .fetch_all(&services.pool)
    .await?;
    for order_id in unreleased {
        if release_for_order(services, order_id, &context).await? {
            report.released += 1;
        }
    }
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT worker_id FROM read_wallet_incomes
          WHERE settled_at IS NULL AND settles_at <= $1 LIMIT 1000",
    )
    .bind(now)
    .fetch_all(&services.pool)
    .await?;
    for worker_id in due {
        let settled = services
            .wallets
            .execute_deciding_again(worker_id, WalletCommand::Settle { now }, &context)
            .await
            .map_err(|error| anyhow::anyhow!("settling {worker_id}: {error}"))?;
        if settled.events > 0 {
            report.settled_wallets += 1;
        }
    }
    // Cancellations whose refund or fee share a stopped process (or a failing step) left
    // undone, from the terms recorded on the order.
    let unsettled: Vec<Uuid> = sqlx::query_scalar(
        "SELECT order_id FROM read_cancellations
          WHERE NOT (refund_issued AND income_recorded) AND cancelled_at < $1 - interval '30 seconds'
          ORDER BY cancelled_at LIMIT 200",
    )
    .bind(now)
    .fetch_all(&services.pool)
    .await?;
    for order_id in unsettled {
        match crate::payments::settle_cancellation(services, order_id, &context).await {
            Ok(()) => report.cancellations_settled += 1,
            Err(error) => {
                tracing::warn!(order_id = %order_id, error = %error, "a cancellation's refund is still not issued")
            }
        }
    }
    report.refunds_paid =
        crate::payments::retry_refunds(services, services.money.query_after, &context).await?;
    // Workers' shares of dispute refunds not yet taken back (a stopped process, or too little
    // income at the time).
    let owed: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT payment_id, refund_id FROM read_dispute_recoveries
          WHERE recovered_at IS NULL AND issued_at < $1 - interval '30 seconds'
          ORDER BY issued_at LIMIT 200",
    )
    .bind(now)
    .fetch_all(&services.pool)
    .await?;
    for (payment_id, refund_id) in owed {
        match crate::payments::recover_from_worker(services, payment_id, refund_id, &context).await
        {
            Ok(()) => report.recovered += 1,
            Err(error) => {
                tracing::warn!(payment_id = %payment_id, refund_id = %refund_id, error = %error, "a dispute refund is still owed by the worker")
            }
        }
    }
    // Approved withdrawals whose payout a stopped process left undone.
    let approved: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT worker_id, withdrawal_id FROM read_withdrawals
          WHERE status = 'approved' AND updated_at < $1 - interval '30 seconds' LIMIT 200",
    )
    .bind(now)
    .fetch_all(&services.pool)
    .await?;
    for (worker_id, withdrawal_id) in approved {
        crate::withdrawals::pay_out(services, worker_id, withdrawal_id, &context)
            .await
            .map_err(|error| anyhow::anyhow!("paying out {withdrawal_id}: {error}"))?;
        report.payouts += 1;
    }
    Ok(report)
}
