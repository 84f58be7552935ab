//! The pure domain of Anjia: the service catalogue, the `Order`, `Worker` and `Customer`
//! aggregates, and the value types they are made of.
//!
//! Nothing here does I/O. Everything an aggregate needs from outside arrives in its command
//! (for example the facts about a worker that an assignment depends on), so every decision can
//! be tested with cqrs-es's `TestFramework` alone.

/// The cqrs-es `Aggregate` of a type whose `decide` turns a command into events or a refusal
/// and whose `fold` applies one event: every aggregate here is one.
macro_rules! aggregate {
    ($aggregate:ty, $type:literal, $command:ty, $event:ty, $error:ty) => {
        impl cqrs_es::Aggregate for $aggregate {
            const TYPE: &'static str = $type;
            type Command = $command;
            type Event = $event;
            type Error = $error;
            type Services = ();

            async fn handle(
                &mut self,
                command: Self::Command,
                _services: &Self::Services,
                sink: &cqrs_es::event_sink::EventSink<Self>,
            ) -> Result<(), Self::Error> {
                for event in self.decide(command)? {
                    sink.write(event, self).await;
                }
                Ok(())
            }

            fn apply(&mut self, event: Self::Event) {
                self.fold(event)
            }
        }
    };
}
pub(crate) use aggregate;

pub mod activity;
pub mod availability;
pub mod catalogue;
pub mod commission;
pub mod customer;
pub mod dispatch;
pub mod geo;
pub mod interview;
pub mod ledger;
pub mod message;
pub mod onboarding;
pub mod order;
pub mod payment;
pub mod review;
pub mod stages;
pub mod upcast;
pub mod values;
pub mod wallet;
pub mod worker;

#[cfg(test)]
mod money_tests;

pub use catalogue::{PricingUnit, ServiceCode, ServiceSpec};
pub use values::{
    Actor, Address, CoordinateSystem, Fen, GeoPoint, PersonName, PhoneNumber, PlainAddress, Role,
    Sealed, SealedPoint, ValueError,
};

/// The version every event type is written at today. A future version comes with an upcaster.
pub const EVENT_VERSION: &str = "1.0";
