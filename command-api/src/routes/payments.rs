//! Paying for orders over HTTP: payment intents, providers' notifications, and what admins see
//! of them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::order::{Order, OrderStatus};
use domain::payment::{Payment, PaymentCommand, PaymentMethod, PaymentStatus};
use domain::{Fen, Role};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::state::AppState;
use crate::text::{Line, Paragraph};
use application::payments::Handled;
use application::ports::SandboxBehaviour;
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_intent))
        .routes(routes!(notification))
        .routes(routes!(show))
        .routes(routes!(notifications_log))
        .routes(routes!(ledger))
        .routes(routes!(income))
        .routes(routes!(admin_refund))
        .routes(routes!(reconciliations))
        .routes(routes!(admin_payments))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentListParams {
    /// `created`, `captured`, `released`, `refunded`, … as the payment shows it.
    pub status: Option<Line<20>>,
    /// `alipay`, `wechat_pay` or `bank_card`.
    pub method: Option<Line<20>>,
    pub order_id: Option<Uuid>,
    /// Keyset: payments created before this one (the previous page's last `payment_id`).
    pub before: Option<Uuid>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RefundRow {
    pub refund_id: Uuid,
    /// Fen sent back.
    pub amount: i64,
    /// Fen kept by the cancellation policy.
    pub fee: i64,
    pub issued_at: DateTime<Utc>,
    /// When the provider confirmed it; `null` while under way.
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentRow {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub status: String,
    pub method: String,
    pub provider: String,
    /// Fen.
    pub amount: i64,
    /// Fen refunded so far.
    pub refunded: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub refunds: Vec<RefundRow>,
}

/// Payments, newest first, each with its refunds (admins).
#[utoipa::path(get, path = "/api/v1/admin/payments", tag = "payments", security(("bearer" = ["admin"])), params(PaymentListParams),
    responses((status = 200, body = [PaymentRow]), (status = 422, body = crate::error::Problem)))]
pub async fn admin_payments(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<PaymentListParams>,
) -> Result<axum::Json<Vec<PaymentRow>>, ApiError> {
    let limit = i64::from(params.limit.unwrap_or(50));
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Invalid(Text::new("payments.limit-from-1-200")));
    }
    let rows: Vec<PaymentRecord> = sqlx::query_as(
        "SELECT p.payment_id, p.order_id, p.customer_id, p.status, p.method, p.provider, p.amount,
                p.created_at, p.updated_at
           FROM read_payments p
          WHERE ($1::text IS NULL OR p.status = $1)
            AND ($2::text IS NULL OR p.method = $2)
            AND ($3::uuid IS NULL OR p.order_id = $3)
            AND ($4::uuid IS NULL OR (p.created_at, p.payment_id) <
                 (SELECT created_at, payment_id FROM read_payments WHERE payment_id = $4))
          ORDER BY p.created_at DESC, p.payment_id DESC
          LIMIT $5",
    )
    .bind(params.status.as_deref())
    .bind(params.method.as_deref())
    .bind(params.order_id)
    .bind(params.before)
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|row| row.payment_id).collect();
    let refunds: Vec<RefundRecord> = sqlx::query_as(
        "SELECT payment_id, refund_id, amount, fee, issued_at, completed_at FROM read_refunds
          WHERE payment_id = ANY($1) ORDER BY issued_at, refund_id",
    )
    .bind(&ids)
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|row| {
                let refunds: Vec<RefundRow> = refunds
                    .iter()
                    .filter(|refund| refund.payment_id == row.payment_id)
                    .map(|refund| RefundRow {
                        refund_id: refund.refund_id,
                        amount: refund.amount,
                        fee: refund.fee,
                        issued_at: refund.issued_at,
                        completed_at: refund.completed_at,
                    })
                    .collect();
                PaymentRow {
                    payment_id: row.payment_id,
                    order_id: row.order_id,
                    customer_id: row.customer_id,
                    status: row.status,
                    method: row.method,
                    provider: row.provider,
                    amount: row.amount,
                    refunded: refunds.iter().map(|refund| refund.amount).sum(),
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                    refunds,
                }
            })
            .collect(),
    ))
}

