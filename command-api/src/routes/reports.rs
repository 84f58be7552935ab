//! Reports from the analytics warehouse, for admins and analysts, as JSON or CSV, and the
//! admins' on-demand refresh.

use analytics::reports::Report;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery};
use crate::state::AppState;
use crate::text::{Line, Paragraph};
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(revenue))
        .routes(routes!(orders))
        .routes(routes!(satisfaction))
        .routes(routes!(activity))
        .routes(routes!(refresh))
        .routes(routes!(sql))
}

/// One analyst's query.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlBody {
    /// One read-only `SELECT` (a `WITH … SELECT`, `FROM …` or `VALUES` too) over the
    /// warehouse's tables.
    pub sql: Paragraph<20000>,
    /// Fewer rows than the platform's limit.
    pub max_rows: Option<usize>,
}

/// Analysts' SQL (analysts only): one read-only query against the warehouse, with no file,
/// network, extension or setting access, capped memory and threads, a time-out, and a row and
/// byte limit on the answer. Each analyst runs one query at a time and a few run at once in
/// all (429 beyond). Anything else is refused with a problem saying why.
#[utoipa::path(post, path = "/api/v1/analytics/sql", tag = "reports", security(("bearer" = ["analyst"])), request_body = SqlBody,
    responses((status = 200, description = "Columns with their types, rows as JSON values, whether rows were cut off, and the warehouse's freshness", body = analytics::sql::Answer),
              (status = 429, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub async fn sql(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    AppJson(body): AppJson<SqlBody>,
) -> Result<Response, ApiError> {
    let analyst = caller.actor()?.id;
    let mut limits = state.warehouse.limits().clone();
    if let Some(rows) = body.max_rows {
        if rows == 0 || rows > limits.rows {
            return Err(ApiError::Invalid(
                Text::new("reports.max-rows-range").with("max", limits.rows),
            ));
        }
        limits.rows = rows;
    }
    let length = body.sql.len();
    // Held for the query: the analyst's own turn and one of the shared slots, as session
    // locks on a connection that is closed afterwards (or if the request is dropped), so they
    // hold across every process and never outlive the query.
    let mut turn = state.pool.acquire().await?;
    turn.close_on_drop();
    let own_turn: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(projections::advisory_key(
            "sql-analyst",
            &analyst.to_string(),
        ))
        .fetch_one(&mut *turn)
        .await?;
    if !own_turn {
        return Err(ApiError::Busy {
            detail: Text::new("reports.previous-query-still-running-wait"),
            retry_after_seconds: 1,
        });
    }
    let mut slot = None;
    for index in 0..state.warehouse.concurrency() {
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(projections::advisory_key("sql-slot", &index.to_string()))
            .fetch_one(&mut *turn)
            .await?;
        if taken {
            slot = Some(index);
            break;
        }
    }
    if slot.is_none() {
        return Err(ApiError::Busy {
            detail: Text::new("reports.queries-at-capacity")
                .with("count", state.warehouse.concurrency()),
            retry_after_seconds: 2,
        });
    }
    let outcome = state
        .warehouse
        .query(String::from(body.sql), limits)
        .await
        .map_err(crate::error::warehouse_error)?;
    // Released before answering: closing the connection releases them too, but only once the
    // server has seen it close, and the analyst's next query can arrive before that.
    let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut *turn)
        .await;
    drop(turn);
    match outcome {
        Ok(answer) => {
            tracing::info!(%analyst, length, rows = answer.rows.len(), elapsed_ms = answer.elapsed_ms, "analyst query");
            Ok(axum::Json(answer).into_response())
        }
        Err(refusal) => {
            tracing::info!(%analyst, length, problem = refusal.problem(), "analyst query refused");
            Err(ApiError::SqlRefused(refusal))
        }
    }
}

/// A report's date range (Asia/Shanghai dates, inclusive), filters and format.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// First day, `YYYY-MM-DD` (Beijing).
    #[param(value_type = Option<String>)]
    pub from: Option<NaiveDate>,
    /// Last day, `YYYY-MM-DD` (Beijing).
    #[param(value_type = Option<String>)]
    pub to: Option<NaiveDate>,
    /// A service code, e.g. `daily_cleaning`.
    pub service: Option<Line<30>>,
    /// A city, e.g. `上海`.
    pub city: Option<Line<40>>,
    /// `customer` or `worker` (the activity report only, which documents it itself).
    #[param(ignore)]
    pub role: Option<Line<20>>,
    /// `json` (default) or `csv`.
    #[param(value_type = Option<ReportFormat>)]
    pub format: Option<Line<10>>,
}

/// How a report is answered.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    Json,
    Csv,
}

/// Whose activity.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityRole {
    Customer,
    Worker,
}

impl ReportQuery {
    fn filters(&self) -> Result<analytics::reports::Filters, ApiError> {
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from > to {
                return Err(ApiError::Invalid(Text::new("reports.from-after")));
            }
        }
        if let Some(service) = &self.service {
            if domain::ServiceCode::parse(service).is_none() {
                return Err(ApiError::Invalid(
                    Text::new("reports.unknown-service").with("service", service),
                ));
            }
        }
        if let Some(role) = &self.role {
            if !matches!(role.as_str(), "customer" | "worker") {
                return Err(ApiError::Invalid(
                    Text::new("reports.role-customer-worker-not").with("role", role),
                ));
            }
        }
        Ok(analytics::reports::Filters {
            from: self.from,
            to: self.to,
            service: self.service.clone().map(String::from),
            city: self.city.clone().map(String::from),
            role: self.role.clone().map(String::from),
        })
    }

    /// Refuses the filters a report does not take.
    fn only(self, takes_role: bool) -> Result<Self, ApiError> {
        if takes_role && (self.service.is_some() || self.city.is_some()) {
            return Err(ApiError::Invalid(Text::new(
                "reports.activity-report-filters-role-not",
            )));
        }
        if !takes_role && self.role.is_some() {
            return Err(ApiError::Invalid(Text::new(
                "reports.only-activity-report-filters-role",
            )));
        }
        Ok(self)
    }

    fn csv(&self) -> Result<bool, ApiError> {
        match self.format.as_deref() {
            None | Some("json") => Ok(false),
            Some("csv") => Ok(true),
            Some(other) => Err(ApiError::Invalid(
                Text::new("reports.format-json-csv-not").with("other", other),
            )),
        }
    }
}

