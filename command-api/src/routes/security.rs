//! A person's account security settings: whether one-time codes may sign them in, and whether
//! each new sign-in is reported to them.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::AppJson;
use crate::extract::RequestContext;
use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, update))
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct SecuritySettings {
    /// Whether a one-time code sent to the login may sign in (off: password or WeChat only).
    pub sign_in_by_code: bool,
    /// Whether every new sign-in leaves a notification.
    pub new_sign_in_alert: bool,
}

/// A person's settings, or the defaults: code sign-in is on for customers and workers, and
/// off for admins and analysts unless `ANJIA_STAFF_CODE_SIGN_IN=on` (a phone number is easier
/// to take over than a password, and staff accounts reach everyone's data).
pub async fn settings_of(state: &AppState, user_id: Uuid) -> sqlx::Result<SecuritySettings> {
    let (stored_code, stored_alert, role): (Option<bool>, Option<bool>, Option<String>) =
        sqlx::query_as(
            "SELECT s.sign_in_by_code, s.new_sign_in_alert, c.role
               FROM (SELECT $1::uuid AS user_id) me
               LEFT JOIN account_security s USING (user_id)
               LEFT JOIN credentials c USING (user_id)",
        )
        .bind(user_id)
        .fetch_one(&state.pool)
        .await?;
    let staff = matches!(role.as_deref(), Some("admin" | "analyst"));
    Ok(SecuritySettings {
        sign_in_by_code: stored_code.unwrap_or(!staff || state.staff_code_sign_in),
        new_sign_in_alert: stored_alert.unwrap_or(true),
    })
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecurityView {
    pub settings: SecuritySettings,
    pub live_sessions: i64,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// Your security settings and sessions at a glance.
#[utoipa::path(get, path = "/api/v1/me/security", tag = "sessions", security(("bearer" = ["customer", "worker", "admin", "analyst"])),
    responses((status = 200, body = SecurityView)))]
pub async fn show(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
) -> Result<axum::Json<SecurityView>, ApiError> {
    let actor = context.actor.ok_or(ApiError::Unauthenticated)?;
    let settings = settings_of(&state, actor.id).await?;
    let (live_sessions, last_sign_in_at): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE revoked_at IS NULL AND expires_at > now()), MAX(created_at) FROM sessions WHERE user_id = $1",
    )
    .bind(actor.id)
    .fetch_one(&state.pool)
    .await?;
    Ok(axum::Json(SecurityView {
        settings,
        live_sessions,
        last_sign_in_at,
    }))
}

/// Change your security settings.
#[utoipa::path(put, path = "/api/v1/me/security", tag = "sessions", request_body = SecuritySettings, security(("bearer" = ["customer", "worker", "admin", "analyst"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = SecuritySettings), (status = 422, body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<SecuritySettings>,
) -> Result<axum::Json<SecuritySettings>, ApiError> {
    let actor = context.actor.ok_or(ApiError::Unauthenticated)?;
    sqlx::query(
        "INSERT INTO account_security (user_id, sign_in_by_code, new_sign_in_alert) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET sign_in_by_code = $2, new_sign_in_alert = $3, updated_at = now()",
    )
    .bind(actor.id)
    .bind(body.sign_in_by_code)
    .bind(body.new_sign_in_alert)
    .execute(&state.pool)
    .await?;
    Ok(axum::Json(body))
}
