//! The platform's use cases, below any protocol: the command bus and its context, the process
//! managers and sagas that drive several aggregates, the timed jobs' bodies, the ports to the
//! world outside (payment providers, the bank, background checks, e-mail, SMS) and the typed settings they read.
//! It knows no HTTP and reads no environment: the `command-api` crate maps its errors to
//! problems, and the composition root builds its `Services` from adapters and settings.

pub mod audit;
pub mod background;
pub mod commands;
pub mod dispatch;
pub mod erasure;
pub mod error;
pub mod fresh;
pub mod identity;
pub mod jobs;
pub mod money;
pub mod notifications;
pub mod notify;
pub mod orders;
pub mod payments;
pub mod ports;
pub mod random;
pub mod reminders;
pub mod reviews;
pub mod secrets;
pub mod services;
pub mod settings;
pub mod stats;
pub mod telemetry;
pub mod withdrawals;

pub use error::{Error, Result};
pub use services::Services;
