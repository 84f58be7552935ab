//! Paying for orders: the `PaymentProvider` port, the providers by name, and the flows that
//! follow a payment: a notification (or a query's answer) captures it and marks the order paid,
//! a cancellation refunds it, a refund is paid back and retried, the statements are reconciled.
//!
//! A notification is verified (signature, age, amount, currency, payment) before anything
//! changes; one that fails any check changes nothing and is logged for the admins. The
//! providers themselves (Alipay, WeChat Pay, UnionPay, the sandbox) are in the `adapters` crate.

use domain::order::{Order, OrderCommand, OrderStatus};
use domain::payment::{Payment, PaymentCommand, PaymentStatus};
use domain::Fen;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::commands::CommandContext;
use crate::error::Error;
use crate::services::Services;

mod capture;
mod reconcile;
mod refunds;

pub use self::capture::*;
pub use self::reconcile::*;
pub use self::refunds::*;

use crate::ports::{Headers, Notification};
