//! The worker directory and a worker's own availability.

use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::worker::WorkerCommand;
use projections::workers::{self as worker_views, WorkerRow, WorkerSearch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::params::ReasonBody;
use crate::state::AppState;
use crate::text::Line;
use application::commands::CommandContext;
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(go_online))
        .routes(routes!(go_offline))
        .routes(routes!(suspend))
        .routes(routes!(reinstate))
}

/// A worker as the directory shows them; the phone number is masked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkerView {
    pub worker_id: Uuid,
    pub name: String,
    pub phone: String,
    pub skills: Vec<String>,
    pub years_of_experience: i16,
    pub languages: Vec<String>,
    pub city: String,
    pub districts: Vec<String>,
    pub photo_ref: Option<String>,
    pub online: bool,
    pub suspended: bool,
    pub registered_at: DateTime<Utc>,
    /// Average stars over quality, attitude and skill; absent before the first review.
    pub rating: Option<f64>,
    pub reviews: i32,
    /// Whole kilometres from the `near_*` place to the worker's base, when both are known,
    /// measured between their cells of a grid of about a kilometre: a base is never located
    /// more precisely than that from public answers.
    pub distance_km: Option<f64>,
    /// The services an admin certified the worker for, after checking their certificates.
    pub certified_skills: Vec<String>,
    /// `standard` (普通), `silver` (银牌) or `gold` (金牌).
    pub level: String,
    /// The kinds of the worker's in-date certificates, checked by the platform (on one
    /// worker's page only).
    pub certificates: Option<Vec<String>>,
}

