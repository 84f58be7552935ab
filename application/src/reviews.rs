//! The review window and the default review recorded when a customer gives none in time.

use chrono::{DateTime, Utc};
use domain::order::OrderCommand;
use uuid::Uuid;

use crate::commands::CommandContext;
use crate::services::Services;

/// Records the default review of every completed order whose window has closed. Returns how
/// many were recorded; does nothing when defaults are off.
pub async fn record_defaults(services: &Services, now: DateTime<Utc>) -> anyhow::Result<usize> {
    if !services.reviews.default_positive {
        return Ok(0);
    }
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT order_id FROM read_orders
          WHERE status = 'completed' AND finished_at < $1 AND disputed_at IS NULL
          ORDER BY finished_at LIMIT 500",
    )
    .bind(now - services.reviews.window)
    .fetch_all(&services.pool)
    .await?;
    let context = CommandContext {
        occurred_at: now,
        ..CommandContext::system()
    };
    let mut recorded = 0;
    for order_id in due {
        let command = OrderCommand::DefaultReview {
            window: services.reviews.window,
            now,
        };
        match services
            .orders
            .execute_deciding_again(order_id, command, &context)
            .await
        {
            Ok(_) => recorded += 1,
            // Reviewed or disputed a moment ago: nothing to do.
            Err(cqrs_es::AggregateError::UserError(_)) => {}
            Err(error) => anyhow::bail!("recording the default review of {order_id}: {error}"),
        }
    }
    Ok(recorded)
}
