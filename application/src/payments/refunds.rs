//! Money going back: refunds by admins and by the cancellation policy, paying them through the
//! provider and retrying, and taking a worker share back after a dispute.

use super::*;
use domain::message::Text;

/// Gives money back from a payment's escrow: records the refund (and any fee kept), has the
/// original provider pay it, and records that it was paid. A provider that fails leaves the
/// refund issued and owed (refunds payable) for the admins to retry.
pub async fn refund(
    services: &Services,
    payment_id: Uuid,
    refund: Fen,
    fee: Fen,
    reason: &str,
    context: &CommandContext,
) -> crate::Result<()> {
    // A retry of the same request (its Idempotency-Key) issues the same refund, not a second.
    let refund_id = Uuid::new_v5(
        &payment_id,
        format!(
            "refund:{}",
            context.new_aggregate_id(&format!("refund:{payment_id}:{reason}"))
        )
        .as_bytes(),
    );
    let asked = Refund {
        refund_id,
        amount: refund,
        fee,
        fee_to_worker: None,
    };
    refund_as(services, payment_id, asked, reason, context).await
}

/// One refund from a payment: its id (the same on every retry), what goes back, what is
/// kept, and the worker's share of what is kept.
#[derive(Debug, Clone, Copy)]
pub struct Refund {
    pub refund_id: Uuid,
    pub amount: Fen,
    pub fee: Fen,
    pub fee_to_worker: Option<domain::payment::FeeShare>,
}

/// `refund` with the refund's id and the fee's share given.
pub async fn refund_as(
    services: &Services,
    payment_id: Uuid,
    asked: Refund,
    reason: &str,
    context: &CommandContext,
) -> crate::Result<()> {
    let Refund {
        refund_id,
        amount: refund,
        fee,
        fee_to_worker,
    } = asked;
    if refund.get() + fee.get() == 0 {
        return Ok(());
    }
    let by = context.actor.unwrap_or_else(domain::Actor::system);
    let (current, _): (Payment, usize) = services.payments.load(payment_id).await?;
    let after_release = current.status == PaymentStatus::Released;
    let command = if after_release {
        // The worker has been credited: only an open dispute justifies taking it back.
        let order_id = current
            .order_id
            .ok_or_else(|| Error::not_found("支付单", "payment"))?;
        let (order, _): (Order, usize) = services.orders.load(order_id).await?;
        if order.status != OrderStatus::Disputed || fee.get() > 0 {
            return Err(Error::illegal_state(Text::new(
                "payments.money-released-worker-only-disputed",
            )));
        }
        PaymentCommand::RefundAfterRelease {
            refund_id,
            amount: refund,
            reason: reason.to_owned(),
            by,
            now: context.occurred_at,
        }
    } else {
        PaymentCommand::Refund {
            refund_id,
            amount: refund,
            fee,
            fee_to_worker,
            reason: reason.to_owned(),
            by,
            now: context.occurred_at,
        }
    };
    let issued = services
        .payments
        .execute_deciding_again(payment_id, command, context)
        .await?;
    if after_release {
        if let Err(error) = recover_from_worker(services, payment_id, refund_id, context).await {
            // Owed by the worker (dispute recoveries) until the money job manages it.
            tracing::warn!(payment_id = %payment_id, refund_id = %refund_id, error = %error, "the worker's share of a dispute refund could not be recovered yet");
        }
    }
    if refund.get() == 0 {
        return Ok(());
    }
    if let Err(error) = pay_refund(services, &issued.state, refund_id, context).await {
        tracing::error!(payment_id = %payment_id, refund_id = %refund_id, error = %error, "the provider did not pay a refund; it stays owed and the money job retries");
    }
    Ok(())
}

/// Finishes what a cancellation decided for the order's money, from the terms recorded on the
/// order: issues the refund (keeping the fee), records the accepted worker's share of the fee
/// as their income, and has the provider pay the refund. Every step is keyed by the order, so
/// the cancellation's request and the money job can both run it, as often as needed.
pub async fn settle_cancellation(
    services: &Services,
    order_id: Uuid,
    context: &CommandContext,
) -> crate::Result<()> {
    let (order, _): (Order, usize) = services.orders.load(order_id).await?;
    let Some(settlement) = order.cancellation else {
        return Ok(());
    };
    let asked = Refund {
        refund_id: settlement.refund_id(order_id),
        amount: settlement.refund,
        fee: settlement.fee,
        fee_to_worker: settlement.to_worker,
    };
    let (payment, _): (Payment, usize) = services.payments.load(settlement.payment_id).await?;
    if !payment.issued_refunds.contains(&asked.refund_id) {
        refund_as(
            services,
            settlement.payment_id,
            asked,
            "订单取消 / order cancelled",
            context,
        )
        .await?;
    }
    if let Some(share) = settlement.to_worker {
        let income = domain::wallet::WalletCommand::RecordIncome {
            worker_id: share.worker_id,
            order_id,
            amount: share.amount,
            kind: domain::wallet::IncomeKind::CancellationFee,
            settles_at: context.occurred_at + services.money.settlement_period,
            now: context.occurred_at,
        };
        services
            .wallets
            .execute_deciding_again(share.worker_id, income, context)
            .await?;
    }
    Ok(())
}

