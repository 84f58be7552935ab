//! Integration tests over real HTTP against a real PostgreSQL started by the suite itself.

mod access;
mod audit;
mod availability;
mod bad_input;
mod concurrency;
mod corrections;
mod dispatch;
mod erasure;
mod idempotency;
mod interviews;
mod lifecycle;
mod live;
mod oauth;
mod onboarding;
mod operations;
mod payments;
mod profile;
mod projections;
mod providers;
mod reviews;
mod search;
mod sessions;
mod signaling;
mod store;
mod users;
mod verification;