impl From<WorkerRow> for WorkerView {
    fn from(row: WorkerRow) -> Self {
        WorkerView {
            worker_id: row.worker_id,
            name: row.name,
            phone: row.phone_masked,
            skills: row.skills,
            years_of_experience: row.years_of_experience,
            languages: row.languages,
            city: row.city,
            districts: row.districts,
            photo_ref: row.photo_ref,
            online: row.online,
            suspended: row.suspended,
            registered_at: row.registered_at,
            rating: None,
            reviews: 0,
            distance_km: None,
            certified_skills: row.certified_skills,
            level: row.level,
            certificates: None,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorkerListParams {
    /// A catalogue service code.
    pub skill: Option<Line<30>>,
    pub city: Option<Line<40>>,
    #[serde(default)]
    pub online_only: bool,
    /// `standard` (普通), `silver` (银牌) or `gold` (金牌).
    pub level: Option<Line<20>>,
    /// Keyset cursor: the `name` of the last worker of the previous page...
    pub after_name: Option<Line<40>>,
    /// ...and its `worker_id`.
    pub after_id: Option<Uuid>,
    /// 1 to 200, default 50.
    pub limit: Option<u32>,
    /// Only workers rated at least this (1 to 5, average over all dimensions).
    pub min_rating: Option<f64>,
    /// A place (for example the service address): only workers whose base is near it.
    pub near_latitude: Option<f64>,
    pub near_longitude: Option<f64>,
    /// `wgs84`, `gcj02` or `bd09`.
    #[param(value_type = Option<crate::schemas::Datum>)]
    pub near_system: Option<domain::CoordinateSystem>,
    /// How near, in whole km (1 to 100), measured as `distance_km` is; by default each
    /// worker's own service radius.
    pub within_km: Option<u32>,
    /// Only workers with a free start time on this local date (hours, leave and bookings,
    /// with travel time to the `near_*` place).
    pub available_on: Option<chrono::NaiveDate>,
    /// The job length for `available_on`, 30 to 720 minutes; default 120.
    pub duration_minutes: Option<u32>,
}

/// The worker directory: active workers, filtered by skill, city and availability.
#[utoipa::path(get, path = "/api/v1/workers", security(()), tag = "workers", params(WorkerListParams),
    responses((status = 200, body = [WorkerView]), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<WorkerListParams>,
) -> Result<axum::Json<Vec<WorkerView>>, ApiError> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Invalid(Text::new(
            "orders.limit-must-between-1-200",
        )));
    }
    if let Some(skill) = &params.skill {
        if domain::ServiceCode::parse(skill).is_none() {
            return Err(ApiError::Invalid(
                Text::new("workers.unknown-service").with("skill", skill),
            ));
        }
    }
    let after = match (params.after_name, params.after_id) {
        (Some(name), Some(id)) => Some((String::from(name), id)),
        (None, None) => None,
        _ => {
            return Err(ApiError::Invalid(Text::new(
                "users.give-both-after-name-after",
            )))
        }
    };
    if let Some(level) = &params.level {
        if !["standard", "silver", "gold"].contains(&level.as_str()) {
            return Err(ApiError::Invalid(
                Text::new("users.unknown-level").with("level", level),
            ));
        }
    }
    if params
        .min_rating
        .is_some_and(|rating| !(1.0..=5.0).contains(&rating))
    {
        return Err(ApiError::Invalid(Text::new(
            "workers.min-rating-must-between-1",
        )));
    }
    if params.within_km.is_some_and(|km| !(1..=100).contains(&km)) {
        return Err(ApiError::InvalidField {
            field: "within_km".into(),
            detail: Text::new("workers.whole-kilometres-from-1-100"),
        });
    }
    let duration = params.duration_minutes.unwrap_or(120);
    if !(30..=720).contains(&duration) {
        return Err(ApiError::Invalid(Text::new(
            "workers.duration-minutes-must-between-30",
        )));
    }
    let near_point = crate::routes::params::optional_point(
        params.near_latitude,
        params.near_longitude,
        params.near_system,
    )?;
    if params.within_km.is_some() && near_point.is_none() {
        return Err(ApiError::Invalid(Text::new(
            "workers.within-km-needs-near-place",
        )));
    }
    let near = near_point.map(|point| {
        let in_system = |system| {
            let converted = point.to_system(system).coarse();
            (converted.latitude, converted.longitude)
        };
        projections::workers::Near {
            points: [
                in_system(domain::CoordinateSystem::Wgs84),
                in_system(domain::CoordinateSystem::Gcj02),
                in_system(domain::CoordinateSystem::Bd09),
            ],
            within_km: params.within_km.map(f64::from),
        }
    });
    // The public directory shows active workers only.
    let mut search = WorkerSearch {
        level: params.level.map(String::from),
        service: params.skill.map(String::from),
        city: params.city.map(String::from),
        online_only: params.online_only,
        suspended: Some(false),
        after,
        min_rating: params.min_rating,
        near,
        ..WorkerSearch::default()
    };
    let now = Utc::now();
    let mut found: Vec<WorkerRow> = Vec::new();
    // Availability is judged on each worker's calendar, after the database's filters; pages
    // are fetched until this one is full.
    loop {
        let rows = worker_views::search(&state.pool, &search, limit).await?;
        let exhausted = rows.len() < limit as usize;
        search.after = rows.last().map(|row| (row.name.clone(), row.worker_id));
        let mut rows = rows;
        if let Some(date) = params.available_on {
            let ids: Vec<Uuid> = rows.iter().map(|row| row.worker_id).collect();
            let calendars: std::collections::HashMap<Uuid, domain::worker::Worker> =
                sqlx::query_as::<_, (Uuid, serde_json::Value)>(
                    "SELECT worker_id, state FROM read_dispatch_workers WHERE worker_id = ANY($1)",
                )
                .bind(&ids)
                .fetch_all(&state.pool)
                .await?
                .into_iter()
                .filter_map(|(id, state)| Some((id, serde_json::from_value(state).ok()?)))
                .collect();
            rows.retain(|row| {
                calendars.get(&row.worker_id).is_some_and(|worker| {
                    !worker
                        .free_slots(
                            date,
                            chrono::Duration::minutes(i64::from(duration)),
                            30,
                            near_point,
                            now,
                        )
                        .is_empty()
                })
            });
        }
        found.extend(rows);
        if exhausted || found.len() >= limit as usize {
            break;
        }
    }
    found.truncate(limit as usize);
    let ids: Vec<Uuid> = found.iter().map(|row| row.worker_id).collect();
    let facts: std::collections::HashMap<Uuid, (Option<f64>, i32, Option<serde_json::Value>)> =
        sqlx::query_as::<_, (Uuid, Option<f64>, Option<i32>, Option<serde_json::Value>)>(
            "SELECT w.worker_id,
                    (r.quality_sum + r.attitude_sum + r.skill_sum)::float8 / NULLIF(r.reviews * 3, 0),
                    r.reviews, d.state->'base'
               FROM unnest($1::uuid[]) AS w(worker_id)
               LEFT JOIN read_worker_ratings r ON r.worker_id = w.worker_id
               LEFT JOIN read_dispatch_workers d ON d.worker_id = w.worker_id",
        )
        .bind(&ids)
        .fetch_all(&state.pool)
        .await?
        .into_iter()
        .map(|(id, rating, reviews, base)| (id, (rating, reviews.unwrap_or(0), base)))
        .collect();
    Ok(axum::Json(
        found
            .into_iter()
            .map(|row| {
                let worker_id = row.worker_id;
                let mut view = WorkerView::from(row);
                if let Some((rating, reviews, base)) = facts.get(&worker_id) {
                    view.rating = rating.map(|rating| (rating * 100.0).round() / 100.0);
                    view.reviews = *reviews;
                    let base: Option<domain::worker::ServiceBase> = base
                        .clone()
                        .and_then(|base| serde_json::from_value(base).ok());
                    view.distance_km = match (near_point, base) {
                        (Some(point), Some(base)) => {
                            let system = base.location.system;
                            let from = point.to_system(system).coarse();
                            Some((from.distance_m(base.location.coarse()) / 1000.0).round())
                        }
                        _ => None,
                    };
                }
                view
            })
            .collect(),
    ))
}