/// Has the payment's provider pay an issued refund and records that it did. Asking the
/// provider again for the same refund pays nothing more, so this is safe to repeat; a refund
/// already completed is left alone.
pub async fn pay_refund(
    services: &Services,
    payment: &Payment,
    refund_id: Uuid,
    context: &CommandContext,
) -> crate::Result<()> {
    let payment_id = payment
        .payment_id
        .ok_or_else(|| Error::not_found("支付单", "payment"))?;
    let Some((_, amount)) = payment
        .pending_refunds
        .iter()
        .find(|(pending, _)| *pending == refund_id)
    else {
        return Ok(());
    };
    let provider = services
        .payment_providers
        .get(&payment.provider)
        .ok_or_else(|| Error::not_found("支付渠道", "payment provider"))?;
    // The refund's request is committed before the provider hears of it.
    crate::commands::flush().await?;
    let Some(provider_refund) = provider
        .refund(
            payment_id,
            refund_id,
            Fen::literal(*amount),
            Fen::literal(payment.amount),
        )
        .await
        .map_err(Error::Unavailable)?
    else {
        // Accepted and still being processed: owed until the provider says it is paid.
        return Ok(());
    };
    services
        .payments
        .execute_deciding_again(
            payment_id,
            PaymentCommand::CompleteRefund {
                refund_id,
                provider_refund,
                now: context.occurred_at,
            },
            context,
        )
        .await?;
    Ok(())
}

/// Retries refunds the provider has not paid (it failed or timed out, or a process stopped)
/// once they are `after` old.
pub async fn retry_refunds(
    services: &Services,
    after: chrono::Duration,
    context: &CommandContext,
) -> anyhow::Result<usize> {
    let owed: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT payment_id, refund_id FROM read_refunds
          WHERE completed_at IS NULL AND amount > 0 AND issued_at < $1
          ORDER BY issued_at LIMIT 200",
    )
    .bind(context.occurred_at - after)
    .fetch_all(&services.pool)
    .await?;
    let mut paid = 0;
    for (payment_id, refund_id) in owed {
        let (payment, _): (Payment, usize) = services
            .payments
            .load(payment_id)
            .await
            .map_err(|error| anyhow::anyhow!("loading {payment_id}: {error}"))?;
        match pay_refund(services, &payment, refund_id, context).await {
            Ok(()) => paid += 1,
            Err(error) => {
                tracing::warn!(payment_id = %payment_id, refund_id = %refund_id, error = %error, "a refund is still unpaid")
            }
        }
    }
    Ok(paid)
}

/// Takes the worker's share of a dispute refund back from their wallet: from that order's
/// pending income first, then from their available balance. Safe to repeat.
pub async fn recover_from_worker(
    services: &Services,
    payment_id: Uuid,
    refund_id: Uuid,
    context: &CommandContext,
) -> crate::Result<()> {
    let payload: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT payload->'RefundClawedBack' FROM events
          WHERE aggregate_type = 'payment' AND aggregate_id = $1 AND event_type = 'RefundClawedBack'
            AND payload->'RefundClawedBack'->>'refund_id' = $2",
    )
    .bind(payment_id.to_string())
    .bind(refund_id.to_string())
    .fetch_optional(&services.pool)
    .await?;
    let Some(payload) = payload else {
        return Err(Error::not_found("退款", "refund"));
    };
    let worker_id: Uuid = serde_json::from_value(payload["worker_id"].clone())
        .map_err(|error| Error::Unavailable(anyhow::anyhow!("a stored refund: {error}")))?;
    let amount = payload["from_worker"].as_i64().unwrap_or_default();
    if amount == 0 {
        return Ok(());
    }
    let (payment, _): (Payment, usize) = services.payments.load(payment_id).await?;
    let order_id = payment
        .order_id
        .ok_or_else(|| Error::not_found("订单", "order"))?;
    services
        .wallets
        .execute_deciding_again(
            worker_id,
            domain::wallet::WalletCommand::Recover {
                refund_id,
                order_id,
                amount: Fen::literal(amount),
                now: context.occurred_at,
            },
            context,
        )
        .await?;
    Ok(())
}

/// The captured payment holding an order's money, if any.
pub async fn captured_payment_of(
    services: &Services,
    order_id: Uuid,
) -> crate::Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT payment_id FROM read_payments WHERE order_id = $1 AND status = 'captured'
          ORDER BY created_at LIMIT 1",
    )
    .bind(order_id)
    .fetch_optional(&services.pool)
    .await?)
}
