//! The HTTP routes, one module per area. Each exposes `router()`.

pub mod accounts;
pub mod activity;
pub mod admin;
pub mod audit;
pub mod availability;
pub mod commission;
pub mod corrections;
pub mod dashboard;
pub mod dispatch;
pub mod health;
pub mod interviews;
pub mod live;
pub mod oauth;
pub mod onboarding;
pub mod orders;
pub mod payments;
pub mod profile;
pub mod reports;
pub mod reviews;
pub mod security;
pub mod sessions;
pub mod users;
pub mod verification;
pub mod wallet;
pub mod web;
pub mod workers;
