//! Video interviews before hiring: request, answer, propose another time, cancel, join (which
//! hands out the room token and ICE servers for the signaling service), and the outcome.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use domain::interview::{Interview, InterviewCommand, Outcome};
use domain::{Role, ServiceCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath};
use crate::state::AppState;
use crate::text::Paragraph;
use application::commands::CommandContext;
use application::notifications::{notify, Recipient};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request, list))
        .routes(routes!(show))
        .routes(routes!(accept))
        .routes(routes!(decline))
        .routes(routes!(propose))
        .routes(routes!(cancel))
        .routes(routes!(join))
        .routes(routes!(outcome))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InterviewView {
    pub interview_id: Uuid,
    pub status: String,
    pub customer_id: Option<Uuid>,
    pub worker_id: Option<Uuid>,
    #[schema(value_type = Option<crate::schemas::Service>)]
    pub service: Option<ServiceCode>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// Who proposed the time waiting for an answer.
    pub proposed_by: Option<Uuid>,
    /// `hire` or `not_hire`, once recorded.
    pub outcome: Option<String>,
}

fn view(interview_id: Uuid, interview: &Interview) -> InterviewView {
    InterviewView {
        interview_id,
        status: interview.status.as_str().to_owned(),
        customer_id: interview.customer_id,
        worker_id: interview.worker_id,
        service: interview.service,
        start: interview.start,
        end: interview.end(),
        proposed_by: match interview.status {
            domain::interview::InterviewStatus::Requested
            | domain::interview::InterviewStatus::Proposed => interview.proposed_by,
            _ => None,
        },
        outcome: interview.outcome.map(|outcome| {
            match outcome {
                Outcome::Hire => "hire",
                Outcome::NotHire => "not_hire",
            }
            .to_owned()
        }),
    }
}

/// Runs a command and tells the other participant what happened.
async fn run(
    state: &AppState,
    interview_id: Uuid,
    command: InterviewCommand,
    context: &CommandContext,
    notice: (&str, &str),
) -> Result<axum::Json<InterviewView>, ApiError> {
    let committed = state
        .interviews
        .execute(interview_id, command, context)
        .await?;
    if committed.events > 0 {
        let actor = context.actor.map(|actor| actor.id);
        let others = [committed.state.customer_id, committed.state.worker_id];
        for other in others.into_iter().flatten().filter(|id| Some(*id) != actor) {
            if let Err(error) = notify(
                &state.pool,
                Recipient::Person(other),
                notice.0,
                notice.1,
                &format!("面试 {interview_id} / interview {interview_id}"),
            )
            .await
            {
                tracing::warn!(error = %error, "an interview notice was not written");
            }
        }
    }
    Ok(axum::Json(view(interview_id, &committed.state)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    pub worker_id: Uuid,
    /// `nanny`, `maternity_nurse` or `infant_carer`.
    #[schema(value_type = crate::schemas::Service)]
    pub service: ServiceCode,
    pub start: DateTime<Utc>,
    #[serde(default)]
    pub note: Paragraph<500>,
}

/// Ask a worker for a video interview (customers).
#[utoipa::path(post, path = "/api/v1/interviews", tag = "interviews", request_body = RequestBody, security(("bearer" = ["customer"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 201, body = InterviewView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn request(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<RequestBody>,
) -> Result<Response, ApiError> {
    let customer = context.actor.ok_or(ApiError::Unauthenticated)?;
    let (worker, _): (domain::worker::Worker, usize) = state.workers.load(body.worker_id).await?;
    if !worker.registered {
        return Err(ApiError::not_found("服务人员", "worker"));
    }
    let interview_id = context.new_aggregate_id("interview");
    let command = InterviewCommand::Request {
        interview_id,
        customer_id: customer.id,
        worker_id: body.worker_id,
        service: body.service,
        start: body.start,
        note: String::from(body.note),
        now: context.occurred_at,
    };
    let shown = run(
        &state,
        interview_id,
        command,
        &context,
        (
            "interview_requested",
            "客户邀请您视频面试 / A customer asks you for a video interview",
        ),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/interviews/{interview_id}"),
        )],
        shown,
    )
        .into_response())
}

/// One interview (its customer and worker, and admins).
#[utoipa::path(get, path = "/api/v1/interviews/{interview_id}", tag = "interviews", security(("bearer" = ["customer", "worker", "admin"])),
    params(("interview_id" = Uuid, Path)),
    responses((status = 200, body = InterviewView), (status = 404, body = crate::error::Problem)))]
pub async fn show(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(interview_id): AppPath<Uuid>,
) -> Result<axum::Json<InterviewView>, ApiError> {
    let actor = context.actor.ok_or(ApiError::Unauthenticated)?;
    let (interview, _): (Interview, usize) = state.interviews.load(interview_id).await?;
    if interview.customer_id.is_none()
        || (actor.role != Role::Admin && !interview.participant(actor.id))
    {
        return Err(ApiError::not_found("面试", "interview"));
    }
    Ok(axum::Json(view(interview_id, &interview)))
}

