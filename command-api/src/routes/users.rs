//! Admin user management: searching customers and workers (Chinese names, phone tails,
//! status, service, level, group), viewing a customer, suspending and reinstating customers
//! with a reason, and grouping them. Every action is an event that records who did it and why,
//! with the request's metadata.

use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::customer::CustomerCommand;
use projections::customers::{CustomerRow, CustomerSearch};
use projections::workers::WorkerSearch;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::onboarding::GroupsBody;
use crate::routes::params::ReasonBody;
use crate::routes::profile::AddressView;
use crate::state::AppState;
use crate::text::Line;
use application::commands::CommandContext;
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_customers))
        .routes(routes!(customer))
        .routes(routes!(suspend))
        .routes(routes!(reinstate))
        .routes(routes!(set_groups))
        .routes(routes!(search_workers))
}

fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Invalid(Text::new(
            "orders.limit-must-between-1-200",
        )));
    }
    Ok(limit)
}

fn keyset(name: Option<String>, id: Option<Uuid>) -> Result<Option<(String, Uuid)>, ApiError> {
    match (name, id) {
        (Some(name), Some(id)) => Ok(Some((name, id))),
        (None, None) => Ok(None),
        _ => Err(ApiError::Invalid(Text::new(
            "users.give-both-after-name-after",
        ))),
    }
}

fn phone_tail(raw: Option<String>) -> Result<Option<String>, ApiError> {
    match raw {
        Some(tail) if (1..=4).contains(&tail.len()) && tail.chars().all(|c| c.is_ascii_digit()) => {
            Ok(Some(tail))
        }
        Some(_) => Err(ApiError::Invalid(Text::new("users.phone-tail-must-1-4"))),
        None => Ok(None),
    }
}