/// One worker's directory entry, with their rating and the kinds of their in-date
/// certificates.
#[utoipa::path(get, path = "/api/v1/workers/{worker_id}", security(()), tag = "workers", params(("worker_id" = Uuid, Path)),
    responses((status = 200, body = WorkerView), (status = 404, body = crate::error::Problem)))]
pub async fn show(
    State(state): State<AppState>,
    AppPath(worker_id): AppPath<Uuid>,
) -> Result<axum::Json<WorkerView>, ApiError> {
    let row = worker_views::get(&state.pool, worker_id)
        .await?
        .ok_or_else(|| ApiError::not_found("服务人员", "worker"))?;
    let (rating, reviews): (Option<f64>, Option<i32>) = sqlx::query_as(
        "SELECT (quality_sum + attitude_sum + skill_sum)::float8 / NULLIF(reviews * 3, 0), reviews
           FROM read_worker_ratings WHERE worker_id = $1",
    )
    .bind(worker_id)
    .fetch_optional(&state.pool)
    .await?
    .unwrap_or((None, None));
    let today = domain::values::business_day(Utc::now());
    let mut kinds: Vec<String> = worker_views::certificates(&state.pool, worker_id)
        .await?
        .into_iter()
        .filter(|certificate| !certificate.expired && certificate.expires_on >= today)
        .map(|certificate| certificate.kind)
        .collect();
    kinds.sort();
    kinds.dedup();
    let mut view = WorkerView::from(row);
    view.rating = rating.map(|rating| (rating * 100.0).round() / 100.0);
    view.reviews = reviews.unwrap_or(0);
    view.certificates = Some(kinds);
    Ok(axum::Json(view))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkerAck {
    pub worker_id: Uuid,
    pub online: bool,
    pub suspended: bool,
    pub version: usize,
}

async fn run(
    state: &AppState,
    worker_id: Uuid,
    command: WorkerCommand,
    context: &CommandContext,
) -> Result<axum::Json<WorkerAck>, ApiError> {
    let committed = state.workers.execute(worker_id, command, context).await?;
    let version = if committed.events == 0 {
        state.workers.load(worker_id).await?.1
    } else {
        committed.version
    };
    Ok(axum::Json(WorkerAck {
        worker_id,
        online: committed.state.online,
        suspended: committed.state.suspended,
        version,
    }))
}

/// Become available for orders (workers).
#[utoipa::path(post, path = "/api/v1/worker/online", tag = "workers", security(("bearer" = ["worker"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAck), (status = 409, body = crate::error::Problem)))]
pub async fn go_online(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
) -> Result<axum::Json<WorkerAck>, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    run(
        &state,
        worker.id,
        WorkerCommand::GoOnline {
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

/// Stop taking orders (workers).
#[utoipa::path(post, path = "/api/v1/worker/offline", tag = "workers", security(("bearer" = ["worker"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAck)))]
pub async fn go_offline(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
) -> Result<axum::Json<WorkerAck>, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    run(
        &state,
        worker.id,
        WorkerCommand::GoOffline {
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

/// Suspend a worker, with a reason (admins).
#[utoipa::path(post, path = "/api/v1/admin/workers/{worker_id}/suspend", tag = "admin", request_body = ReasonBody, security(("bearer" = ["admin"])),
    params(("worker_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAck), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn suspend(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(worker_id): AppPath<Uuid>,
    AppJson(body): AppJson<ReasonBody>,
) -> Result<axum::Json<WorkerAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    run(
        &state,
        worker_id,
        WorkerCommand::Suspend {
            by,
            reason: String::from(body.reason),
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

/// Lift a worker's suspension, with a reason (admins).
#[utoipa::path(post, path = "/api/v1/admin/workers/{worker_id}/reinstate", tag = "admin", request_body = ReasonBody, security(("bearer" = ["admin"])),
    params(("worker_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = WorkerAck), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn reinstate(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(worker_id): AppPath<Uuid>,
    AppJson(body): AppJson<ReasonBody>,
) -> Result<axum::Json<WorkerAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    run(
        &state,
        worker_id,
        WorkerCommand::Reinstate {
            by,
            reason: String::from(body.reason),
            now: context.occurred_at,
        },
        &context,
    )
    .await
}
