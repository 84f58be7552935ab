//! Activity: app opens from the customer and worker apps, and the sign-ins recorded when a
//! session opens. Both are events of the `Presence` aggregate (one stream per person and
//! Beijing day), which the analytics warehouse counts as activity.

use axum::extract::State;
use domain::activity::{presence_id, Platform, PresenceCommand, SignInMethod};
use domain::Actor;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::AppJson;
use crate::extract::RequestContext;
use crate::state::AppState;
use crate::text::Line;
use application::commands::CommandContext;
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(app_opened))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppOpenBody {
    /// `ios`, `android`, `web` or `mini_program`.
    pub platform: Line<20>,
    /// The app's version, e.g. `3.2.1`.
    pub app_version: Option<Line<40>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppOpenAck {
    /// False when this was a resume: an open on the same platform within ten minutes.
    pub recorded: bool,
}

/// The app came to the foreground (customers and workers). Counted once per platform in any
/// ten minutes.
#[utoipa::path(post, path = "/api/v1/me/app-opens", tag = "users", security(("bearer" = ["customer", "worker"])), request_body = AppOpenBody,
    responses((status = 200, body = AppOpenAck), (status = 422, body = crate::error::Problem)))]
pub async fn app_opened(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<AppOpenBody>,
) -> Result<axum::Json<AppOpenAck>, ApiError> {
    let actor = context.actor.ok_or(ApiError::Unauthenticated)?;
    let platform = Platform::parse(body.platform.trim()).ok_or_else(|| {
        ApiError::Invalid(Text::new("activity.unknown-platform").with("platform", &body.platform))
    })?;
    let command = PresenceCommand::RecordAppOpen {
        user_id: actor.id,
        role: actor.role,
        platform,
        app_version: body.app_version.map(String::from),
        now: context.occurred_at,
    };
    let committed = state
        .presence
        .execute_deciding_again(presence_of(actor, &context), command, &context)
        .await?;
    Ok(axum::Json(AppOpenAck {
        recorded: committed.events > 0,
    }))
}

fn presence_of(actor: Actor, context: &CommandContext) -> uuid::Uuid {
    presence_id(actor.id, domain::values::business_day(context.occurred_at))
}

/// Records a sign-in as activity. The session is already open: a failure here is logged and
/// costs the warehouse one sign-in, never the caller their session.
pub async fn record_sign_in(
    state: &AppState,
    actor: Actor,
    method: SignInMethod,
    context: &CommandContext,
) {
    let command = PresenceCommand::RecordSignIn {
        user_id: actor.id,
        role: actor.role,
        method,
        now: context.occurred_at,
    };
    if let Err(error) = state
        .presence
        .execute_deciding_again(presence_of(actor, context), command, context)
        .await
    {
        tracing::warn!(user = %actor.id, %error, "sign-in not recorded as activity");
    }
}
