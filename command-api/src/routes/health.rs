//! Liveness and readiness.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", security(()), tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
    })
}

/// A stream a projection has set aside: its events wait for a fix and a retry; every other
/// stream flows on.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ParkedStreamView {
    pub projection: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Parked events: the one that failed and every later one of the stream.
    pub events: i64,
    pub first_position: i64,
    pub first_event_type: String,
    pub error: String,
    pub parked_at: chrono::DateTime<chrono::Utc>,
}

impl From<projections::ParkedStream> for ParkedStreamView {
    fn from(stream: projections::ParkedStream) -> Self {
        ParkedStreamView {
            projection: stream.projection,
            aggregate_type: stream.aggregate_type,
            aggregate_id: stream.aggregate_id,
            events: stream.events,
            first_position: stream.first_position,
            first_event_type: stream.first_event_type,
            error: stream.error,
            parked_at: stream.parked_at,
        }
    }
}

/// Whether the process can serve, and what is degraded.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `degraded` when a projection has parked a stream or keeps failing a step:
    /// the process still serves, and the views are stale for what is listed.
    pub status: String,
    /// Streams a projection has set aside.
    pub parked: Vec<ParkedStreamView>,
    /// Projections whose last step failed (a database problem; the step is retried).
    pub failing: Vec<String>,
    /// Whether sessions, customers and data keys are served from memory: true while this
    /// process hears every change to them (see ARCHITECTURE.md, "Served from memory"). When
    /// false, every request reads them from the database: slower, never staler.
    pub caches_in_memory: bool,
}

/// The process can serve: the database answers and the schema and projections are in place.
/// A projection that parked a stream makes it `degraded`, naming the stream.
#[utoipa::path(get, path = "/readyz", security(()), tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Readiness>, ApiError> {
    let projections: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projections")
        .fetch_one(&state.pool)
        .await
        .map_err(|error| ApiError::Unavailable(error.into()))?;
    if projections < projections::PROJECTION_NAMES.len() as i64 {
        return Err(ApiError::Unavailable(anyhow::anyhow!(
            "projections are not set up yet"
        )));
    }
    let parked: Vec<ParkedStreamView> = projections::parked(&state.pool)
        .await
        .map_err(ApiError::Unavailable)?
        .into_iter()
        .map(ParkedStreamView::from)
        .collect();
    let failing: Vec<String> = projections::status(&state.pool)
        .await
        .map_err(ApiError::Unavailable)?
        .into_iter()
        .filter(|status| status.last_error.is_some())
        .map(|status| status.name)
        .collect();
    let status = if parked.is_empty() && failing.is_empty() {
        "ready"
    } else {
        "degraded"
    };
    Ok(axum::Json(Readiness {
        status: status.to_owned(),
        parked,
        failing,
        caches_in_memory: state.fresh.trusted(),
    }))
}