/// Revenue (admins and analysts): GMV, refunds, net revenue, platform commission and worker
/// payouts by day, service and area, with the average order value and how fresh the warehouse
/// is. `format=csv` answers the rows as CSV.
#[utoipa::path(get, path = "/api/v1/reports/revenue", tag = "reports", security(("bearer" = ["admin", "analyst"])), params(ReportQuery),
    responses((status = 200, description = "The report as JSON, or its rows as CSV with `format=csv` (the warehouse's refresh time in `X-Warehouse-Refreshed-At`)",
                  content((analytics::reports::RevenueReport = "application/json"), (String = "text/csv"))),
              (status = 422, body = crate::error::Problem)))]
pub async fn revenue(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    answer(query.only(false)?, |filters| {
        state.warehouse.revenue(filters)
    })
    .await
}

/// Orders (admins and analysts): volume and the funnel (placed → paid → assigned → completed)
/// by day of placement, service and city; cancellations by stage and reason; minutes from
/// payment to assignment. `format=csv` answers the rows as CSV.
#[utoipa::path(get, path = "/api/v1/reports/orders", tag = "reports", security(("bearer" = ["admin", "analyst"])), params(ReportQuery),
    responses((status = 200, description = "The report as JSON, or its rows as CSV with `format=csv` (the warehouse's refresh time in `X-Warehouse-Refreshed-At`)",
                  content((analytics::reports::OrdersReport = "application/json"), (String = "text/csv"))),
              (status = 422, body = crate::error::Problem)))]
pub async fn orders(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    answer(query.only(false)?, |filters| {
        state.warehouse.orders(filters)
    })
    .await
}

/// Satisfaction (admins and analysts): average quality, attitude and skill, their distribution,
/// by service, city, worker and week, and the workers whose ratings are falling (the last 30 days
/// against the 30 before); hidden reviews are left out. `format=csv` answers the per-worker rows.
#[utoipa::path(get, path = "/api/v1/reports/satisfaction", tag = "reports", security(("bearer" = ["admin", "analyst"])), params(ReportQuery),
    responses((status = 200, description = "The report as JSON, or its rows as CSV with `format=csv` (the warehouse's refresh time in `X-Warehouse-Refreshed-At`)",
                  content((analytics::reports::SatisfactionReport = "application/json"), (String = "text/csv"))),
              (status = 422, body = crate::error::Problem)))]
pub async fn satisfaction(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    answer(query.only(false)?, |filters| {
        state.warehouse.satisfaction(filters)
    })
    .await
}

/// Activity (admins and analysts): daily, weekly and monthly active customers and workers, new
/// against returning, and weekly retention cohorts. Filters by `role`, not service or city.
/// `format=csv` answers the period rows.
#[utoipa::path(get, path = "/api/v1/reports/activity", tag = "reports", security(("bearer" = ["admin", "analyst"])), params(ReportQuery, ("role" = Option<ActivityRole>, Query, description = "Only customers or only workers")),
    responses((status = 200, description = "The report as JSON, or its rows as CSV with `format=csv` (the warehouse's refresh time in `X-Warehouse-Refreshed-At`)",
                  content((analytics::activity::ActivityReport = "application/json"), (String = "text/csv"))),
              (status = 422, body = crate::error::Problem)))]
pub async fn activity(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    answer(query.only(true)?, |filters| {
        state.warehouse.activity(filters)
    })
    .await
}

/// Checks the query, runs the report and answers it as JSON, or as CSV.
async fn answer<R, F>(
    query: ReportQuery,
    run: impl FnOnce(analytics::reports::Filters) -> F,
) -> Result<Response, ApiError>
where
    R: Report,
    F: std::future::Future<Output = anyhow::Result<R>>,
{
    let filters = query.filters()?;
    let csv = query.csv()?;
    let report = run(filters).await.map_err(crate::error::warehouse_error)?;
    if csv {
        return Ok(csv_response(report.freshness(), report.csv()));
    }
    Ok(axum::Json(report).into_response())
}

/// CSV, with the warehouse's freshness in a header.
fn csv_response(freshness: &analytics::reports::Freshness, body: String) -> Response {
    let fresh = freshness
        .refreshed_at
        .map(|at| at.to_rfc3339())
        .unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::HeaderName::from_static("x-warehouse-refreshed-at"),
                fresh,
            ),
        ],
        body,
    )
        .into_response()
}

/// Refresh the warehouse now (admins): loads every event since the last refresh and says how
/// many, how fast, and up to where.
#[utoipa::path(post, path = "/api/v1/admin/analytics/refresh", tag = "reports", security(("bearer" = ["admin"])),
    responses((status = 200, description = "What the refresh loaded", body = analytics::load::LoadReport)))]
pub async fn refresh(State(state): State<AppState>) -> Result<Response, ApiError> {
    let report = state
        .warehouse
        .refresh(&state.pool)
        .await
        .map_err(ApiError::Internal)?;
    Ok(axum::Json(report).into_response())
}
