//! The application's ports made real, each built from its settings: e-mail over SMTP, SMS
//! through an HTTP gateway, the development outbox that stands in for both, the background-check
//! provider over HTTP, and the sandbox bank.

pub mod background;
pub mod bank;
pub mod notify;
