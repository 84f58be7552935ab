//! The commission schedule: the admins set the platform's rate by service and worker level.

use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::catalogue::{catalogue, ServiceCode};
use domain::commission::{CommissionCommand, CommissionSchedule, SCHEDULE_ID};
use domain::onboarding::Level;
use domain::payment::default_commission_bp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath};
use crate::state::AppState;
use crate::text::Paragraph;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rates))
        .routes(routes!(set_rate))
}

const LEVELS: [Level; 3] = [Level::Standard, Level::Silver, Level::Gold];

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RateView {
    #[schema(value_type = crate::schemas::Service)]
    pub service: ServiceCode,
    pub service_name_zh: String,
    pub service_name_en: String,
    #[schema(value_type = crate::schemas::WorkerLevel)]
    pub level: Level,
    pub level_zh: String,
    /// The rate for orders placed now, in basis points of the price (1,500 = 15%).
    pub basis_points: u32,
    /// The platform's default for this service and level.
    pub default_basis_points: u32,
    /// Whether an admin has set this rate.
    pub set_by_admin: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RateChangeView {
    #[schema(value_type = crate::schemas::Service)]
    pub service: ServiceCode,
    #[schema(value_type = crate::schemas::WorkerLevel)]
    pub level: Level,
    pub basis_points: u32,
    pub previous: u32,
    pub reason: String,
    pub set_by: Uuid,
    pub set_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RatesView {
    pub rates: Vec<RateView>,
    /// Every change, newest first.
    pub changes: Vec<RateChangeView>,
}

/// The commission schedule (admins): every service and level, and every change with who made
/// it and why. An order pays the rate in force when it was placed.
#[utoipa::path(get, path = "/api/v1/admin/commission-rates", tag = "payments", security(("bearer" = ["admin"])),
    responses((status = 200, body = RatesView)))]
pub async fn rates(State(state): State<AppState>) -> Result<axum::Json<RatesView>, ApiError> {
    let (schedule, _): (CommissionSchedule, usize) = state.commissions.load(SCHEDULE_ID).await?;
    let mut rates = Vec::new();
    for spec in catalogue() {
        for level in LEVELS {
            rates.push(RateView {
                service: spec.code,
                service_name_zh: spec.name_zh.to_owned(),
                service_name_en: spec.name_en.to_owned(),
                level,
                level_zh: level.labels().1.to_owned(),
                basis_points: schedule.current(spec.code, level),
                default_basis_points: default_commission_bp(spec.code, level),
                set_by_admin: schedule.is_set(spec.code, level),
            });
        }
    }
    let payloads: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT payload->'CommissionRateSet' FROM events
          WHERE aggregate_type = 'commission_schedule' AND aggregate_id = $1
          ORDER BY sequence DESC",
    )
    .bind(SCHEDULE_ID.to_string())
    .fetch_all(&state.pool)
    .await?;
    let changes = payloads
        .into_iter()
        .filter_map(|payload| {
            Some(RateChangeView {
                service: serde_json::from_value(payload["service"].clone()).ok()?,
                level: serde_json::from_value(payload["level"].clone()).ok()?,
                basis_points: payload["basis_points"].as_u64()? as u32,
                previous: payload["previous"].as_u64()? as u32,
                reason: payload["reason"].as_str()?.to_owned(),
                set_by: serde_json::from_value(payload["set_by"]["id"].clone()).ok()?,
                set_at: serde_json::from_value(payload["set_at"].clone()).ok()?,
            })
        })
        .collect();
    Ok(axum::Json(RatesView { rates, changes }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRateBody {
    /// 0 to 5,000 basis points of the price.
    pub basis_points: u32,
    pub reason: Paragraph<500>,
}

/// Set the commission for a service and worker level (admins). It applies to orders placed
/// from now on; orders already placed keep the rate they were booked at.
#[utoipa::path(put, path = "/api/v1/admin/commission-rates/{service}/{level}", tag = "payments", request_body = SetRateBody, security(("bearer" = ["admin"])),
    params(("service" = String, Path), ("level" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = RatesView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn set_rate(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath((service, level)): AppPath<(ServiceCode, Level)>,
    AppJson(body): AppJson<SetRateBody>,
) -> Result<axum::Json<RatesView>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = CommissionCommand::SetRate {
        service,
        level,
        basis_points: body.basis_points,
        reason: String::from(body.reason),
        by,
        now: context.occurred_at,
    };
    state
        .commissions
        .execute_deciding_again(SCHEDULE_ID, command, &context)
        .await?;
    // The answer lists the changes from the log, read outside the request's transaction:
    // commit the change first, or the admin is answered without it.
    application::commands::flush().await?;
    rates(State(state)).await
}
