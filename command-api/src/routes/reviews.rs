//! Reviews: the worker's reply, the admins' hiding, and the public lists and rating summaries.

use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::order::OrderCommand;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::acks::OrderAck;
use crate::state::AppState;
use crate::text::{Line, Paragraph};
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tags))
        .routes(routes!(reply))
        .routes(routes!(hide))
        .routes(routes!(list))
        .routes(routes!(ratings))
        .routes(routes!(admin_list))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TagView {
    pub code: String,
    pub zh: String,
    pub en: String,
    pub positive: bool,
}

impl From<&domain::review::Tag> for TagView {
    fn from(tag: &domain::review::Tag) -> Self {
        TagView {
            code: tag.code.to_owned(),
            zh: tag.zh.to_owned(),
            en: tag.en.to_owned(),
            positive: tag.positive,
        }
    }
}

/// The tags a review may carry.
#[utoipa::path(get, path = "/api/v1/review-tags", security(()), tag = "reviews", responses((status = 200, body = [TagView])))]
pub async fn tags() -> axum::Json<Vec<TagView>> {
    axum::Json(domain::review::TAGS.iter().map(TagView::from).collect())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    pub reply: Paragraph<500>,
}

/// Answer the review of one of your orders, once (its worker).
#[utoipa::path(post, path = "/api/v1/orders/{order_id}/review/reply", tag = "reviews", request_body = ReplyBody, security(("bearer" = ["worker"])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn reply(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<ReplyBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
    if body.reply.chars().count() > 500 {
        return Err(ApiError::Invalid(Text::new(
            "reviews.reply-most-500-characters",
        )));
    }
    let command = OrderCommand::ReplyToReview {
        worker_id: worker.id,
        reply: String::from(body.reply),
        now: context.occurred_at,
    };
    crate::routes::acks::run(&state, order_id, command, &context).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HideBody {
    pub reason: Paragraph<500>,
}

/// Hide a review from the public and from the worker's ratings, with a reason (admins). The
/// audit trail keeps who did it and why.
#[utoipa::path(post, path = "/api/v1/admin/orders/{order_id}/review/hide", tag = "reviews", request_body = HideBody, security(("bearer" = ["admin"])),
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = OrderAck), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn hide(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(order_id): AppPath<Uuid>,
    AppJson(body): AppJson<HideBody>,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = OrderCommand::HideReview {
        by,
        reason: String::from(body.reason),
        now: context.occurred_at,
    };
    crate::routes::acks::run(&state, order_id, command, &context).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Keyset: the `cursor` of the previous page's last review.
    pub cursor: Option<Line<200>>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    pub order_id: Uuid,
    /// The reviewer's name with all but its first character starred.
    pub reviewer: String,
    pub service: String,
    pub quality: i16,
    pub attitude: i16,
    pub skill: i16,
    pub comment: String,
    pub tags: Vec<TagView>,
    /// Recorded by the platform because no review came in time.
    pub by_default: bool,
    pub reviewed_at: DateTime<Utc>,
    pub reply: Option<String>,
    pub replied_at: Option<DateTime<Utc>>,
    /// Pass as `cursor` for the next page.
    pub cursor: String,
}

/// A worker's reviews, newest first (anyone). Hidden reviews are left out.
#[utoipa::path(get, path = "/api/v1/workers/{worker_id}/reviews", security(()), tag = "reviews",
    params(("worker_id" = Uuid, Path), ListParams),
    responses((status = 200, body = [ReviewView]), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    AppPath(worker_id): AppPath<Uuid>,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<axum::Json<Vec<ReviewView>>, ApiError> {
    let after = after(params.cursor.as_deref())?;
    let rows = sqlx::query(&format!(
        "SELECT {REVIEW_COLUMNS}
           FROM read_reviews r LEFT JOIN read_customers c ON c.customer_id = r.customer_id
          WHERE r.worker_id = $1 AND NOT r.hidden
            AND ($2::timestamptz IS NULL OR (r.reviewed_at, r.order_id) < ($2, $3))
          ORDER BY r.reviewed_at DESC, r.order_id DESC LIMIT $4"
    ))
    .bind(worker_id)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(params.limit.unwrap_or(20).clamp(1, 100))
    .fetch_all(&state.pool)
    .await?;
    let views = rows
        .iter()
        .map(review_view)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(axum::Json(views))
}

/// The columns `review_view` reads.
const REVIEW_COLUMNS: &str = "r.order_id, c.name, r.service, r.quality, r.attitude, r.skill,
    r.comment, r.tags, r.by_default, r.reviewed_at, r.reply, r.replied_at";

fn review_view(row: &sqlx::postgres::PgRow) -> Result<ReviewView, sqlx::Error> {
    use sqlx::Row;
    let order_id: Uuid = row.try_get("order_id")?;
    let reviewed_at: DateTime<Utc> = row.try_get("reviewed_at")?;
    let name: Option<String> = row.try_get("name")?;
    let tags: Vec<String> = row.try_get("tags")?;
    Ok(ReviewView {
        order_id,
        reviewer: domain::review::masked_name(name.as_deref()),
        service: row.try_get("service")?,
        quality: row.try_get("quality")?,
        attitude: row.try_get("attitude")?,
        skill: row.try_get("skill")?,
        comment: row.try_get("comment")?,
        tags: tags
            .iter()
            .filter_map(|code| domain::review::tag(code))
            .map(TagView::from)
            .collect(),
        by_default: row.try_get("by_default")?,
        reviewed_at,
        reply: row.try_get("reply")?,
        replied_at: row.try_get("replied_at")?,
        cursor: format!("{}_{order_id}", reviewed_at.timestamp_micros()),
    })
}

/// The review of one order, with the worker's reply (its customer, its worker, admins). A
/// hidden review is still shown to them.
#[utoipa::path(get, path = "/api/v1/orders/{order_id}/review", tag = "reviews", security(("bearer" = ["customer", "worker", "admin"])),
    params(("order_id" = Uuid, Path)),
    responses((status = 200, body = ReviewView), (status = 404, body = crate::error::Problem)))]