#[derive(sqlx::FromRow)]
struct PaymentRecord {
    payment_id: Uuid,
    order_id: Uuid,
    customer_id: Uuid,
    status: String,
    method: String,
    provider: String,
    amount: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RefundRecord {
    payment_id: Uuid,
    refund_id: Uuid,
    amount: i64,
    fee: i64,
    issued_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentBody {
    /// `alipay`, `wechat_pay` or `bank_card`.
    #[schema(value_type = crate::schemas::Method)]
    pub method: PaymentMethod,
    /// Sandbox only: `succeed` (default), `fail`, `timeout`, `notify_twice` or
    /// `refund_fails_once`.
    #[serde(default)]
    pub sandbox: SandboxScript,
}

/// How the sandbox should answer this payment (the sandbox only; real providers never see it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[schema(as = SandboxBehaviour)]
#[serde(rename_all = "snake_case")]
pub enum SandboxScript {
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

impl From<SandboxScript> for SandboxBehaviour {
    fn from(script: SandboxScript) -> Self {
        match script {
            SandboxScript::Succeed => SandboxBehaviour::Succeed,
            SandboxScript::Fail => SandboxBehaviour::Fail,
            SandboxScript::Timeout => SandboxBehaviour::Timeout,
            SandboxScript::NotifyTwice => SandboxBehaviour::NotifyTwice,
            SandboxScript::RefundFailsOnce => SandboxBehaviour::RefundFailsOnce,
        }
    }
}

/// What a provider hands the customer's app to complete the payment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Checkout)]
pub struct CheckoutView {
    pub provider: String,
    /// The provider's transaction number for this payment.
    pub provider_transaction: String,
    /// Where the app sends the customer (a cashier page or a deep link).
    pub pay_url: String,
}

impl From<application::ports::Checkout> for CheckoutView {
    fn from(checkout: application::ports::Checkout) -> Self {
        CheckoutView {
            provider: checkout.provider,
            provider_transaction: checkout.provider_transaction,
            pay_url: checkout.pay_url,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IntentView {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// Fen.
    pub amount: i64,
    pub status: String,
    pub checkout: CheckoutView,
}

/// Start paying for an order awaiting payment (its customer). The provider then confirms
/// asynchronously; the order becomes paid when it does.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/payment-intents", tag = "payments", request_body = IntentBody, security(("bearer" = ["customer"])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 201, body = IntentView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn create_intent(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<IntentBody>,
) -> Result<Response, ApiError> {
    let customer = context.actor.ok_or(ApiError::Unauthenticated)?;
    let (order, _): (Order, usize) = state.orders.load(order_id).await?;
    if order.status == OrderStatus::New || order.customer_id != Some(customer.id) {
        return Err(ApiError::not_found("订单", "order"));
    }
    if order.status != OrderStatus::AwaitingPayment {
        return Err(domain::order::OrderError::IllegalTransition {
            verb: ("支付", "pay for"),
            state: order.status,
        }
        .into());
    }
    let payment_id = context.new_aggregate_id("payment");
    // A retry whose key's answer is gone finds the intent its first attempt opened: its
    // provider is asked again, for what the intent was opened for.
    let (existing, _): (domain::payment::Payment, usize) = state.payments.load(payment_id).await?;
    let opened = existing.status != PaymentStatus::New;
    let (provider, amount) = if opened {
        (
            state.payment_providers.get(&existing.provider),
            Fen::literal(existing.amount),
        )
    } else {
        (
            state.payment_providers.for_method(body.method),
            order.total.unwrap_or(Fen::ZERO),
        )
    };
    let provider = provider
        .ok_or_else(|| ApiError::Invalid(Text::new("payments.payment-method-not-available")))?;
    // The provider opens its checkout before the intent is written, so the request commits
    // once and holds no transaction id while the provider answers. Nothing outside acts on it
    // yet: the customer can pay only through the checkout in this answer, which is sent after
    // the commit. Should the commit fail, the caller hears so and retries with the same key:
    // the same payment id, which a provider answers with the same checkout.
    state
        .payment_providers
        .script(provider.as_ref(), payment_id, body.sandbox.into())
        .await
        .map_err(ApiError::Unavailable)?;
    let checkout = provider
        .create(payment_id, amount, body.method)
        .await
        .map_err(ApiError::Unavailable)?
        .into();
    if !opened {
        let command = PaymentCommand::Create {
            payment_id,
            order_id,
            customer_id: customer.id,
            amount,
            method: body.method,
            provider: provider.name().to_owned(),
            now: context.occurred_at,
        };
        match state
            .payments
            .execute_new(payment_id, command, &context)
            .await
        {
            // A first attempt with the same key, running at the same moment, opened it.
            Ok(_)
            | Err(cqrs_es::AggregateError::UserError(
                domain::payment::PaymentError::AlreadyExists,
            )) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let view = IntentView {
        payment_id,
        order_id,
        amount: amount.get(),
        status: PaymentStatus::Pending.as_str().to_owned(),
        checkout,
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/payments/{payment_id}"))],
        axum::Json(view),
    )
        .into_response())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationAnswer {
    /// `accepted` or `duplicate`.
    pub result: String,
}

/// Where payment providers send their signed notifications. A notification that fails a
/// check (signature, age, amount, currency, payment) changes nothing, is logged for the
/// admins and is answered 400.
#[utoipa::path(post, path = "/api/v1/payments/notifications/{provider}", security(()), tag = "payments",
    params(("provider" = String, Path)),
    responses((status = 200, body = NotificationAnswer), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn notification(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(provider): AppPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let result = match application::payments::handle_notification(
        &state,
        &provider,
        &plain_headers(&headers),
        &body,
        &context,
    )
    .await?
    {
        Handled::Accepted => "accepted",
        Handled::Duplicate => "duplicate",
        Handled::Ignored => "ignored",
        Handled::Rejected(reason) => {
            return Err(ApiError::BadRequest(
                Text::new("payments.notification-refused").with("reason", reason),
            ))
        }
    };
    // Alipay keeps notifying until it reads exactly `success`.
    if let Some(plain) = state
        .payment_providers
        .get(&provider)
        .and_then(|known| known.acknowledgement())
    {
        return Ok(([(header::CONTENT_TYPE, "text/plain")], plain).into_response());
    }
    Ok(axum::Json(NotificationAnswer {
        result: result.into(),
    })
    .into_response())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentView {
    pub payment_id: Uuid,
    pub order_id: Option<Uuid>,
    pub status: String,
    pub method: Option<String>,
    pub provider: String,
    pub provider_transaction: Option<String>,
    /// Fen.
    pub amount: i64,
    pub in_escrow: i64,
    pub refunded: i64,
    /// Fen kept by cancellation fees, the workers' shares included.
    pub fee_kept: i64,
    /// Fen of `fee_kept` that went to the worker who had accepted the order.
    pub fees_to_workers: i64,
}

/// One payment (its customer or admins).
#[utoipa::path(get, path = "/api/v1/payments/{payment_id}", tag = "payments", security(("bearer" = ["customer", "admin"])),
    params(("payment_id" = Uuid, Path)),
    responses((status = 200, body = PaymentView), (status = 404, body = crate::error::Problem)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(payment_id): AppPath<Uuid>,
) -> Result<axum::Json<PaymentView>, ApiError> {
    let actor = caller.actor()?;
    let (payment, _): (Payment, usize) = state.payments.load(payment_id).await?;
    let visible = payment.status != PaymentStatus::New
        && (actor.role == Role::Admin || payment.customer_id == Some(actor.id));
    if !visible {
        return Err(ApiError::not_found("支付单", "payment"));
    }
    Ok(axum::Json(PaymentView {
        payment_id,
        order_id: payment.order_id,
        status: payment.status.as_str().to_owned(),
        method: payment.method.map(|method| method.as_str().to_owned()),
        provider: payment.provider,
        provider_transaction: payment.provider_transaction,
        amount: payment.amount,
        in_escrow: payment.in_escrow,
        refunded: payment.refunded,
        fee_kept: payment.fee_kept,
        fees_to_workers: payment.fees_to_workers,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// `accepted`, `duplicate` or `rejected`; all when absent.
    pub outcome: Option<Line<20>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoggedNotification {
    pub provider: String,
    pub notification_id: Option<String>,
    pub payment_id: Option<Uuid>,
    pub outcome: String,
    pub reason: Option<String>,
    pub client_ip: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// Payment notifications as they arrived, newest first (admins): forged, replayed or
/// mismatched ones show why they were refused.
#[utoipa::path(get, path = "/api/v1/admin/payment-notifications", tag = "payments", security(("bearer" = ["admin"])), params(LogParams),
    responses((status = 200, body = [LoggedNotification]), (status = 422, body = crate::error::Problem)))]
pub async fn notifications_log(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<LogParams>,
) -> Result<axum::Json<Vec<LoggedNotification>>, ApiError> {
    if let Some(outcome) = &params.outcome {
        if !["accepted", "duplicate", "rejected"].contains(&outcome.as_str()) {
            return Err(ApiError::Invalid(
                Text::new("payments.unknown-outcome").with("outcome", outcome),
            ));
        }
    }
    let rows = sqlx::query_as::<
        _,
        (
            String,
            Option<String>,
            Option<Uuid>,
            String,
            Option<String>,
            Option<String>,
            DateTime<Utc>,
        ),
    >(
        "SELECT provider, notification_id, payment_id, outcome, reason, client_ip, received_at
           FROM payment_notifications WHERE ($1::text IS NULL OR outcome = $1)
          ORDER BY received_at DESC LIMIT 200",
    )
    .bind(&params.outcome)
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|row| LoggedNotification {
                provider: row.0,
                notification_id: row.1,
                payment_id: row.2,
                outcome: row.3,
                reason: row.4,
                client_ip: row.5,
                received_at: row.6,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountBalance {
    /// e.g. `platform_escrow`, `worker_pending:<worker id>`.
    pub account: String,
    /// Fen, on the account's normal side.
    pub balance: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LedgerView {
    pub accounts: Vec<AccountBalance>,
    /// The signed sum of every leg ever posted: 0 when the books balance.
    pub trial_balance: i64,
}

/// Every ledger account's balance (admins).
#[utoipa::path(get, path = "/api/v1/admin/ledger", tag = "payments", security(("bearer" = ["admin"])),
    responses((status = 200, body = LedgerView)))]
pub async fn ledger(State(state): State<AppState>) -> Result<axum::Json<LedgerView>, ApiError> {
    let accounts = projections::ledger::balances(&state.pool)
        .await?
        .into_iter()
        .map(|(account, balance)| AccountBalance { account, balance })
        .collect();
    Ok(axum::Json(LedgerView {
        accounts,
        trial_balance: projections::ledger::trial_balance(&state.pool).await?,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncomeParams {
    /// `day` (default), `week` or `month`: how the chart series is grouped (Asia/Shanghai).
    pub group: Option<Line<20>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncomeItem {
    pub order_id: Uuid,
    /// Fen, after the platform's commission.
    pub amount: i64,
    /// `service` (a served order's share) or `cancellation_fee` (a share of the fee kept when
    /// the customer cancelled late).
    #[schema(value_type = crate::schemas::IncomeKind)]
    pub kind: String,
    pub recorded_at: DateTime<Utc>,
    pub settles_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncomePoint {
    /// The first local date of the day, week (Monday) or month.
    pub period_start: chrono::NaiveDate,
    /// Fen earned in the period.
    pub amount: i64,
    /// Of which already settled.
    pub settled: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncomeView {
    /// Fen not yet settled.
    pub pending: i64,
    /// Fen that may be withdrawn.
    pub available: i64,
    /// Fen in withdrawals under way.
    pub in_transit: i64,
    pub incomes: Vec<IncomeItem>,
    pub series: Vec<IncomePoint>,
}

/// Your income (workers): balances, each completed order's share, and totals by day, week or
/// month ready for a chart.
#[utoipa::path(get, path = "/api/v1/worker/income", tag = "payments", security(("bearer" = ["worker"])), params(IncomeParams),
    responses((status = 200, body = IncomeView), (status = 422, body = crate::error::Problem)))]
pub async fn income(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(params): AppQuery<IncomeParams>,
) -> Result<axum::Json<IncomeView>, ApiError> {
    let worker_id = caller.actor()?.id;
    let group = params
        .group
        .map(String::from)
        .unwrap_or_else(|| "day".to_owned());
    if !["day", "week", "month"].contains(&group.as_str()) {
        return Err(ApiError::Invalid(
            Text::new("payments.group-must-day-week-month").with("group", group),
        ));
    }
    let (wallet, _): (domain::wallet::Wallet, usize) = state.wallets.load(worker_id).await?;
    let incomes = sqlx::query_as::<
        _,
        (
            Uuid,
            i64,
            String,
            DateTime<Utc>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
        ),
    >(
        "SELECT order_id, amount, kind, recorded_at, settles_at, settled_at FROM read_wallet_incomes
          WHERE worker_id = $1 ORDER BY recorded_at DESC LIMIT 500",
    )
    .bind(worker_id)
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|row| IncomeItem {
        order_id: row.0,
        amount: row.1,
        kind: row.2,
        recorded_at: row.3,
        settles_at: row.4,
        settled_at: row.5,
    })
    .collect();
    let series = sqlx::query_as::<_, (chrono::NaiveDate, i64, i64)>(
        "SELECT date_trunc($2, recorded_at AT TIME ZONE 'Asia/Shanghai')::date AS period,
                sum(amount)::bigint, COALESCE(sum(amount) FILTER (WHERE settled_at IS NOT NULL), 0)::bigint
           FROM read_wallet_incomes WHERE worker_id = $1
          GROUP BY period ORDER BY period",
    )
    .bind(worker_id)
    .bind(&group)
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|(period_start, amount, settled)| IncomePoint {
        period_start,
        amount,
        settled,
    })
    .collect();
    Ok(axum::Json(IncomeView {
        pending: wallet.pending_total(),
        available: wallet.available,
        in_transit: wallet.in_transit,
        incomes,
        series,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Fen, at most what is still in escrow (or, after release, not yet refunded).
    pub amount: i64,
    pub reason: Paragraph<500>,
}

/// Refund part of a payment to settle a dispute (admins). From escrow while the service is
/// unfinished; after release only for a disputed order, the commission returning in proportion
/// and the worker's share taken back from their income. The money goes back through the
/// original provider; the reason is recorded with who gave it.
#[utoipa::path(post, path = "/api/v1/admin/payments/{payment_id}/refunds", tag = "payments", request_body = RefundBody, security(("bearer" = ["admin"])),
    params(("payment_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = PaymentView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn admin_refund(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    caller: Caller,
    AppPath(payment_id): AppPath<Uuid>,
    AppJson(body): AppJson<RefundBody>,
) -> Result<axum::Json<PaymentView>, ApiError> {
    let amount = Fen::new(body.amount)?;
    if amount.get() == 0 {
        return Err(
            application::Error::from_refusal(domain::payment::PaymentError::EmptyRefund).into(),
        );
    }
    let reason = domain::values::required_text("原因 reason", &body.reason, 500)?;
    application::payments::refund(&state, payment_id, amount, Fen::ZERO, &reason, &context).await?;
    show(State(state), caller, AppPath(payment_id)).await
}

/// The latest reconciliations of providers' statements against the ledger, newest first
/// (admins); each lists its differences.
#[utoipa::path(get, path = "/api/v1/admin/reconciliations", tag = "payments", security(("bearer" = ["admin"])),
    responses((status = 200, body = [Object])))]
pub async fn reconciliations(
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<serde_json::Value>>, ApiError> {
    let reports: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT report || jsonb_build_object('ran_at', ran_at) FROM reconciliation_runs
          ORDER BY ran_at DESC LIMIT 30",
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(reports))
}

/// A notification's headers as the payment port takes them: plain text, no HTTP types.
fn plain_headers(headers: &HeaderMap) -> application::ports::Headers {
    headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect()
}
