//! What a command on an order answers: the order's id, status and version.

use application::commands::{CommandContext, Committed};
use domain::order::{Order, OrderCommand, OrderStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The outcome of a command on an order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderAck {
    pub order_id: Uuid,
    pub status: String,
    /// The order's version (the sequence number of its last event).
    pub version: usize,
}

pub(crate) fn ack(order_id: Uuid, committed: Committed<Order>) -> axum::Json<OrderAck> {
    axum::Json(OrderAck {
        order_id,
        status: committed.state.status.as_str().to_owned(),
        version: committed.version,
    })
}

/// Runs one command on an order and answers what it committed.
pub(crate) async fn run(
    state: &AppState,
    order_id: Uuid,
    command: OrderCommand,
    context: &CommandContext,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let committed = state.orders.execute(order_id, command, context).await?;
    Ok(ack(order_id, committed))
}

/// The order as it stands, as a command's answer (a retried command that changed nothing).
pub(crate) async fn current_ack(
    state: &AppState,
    order_id: Uuid,
) -> Result<axum::Json<OrderAck>, ApiError> {
    let (order, version): (Order, usize) = state.orders.load(order_id).await?;
    if order.status == OrderStatus::New {
        return Err(ApiError::not_found("订单", "order"));
    }
    Ok(axum::Json(OrderAck {
        order_id,
        status: order.status.as_str().to_owned(),
        version,
    }))
}
