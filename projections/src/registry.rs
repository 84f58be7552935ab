//! The registry of read models: which projections the platform runs, in order. The projector
//! runs any `Projection`; only this module knows the concrete ones, so they and the projector
//! do not import each other.

use std::sync::Arc;

use crate::projector::Projection;

/// The names of every projection, in the order they run.
pub const PROJECTION_NAMES: [&str; 7] = [
    "orders",
    "workers",
    "customers",
    "dispatch",
    "reminders",
    "ledger",
    "reviews",
];

/// Every projection the platform runs. They open sealed personal data through the vault.
pub fn all_projections(vault: &vault::Vault) -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(crate::orders::OrdersProjection {
            vault: vault.clone(),
        }),
        Arc::new(crate::workers::WorkersProjection {
            vault: vault.clone(),
        }),
        Arc::new(crate::customers::CustomersProjection {
            vault: vault.clone(),
        }),
        Arc::new(crate::dispatch::DispatchProjection),
        Arc::new(crate::reminders::RemindersProjection),
        Arc::new(crate::ledger::LedgerProjection),
        Arc::new(crate::reviews::ReviewsProjection),
    ]
}

pub fn projection_by_name(name: &str, vault: &vault::Vault) -> Option<Arc<dyn Projection>> {
    all_projections(vault)
        .into_iter()
        .find(|projection| projection.name() == name)
}
