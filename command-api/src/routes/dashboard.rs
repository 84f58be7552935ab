//! The console's dashboard in one call: today's and this week's figures, what waits for
//! dispatch, and thirty days of series for its charts, all from the read models (the
//! warehouse's reports are the analysts' deeper view).

use axum::extract::State;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Days in the dashboard's series.
const SERIES_DAYS: i64 = 30;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dashboard))
}

/// The figures of one period (today, or this week from Monday), Beijing time.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct PeriodFigures {
    /// The period's first instant.
    pub from: DateTime<Utc>,
    /// Orders placed.
    pub orders: i64,
    /// Value of the orders placed and paid, fen.
    pub gmv: i64,
    /// Refunds issued, fen.
    pub refunds: i64,
    /// Services finished.
    pub finished: i64,
    /// Orders cancelled.
    pub cancelled: i64,
    /// Finished ÷ (finished + cancelled) of the orders that ended in the period; `null` when
    /// none did.
    pub completion_rate: Option<f64>,
    /// Mean of the three stars over the reviews given (hidden ones left out); `null` without
    /// reviews.
    pub average_rating: Option<f64>,
    pub reviews: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StageWaiting {
    /// `named`, `preferred`, `auto`, `grab`, `manual`, or `none` before a stage is set.
    pub stage: String,
    pub orders: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DaySeries {
    pub day: NaiveDate,
    /// Orders placed that day.
    pub orders: i64,
    /// Value of that day's orders that were paid, fen.
    pub gmv: i64,
    /// Customers who placed an order that day.
    pub active_customers: i64,
    /// Workers who started a service that day.
    pub active_workers: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceSeries {
    pub service: String,
    pub orders: i64,
    pub gmv: i64,
}

/// Mean stars per dimension over the reviews of the last thirty days.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Satisfaction {
    pub quality: Option<f64>,
    pub attitude: Option<f64>,
    pub skill: Option<f64>,
    pub reviews: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Dashboard {
    pub as_of: DateTime<Utc>,
    pub today: PeriodFigures,
    pub week: PeriodFigures,
    /// Approved workers online now (suspended ones left out).
    pub workers_online: i64,
    /// Paid orders waiting for a worker, by dispatch stage.
    pub dispatch_waiting: Vec<StageWaiting>,
    /// The slowest projection's lag, milliseconds.
    pub projection_lag_ms: i64,
    /// The last thirty days, oldest first, every day present.
    pub by_day: Vec<DaySeries>,
    /// The last thirty days by service, most orders first.
    pub by_service: Vec<ServiceSeries>,
    pub satisfaction: Satisfaction,
}

/// The dashboard's figures and series (admins).
#[utoipa::path(get, path = "/api/v1/admin/dashboard", tag = "admin", security(("bearer" = ["admin"])),
    responses((status = 200, body = Dashboard)))]
pub async fn dashboard(State(state): State<AppState>) -> Result<axum::Json<Dashboard>, ApiError> {
    let now = Utc::now();
    let today = domain::values::business_day(now);
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let series_from = today - Duration::days(SERIES_DAYS - 1);
    let pool = &state.pool;
    let (periods, online, waiting, statuses, by_day, by_service, satisfaction) = tokio::try_join!(
        periods(pool, start_of(today), start_of(monday)),
        workers_online(pool),
        dispatch_waiting(pool),
        projections::projector::status(pool),
        by_day(pool, series_from, today),
        by_service(pool, start_of(series_from)),
        satisfaction(pool, start_of(series_from)),
    )
    .map_err(ApiError::Internal)?;
    let lag = statuses
        .iter()
        .map(|status| status.lag_seconds)
        .fold(0.0, f64::max);
    let (today, week) = periods;
    Ok(axum::Json(Dashboard {
        as_of: now,
        today,
        week,
        workers_online: online,
        dispatch_waiting: waiting,
        projection_lag_ms: (lag * 1000.0).round() as i64,
        by_day,
        by_service,
        satisfaction,
    }))
}

fn start_of(day: NaiveDate) -> DateTime<Utc> {
    domain::availability::local_instant(day, NaiveTime::MIN)
}

fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Today's and this week's figures, in one pass over each read model.
async fn periods(
    pool: &PgPool,
    today: DateTime<Utc>,
    week: DateTime<Utc>,
) -> anyhow::Result<(PeriodFigures, PeriodFigures)> {
    // The week starts on Monday, so it always holds today.
    let (orders_today, orders_week, gmv_today, gmv_week): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE placed_at >= $1), count(*),
                coalesce(sum(total) FILTER (WHERE placed_at >= $1 AND paid_at IS NOT NULL), 0)::bigint,
                coalesce(sum(total) FILTER (WHERE paid_at IS NOT NULL), 0)::bigint
           FROM read_orders WHERE placed_at >= $2",
    )
    .bind(today)
    .bind(week)
    .fetch_one(pool)
    .await?;
    let (finished_today, finished_week, cancelled_today, cancelled_week): (i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE finished_at >= $1), count(*) FILTER (WHERE finished_at >= $2),
                    count(*) FILTER (WHERE cancelled_at >= $1), count(*) FILTER (WHERE cancelled_at >= $2)
               FROM read_orders WHERE finished_at >= $2 OR cancelled_at >= $2",
        )
        .bind(today)
        .bind(week)
        .fetch_one(pool)
        .await?;
    let (refunds_today, refunds_week): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(amount) FILTER (WHERE issued_at >= $1), 0)::bigint,
                coalesce(sum(amount), 0)::bigint
           FROM read_refunds WHERE issued_at >= $2",
    )
    .bind(today)
    .bind(week)
    .fetch_one(pool)
    .await?;
    let (rating_today, reviews_today, rating_week, reviews_week): (
        Option<f64>,
        i64,
        Option<f64>,
        i64,
    ) = sqlx::query_as(
        "SELECT avg((quality + attitude + skill) / 3.0) FILTER (WHERE reviewed_at >= $1)::float8,
                count(*) FILTER (WHERE reviewed_at >= $1),
                avg((quality + attitude + skill) / 3.0)::float8, count(*)
           FROM read_reviews WHERE reviewed_at >= $2 AND NOT hidden",
    )
    .bind(today)
    .bind(week)
    .fetch_one(pool)
    .await?;
    Ok((
        PeriodFigures {
            from: today,
            orders: orders_today,
            gmv: gmv_today,
            refunds: refunds_today,
            finished: finished_today,
            cancelled: cancelled_today,
            completion_rate: rate(finished_today, finished_today + cancelled_today),
            average_rating: rating_today,
            reviews: reviews_today,
        },
        PeriodFigures {
            from: week,
            orders: orders_week,
            gmv: gmv_week,
            refunds: refunds_week,
            finished: finished_week,
            cancelled: cancelled_week,
            completion_rate: rate(finished_week, finished_week + cancelled_week),
            average_rating: rating_week,
            reviews: reviews_week,
        },
    ))
}

async fn workers_online(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM read_workers
          WHERE online AND NOT suspended AND review_status = 'approved'",
    )
    .fetch_one(pool)
    .await?)
}

async fn dispatch_waiting(pool: &PgPool) -> anyhow::Result<Vec<StageWaiting>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT coalesce(stage, 'none'), count(*) FROM read_dispatch_orders
          WHERE status = 'dispatching' GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(stage, orders)| StageWaiting { stage, orders })
        .collect())
}

async fn by_day(pool: &PgPool, from: NaiveDate, to: NaiveDate) -> anyhow::Result<Vec<DaySeries>> {
    let rows: Vec<(NaiveDate, i64, i64, i64)> = sqlx::query_as(
        "SELECT (placed_at AT TIME ZONE 'Asia/Shanghai')::date, count(*),
                coalesce(sum(total) FILTER (WHERE paid_at IS NOT NULL), 0)::bigint,
                count(DISTINCT customer_id)
           FROM read_orders WHERE placed_at >= $1 GROUP BY 1",
    )
    .bind(start_of(from))
    .fetch_all(pool)
    .await?;
    let workers: Vec<(NaiveDate, i64)> = sqlx::query_as(
        "SELECT (started_at AT TIME ZONE 'Asia/Shanghai')::date, count(DISTINCT worker_id)
           FROM read_orders WHERE started_at >= $1 GROUP BY 1",
    )
    .bind(start_of(from))
    .fetch_all(pool)
    .await?;
    let mut days = Vec::new();
    let mut day = from;
    while day <= to {
        let placed = rows.iter().find(|row| row.0 == day);
        days.push(DaySeries {
            day,
            orders: placed.map_or(0, |row| row.1),
            gmv: placed.map_or(0, |row| row.2),
            active_customers: placed.map_or(0, |row| row.3),
            active_workers: workers
                .iter()
                .find(|row| row.0 == day)
                .map_or(0, |row| row.1),
        });
        day += Duration::days(1);
    }
    Ok(days)
}

async fn by_service(pool: &PgPool, from: DateTime<Utc>) -> anyhow::Result<Vec<ServiceSeries>> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT service, count(*), coalesce(sum(total) FILTER (WHERE paid_at IS NOT NULL), 0)::bigint
           FROM read_orders WHERE placed_at >= $1 GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    .bind(from)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(service, orders, gmv)| ServiceSeries {
            service,
            orders,
            gmv,
        })
        .collect())
}

async fn satisfaction(pool: &PgPool, from: DateTime<Utc>) -> anyhow::Result<Satisfaction> {
    let (quality, attitude, skill, reviews): (Option<f64>, Option<f64>, Option<f64>, i64) =
        sqlx::query_as(
            "SELECT avg(quality)::float8, avg(attitude)::float8, avg(skill)::float8, count(*)
               FROM read_reviews WHERE reviewed_at >= $1 AND NOT hidden",
        )
        .bind(from)
        .fetch_one(pool)
        .await?;
    Ok(Satisfaction {
        quality,
        attitude,
        skill,
        reviews,
    })
}
