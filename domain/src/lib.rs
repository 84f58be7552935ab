//! The pure domain of Anjia: the service catalogue, the `Order`, `Worker` and `Customer`
//! aggregates, and the value types they are made of.
//!
//! Nothing here does I/O. Everything an aggregate needs from outside arrives in its command
//! (for example the facts about a worker that an assignment depends on), so every decision can
//! be tested with cqrs-es's `TestFramework` alone.

pub mod activity;
pub mod availability;
pub mod catalogue;
pub mod commission;
pub mod customer;
pub mod dispatch;
pub mod geo;
pub mod interview;
pub mod ledger;
pub mod onboarding;
pub mod order;
pub mod payment;
pub mod review;
pub mod values;
pub mod wallet;
pub mod worker;

#[cfg(test)]
mod money_tests;

pub use catalogue::{PricingUnit, ServiceCode, ServiceSpec};
pub use values::{
    Actor, Address, CoordinateSystem, Fen, GeoPoint, PersonName, PhoneNumber, PlainAddress, Role,
    Sealed, ValueError,
};

/// The version every event type is written at today. A future version comes with an upcaster.
pub const EVENT_VERSION: &str = "1.0";
