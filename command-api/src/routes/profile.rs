//! A customer's own profile: name, contact details, emergency contact and saved addresses.
//! Personal parts are sealed under the customer's key before they become events.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::customer::{CustomerCommand, EmergencyContact};
use domain::{PersonName, PhoneNumber};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{vault_error, ApiError};
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath};
use crate::routes::credentials::normalise_login;
use crate::routes::orders::AddressBody;
use crate::state::AppState;
use crate::text::Line;
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, update))
        .routes(routes!(set_emergency_contact))
        .routes(routes!(add_address))
        .routes(routes!(remove_address))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EmergencyContactView {
    pub name: String,
    /// Masked.
    pub phone: String,
    pub relation: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddressView {
    pub address_id: Uuid,
    pub label: String,
    pub city: String,
    pub district: String,
    pub detail: String,
    pub contact_name: String,
    /// Masked.
    pub contact_phone: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// `wgs84`, `gcj02` or `bd09`: the datum of `latitude` and `longitude`.
    pub coordinate_system: Option<String>,
    pub added_at: DateTime<Utc>,
}

impl From<projections::customers::AddressRow> for AddressView {
    fn from(address: projections::customers::AddressRow) -> Self {
        AddressView {
            address_id: address.address_id,
            label: address.label,
            city: address.city,
            district: address.district,
            detail: address.detail,
            contact_name: address.contact_name,
            contact_phone: address.contact_phone_masked,
            latitude: address.latitude,
            longitude: address.longitude,
            coordinate_system: address.coordinate_system,
            added_at: address.added_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProfileView {
    pub customer_id: Uuid,
    pub name: String,
    /// Masked, e.g. `138****5678`.
    pub phone: Option<String>,
    /// Masked, e.g. `l***@example.com`.
    pub email: Option<String>,
    pub emergency_contact: Option<EmergencyContactView>,
    pub addresses: Vec<AddressView>,
    pub version: i64,
}

/// Your profile, as the read model has it.
#[utoipa::path(get, path = "/api/v1/me/profile", tag = "profile", security(("bearer" = ["customer"])),
    responses((status = 200, body = ProfileView), (status = 404, body = crate::error::Problem)))]
pub async fn show(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
) -> Result<axum::Json<ProfileView>, ApiError> {
    let customer = context.actor.ok_or(ApiError::Unauthenticated)?;
    let (row, addresses) = projections::customers::profile(&state.pool, customer.id)
        .await?
        .ok_or_else(|| ApiError::not_found("客户资料", "profile"))?;
    let emergency_contact = match (
        row.emergency_name,
        row.emergency_phone_masked,
        row.emergency_relation,
    ) {
        (Some(name), Some(phone), Some(relation)) => Some(EmergencyContactView {
            name,
            phone,
            relation,
        }),
        _ => None,
    };
    Ok(axum::Json(ProfileView {
        customer_id: row.customer_id,
        name: row.name,
        phone: row.phone_masked,
        email: row.email_masked,
        emergency_contact,
        addresses: addresses.into_iter().map(AddressView::from).collect(),
        version: row.last_sequence,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    pub name: Line<40>,
    /// Contact mobile number (not the login).
    pub phone: Option<Line<20>>,
    /// Contact e-mail address (not the login).
    pub email: Option<Line<254>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProfileAck {
    pub customer_id: Uuid,
    pub version: usize,
}

/// Change your name and contact details.
#[utoipa::path(put, path = "/api/v1/me/profile", tag = "profile", request_body = ProfileBody, security(("bearer" = ["customer"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = ProfileAck), (status = 422, body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<ProfileBody>,
) -> Result<axum::Json<ProfileAck>, ApiError> {
    let customer = context.actor.ok_or(ApiError::Unauthenticated)?;
    let name = PersonName::parse(&body.name)?;
    let phone = body.phone.as_deref().map(PhoneNumber::parse).transpose()?;
    let email = match body.email.as_deref() {
        Some(raw) => {
            let normalised = normalise_login(raw)?;
            if PhoneNumber::parse(&normalised).is_ok() {
                return Err(ApiError::Invalid(Text::new(
                    "profile.email-must-e-mail-address",
                )));
            }
            Some(normalised)
        }
        None => None,
    };
    let mut plaintexts = vec![name.as_str()];
    plaintexts.extend(phone.as_ref().map(PhoneNumber::as_str));
    plaintexts.extend(email.as_deref());
    let mut sealed = state
        .vault
        .seal_all(customer.id, &plaintexts)
        .await
        .map_err(vault_error)?
        .into_iter();
    let name = sealed.next().expect("the name was sealed");
    let phone = phone.map(|_| sealed.next().expect("the phone was sealed"));
    let email = email.map(|_| sealed.next().expect("the e-mail was sealed"));
    let command = CustomerCommand::UpdateProfile {
        name,
        phone,
        email,
        now: context.occurred_at,
    };
    let committed = state
        .customers
        .execute(customer.id, command, &context)
        .await?;
    Ok(axum::Json(ProfileAck {
        customer_id: customer.id,
        version: committed.version,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyContactBody {
    pub name: Line<40>,
    pub phone: Line<20>,
    /// e.g. 配偶, 父亲, 女儿.
    pub relation: Line<20>,
}

/// Set whom to call in an emergency.
#[utoipa::path(put, path = "/api/v1/me/emergency-contact", tag = "profile", request_body = EmergencyContactBody, security(("bearer" = ["customer"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 200, body = ProfileAck), (status = 422, body = crate::error::Problem)))]
pub async fn set_emergency_contact(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<EmergencyContactBody>,
) -> Result<axum::Json<ProfileAck>, ApiError> {
    let customer = context.actor.ok_or(ApiError::Unauthenticated)?;
    let name = PersonName::parse(&body.name)?;
    let phone = PhoneNumber::parse(&body.phone)?;
    let relation = domain::values::required_text("关系 relation", &body.relation, 20)?;
    let mut sealed = state
        .vault
        .seal_all(customer.id, &[name.as_str(), phone.as_str(), &relation])
        .await
        .map_err(vault_error)?
        .into_iter();
    let contact = EmergencyContact {
        name: sealed.next().expect("sealed"),
        phone: sealed.next().expect("sealed"),
        relation: sealed.next().expect("sealed"),
    };
    let command = CustomerCommand::SetEmergencyContact {
        contact,
        now: context.occurred_at,
    };
    let committed = state
        .customers
        .execute(customer.id, command, &context)
        .await?;
    Ok(axum::Json(ProfileAck {
        customer_id: customer.id,
        version: committed.version,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAddressBody {
    /// e.g. 家, 父母家, 公司.
    pub label: Line<20>,
    pub address: AddressBody,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddressAck {
    pub address_id: Uuid,
    pub version: usize,
}

/// Save an address. Its coordinates, if given, name their datum (WGS-84, GCJ-02 or BD-09).
#[utoipa::path(post, path = "/api/v1/me/addresses", tag = "profile", request_body = NewAddressBody, security(("bearer" = ["customer"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 201, body = AddressAck), (status = 422, body = crate::error::Problem)))]
pub async fn add_address(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<NewAddressBody>,
) -> Result<Response, ApiError> {
    let customer = context.actor.ok_or(ApiError::Unauthenticated)?;
    let address = body
        .address
        .parse_and_seal(&state.vault, customer.id)
        .await?;
    let address_id = context.new_aggregate_id("address");
    let command = CustomerCommand::AddAddress {
        address_id,
        label: String::from(body.label),
        address,
        now: context.occurred_at,
    };
    let committed = state
        .customers
        .execute(customer.id, command, &context)
        .await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/me/addresses/{address_id}"),
        )],
        axum::Json(AddressAck {
            address_id,
            version: committed.version,
        }),
    )
        .into_response())
}

/// Forget a saved address.
#[utoipa::path(delete, path = "/api/v1/me/addresses/{address_id}", tag = "profile", security(("bearer" = ["customer"])),
    params(("address_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn remove_address(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppPath(address_id): AppPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let customer = context.actor.ok_or(ApiError::Unauthenticated)?;
    let command = CustomerCommand::RemoveAddress {
        address_id,
        now: context.occurred_at,
    };
    state
        .customers
        .execute(customer.id, command, &context)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
