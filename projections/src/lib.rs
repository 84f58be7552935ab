//! Read models built by following the event log.
//!
//! A projector reads events in (transaction id, position) order, only from transactions older
//! than every transaction still running, so an event that commits late is never skipped. It
//! applies a batch and moves its checkpoint in one transaction, so a crash repeats nothing and
//! loses nothing; a process's live projectors share one read and one transaction per step
//! (`live`). Each projection lives in its own schema per generation and is read through
//! views in `public`; a rebuild fills a new generation beside the live one and swaps the views.

pub mod customers;
pub mod dispatch;
pub mod ledger;
pub mod live;
pub mod log;
pub mod orders;
pub mod personal;
pub mod projector;
pub mod registry;
pub mod reminders;
pub mod reviews;
pub mod search;
pub mod workers;

pub use live::{ProjectorStats, Projectors};
pub use log::StoredEvent;
pub use projector::{
    advisory_key, ensure_all, parked, rebuild, retry_parked, status, ParkedStream, Projection,
    ProjectionStatus, RebuildInProgress, RebuildReport, RetryReport,
};
pub use registry::{all_projections, projection_by_name, PROJECTION_NAMES};
