//! Paying for orders: the `PaymentProvider` port, the providers by name, and the flows that
//! follow a payment: a notification (or a query's answer) captures it and marks the order paid,
//! a cancellation refunds it, a refund is paid back and retried, the statements are reconciled.
//!
//! A notification is verified (signature, age, amount, currency, payment) before anything
//! changes; one that fails any check changes nothing and is logged for the admins. The
//! providers themselves (Alipay, WeChat Pay, UnionPay, the sandbox) are in the `adapters` crate.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::order::{Order, OrderCommand, OrderStatus};
use domain::payment::{Payment, PaymentCommand, PaymentMethod, PaymentStatus};
use domain::Fen;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::commands::CommandContext;
use crate::error::Error;
use crate::services::Services;

/// How the sandbox should behave for one payment: a script for the test double, told through
/// `SandboxControl` before the payment is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxBehaviour {
    /// Notify success once.
    #[default]
    Succeed,
    /// Notify failure.
    Fail,
    /// Never notify: the query job has to ask.
    Timeout,
    /// Notify success twice.
    NotifyTwice,
    /// Notify success once; the first refund asked for then fails.
    RefundFailsOnce,
}

impl SandboxBehaviour {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxBehaviour::Succeed => "succeed",
            SandboxBehaviour::Fail => "fail",
            SandboxBehaviour::Timeout => "timeout",
            SandboxBehaviour::NotifyTwice => "notify_twice",
            SandboxBehaviour::RefundFailsOnce => "refund_fails_once",
        }
    }
}

/// What a provider hands the customer's app to complete the payment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkout {
    pub provider: String,
    /// The provider's transaction number for this payment.
    pub provider_transaction: String,
    /// Where the app sends the customer (a cashier page or a deep link).
    pub pay_url: String,
}

/// A notification that passed the provider's signature check, before our own checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    pub notification_id: String,
    pub payment_id: Uuid,
    pub provider_transaction: String,
    /// Fen.
    pub amount: i64,
    pub currency: String,
    /// `success` or `failed`.
    pub status: String,
    pub occurred_at: DateTime<Utc>,
}

/// One line of a provider's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// `payment` or `refund`.
    pub kind: String,
    /// The provider's transaction or refund number.
    pub reference: String,
    /// Fen.
    pub amount: i64,
}

/// A notification's HTTP headers as plain text, names in lower case: the port knows no HTTP
/// library.
#[derive(Debug, Clone, Default)]
pub struct Headers(BTreeMap<String, String>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn insert(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_ascii_lowercase(), value.into());
    }
}

impl<N: AsRef<str>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Self {
        let mut headers = Headers::default();
        for (name, value) in pairs {
            headers.insert(name.as_ref(), value);
        }
        headers
    }
}

/// The sandbox's own control: how it is to answer a payment about to be created. Real
/// providers have nothing like it; only the sandbox implements it.
#[async_trait::async_trait]
pub trait SandboxControl: Send + Sync {
    async fn script(&self, payment_id: Uuid, behaviour: SandboxBehaviour) -> anyhow::Result<()>;
}

/// A payment provider as the platform uses it.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync {
    fn name(&self) -> &'static str;

    /// Opens a payment with the provider.
    async fn create(
        &self,
        payment_id: Uuid,
        amount: Fen,
        method: PaymentMethod,
    ) -> anyhow::Result<Checkout>;

    /// Checks a notification's signature and reads it. `Err` carries why it was refused.
    fn verify(&self, headers: &Headers, body: &[u8]) -> Result<Notification, String>;

    /// The provider's statement of one local day: every payment it collected and refund it paid.
    /// `None` when statements are not fetched from this provider.
    async fn statement(&self, day: chrono::NaiveDate)
        -> anyhow::Result<Option<Vec<StatementLine>>>;

    /// The plain-text body a provider wants for an accepted notification (Alipay wants
    /// `success`); `None` answers with JSON.
    fn acknowledgement(&self) -> Option<&'static str> {
        None
    }

    /// Asks the provider what became of a payment whose notification never came. `None` while
    /// the customer has not paid.
    async fn query(&self, payment_id: Uuid) -> anyhow::Result<Option<Notification>>;

    /// Pays `amount` back to the customer through the original payment of `original`; returns
    /// the provider's refund number once the money is on its way back, `None` while the
    /// provider is still processing it (the money job asks again). Asking again with the same
    /// `refund_id` pays nothing more.
    async fn refund(
        &self,
        payment_id: Uuid,
        refund_id: Uuid,
        amount: Fen,
        original: Fen,
    ) -> anyhow::Result<Option<String>>;
}

/// The providers by name.
#[derive(Clone)]
pub struct Providers {
    /// The in-process sandbox, when it is on (development mode only).
    pub sandbox: Option<Arc<dyn PaymentProvider>>,
    /// Scripts the sandbox's next answers, when it is on.
    pub sandbox_control: Option<Arc<dyn SandboxControl>>,
    pub alipay: Option<Arc<dyn PaymentProvider>>,
    pub wechat_pay: Option<Arc<dyn PaymentProvider>>,
    pub unionpay: Option<Arc<dyn PaymentProvider>>,
}

impl Providers {
    pub fn get(&self, name: &str) -> Option<Arc<dyn PaymentProvider>> {
        self.all()
            .into_iter()
            .find(|provider| provider.name() == name)
    }

