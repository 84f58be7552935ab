//! A payment confirmed: a notification verified and applied (or a query answer, when the
//! notification never came), the payment captured and the order marked paid.

use super::*;

/// What became of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Accepted,
    Duplicate,
    /// Genuine, but nothing to do yet (a provider telling us the customer has not paid).
    Ignored,
    Rejected(String),
}

/// Verifies and applies one notification: the payment is captured (or failed), then the order
/// is marked paid and dispatch opens. Every outcome is logged. All of it commits at once (one
/// durable commit), or none of it and the provider is told to try again; only a refund of a
/// payment nobody needs commits what came before it, before the provider hears of it.
pub async fn handle_notification(
    services: &Services,
    provider_name: &str,
    headers: &Headers,
    body: &[u8],
    context: &CommandContext,
) -> crate::Result<Handled> {
    crate::commands::atomically(
        &services.units,
        handle_alone(services, provider_name, headers, body, context),
    )
    .await
}

async fn handle_alone(
    services: &Services,
    provider_name: &str,
    headers: &Headers,
    body: &[u8],
    context: &CommandContext,
) -> crate::Result<Handled> {
    let Some(provider) = services.payment_providers.get(provider_name) else {
        return Err(Error::not_found("支付渠道", "payment provider"));
    };
    let verified = provider.verify(headers, body);
    let (outcome, notification) = match verified {
        Err(reason) => (Handled::Rejected(reason), None),
        Ok(notification) => {
            let outcome = apply(services, provider_name, &notification, context).await?;
            (outcome, Some(notification))
        }
    };
    let (label, reason) = match &outcome {
        Handled::Accepted => ("accepted", None),
        Handled::Duplicate => ("duplicate", None),
        Handled::Ignored => ("ignored", None),
        Handled::Rejected(reason) => ("rejected", Some(reason.clone())),
    };
    if let Handled::Rejected(reason) = &outcome {
        tracing::warn!(provider = provider_name, reason = %reason, "a payment notification was refused");
    }
    crate::commands::write(
        &services.pool,
        sqlx::query(
            "INSERT INTO payment_notifications (log_id, provider, notification_id, payment_id, outcome, reason, client_ip, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(provider_name)
        .bind(notification.as_ref().map(|n| n.notification_id.clone()))
        .bind(notification.as_ref().map(|n| n.payment_id))
        .bind(label)
        .bind(reason)
        .bind(&context.client_ip)
        .bind(String::from_utf8_lossy(&body[..body.len().min(4_000)]).into_owned()),
    )
    .await?;
    Ok(outcome)
}

/// Asks the providers about payments still pending after `after`: the notification may have
/// been lost. An answer is applied exactly as a notification would be.
pub async fn query_pending(
    services: &Services,
    after: chrono::Duration,
    context: &CommandContext,
) -> anyhow::Result<usize> {
    let pending: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT payment_id, provider FROM read_payments
          WHERE status = 'pending' AND created_at <= $1 ORDER BY created_at LIMIT 200",
    )
    .bind(context.occurred_at - after)
    .fetch_all(&services.pool)
    .await?;
    let mut settled = 0;
    for (payment_id, provider_name) in pending {
        let Some(provider) = services.payment_providers.get(&provider_name) else {
            continue;
        };
        // One provider that cannot answer (down, or an answer that fails its checks) must not
        // hold up the other payments, nor the rest of the money job.
        let answer = match provider.query(payment_id).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(payment_id = %payment_id, provider = %provider_name, error = %format!("{error:#}"), "a payment query failed; asking again next time");
                continue;
            }
        };
        if let Some(answer) = answer {
            let outcome = crate::commands::atomically(
                &services.units,
                apply(services, &provider_name, &answer, context),
            )
            .await
            .map_err(|error| anyhow::anyhow!("applying a query answer: {error}"))?;
            if outcome == Handled::Accepted {
                settled += 1;
            }
        }
    }
    Ok(settled)
}

