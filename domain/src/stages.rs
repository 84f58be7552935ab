//! The vocabulary dispatch and orders share: the stages an order goes through on its way to a
//! worker, and the score an assignment keeps to say how it was chosen. Orders record both;
//! `dispatch` decides them. Kept apart so that `order` needs nothing of `dispatch`, which
//! needs `worker`, which needs `order`.

use serde::{Deserialize, Serialize};

/// How a dispatch stage hands an order to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchStage {
    /// The customer chose the worker, who must confirm in time.
    Named,
    /// Offered to every eligible worker; the first valid accept wins (抢单).
    Grab,
    /// Matched by the dispatcher's optimal rounds (派单).
    Auto,
    /// Waiting for an admin to dispatch by hand.
    Admin,
}

impl DispatchStage {
    pub const ALL: [DispatchStage; 4] = [
        DispatchStage::Named,
        DispatchStage::Grab,
        DispatchStage::Auto,
        DispatchStage::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        self.labels().0
    }

    pub fn parse(raw: &str) -> Option<DispatchStage> {
        Self::ALL.into_iter().find(|stage| stage.as_str() == raw)
    }

    /// Wire name, Chinese, English.
    pub fn labels(self) -> (&'static str, &'static str, &'static str) {
        match self {
            DispatchStage::Named => ("named", "指定服务人员确认中", "awaiting the named worker"),
            DispatchStage::Grab => ("grab", "抢单中", "open for grabbing"),
            DispatchStage::Auto => ("auto", "系统派单中", "automatic dispatch"),
            DispatchStage::Admin => ("admin", "人工派单中", "waiting for an admin"),
        }
    }
}

/// What a pairing costs and why: kept with the assignment so anyone can see how it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignmentScore {
    pub travel_minutes: i64,
    pub travel_cost: i64,
    pub rating: Option<f64>,
    pub rating_cost: i64,
    pub jobs_that_day: u32,
    pub load_cost: i64,
    pub recent_earnings_fen: i64,
    pub earnings_cost: i64,
    pub previous_worker: bool,
    pub preference_cost: i64,
    /// The sum: lower is better.
    pub total: i64,
    /// How many workers were eligible for the order in that round.
    pub eligible_workers: u32,
    /// `optimal` or `greedy`.
    pub method: String,
}
