//! Worker onboarding: identity and background check, certificates, and the admins' review,
//! skill certification, levels and groups.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use domain::onboarding::{Certificate, CertificateKind, IdCardNumber, Level, ReviewDecision};
use domain::worker::WorkerCommand;
use domain::ServiceCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{vault_error, ApiError};
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath};
use crate::state::AppState;
use crate::text::{Line, Paragraph};
use application::commands::CommandContext;
use application::notifications::{notify, Recipient};
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit_identity))
        .routes(routes!(add_certificate))
        .routes(routes!(update_profile))
        .routes(routes!(set_skills))
        .routes(routes!(me))
        .routes(routes!(admin_view))
        .routes(routes!(recheck))
        .routes(routes!(review))
        .routes(routes!(certify_skill))
        .routes(routes!(set_level))
        .routes(routes!(set_groups))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityBody {
    /// 18-character resident identity card number.
    pub id_number: Line<20>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BackgroundView {
    /// `clear`, `hit` or `unavailable` (the provider could not be reached; an admin can retry).
    pub status: String,
    pub source: Option<String>,
    pub hits: Vec<String>,
}

/// Runs the background check for a worker whose identity is recorded and records the result.
async fn run_background_check(
    state: &AppState,
    worker_id: Uuid,
    id_number: &IdCardNumber,
    context: &CommandContext,
) -> Result<BackgroundView, ApiError> {
    let name = projections::workers::get(&state.pool, worker_id)
        .await?
        .map(|row| row.name)
        .unwrap_or_default();
    application::commands::flush().await?;
    match state.background.check(&name, id_number).await {
        Ok(outcome) => {
            let view = BackgroundView {
                status: if outcome.clear() { "clear" } else { "hit" }.into(),
                source: Some(outcome.source.clone()),
                hits: outcome.hits.clone(),
            };
            if !outcome.clear() {
                notify(
                    &state.pool,
                    Recipient::Role("admin"),
                    "background_hit",
                    "背景审查命中 / Background check hit",
                    &format!("服务人员 {worker_id} 命中失信被执行人名单，不能通过审核。/ Worker {worker_id} is on the list of dishonest persons; approval is blocked."),
                )
                .await?;
            }
            let command = WorkerCommand::RecordBackgroundCheck {
                outcome,
                now: Utc::now(),
            };
            state.workers.execute(worker_id, command, context).await?;
            Ok(view)
        }
        Err(error) => {
            tracing::warn!(worker_id = %worker_id, error = format!("{error:#}"), "the background check failed");
            Ok(BackgroundView {
                status: "unavailable".into(),
                source: None,
                hits: vec![],
            })
        }
    }
}

/// Submit your identity card number (workers); the background check runs at once.
#[utoipa::path(post, path = "/api/v1/worker/identity", tag = "onboarding", request_body = IdentityBody, security(("bearer" = ["worker"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = BackgroundView), (status = 422, body = crate::error::Problem)))]
pub async fn submit_identity(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<IdentityBody>,
) -> Result<axum::Json<BackgroundView>, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    let id_number = IdCardNumber::parse(&body.id_number)?;
    let sealed = state
        .vault
        .seal(worker.id, id_number.as_str())
        .await
        .map_err(vault_error)?;
    state
        .workers
        .execute(
            worker.id,
            WorkerCommand::SubmitIdentity {
                id_number: sealed,
                now: context.occurred_at,
            },
            &context,
        )
        .await?;
    Ok(axum::Json(
        run_background_check(&state, worker.id, &id_number, &context).await?,
    ))
}

