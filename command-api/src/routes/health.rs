//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
    })
}

/// The process can serve: the database answers and the schema and projections are in place.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = crate::error::Problem)))]
pub async fn readyz(
    State(state): State<AppState>,
) -> Result<(StatusCode, axum::Json<Health>), ApiError> {
    let projections: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projections")
        .fetch_one(&state.pool)
        .await
        .map_err(|error| ApiError::Unavailable(error.into()))?;
    if projections < projections::PROJECTION_NAMES.len() as i64 {
        return Err(ApiError::Unavailable(anyhow::anyhow!(
            "projections are not set up yet"
        )));
    }
    Ok((
        StatusCode::OK,
        axum::Json(Health {
            status: "ready".into(),
        }),
    ))
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document")))]
pub async fn openapi_document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi())
}
