//! The admins dispatch desk: reassigning, the queue of orders waiting for a worker, the automatic
//! rounds, and why a worker is or is not a candidate.

use super::*;
use domain::message::Text;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignBody {
    pub worker_id: Uuid,
    pub reason: Paragraph<500>,
}

/// Move an assigned or accepted order to another worker, with a reason (admins). The new
/// worker's time is reserved first; the old worker's is given back.
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/reassign", tag = "dispatch", request_body = ReassignBody, security(("bearer" = ["admin"])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn reassign(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<ReassignBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let (order, _): (Order, usize) = state.orders.load(order_id).await?;
    if order.status == OrderStatus::New {
        return Err(ApiError::not_found("订单", "order"));
    }
    let (worker, _): (Worker, usize) = state.workers.load(body.worker_id).await?;
    let command = OrderCommand::Reassign {
        worker: worker.facts(
            body.worker_id,
            domain::values::business_day(context.occurred_at),
        ),
        by,
        reason: body.reason.to_string(),
        now: context.occurred_at,
    };
    let reason = body.reason;
    order.decide_only(command.clone())?;
    let previous = order.worker_id;
    let held =
        application::dispatch::hold(&state, body.worker_id, &order, order_id, &context).await?;
    if let Err(refusal) = state.orders.execute(order_id, command, &context).await {
        held.give_back(
            &state,
            body.worker_id,
            order_id,
            "改派失败 / reassignment failed",
            &context,
        )
        .await;
        return Err(refusal.into());
    }
    held.confirm(&state, body.worker_id, order_id, &context)
        .await;
    if let Some(previous) = previous {
        application::dispatch::release(
            &state,
            previous,
            order_id,
            "订单已改派 / the order was reassigned",
            &context,
        )
        .await;
    }
    // The new worker hears of it through the reminder outbox; the customer and the worker
    // it was taken from are told here.
    let told = [
        (
            order.customer_id,
            "您的订单已更换服务人员 / Another worker will serve your order",
        ),
        (
            previous,
            "订单已改派给其他服务人员 / The order was given to another worker",
        ),
    ];
    for (person, title) in told {
        if let Some(person) = person {
            if let Err(error) = application::notifications::notify(
                &state.pool,
                application::notifications::Recipient::Person(person),
                "order_reassigned",
                title,
                &format!("原因：{reason} / Reason: {reason}", reason = reason.trim()),
            )
            .await
            {
                tracing::warn!(error = %error, "a reassignment notice was not written");
            }
        }
    }
    crate::routes::acks::current_ack(&state, order_id).await
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueItem {
    pub order_id: Uuid,
    pub service: String,
    pub city: String,
    pub status: String,
    pub stage: Option<String>,
    pub stage_deadline: Option<DateTime<Utc>>,
    pub respond_by: Option<DateTime<Utc>>,
    pub worker_id: Option<Uuid>,
    pub scheduled_start: DateTime<Utc>,
    pub waiting_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueParams {
    /// `named`, `grab`, `auto` or `admin`; all stages when absent.
    pub stage: Option<Line<20>>,
}

/// Orders being dispatched, by stage, oldest first (admins). `stage=admin` is the manual queue.
#[utoipa::path(get, path = "/api/v1/admin/dispatch/queue", tag = "dispatch", security(("bearer" = ["admin"])), params(QueueParams),
    responses((status = 200, body = [QueueItem]), (status = 422, body = crate::error::Problem)))]
pub async fn queue(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<QueueParams>,
) -> Result<axum::Json<Vec<QueueItem>>, ApiError> {
    if let Some(stage) = &params.stage {
        if DispatchStage::parse(stage).is_none() {
            return Err(ApiError::Invalid(
                Text::new("dispatch.unknown-dispatch-stage").with("stage", stage),
            ));
        }
    }
    let rows = sqlx::query_as::<
        _,
        (
            Uuid,
            String,
            String,
            String,
            Option<String>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            Option<Uuid>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
        ),
    >(
        "SELECT order_id, service, city, status, stage, stage_deadline, respond_by, worker_id,
                starts_at, waiting_since
           FROM read_dispatch_orders
          WHERE status IN ('paid', 'dispatching', 'assigned') AND ($1::text IS NULL OR stage = $1)
          ORDER BY waiting_since NULLS FIRST, order_id LIMIT 500",
    )
    .bind(&params.stage)
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|row| QueueItem {
                order_id: row.0,
                service: row.1,
                city: row.2,
                status: row.3,
                stage: row.4,
                stage_deadline: row.5,
                respond_by: row.6,
                worker_id: row.7,
                scheduled_start: row.8,
                waiting_since: row.9,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoundView {
    pub ran_at: DateTime<Utc>,
    pub orders: i32,
    pub workers: i32,
    pub assigned: i32,
    pub unassigned: i32,
    pub refused: i32,
    pub total_cost: i64,
    pub millis: i64,
}

/// The latest automatic rounds (admins).
#[utoipa::path(get, path = "/api/v1/admin/dispatch/rounds", tag = "dispatch", security(("bearer" = ["admin"])),
    responses((status = 200, body = [RoundView])))]
