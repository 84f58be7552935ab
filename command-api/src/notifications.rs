//! Notifications inside the platform: a message to one person, or to everyone with a role,
//! listed at `/api/v1/me/notifications`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct NotificationView {
    pub notification_id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// Your newest notifications, and those to everyone with your role.
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "profile", security(("bearer" = ["customer", "worker", "admin", "analyst"])),
    responses((status = 200, body = [NotificationView])))]
pub async fn list(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
) -> Result<axum::Json<Vec<NotificationView>>, ApiError> {
    let actor = context.actor.ok_or(ApiError::Unauthenticated)?;
    let notifications = sqlx::query_as(
        "SELECT notification_id, kind, title, body, created_at FROM notifications
          WHERE recipient_id = $1 OR recipient_role = $2 ORDER BY created_at DESC LIMIT 100",
    )
    .bind(actor.id)
    .bind(actor.role.as_str())
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(notifications))
}