pub async fn of_order(
    State(state): State<AppState>,
    AppPath(order_id): AppPath<Uuid>,
) -> Result<axum::Json<ReviewView>, ApiError> {
    let row = sqlx::query(&format!(
        "SELECT {REVIEW_COLUMNS}
           FROM read_reviews r LEFT JOIN read_customers c ON c.customer_id = r.customer_id
          WHERE r.order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::not_found("评价", "review"))?;
    Ok(axum::Json(review_view(&row)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdminReviewParams {
    /// Only hidden (`true`) or only shown (`false`) reviews; both when absent.
    pub hidden: Option<bool>,
    /// Reviews with some dimension at or below this many stars (1 to 5).
    pub max_stars: Option<i16>,
    pub worker_id: Option<Uuid>,
    /// The previous page's last `cursor`.
    pub cursor: Option<Line<80>>,
    /// 1 to 100, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminReviewView {
    pub order_id: Uuid,
    pub worker_id: Uuid,
    pub customer_id: Uuid,
    /// The reviewer as the public sees them (王**).
    pub reviewer: String,
    pub service: String,
    pub quality: i16,
    pub attitude: i16,
    pub skill: i16,
    pub comment: String,
    pub tags: Vec<String>,
    pub by_default: bool,
    pub reviewed_at: DateTime<Utc>,
    pub reply: Option<String>,
    pub hidden: bool,
    pub hidden_reason: Option<String>,
    pub hidden_at: Option<DateTime<Utc>>,
    pub cursor: String,
}

/// Every review, newest first, hidden ones included (admins).
#[utoipa::path(get, path = "/api/v1/admin/reviews", tag = "reviews", security(("bearer" = ["admin"])), params(AdminReviewParams),
    responses((status = 200, body = [AdminReviewView]), (status = 422, body = crate::error::Problem)))]
pub async fn admin_list(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<AdminReviewParams>,
) -> Result<axum::Json<Vec<AdminReviewView>>, ApiError> {
    use sqlx::Row;
    let after = after(params.cursor.as_deref())?;
    if params
        .max_stars
        .is_some_and(|stars| !(1..=5).contains(&stars))
    {
        return Err(ApiError::Invalid(Text::new("reviews.max-stars-from-1-5")));
    }
    let limit = params.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::Invalid(Text::new("reviews.limit-from-1-100")));
    }
    let rows = sqlx::query(
        "SELECT r.order_id, r.worker_id, r.customer_id, c.name, r.service, r.quality, r.attitude,
                r.skill, r.comment, r.tags, r.by_default, r.reviewed_at, r.reply, r.hidden,
                r.hidden_reason, r.hidden_at
           FROM read_reviews r LEFT JOIN read_customers c ON c.customer_id = r.customer_id
          WHERE ($1::boolean IS NULL OR r.hidden = $1)
            AND ($2::smallint IS NULL OR least(r.quality, r.attitude, r.skill) <= $2)
            AND ($3::uuid IS NULL OR r.worker_id = $3)
            AND ($4::timestamptz IS NULL OR (r.reviewed_at, r.order_id) < ($4, $5))
          ORDER BY r.reviewed_at DESC, r.order_id DESC LIMIT $6",
    )
    .bind(params.hidden)
    .bind(params.max_stars)
    .bind(params.worker_id)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        let order_id: Uuid = row.try_get("order_id")?;
        let reviewed_at: DateTime<Utc> = row.try_get("reviewed_at")?;
        let name: Option<String> = row.try_get("name")?;
        views.push(AdminReviewView {
            order_id,
            worker_id: row.try_get("worker_id")?,
            customer_id: row.try_get("customer_id")?,
            reviewer: domain::review::masked_name(name.as_deref()),
            service: row.try_get("service")?,
            quality: row.try_get("quality")?,
            attitude: row.try_get("attitude")?,
            skill: row.try_get("skill")?,
            comment: row.try_get("comment")?,
            tags: row.try_get("tags")?,
            by_default: row.try_get("by_default")?,
            reviewed_at,
            reply: row.try_get("reply")?,
            hidden: row.try_get("hidden")?,
            hidden_reason: row.try_get("hidden_reason")?,
            hidden_at: row.try_get("hidden_at")?,
            cursor: format!("{}_{order_id}", reviewed_at.timestamp_micros()),
        });
    }
    Ok(axum::Json(views))
}