fn search_text(raw: Option<String>) -> Result<Option<String>, ApiError> {
    match raw.map(|text| text.trim().to_owned()) {
        Some(text) if text.is_empty() => Ok(None),
        Some(text) if text.chars().count() > 40 => {
            Err(ApiError::Invalid(Text::new("users.q-most-40-characters")))
        }
        other => Ok(other),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerSearchParams {
    /// Part of the name, e.g. 李.
    pub q: Option<Line<100>>,
    /// The last digits (1 to 4) of the phone number.
    pub phone_tail: Option<Line<11>>,
    pub suspended: Option<bool>,
    pub group: Option<Line<20>>,
    pub after_name: Option<Line<40>>,
    pub after_id: Option<Uuid>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CustomerSummary {
    pub customer_id: Uuid,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub suspended: bool,
    pub suspension_reason: Option<String>,
    pub groups: Vec<String>,
    pub registered_at: DateTime<Utc>,
}

impl From<CustomerRow> for CustomerSummary {
    fn from(row: CustomerRow) -> Self {
        CustomerSummary {
            customer_id: row.customer_id,
            name: row.name,
            phone: row.phone_masked,
            email: row.email_masked,
            suspended: row.suspended,
            suspension_reason: row.suspension_reason,
            groups: row.groups,
            registered_at: row.registered_at,
        }
    }
}

/// Search customers (admins).
#[utoipa::path(get, path = "/api/v1/admin/customers", tag = "admin", security(("bearer" = ["admin"])), params(CustomerSearchParams),
    responses((status = 200, body = [CustomerSummary]), (status = 422, body = crate::error::Problem)))]
pub async fn search_customers(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<CustomerSearchParams>,
) -> Result<axum::Json<Vec<CustomerSummary>>, ApiError> {
    let search = CustomerSearch {
        text: search_text(params.q.map(String::from))?,
        phone_tail: phone_tail(params.phone_tail.map(String::from))?,
        suspended: params.suspended,
        group: params.group.map(String::from),
        after: keyset(params.after_name.map(String::from), params.after_id)?,
    };
    let rows =
        projections::customers::search(&state.pool, &search, page_limit(params.limit)?).await?;
    Ok(axum::Json(
        rows.into_iter().map(CustomerSummary::from).collect(),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CustomerDetail {
    pub customer: CustomerSummary,
    pub addresses: Vec<AddressView>,
}

/// One customer, with their addresses (admins).
#[utoipa::path(get, path = "/api/v1/admin/customers/{customer_id}", tag = "admin", security(("bearer" = ["admin"])),
    params(("customer_id" = Uuid, Path)),
    responses((status = 200, body = CustomerDetail), (status = 404, body = crate::error::Problem)))]
pub async fn customer(
    State(state): State<AppState>,
    AppPath(customer_id): AppPath<Uuid>,
) -> Result<axum::Json<CustomerDetail>, ApiError> {
    let (row, addresses) = projections::customers::profile(&state.pool, customer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("客户", "customer"))?;
    Ok(axum::Json(CustomerDetail {
        customer: row.into(),
        addresses: addresses.into_iter().map(AddressView::from).collect(),
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CustomerAck {
    pub customer_id: Uuid,
    pub version: usize,
}

async fn run(
    state: &AppState,
    customer_id: Uuid,
    command: CustomerCommand,
    context: &CommandContext,
) -> Result<axum::Json<CustomerAck>, ApiError> {
    let committed = state
        .customers
        .execute(customer_id, command, context)
        .await?;
    Ok(axum::Json(CustomerAck {
        customer_id,
        version: committed.version,
    }))
}

/// Suspend a customer, with a reason: they can no longer place orders (admins).
#[utoipa::path(post, path = "/api/v1/admin/customers/{customer_id}/suspend", tag = "admin", request_body = ReasonBody, security(("bearer" = ["admin"])),
    params(("customer_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = CustomerAck), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn suspend(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(customer_id): AppPath<Uuid>,
    AppJson(body): AppJson<ReasonBody>,
) -> Result<axum::Json<CustomerAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    run(
        &state,
        customer_id,
        CustomerCommand::Suspend {
            by,
            reason: String::from(body.reason),
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

/// Lift a customer's suspension, with a reason (admins).
#[utoipa::path(post, path = "/api/v1/admin/customers/{customer_id}/reinstate", tag = "admin", request_body = ReasonBody, security(("bearer" = ["admin"])),
    params(("customer_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = CustomerAck), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn reinstate(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(customer_id): AppPath<Uuid>,
    AppJson(body): AppJson<ReasonBody>,
) -> Result<axum::Json<CustomerAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    run(
        &state,
        customer_id,
        CustomerCommand::Reinstate {
            by,
            reason: String::from(body.reason),
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

/// Put a customer in groups; replaces the previous groups (admins).
#[utoipa::path(put, path = "/api/v1/admin/customers/{customer_id}/groups", tag = "admin", request_body = GroupsBody, security(("bearer" = ["admin"])),
    params(("customer_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = CustomerAck), (status = 422, body = crate::error::Problem)))]
pub async fn set_groups(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(customer_id): AppPath<Uuid>,
    AppJson(body): AppJson<GroupsBody>,
) -> Result<axum::Json<CustomerAck>, ApiError> {
    let by = context.actor.ok_or(ApiError::Unauthenticated)?;
    run(
        &state,
        customer_id,
        CustomerCommand::SetGroups {
            by,
            groups: body.groups.into_iter().map(String::from).collect(),
            now: context.occurred_at,
        },
        &context,
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorkerSearchParams {
    /// Part of the name, e.g. 张.
    pub q: Option<Line<100>>,
    /// The last digits (1 to 4) of the phone number.
    pub phone_tail: Option<Line<11>>,
    /// `pending`, `documents_requested`, `approved` or `rejected`.
    pub review_status: Option<Line<20>>,
    pub suspended: Option<bool>,
    /// A catalogue service code among the worker's skills.
    pub service: Option<Line<30>>,
    /// `standard`, `silver` or `gold`.
    pub level: Option<Line<20>>,
    pub group: Option<Line<20>>,
    pub after_name: Option<Line<40>>,
    pub after_id: Option<Uuid>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkerSummary {
    pub worker_id: Uuid,
    pub name: String,
    pub phone: String,
    pub skills: Vec<String>,
    pub certified_skills: Vec<String>,
    pub review_status: String,
    pub level: String,
    pub groups: Vec<String>,
    pub suspended: bool,
    pub city: String,
}

/// Search workers (admins).
#[utoipa::path(get, path = "/api/v1/admin/workers", tag = "admin", security(("bearer" = ["admin"])), params(WorkerSearchParams),
    responses((status = 200, body = [WorkerSummary]), (status = 422, body = crate::error::Problem)))]
pub async fn search_workers(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<WorkerSearchParams>,
) -> Result<axum::Json<Vec<WorkerSummary>>, ApiError> {
    if let Some(service) = &params.service {
        if domain::ServiceCode::parse(service).is_none() {
            return Err(ApiError::Invalid(
                Text::new("orders.unknown-service").with("service", service),
            ));
        }
    }
    if let Some(status) = &params.review_status {
        if !["pending", "documents_requested", "approved", "rejected"].contains(&status.as_str()) {
            return Err(ApiError::Invalid(
                Text::new("users.unknown-review-status").with("status", status),
            ));
        }
    }
    if let Some(level) = &params.level {
        if !["standard", "silver", "gold"].contains(&level.as_str()) {
            return Err(ApiError::Invalid(
                Text::new("users.unknown-level").with("level", level),
            ));
        }
    }
    let search = WorkerSearch {
        text: search_text(params.q.map(String::from))?,
        phone_tail: phone_tail(params.phone_tail.map(String::from))?,
        review_status: params.review_status.map(String::from),
        suspended: params.suspended,
        service: params.service.map(String::from),
        level: params.level.map(String::from),
        group: params.group.map(String::from),
        after: keyset(params.after_name.map(String::from), params.after_id)?,
        ..WorkerSearch::default()
    };
    let rows =
        projections::workers::search(&state.pool, &search, page_limit(params.limit)?).await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|row| WorkerSummary {
                worker_id: row.worker_id,
                name: row.name,
                phone: row.phone_masked,
                skills: row.skills,
                certified_skills: row.certified_skills,
                review_status: row.review_status,
                level: row.level,
                groups: row.groups,
                suspended: row.suspended,
                city: row.city,
            })
            .collect(),
    ))
}