/// Run the background check again, e.g. after the provider was unavailable (admins).
#[utoipa::path(post, path = "/api/v1/admin/workers/{worker_id}/background-check", tag = "onboarding", security(("bearer" = ["admin"])),
    params(("worker_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = BackgroundView), (status = 409, body = crate::error::Problem)))]
pub async fn recheck(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(worker_id): AppPath<Uuid>,
) -> Result<axum::Json<BackgroundView>, ApiError> {
    // The identity number is read back from the worker's own sealed event.
    let sealed: Option<String> = sqlx::query_scalar(
        "SELECT payload -> 'IdentitySubmitted' ->> 'id_number' FROM events
          WHERE aggregate_type = 'worker' AND aggregate_id = $1 AND event_type = 'IdentitySubmitted'
          ORDER BY sequence DESC LIMIT 1",
    )
    .bind(worker_id.to_string())
    .fetch_optional(&state.pool)
    .await?
    .flatten();
    let sealed = sealed.ok_or_else(|| {
        ApiError::IllegalState(domain::message::Explain::text(
            &domain::worker::WorkerError::IdentityMissing,
        ))
    })?;
    let opened = state
        .vault
        .open(&domain::Sealed::from_ciphertext(sealed))
        .await
        .map_err(vault_error)?
        .ok_or_else(|| ApiError::Conflict(Text::new("onboarding.person-erased")))?;
    let id_number = IdCardNumber::parse(&opened)?;
    Ok(axum::Json(
        run_background_check(&state, worker_id, &id_number, &context).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerProfileUpdateBody {
    pub name: Line<40>,
    pub phone: Line<20>,
    pub years_of_experience: u8,
    #[serde(default)]
    pub languages: Vec<Line<20>>,
    pub city: Line<40>,
    pub districts: Vec<Line<40>>,
    /// Object-store key of the profile photo.
    pub photo_ref: Option<Line<200>>,
}

/// Update your profile (workers). Name and phone number are sealed under your key.
#[utoipa::path(put, path = "/api/v1/worker/profile", tag = "onboarding", request_body = WorkerProfileUpdateBody, security(("bearer" = ["worker"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAdminAck), (status = 422, body = crate::error::Problem)))]
pub async fn update_profile(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<WorkerProfileUpdateBody>,
) -> Result<axum::Json<WorkerAdminAck>, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    let name = domain::PersonName::parse(&body.name)?;
    let phone = domain::PhoneNumber::parse(&body.phone)?;
    let mut sealed = state
        .vault
        .seal_all(worker.id, &[name.as_str(), phone.as_str()])
        .await
        .map_err(vault_error)?
        .into_iter();
    let profile = domain::worker::WorkerProfile {
        name: sealed.next().expect("sealed"),
        phone: sealed.next().expect("sealed"),
        years_of_experience: body.years_of_experience,
        languages: body.languages.into_iter().map(String::from).collect(),
        service_area: domain::worker::ServiceArea {
            city: String::from(body.city),
            districts: body.districts.into_iter().map(String::from).collect(),
        },
        photo_ref: body.photo_ref.map(String::from),
    };
    record(
        &state,
        worker.id,
        WorkerCommand::UpdateProfile {
            profile,
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillsBody {
    #[schema(value_type = Vec<crate::schemas::Service>)]
    pub skills: Vec<ServiceCode>,
}

/// Declare the services you offer (workers); each still needs an admin's certification.
#[utoipa::path(put, path = "/api/v1/worker/skills", tag = "onboarding", request_body = SkillsBody, security(("bearer" = ["worker"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAdminAck), (status = 422, body = crate::error::Problem)))]
pub async fn set_skills(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<SkillsBody>,
) -> Result<axum::Json<WorkerAdminAck>, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    record(
        &state,
        worker.id,
        WorkerCommand::SetSkills {
            skills: body.skills,
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateBody {
    /// `health_certificate` (健康证), `maternity_care` (母婴护理证), `infant_care` (育婴师证),
    /// `housekeeping` (家政服务员证) or `electrician` (电工证).
    #[schema(value_type = crate::schemas::Certificate)]
    pub kind: CertificateKind,
    pub number: Line<40>,
    pub issued_on: NaiveDate,
    pub expires_on: NaiveDate,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CertificateAck {
    pub certificate_id: Uuid,
}

/// Declare a certificate (workers).
#[utoipa::path(post, path = "/api/v1/worker/certificates", tag = "onboarding", request_body = CertificateBody, security(("bearer" = ["worker"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 201, body = CertificateAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn add_certificate(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<CertificateBody>,
) -> Result<Response, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    let certificate_id = context.new_aggregate_id("certificate");
    let certificate = Certificate::parse(
        certificate_id,
        body.kind,
        &body.number,
        body.issued_on,
        body.expires_on,
    )?;
    state
        .workers
        .execute(
            worker.id,
            WorkerCommand::AddCertificate {
                certificate,
                now: context.occurred_at,
            },
            &context,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/worker/certificates/{certificate_id}"),
        )],
        axum::Json(CertificateAck { certificate_id }),
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerReviewBody {
    /// `approve`, `reject` or `request_documents`.
    pub decision: Line<20>,
    /// With `approve`: `standard` (普通, default), `silver` (银牌) or `gold` (金牌).
    #[schema(value_type = Option<crate::schemas::WorkerLevel>)]
    pub level: Option<Level>,
    /// With `reject` (the reason) or `request_documents` (what is needed).
    pub note: Option<Paragraph<500>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkerAdminAck {
    pub worker_id: Uuid,
    pub version: usize,
}

/// Executes a command on a worker's stream and answers with the worker's new version.
pub(crate) async fn record(
    state: &AppState,
    worker_id: Uuid,
    command: WorkerCommand,
    context: &CommandContext,
) -> Result<axum::Json<WorkerAdminAck>, ApiError> {
    let committed = state.workers.execute(worker_id, command, context).await?;
    Ok(axum::Json(WorkerAdminAck {
        worker_id,
        version: committed.version,
    }))
}

/// Decide on a worker's qualification (admins). Approval needs a clean background check.
#[utoipa::path(post, path = "/api/v1/admin/workers/{worker_id}/review", tag = "onboarding", request_body = WorkerReviewBody, security(("bearer" = ["admin"])),
    params(("worker_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAdminAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn review(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(worker_id): AppPath<Uuid>,
    AppJson(body): AppJson<WorkerReviewBody>,
) -> Result<axum::Json<WorkerAdminAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let note = body.note.unwrap_or_default();
    let decision = match body.decision.as_str() {
        "approve" => ReviewDecision::Approve {
            level: body.level.unwrap_or_default(),
        },
        "reject" => ReviewDecision::Reject {
            reason: String::from(note),
        },
        "request_documents" => ReviewDecision::RequestDocuments {
            what: String::from(note),
        },
        other => {
            return Err(ApiError::Invalid(
                Text::new("onboarding.unknown-decision-use-approve-reject").with("other", other),
            ))
        }
    };
    let (title, text) = match &decision {
        ReviewDecision::Approve { .. } => (
            "资质审核通过 / Qualification approved",
            "您已通过资质审核。/ You have passed the qualification review.".to_owned(),
        ),
        ReviewDecision::Reject { reason } => (
            "资质审核未通过 / Qualification rejected",
            format!("原因 / Reason: {reason}"),
        ),
        ReviewDecision::RequestDocuments { what } => (
            "请补充材料 / More documents needed",
            format!("请补充 / Please provide: {what}"),
        ),
    };
    let committed = state
        .workers
        .execute(
            worker_id,
            WorkerCommand::Review {
                by,
                decision,
                now: context.occurred_at,
            },
            &context,
        )
        .await?;
    notify(
        &state.pool,
        Recipient::Person(worker_id),
        "review",
        title,
        &text,
    )
    .await?;
    Ok(axum::Json(WorkerAdminAck {
        worker_id,
        version: committed.version,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertifyBody {
    #[schema(value_type = crate::schemas::Service)]
    pub service: ServiceCode,
}

/// Certify one of a worker's declared skills (admins).
#[utoipa::path(post, path = "/api/v1/admin/workers/{worker_id}/certified-skills", tag = "onboarding", request_body = CertifyBody, security(("bearer" = ["admin"])),
    params(("worker_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAdminAck), (status = 422, body = crate::error::Problem)))]
pub async fn certify_skill(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(worker_id): AppPath<Uuid>,
    AppJson(body): AppJson<CertifyBody>,
) -> Result<axum::Json<WorkerAdminAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    record(
        &state,
        worker_id,
        WorkerCommand::CertifySkill {
            by,
            service: body.service,
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelBody {
    /// `standard` (普通), `silver` (银牌) or `gold` (金牌).
    #[schema(value_type = crate::schemas::WorkerLevel)]
    pub level: Level,
}

/// Set a worker's level (admins).
#[utoipa::path(put, path = "/api/v1/admin/workers/{worker_id}/level", tag = "onboarding", request_body = LevelBody, security(("bearer" = ["admin"])),
    params(("worker_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAdminAck), (status = 404, body = crate::error::Problem)))]
pub async fn set_level(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(worker_id): AppPath<Uuid>,
    AppJson(body): AppJson<LevelBody>,
) -> Result<axum::Json<WorkerAdminAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    record(
        &state,
        worker_id,
        WorkerCommand::SetLevel {
            by,
            level: body.level,
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupsBody {
    pub groups: Vec<Line<20>>,
}

/// Put a worker in groups (admins); replaces the previous groups.
#[utoipa::path(put, path = "/api/v1/admin/workers/{worker_id}/groups", tag = "onboarding", request_body = GroupsBody, security(("bearer" = ["admin"])),
    params(("worker_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAdminAck), (status = 422, body = crate::error::Problem)))]
pub async fn set_groups(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(worker_id): AppPath<Uuid>,
    AppJson(body): AppJson<GroupsBody>,
) -> Result<axum::Json<WorkerAdminAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    record(
        &state,
        worker_id,
        WorkerCommand::SetGroups {
            by,
            groups: body.groups.into_iter().map(String::from).collect(),
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CertificateView {
    pub certificate_id: Uuid,
    pub kind: String,
    pub number: String,
    pub issued_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub expired: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkerAdminView {
    pub worker_id: Uuid,
    pub name: String,
    pub phone: String,
    pub skills: Vec<String>,
    pub certified_skills: Vec<String>,
    pub review_status: String,
    pub review_note: Option<String>,
    pub level: String,
    pub groups: Vec<String>,
    /// Masked, e.g. `110105********002X`.
    pub id_number: Option<String>,
    pub background_status: String,
    pub background_source: Option<String>,
    pub background_hits: Vec<String>,
    pub suspended: bool,
    pub certificates: Vec<CertificateView>,
    pub registered_at: DateTime<Utc>,
    pub version: i64,
}

/// Working hours, `HH:MM` local (Asia/Shanghai) time.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HoursView {
    pub start: String,
    pub end: String,
}

impl From<&domain::availability::TimeRange> for HoursView {
    fn from(range: &domain::availability::TimeRange) -> Self {
        HoursView {
            start: range.start.format("%H:%M").to_string(),
            end: range.end.format("%H:%M").to_string(),
        }
    }
}

/// The hours of one date, instead of the weekly plan's (none: a day off).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DayHoursView {
    pub date: NaiveDate,
    pub ranges: Vec<HoursView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeaveView {
    pub leave_id: Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// A worker's own file: onboarding's state (identity, certificates, background check, the
/// admins' review and note), and their working time, base radius and whether they are online.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkerSelfView {
    pub worker_id: Uuid,
    pub name: String,
    pub phone: String,
    pub city: String,
    pub districts: Vec<String>,
    pub languages: Vec<String>,
    pub photo_ref: Option<String>,
    pub skills: Vec<String>,
    pub certified_skills: Vec<String>,
    pub years_of_experience: i16,
    pub review_status: String,
    /// What the admins asked for or why they decided as they did.
    pub review_note: Option<String>,
    pub level: String,
    /// Masked, once submitted.
    pub id_number: Option<String>,
    pub background_status: String,
    pub suspended: bool,
    pub online: bool,
    pub certificates: Vec<CertificateView>,
    /// Seven lists of working hours, Monday first; none before a plan is set (then any time
    /// counts as free).
    pub plan: Option<Vec<Vec<HoursView>>>,
    pub overrides: Vec<DayHoursView>,
    pub leaves: Vec<LeaveView>,
    pub base_radius_km: Option<u32>,
    pub registered_at: DateTime<Utc>,
    pub version: i64,
}

/// Your own file (workers): onboarding's steps and their state, working time and base.
#[utoipa::path(get, path = "/api/v1/worker/me", tag = "onboarding", security(("bearer" = ["worker"])),
    responses((status = 200, body = WorkerSelfView), (status = 404, body = crate::error::Problem)))]
pub async fn me(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
) -> Result<axum::Json<WorkerSelfView>, ApiError> {
    let worker_id = caller.actor()?.id;
    let row = projections::workers::get(&state.pool, worker_id)
        .await?
        .ok_or_else(|| ApiError::not_found("服务人员", "worker"))?;
    let certificates = projections::workers::certificates(&state.pool, worker_id).await?;
    let (worker, _): (domain::worker::Worker, usize) = state.workers.load(worker_id).await?;
    let availability = &worker.availability;
    Ok(axum::Json(WorkerSelfView {
        worker_id,
        name: row.name,
        phone: row.phone_masked,
        city: row.city,
        districts: row.districts,
        languages: row.languages,
        photo_ref: row.photo_ref,
        skills: row.skills,
        certified_skills: row.certified_skills,
        years_of_experience: row.years_of_experience,
        review_status: row.review_status,
        review_note: row.review_note,
        level: row.level,
        id_number: row.id_number_masked,
        background_status: row.background_status,
        suspended: row.suspended,
        online: worker.online,
        certificates: certificates
            .into_iter()
            .map(CertificateView::from)
            .collect(),
        plan: availability.plan.as_ref().map(|plan| {
            plan.days
                .iter()
                .map(|day| day.iter().map(HoursView::from).collect())
                .collect()
        }),
        overrides: availability
            .overrides
            .iter()
            .map(|day| DayHoursView {
                date: day.date,
                ranges: day.ranges.iter().map(HoursView::from).collect(),
            })
            .collect(),
        leaves: availability
            .leaves
            .iter()
            .map(|leave| LeaveView {
                leave_id: leave.leave_id,
                from: leave.from,
                to: leave.to,
            })
            .collect(),
        base_radius_km: worker.base.map(|base| base.radius_km),
        registered_at: row.registered_at,
        version: row.last_sequence,
    }))
}

impl From<projections::workers::CertificateRow> for CertificateView {
    fn from(certificate: projections::workers::CertificateRow) -> Self {
        CertificateView {
            certificate_id: certificate.certificate_id,
            kind: certificate.kind,
            number: certificate.number,
            issued_on: certificate.issued_on,
            expires_on: certificate.expires_on,
            expired: certificate.expired,
        }
    }
}

/// Everything the admins see about a worker.
#[utoipa::path(get, path = "/api/v1/admin/workers/{worker_id}", tag = "onboarding", security(("bearer" = ["admin"])),
    params(("worker_id" = Uuid, Path)),
    responses((status = 200, body = WorkerAdminView), (status = 404, body = crate::error::Problem)))]
pub async fn admin_view(
    State(state): State<AppState>,
    AppPath(worker_id): AppPath<Uuid>,
) -> Result<axum::Json<WorkerAdminView>, ApiError> {
    let row = projections::workers::get(&state.pool, worker_id)
        .await?
        .ok_or_else(|| ApiError::not_found("服务人员", "worker"))?;
    let certificates = projections::workers::certificates(&state.pool, worker_id).await?;
    Ok(axum::Json(WorkerAdminView {
        worker_id: row.worker_id,
        name: row.name,
        phone: row.phone_masked,
        skills: row.skills,
        certified_skills: row.certified_skills,
        review_status: row.review_status,
        review_note: row.review_note,
        level: row.level,
        groups: row.groups,
        id_number: row.id_number_masked,
        background_status: row.background_status,
        background_source: row.background_source,
        background_hits: row.background_hits,
        suspended: row.suspended,
        certificates: certificates
            .into_iter()
            .map(CertificateView::from)
            .collect(),
        registered_at: row.registered_at,
        version: row.last_sequence,
    }))
}