    /// Who takes a payment by `method`: Alipay, WeChat Pay and the bank-card acquirer
    /// (UnionPay's gateway) when configured, the sandbox otherwise when it is on (development
    /// mode only); `None` when nobody does.
    pub fn for_method(&self, method: PaymentMethod) -> Option<Arc<dyn PaymentProvider>> {
        let real = match method {
            PaymentMethod::Alipay => self.alipay.clone(),
            PaymentMethod::WechatPay => self.wechat_pay.clone(),
            PaymentMethod::BankCard => self.unionpay.clone(),
        };
        real.or_else(|| self.sandbox.clone())
    }

    pub fn all(&self) -> Vec<Arc<dyn PaymentProvider>> {
        self.sandbox
            .clone()
            .into_iter()
            .chain(self.alipay.clone())
            .chain(self.wechat_pay.clone())
            .chain(self.unionpay.clone())
            .collect()
    }
}

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
/// is marked paid and dispatch opens. Every outcome is logged.
pub async fn handle_notification(
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
    .bind(String::from_utf8_lossy(&body[..body.len().min(4_000)]).into_owned())
    .execute(&services.pool)
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
            let outcome = apply(services, &provider_name, &answer, context)
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
/// repeat; if this process stops in between, the dispatcher's timer opens dispatch.
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
    crate::dispatch::open(services, order_id, context).await
}

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
            return Err(Error::illegal_state(
                "款项已结算给服务人员，只能为争议中的订单退款 / the money was released to the worker; only a disputed order can be refunded now",
            ));
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

/// One disagreement between a provider's statement and the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub kind: String,
    pub reference: String,
    pub statement_amount: Option<i64>,
    pub ledger_amount: Option<i64>,
    /// `missing_in_ledger`, `missing_in_statement` or `amount_differs`.
    pub problem: String,
}

/// A day's reconciliation of one provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reconciliation {
    pub provider: String,
    pub day: chrono::NaiveDate,
    pub statement_lines: usize,
    pub ledger_lines: usize,
    pub matched: usize,
    pub differences: Vec<Difference>,
}

/// Compares each provider's statement of a local day with what the event log recorded that
/// day (captures and completed refunds, by provider reference) and lists every difference.
/// Each run is kept for the admins.
pub async fn reconcile(
    services: &Services,
    day: chrono::NaiveDate,
) -> anyhow::Result<Vec<Reconciliation>> {
    let from = domain::availability::local_instant(day, chrono::NaiveTime::MIN);
    let to = from + chrono::Duration::days(1);
    let mut reports = Vec::new();
    for provider in services.payment_providers.all() {
        let Some(statement) = provider.statement(day).await? else {
            tracing::info!(provider = provider.name(), %day, "this provider's statements are not fetched; not reconciled");
            continue;
        };
        let ledger: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT CASE e.event_type WHEN 'PaymentCaptured' THEN 'payment' ELSE 'refund' END,
                    CASE e.event_type
                        WHEN 'PaymentCaptured' THEN e.payload->'PaymentCaptured'->>'provider_transaction'
                        ELSE e.payload->'RefundCompleted'->>'provider_refund' END,
                    CASE e.event_type
                        WHEN 'PaymentCaptured' THEN (e.payload->'PaymentCaptured'->>'amount')::bigint
                        ELSE (e.payload->'RefundCompleted'->>'amount')::bigint END
               FROM events e
               JOIN events created ON created.aggregate_type = 'payment'
                    AND created.aggregate_id = e.aggregate_id AND created.sequence = 1
              WHERE e.aggregate_type = 'payment'
                AND e.event_type IN ('PaymentCaptured', 'RefundCompleted')
                AND e.recorded_at >= $1 AND e.recorded_at < $2
                AND created.payload->'PaymentCreated'->>'provider' = $3",
        )
        .bind(from)
        .bind(to)
        .bind(provider.name())
        .fetch_all(&services.pool)
        .await?;
        let mut theirs: std::collections::BTreeMap<(String, String), i64> = statement
            .iter()
            .map(|line| ((line.kind.clone(), line.reference.clone()), line.amount))
            .collect();
        let mut differences = Vec::new();
        let mut matched = 0;
        for (kind, reference, amount) in &ledger {
            match theirs.remove(&(kind.clone(), reference.clone())) {
                Some(statement_amount) if statement_amount == *amount => matched += 1,
                Some(statement_amount) => differences.push(Difference {
                    kind: kind.clone(),
                    reference: reference.clone(),
                    statement_amount: Some(statement_amount),
                    ledger_amount: Some(*amount),
                    problem: "amount_differs".into(),
                }),
                None => differences.push(Difference {
                    kind: kind.clone(),
                    reference: reference.clone(),
                    statement_amount: None,
                    ledger_amount: Some(*amount),
                    problem: "missing_in_statement".into(),
                }),
            }
        }
        for ((kind, reference), amount) in theirs {
            differences.push(Difference {
                kind,
                reference,
                statement_amount: Some(amount),
                ledger_amount: None,
                problem: "missing_in_ledger".into(),
            });
        }
        let report = Reconciliation {
            provider: provider.name().to_owned(),
            day,
            statement_lines: statement.len(),
            ledger_lines: ledger.len(),
            matched,
            differences,
        };
        sqlx::query(
            "INSERT INTO reconciliation_runs (run_id, provider, day, matched, differences, report)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(&report.provider)
        .bind(day)
        .bind(report.matched as i32)
        .bind(report.differences.len() as i32)
        .bind(serde_json::to_value(&report)?)
        .execute(&services.pool)
        .await?;
        if !report.differences.is_empty() {
            tracing::warn!(provider = %report.provider, %day, differences = report.differences.len(), "the provider's statement and the ledger differ");
        }
        reports.push(report);
    }
    Ok(reports)
}