/// Your interviews (customers and workers), the most recently requested first, at most fifty.
/// Read from the interviews' request events, which name both participants; each is then
/// loaded for its current state.
#[utoipa::path(get, path = "/api/v1/interviews", tag = "interviews", security(("bearer" = ["customer", "worker"])),
    responses((status = 200, body = [InterviewView])))]
pub async fn list(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
) -> Result<axum::Json<Vec<InterviewView>>, ApiError> {
    let actor = caller.actor()?;
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events
          WHERE aggregate_type = 'interview' AND event_type = 'InterviewRequested'
            AND (payload->'InterviewRequested'->>'customer_id' = $1
                 OR payload->'InterviewRequested'->>'worker_id' = $1)
          ORDER BY position DESC LIMIT 50",
    )
    .bind(actor.id.to_string())
    .fetch_all(&state.pool)
    .await?;
    let mut views = Vec::with_capacity(ids.len());
    for id in ids {
        let Ok(interview_id) = id.parse::<Uuid>() else {
            continue;
        };
        let (interview, _): (Interview, usize) = state.interviews.load(interview_id).await?;
        if interview.participant(actor.id) {
            views.push(view(interview_id, &interview));
        }
    }
    Ok(axum::Json(views))
}

/// Accept the requested or proposed time (the worker for a request, the other side for a
/// proposal).
#[utoipa::path(post, path = "/api/v1/interviews/{interview_id}/accept", tag = "interviews", security(("bearer" = ["customer", "worker", "admin"])),
    params(("interview_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = InterviewView), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn accept(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(interview_id): AppPath<Uuid>,
) -> Result<axum::Json<InterviewView>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = InterviewCommand::Accept {
        by,
        now: context.occurred_at,
    };
    run(
        &state,
        interview_id,
        command,
        &context,
        (
            "interview_scheduled",
            "面试时间已确定 / The interview is scheduled",
        ),
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InterviewReasonBody {
    pub reason: Paragraph<500>,
}

/// Decline an interview, with a reason (its worker).
#[utoipa::path(post, path = "/api/v1/interviews/{interview_id}/decline", tag = "interviews", request_body = InterviewReasonBody, security(("bearer" = ["worker"])),
    params(("interview_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = InterviewView), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn decline(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(interview_id): AppPath<Uuid>,
    AppJson(body): AppJson<InterviewReasonBody>,
) -> Result<axum::Json<InterviewView>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = InterviewCommand::Decline {
        by,
        reason: String::from(body.reason),
        now: context.occurred_at,
    };
    run(
        &state,
        interview_id,
        command,
        &context,
        (
            "interview_declined",
            "服务人员婉拒了面试 / The worker declined the interview",
        ),
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeBody {
    pub start: DateTime<Utc>,
}

/// Propose another time (either participant); the other side accepts it.
#[utoipa::path(post, path = "/api/v1/interviews/{interview_id}/propose", tag = "interviews", request_body = ProposeBody, security(("bearer" = ["customer", "worker", "admin"])),
    params(("interview_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = InterviewView), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn propose(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(interview_id): AppPath<Uuid>,
    AppJson(body): AppJson<ProposeBody>,
) -> Result<axum::Json<InterviewView>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = InterviewCommand::ProposeTime {
        by,
        start: body.start,
        now: context.occurred_at,
    };
    run(
        &state,
        interview_id,
        command,
        &context,
        (
            "interview_time_proposed",
            "对方提议了新的面试时间 / Another time was proposed for the interview",
        ),
    )
    .await
}

/// Cancel an interview before it ends, with a reason (either participant).
#[utoipa::path(post, path = "/api/v1/interviews/{interview_id}/cancel", tag = "interviews", request_body = InterviewReasonBody, security(("bearer" = ["customer", "worker", "admin"])),
    params(("interview_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = InterviewView), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(interview_id): AppPath<Uuid>,
    AppJson(body): AppJson<InterviewReasonBody>,
) -> Result<axum::Json<InterviewView>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = InterviewCommand::Cancel {
        by,
        reason: String::from(body.reason),
        now: context.occurred_at,
    };
    let cancelled = run(
        &state,
        interview_id,
        command,
        &context,
        (
            "interview_cancelled",
            "面试已取消 / The interview was cancelled",
        ),
    )
    .await?;
    close_call(&state, interview_id).await;
    Ok(cancelled)
}

/// Ends the interview's call for good: a room token handed out earlier admits nobody again,
/// and connections still open are closed and told why.
async fn close_call(state: &AppState, interview_id: Uuid) {
    if let Err(error) = state.signaling.close_room(interview_id).await {
        tracing::error!(%interview_id, %error, "the interview's call room was not closed");
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: Option<String>,
    pub credential: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Admission {
    /// Present it to the signaling service; it admits this participant to this room only.
    pub room_token: String,
    pub expires_at: DateTime<Utc>,
    pub ice_servers: Vec<IceServer>,
}

/// Join the interview's call (its customer or worker), from ten minutes before the start to
/// its end: records that you joined and hands out the room token and ICE servers.
#[utoipa::path(post, path = "/api/v1/interviews/{interview_id}/join", tag = "interviews", security(("bearer" = ["customer", "worker", "admin"])),
    params(("interview_id" = Uuid, Path)),
    responses((status = 200, body = Admission), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn join(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(interview_id): AppPath<Uuid>,
) -> Result<axum::Json<Admission>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let committed = state
        .interviews
        .execute(
            interview_id,
            InterviewCommand::Join {
                by,
                now: context.occurred_at,
            },
            &context,
        )
        .await?;
    let end = committed
        .state
        .end()
        .ok_or_else(|| ApiError::not_found("面试", "interview"))?;
    let expires_at = end + Duration::minutes(5);
    let role = if committed.state.customer_id == Some(by.id) {
        "customer"
    } else {
        "worker"
    };
    let room_token = state.signaling.room_token(&signaling::token::RoomClaims {
        room: interview_id,
        sub: by.id,
        role: role.to_owned(),
        exp: expires_at.timestamp(),
    });
    let mut ice_servers = Vec::new();
    if !state.ice.stun_urls.is_empty() {
        ice_servers.push(IceServer {
            urls: state.ice.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if let (false, Some(secret)) = (state.ice.turn_urls.is_empty(), &state.ice.turn_secret) {
        let (username, credential) = signaling::token::turn_credentials(
            secret.as_bytes(),
            by.id,
            expires_at - context.occurred_at,
            context.occurred_at,
        );
        ice_servers.push(IceServer {
            urls: state.ice.turn_urls.clone(),
            username: Some(username),
            credential: Some(credential),
        });
    }
    Ok(axum::Json(Admission {
        room_token,
        expires_at,
        ice_servers,
    }))
}

/// The signaling WebSocket (served by the `signaling` member): connect with `?token=` from
/// `…/join`; JSON messages `offer`/`answer` (`sdp`), `candidate` (`candidate`, `sdpMid`,
/// `sdpMLineIndex`), `ping` and `leave`; the server sends `joined`, `peer-joined`, `peer-left`,
/// the relayed messages with the sender it knows (`from`), `pong` and `error`.
#[utoipa::path(get, path = signaling::SOCKET_PATH, security(()), tag = "interviews",
    params(("token" = String, Query, description = "Room token from /join"),
        ("room" = Option<Uuid>, Query, description = "The room meant; a token for another room is refused")),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
#[allow(dead_code)]
fn signaling_socket() {}

/// The call page (served by the `signaling` member): `/call#interview=ID` joins as the
/// signed-in user (access token in `localStorage['anjia.access_token']`), `/call#token=…` uses a
/// room token; camera and microphone stay in the browser, nothing is recorded.
#[utoipa::path(get, path = signaling::CALL_PAGE_PATH, security(()), tag = "interviews",
    responses((status = 200, description = "The call page", content_type = "text/html")))]
#[allow(dead_code)]
fn call_page() {}

/// The call page's script.
#[utoipa::path(get, path = signaling::CALL_SCRIPT_PATH, security(()), tag = "interviews",
    responses((status = 200, description = "The call page's script", content_type = "text/javascript")))]
#[allow(dead_code)]
fn call_script() {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeBody {
    /// `hire` or `not_hire`.
    #[schema(value_type = crate::schemas::InterviewOutcome)]
    pub outcome: Outcome,
    #[serde(default)]
    pub note: Paragraph<500>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OutcomeView {
    pub interview: InterviewView,
    /// After a hire: what to send to `POST /api/v1/orders` (with the schedule, address and
    /// price) to book this worker.
    #[schema(value_type = Option<Object>)]
    pub booking: Option<serde_json::Value>,
}

/// Record whether you hire the worker, after the interview (its customer). A hire comes with
/// the start of a booking of that worker.
#[utoipa::path(post, path = "/api/v1/interviews/{interview_id}/outcome", tag = "interviews", request_body = OutcomeBody, security(("bearer" = ["customer"])),
    params(("interview_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OutcomeView), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn outcome(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(interview_id): AppPath<Uuid>,
    AppJson(body): AppJson<OutcomeBody>,
) -> Result<axum::Json<OutcomeView>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = InterviewCommand::RecordOutcome {
        by,
        outcome: body.outcome,
        note: String::from(body.note),
        now: context.occurred_at,
    };
    let axum::Json(interview) = run(
        &state,
        interview_id,
        command,
        &context,
        (
            "interview_concluded",
            "客户已记录面试结果 / The customer recorded the interview's outcome",
        ),
    )
    .await?;
    close_call(&state, interview_id).await;
    let booking = (body.outcome == Outcome::Hire).then(|| {
        serde_json::json!({
            "service": interview.service,
            "worker_id": interview.worker_id,
        })
    });
    Ok(axum::Json(OutcomeView { interview, booking }))
}
