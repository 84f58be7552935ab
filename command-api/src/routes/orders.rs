//! Placing, following and moving orders through their life.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::order::{Booking, Order, OrderCommand, OrderStatus};
use domain::{
    Actor, Address, CoordinateSystem, Fen, GeoPoint, PhoneNumber, PlainAddress, Role, SealedPoint,
    ServiceCode,
};
use projections::orders::{self as order_views, Direction, OrderFilter, OrderRow, SortKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::extract::{AppJson, AppPath, AppQuery};
use crate::routes::params::ReasonBody;
use crate::state::AppState;
use crate::text::{Line, Paragraph};
use application::commands::CommandContext;

use crate::routes::acks::{ack, current_ack, run, OrderAck};
use domain::message::Text;
use utoipa_axum::{router::OpenApiRouter, routes};

mod lifecycle;
mod queries;

pub use self::lifecycle::*;
pub use self::queries::*;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place, list))
        .routes(routes!(show))
        .routes(routes!(cancel))
        .routes(routes!(dispute))
        .routes(routes!(resolve_dispute))
        .routes(routes!(review, crate::routes::reviews::of_order))
        .routes(routes!(cancellation))
        .routes(routes!(record_payment))
        .routes(routes!(open_dispatch))
        .routes(routes!(assign))
        .routes(routes!(accept))
        .routes(routes!(decline))
        .routes(routes!(depart))
        .routes(routes!(start))
        .routes(routes!(finish))
        .routes(routes!(counts))
        .routes(routes!(stats))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationBody {
    pub latitude: f64,
    pub longitude: f64,
    /// `wgs84`, `gcj02` or `bd09`.
    #[schema(value_type = crate::schemas::Datum)]
    pub system: CoordinateSystem,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    pub city: Line<40>,
    pub district: Line<40>,
    pub detail: Line<200>,
    pub contact_name: Line<40>,
    pub contact_phone: Line<20>,
    pub location: Option<LocationBody>,
}

impl AddressBody {
    /// Checks the address, then seals its personal parts under `owner`'s key.
    pub(crate) async fn parse_and_seal(
        self,
        vault: &vault::Vault,
        owner: Uuid,
    ) -> Result<Address, ApiError> {
        let location = self
            .location
            .map(|point| GeoPoint::new(point.latitude, point.longitude, point.system))
            .transpose()?;
        let plain = PlainAddress::parse(
            &self.city,
            &self.district,
            &self.detail,
            &self.contact_name,
            PhoneNumber::parse(&self.contact_phone)?,
            location,
        )?;
        let point = plain.location.as_ref().map(SealedPoint::plaintext);
        let mut texts = vec![
            plain.detail.as_str(),
            plain.contact_name.as_str(),
            plain.contact_phone.as_str(),
        ];
        texts.extend(point.as_deref());
        let mut sealed = vault
            .seal_all(owner, &texts)
            .await
            .map_err(crate::error::vault_error)?
            .into_iter();
        let mut next = || sealed.next().expect("every value was sealed");
        Ok(Address {
            city: plain.city,
            district: plain.district,
            detail: next(),
            contact_name: next(),
            contact_phone: next(),
            location: plain
                .location
                .map(|location| SealedPoint::new(&location, next())),
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderBody {
    /// A catalogue service code, e.g. `daily_cleaning`.
    #[schema(value_type = crate::schemas::Service, example = "daily_cleaning")]
    pub service: ServiceCode,
    /// Unit price in fen, within the service's range.
    pub unit_price: i64,
    /// Number of units (hours, visits or 26-day terms).
    pub quantity: u32,
    /// UTC start time.
    pub scheduled_start: DateTime<Utc>,
    pub duration_minutes: u32,
    /// Where the service takes place; or give `address_id` instead.
    pub address: Option<AddressBody>,
    /// One of your saved addresses (`/api/v1/me/addresses`), instead of `address`.
    pub address_id: Option<Uuid>,
    pub note: Option<Paragraph<500>>,
    /// A worker the customer chooses. Their time is held while the order awaits payment, and
    /// after payment they must confirm in time or the order goes to the next dispatch stage.
    pub worker_id: Option<Uuid>,
}

/// Place an order (customers).
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = PlaceOrderBody, security(("bearer" = ["customer"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
    responses((status = 201, body = OrderAck), (status = 422, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)))]
pub async fn place(
    State(state): State<AppState>,
    RequestContext(context): RequestContext,
    AppJson(body): AppJson<PlaceOrderBody>,
) -> Result<Response, ApiError> {
    let actor = context.actor.ok_or(ApiError::Unauthenticated)?;
    // The customer's own stream decides whether they may order (held in memory while fresh).
    let customer = state.customer(actor.id).await?;
    let (customer, _) = &*customer;
    let note = body
        .note
        .map(|note| note.trim().chars().take(500).collect::<String>())
        .filter(|note| !note.is_empty());
    // Free text to the worker often says who is at home and when: sealed like the address.
    let note = match note {
        Some(note) => Some(
            state
                .vault
                .seal(actor.id, &note)
                .await
                .map_err(crate::error::vault_error)?,
        ),
        None => None,
    };
    let booking = Booking {
        customer_id: actor.id,
        service: body.service,
        unit_price: Fen::new(body.unit_price)?,
        quantity: body.quantity,
        scheduled_start: body.scheduled_start,
        duration_minutes: body.duration_minutes,
        address: match (body.address, body.address_id) {
            (Some(address), None) => address.parse_and_seal(&state.vault, actor.id).await?,
            (None, Some(address_id)) => {
                customer.saved_address(address_id).cloned().ok_or_else(|| {
                    ApiError::InvalidField {
                        field: "address_id".into(),
                        detail: Text::new("orders.not-one-saved-addresses"),
                    }
                })?
            }
            _ => {
                return Err(ApiError::InvalidField {
                    field: "address".into(),
                    detail: Text::new("orders.give-either-address-address-id"),
                })
            }
        },
        note,
        preferred_worker: body.worker_id,
    };
    let order_id = context.new_aggregate_id("order");
    let committed = application::orders::place(
        &state,
        customer,
        order_id,
        booking,
        body.worker_id,
        &context,
    )
    .await?;
    let location = format!("/api/v1/orders/{order_id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        ack(order_id, committed),
    )
        .into_response())
}

macro_rules! worker_step {
    ($name:ident, $path:literal, $variant:ident, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, tag = "orders", security(("bearer" = ["worker"])),
            params(("order_id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Retry key")),
            responses((status = 200, body = OrderAck), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
        pub async fn $name(
            State(state): State<AppState>,
            RequestContext(context): RequestContext,
            AppPath(order_id): AppPath<Uuid>,
        ) -> Result<axum::Json<OrderAck>, ApiError> {
            let worker = context.actor.ok_or(ApiError::Unauthenticated)?;
            let command = OrderCommand::$variant { worker_id: worker.id, now: context.occurred_at };
            run(&state, order_id, command, &context).await
        }
    };
}

worker_step!(
    accept,
    "/api/v1/orders/{order_id}/accept",
    Accept,
    "Accept an order assigned to you (workers)."
);
worker_step!(
    depart,
    "/api/v1/orders/{order_id}/depart",
    Depart,
    "Set off to the customer (workers)."
);
worker_step!(
    start,
    "/api/v1/orders/{order_id}/start",
    StartService,
    "Start the service (workers)."
);