async fn apply(
    services: &Services,
    provider_name: &str,
    notification: &Notification,
    context: &CommandContext,
) -> crate::Result<Handled> {
    let (payment, _): (Payment, usize) = services.payments.load(notification.payment_id).await?;
    if payment.status == PaymentStatus::New {
        return Ok(Handled::Rejected("unknown payment".into()));
    }
    if payment.provider != provider_name {
        return Ok(Handled::Rejected(
            "payment belongs to another provider".into(),
        ));
    }
    let Ok(amount) = Fen::new(notification.amount) else {
        return Ok(Handled::Rejected("negative amount".into()));
    };
    let command = match notification.status.as_str() {
        "success" => PaymentCommand::Capture {
            provider_transaction: notification.provider_transaction.clone(),
            amount,
            currency: notification.currency.clone(),
            now: context.occurred_at,
        },
        "failed" if payment.status == PaymentStatus::Pending => PaymentCommand::Fail {
            reason: "渠道通知支付失败 / the provider reported a failed payment".into(),
            now: context.occurred_at,
        },
        "failed" => return Ok(Handled::Duplicate),
        "pending" => return Ok(Handled::Ignored),
        other => return Ok(Handled::Rejected(format!("unknown status {other}"))),
    };
    let committed = match services
        .payments
        .execute_deciding_again(notification.payment_id, command, context)
        .await
    {
        Ok(committed) => committed,
        Err(cqrs_es::AggregateError::UserError(refusal)) => {
            return Ok(Handled::Rejected(refusal.to_string()))
        }
        Err(other) => return Err(other.into()),
    };
    if committed.events == 0 {
        return Ok(Handled::Duplicate);
    }
    if committed.state.status == PaymentStatus::Captured {
        if let Some(order_id) = committed.state.order_id {
            mark_order_paid(services, order_id, &committed.state, context).await?;
        }
    }
    Ok(Handled::Accepted)
}

/// The order side of a capture: recorded as paid, then dispatch opens. Both steps are safe to
/// repeat; inside a notification's unit they commit with the capture.
pub async fn mark_order_paid(
    services: &Services,
    order_id: Uuid,
    payment: &Payment,
    context: &CommandContext,
) -> crate::Result<()> {
    let (order, _): (Order, usize) = services.orders.load(order_id).await?;
    // Paid after the order was cancelled (its payment deadline passed first), or paid twice
    // through two intents: the money goes straight back through the provider.
    let needs_it = order.status == OrderStatus::AwaitingPayment;
    let already_paid_by_other =
        !needs_it && order.status != OrderStatus::Cancelled && order.status != OrderStatus::New;
    if order.status == OrderStatus::Cancelled
        || (already_paid_by_other && !paid_by(services, order_id, payment).await?)
    {
        if let Some(payment_id) = payment.payment_id {
            return refund(
                services,
                payment_id,
                Fen::literal(payment.in_escrow),
                Fen::ZERO,
                "订单已取消或已由另一笔支付付清，自动退款 / the order was cancelled or already paid; refunded automatically",
                context,
            )
            .await;
        }
        return Ok(());
    }
    if needs_it {
        let command = OrderCommand::RecordPayment {
            payment_reference: payment.provider_transaction.clone().unwrap_or_default(),
            amount: Fen::literal(payment.amount),
            now: context.occurred_at,
        };
        if let Err(error) = services
            .orders
            .execute_deciding_again(order_id, command, context)
            .await
        {
            // Refused by the order (for example cancelled a moment ago): the next money tick
            // does not retry this; the admins see it in the log and the payment in escrow.
            tracing::warn!(order_id = %order_id, error = %error, "a captured payment could not mark its order paid");
            return Ok(());
        }
    }
    match crate::dispatch::open(services, order_id, context).await {
        // Refused by the order: the payment and its recording stand, and the dispatcher's
        // timer opens dispatch (or the admins see why not). A failure of the database rolls
        // the whole notification back instead, for the provider to send again.
        Err(error @ (Error::Refused { .. } | Error::NotFound(_))) => {
            tracing::warn!(order_id = %order_id, error = %error, "a paid order's dispatch did not open; the timer tries again");
            Ok(())
        }
        other => other,
    }
}

/// Whether `payment` is the one the order recorded as its payment.
async fn paid_by(services: &Services, order_id: Uuid, payment: &Payment) -> crate::Result<bool> {
    let recorded: Option<String> = sqlx::query_scalar(
        "SELECT payload->'PaymentRecorded'->>'payment_reference' FROM events
          WHERE aggregate_type = 'order' AND aggregate_id = $1 AND event_type = 'PaymentRecorded'",
    )
    .bind(order_id.to_string())
    .fetch_optional(&services.pool)
    .await?;
    Ok(recorded.is_none() || recorded == payment.provider_transaction)
}