/// Where a page of reviews starts: after the review a cursor names, if one is given.
fn after(cursor: Option<&str>) -> Result<Option<(DateTime<Utc>, Uuid)>, ApiError> {
    cursor
        .map(|cursor| {
            parse_cursor(cursor)
                .ok_or_else(|| ApiError::Invalid(Text::new("reviews.cursor-not-valid")))
        })
        .transpose()
}

fn parse_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = cursor.split_once('_')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Averages {
    pub quality: f64,
    pub attitude: f64,
    pub skill: f64,
    /// The mean of the three.
    pub overall: f64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MonthPoint {
    /// `YYYY-MM`, Beijing time.
    pub month: String,
    pub reviews: i64,
    pub overall: f64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TagCount {
    pub tag: TagView,
    pub count: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RatingSummary {
    pub worker_id: Uuid,
    pub count: i64,
    /// Of those, recorded by default.
    pub default_count: i64,
    pub averages: Option<Averages>,
    /// How many reviews gave 1, 2, 3, 4 and 5 stars overall (the mean of the three, rounded).
    pub distribution: [i64; 5],
    /// The last six months, oldest first.
    pub trend: Vec<MonthPoint>,
    pub tags: Vec<TagCount>,
}

/// A worker's rating summary (anyone): averages per dimension, the distribution, the count, the
/// trend of the last six months and the most given tags. Hidden reviews do not count.
#[utoipa::path(get, path = "/api/v1/workers/{worker_id}/ratings", security(()), tag = "reviews",
    params(("worker_id" = Uuid, Path)),
    responses((status = 200, body = RatingSummary)))]
pub async fn ratings(
    State(state): State<AppState>,
    AppPath(worker_id): AppPath<Uuid>,
) -> Result<axum::Json<RatingSummary>, ApiError> {
    let (count, default_count, quality, attitude, skill): (
        i64,
        i64,
        Option<f64>,
        Option<f64>,
        Option<f64>,
    ) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE by_default),
                avg(quality)::float8, avg(attitude)::float8, avg(skill)::float8
           FROM read_reviews WHERE worker_id = $1 AND NOT hidden",
    )
    .bind(worker_id)
    .fetch_one(&state.pool)
    .await?;
    let round = |value: f64| (value * 100.0).round() / 100.0;
    let averages = match (quality, attitude, skill) {
        (Some(quality), Some(attitude), Some(skill)) => Some(Averages {
            quality: round(quality),
            attitude: round(attitude),
            skill: round(skill),
            overall: round((quality + attitude + skill) / 3.0),
        }),
        _ => None,
    };
    let buckets: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT round((quality + attitude + skill) / 3.0)::int AS stars, count(*)
           FROM read_reviews WHERE worker_id = $1 AND NOT hidden GROUP BY 1",
    )
    .bind(worker_id)
    .fetch_all(&state.pool)
    .await?;
    let mut distribution = [0; 5];
    for (stars, count) in buckets {
        if (1..=5).contains(&stars) {
            distribution[(stars - 1) as usize] = count;
        }
    }
    let trend: Vec<(String, i64, f64)> = sqlx::query_as(
        "SELECT to_char(date_trunc('month', reviewed_at AT TIME ZONE 'Asia/Shanghai'), 'YYYY-MM'),
                count(*), round(avg((quality + attitude + skill) / 3.0), 2)::float8
           FROM read_reviews
          WHERE worker_id = $1 AND NOT hidden
            AND reviewed_at >= date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' - interval '5 months'
          GROUP BY 1 ORDER BY 1",
    )
    .bind(worker_id)
    .fetch_all(&state.pool)
    .await?;
    let tag_counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT tag, count(*) FROM read_reviews, unnest(tags) AS tag
          WHERE worker_id = $1 AND NOT hidden GROUP BY tag ORDER BY count(*) DESC, tag LIMIT 10",
    )
    .bind(worker_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(axum::Json(RatingSummary {
        worker_id,
        count,
        default_count,
        averages,
        distribution,
        trend: trend
            .into_iter()
            .map(|(month, reviews, overall)| MonthPoint {
                month,
                reviews,
                overall,
            })
            .collect(),
        tags: tag_counts
            .into_iter()
            .filter_map(|(code, count)| {
                domain::review::tag(&code).map(|tag| TagCount {
                    tag: TagView::from(tag),
                    count,
                })
            })
            .collect(),
    }))
}