pub async fn rounds(State(state): State<AppState>) -> Result<axum::Json<Vec<RoundView>>, ApiError> {
    let rows = sqlx::query_as::<_, (DateTime<Utc>, i32, i32, i32, i32, i32, i64, i64)>(
        "SELECT ran_at, orders, workers, assigned, unassigned, refused, total_cost, millis
           FROM dispatch_rounds ORDER BY round_id DESC LIMIT 50",
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|row| RoundView {
                ran_at: row.0,
                orders: row.1,
                workers: row.2,
                assigned: row.3,
                unassigned: row.4,
                refused: row.5,
                total_cost: row.6,
                millis: row.7,
            })
            .collect(),
    ))
}

/// Run the dispatcher's timers and an automatic round now (admins), instead of waiting for the
/// schedule. Runs only if no other process is running it at this moment.
#[utoipa::path(post, path = "/api/v1/admin/dispatch/run", tag = "dispatch", security(("bearer" = ["admin"])),
    responses((status = 200, body = Object)))]
pub async fn run_now(
    State(state): State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let report = application::jobs::dispatch_tick(&state, Utc::now()).await?;
    Ok(axum::Json(
        serde_json::json!({ "ran": report.is_some(), "report": report }),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CandidateView {
    pub worker_id: Uuid,
    /// Present when the worker is eligible: the cost and its parts.
    #[schema(value_type = Option<Object>)]
    pub score: Option<domain::dispatch::AssignmentScore>,
    /// Present when not eligible.
    pub ineligible: Option<String>,
}

/// Every dispatchable worker in the order's city, eligible ones first by cost, with why the
/// others cannot take it (admins, for dispatching by hand).
#[utoipa::path(get, path = "/api/v1/admin/orders/{order_id}/candidates", tag = "dispatch", security(("bearer" = ["admin"])),
    params(("order_id" = Uuid, Path)),
    responses((status = 200, body = [CandidateView]), (status = 404, body = crate::error::Problem)))]
pub async fn candidates(
    State(state): State<AppState>,
    AppPath(order_id): AppPath<Uuid>,
) -> Result<axum::Json<Vec<CandidateView>>, ApiError> {
    let row = model::order(&state.pool, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("订单", "order"))?;
    let open = application::dispatch::open_order(&state, &row).await?;
    let now = Utc::now();
    let today = domain::values::business_day(now);
    let mut views: Vec<CandidateView> =
        model::dispatchable_workers(&state.pool, Some(std::slice::from_ref(&row.city)), now)
            .await?
            .into_iter()
            .map(application::dispatch::candidate)
            .map(|candidate| {
                let outcome = domain::dispatch::eligibility(
                    &open,
                    &candidate,
                    &state.dispatch.weights,
                    today,
                );
                CandidateView {
                    worker_id: candidate.worker_id,
                    ineligible: outcome.as_ref().err().map(describe),
                    score: outcome.ok(),
                }
            })
            .collect();
    views.sort_by_key(|view| {
        (
            view.score.is_none(),
            view.score.as_ref().map_or(0, |score| score.total),
        )
    });
    Ok(axum::Json(views))
}

fn describe(reason: &Ineligible) -> String {
    match reason {
        Ineligible::Inactive => "未在岗或未通过审核 / not active or not approved",
        Ineligible::NotQualified => "无该服务的认证技能 / not certified for this service",
        Ineligible::Declined => "已拒绝或错过此单 / declined or missed this order",
        Ineligible::Blocked => "被客户屏蔽 / blocked by the customer",
        Ineligible::OutOfRange => "超出服务范围 / outside the service radius",
        Ineligible::Busy => "该时段已有安排 / busy at that time",
    }
    .to_owned()
}
