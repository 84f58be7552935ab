//! The `CommissionSchedule` aggregate: the platform's commission by service and worker level,
//! as the admins set it.
//!
//! One stream holds every change, so the audit trail shows who changed which rate, from what,
//! and why. A rate applies to orders placed from the moment it is set: an order keeps the rate
//! in force when it was booked, so a later change never alters a deal already made. Where no
//! admin has set a rate, [`crate::payment::default_commission_bp`] applies.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalogue::ServiceCode;
use crate::message::{Explain, Text};
use crate::onboarding::Level;
use crate::payment::default_commission_bp;
use crate::values::Actor;

/// The one schedule's stream id.
pub const SCHEDULE_ID: Uuid = Uuid::from_u128(0x616e_6a69_615f_636f_6d6d_6973_7369_6f6e);

/// The highest commission an admin may set: half of the price.
pub const MAX_BP: u32 = 5_000;

#[derive(Debug, Clone, PartialEq)]
pub enum CommissionCommand {
    SetRate {
        service: ServiceCode,
        level: Level,
        basis_points: u32,
        reason: String,
        by: Actor,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommissionEvent {
    CommissionRateSet {
        service: ServiceCode,
        level: Level,
        basis_points: u32,
        previous: u32,
        reason: String,
        set_by: Actor,
        set_at: DateTime<Utc>,
    },
}

impl DomainEvent for CommissionEvent {
    fn event_type(&self) -> String {
        match self {
            CommissionEvent::CommissionRateSet { .. } => "CommissionRateSet".to_owned(),
        }
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommissionError {
    OutOfRange,
    ReasonRequired,
}

impl Explain for CommissionError {
    fn text(&self) -> Text {
        match self {
            CommissionError::OutOfRange => {
                Text::new("commission.out-of-range").with("MAX_BP", MAX_BP)
            }
            CommissionError::ReasonRequired => Text::new("commission.reason-required"),
        }
    }
}

crate::message::explained!(CommissionError);

/// One rate in force from a moment on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateChange {
    pub from: DateTime<Utc>,
    pub basis_points: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommissionSchedule {
    /// Each service and level's changes (keyed `service/level`), oldest first.
    changes: BTreeMap<String, Vec<RateChange>>,
}

fn key(service: ServiceCode, level: Level) -> String {
    format!("{}/{}", service.as_str(), level.as_str())
}

impl CommissionSchedule {
    /// The rate for an order of `service` by a worker of `level`, booked at `booked_at`.
    pub fn rate_at(&self, service: ServiceCode, level: Level, booked_at: DateTime<Utc>) -> u32 {
        self.changes
            .get(&key(service, level))
            .and_then(|changes| changes.iter().rev().find(|change| change.from <= booked_at))
            .map(|change| change.basis_points)
            .unwrap_or_else(|| default_commission_bp(service, level))
    }

    /// The rate in force now (for new orders).
    pub fn current(&self, service: ServiceCode, level: Level) -> u32 {
        self.changes
            .get(&key(service, level))
            .and_then(|changes| changes.last())
            .map(|change| change.basis_points)
            .unwrap_or_else(|| default_commission_bp(service, level))
    }

    /// Whether an admin has ever set this rate.
    pub fn is_set(&self, service: ServiceCode, level: Level) -> bool {
        self.changes.contains_key(&key(service, level))
    }

    pub fn decide(
        &self,
        command: CommissionCommand,
    ) -> Result<Vec<CommissionEvent>, CommissionError> {
        match command {
            CommissionCommand::SetRate {
                service,
                level,
                basis_points,
                reason,
                by,
                now,
            } => {
                if basis_points > MAX_BP {
                    return Err(CommissionError::OutOfRange);
                }
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(CommissionError::ReasonRequired);
                }
                let previous = self.current(service, level);
                if previous == basis_points && self.is_set(service, level) {
                    return Ok(vec![]);
                }
                Ok(vec![CommissionEvent::CommissionRateSet {
                    service,
                    level,
                    basis_points,
                    previous,
                    reason: reason.to_owned(),
                    set_by: by,
                    set_at: now,
                }])
            }
        }
    }
}

crate::aggregate!(
    CommissionSchedule,
    "commission_schedule",
    CommissionCommand,
    CommissionEvent,
    CommissionError
);

impl CommissionSchedule {
    /// Folds one event into the state: the aggregate's `apply`.
    fn fold(&mut self, event: CommissionEvent) {
        match event {
            CommissionEvent::CommissionRateSet {
                service,
                level,
                basis_points,
                set_at,
                ..
            } => self
                .changes
                .entry(key(service, level))
                .or_default()
                .push(RateChange {
                    from: set_at,
                    basis_points,
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::Aggregate;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, hour, 0, 0)
            .single()
            .expect("time")
    }

    fn set(
        schedule: &mut CommissionSchedule,
        bp: u32,
        hour: u32,
    ) -> Result<usize, CommissionError> {
        let events = schedule.decide(CommissionCommand::SetRate {
            service: ServiceCode::DailyCleaning,
            level: Level::Gold,
            basis_points: bp,
            reason: "双十一活动 / promotion".into(),
            by: Actor::system(),
            now: at(hour),
        })?;
        let count = events.len();
        for event in events {
            schedule.apply(event);
        }
        Ok(count)
    }

    #[test]
    fn an_order_keeps_the_rate_in_force_when_it_was_booked() {
        let mut schedule = CommissionSchedule::default();
        let default = default_commission_bp(ServiceCode::DailyCleaning, Level::Gold);
        assert_eq!(
            schedule.rate_at(ServiceCode::DailyCleaning, Level::Gold, at(9)),
            default
        );
        assert_eq!(set(&mut schedule, 1_000, 10), Ok(1));
        assert_eq!(set(&mut schedule, 800, 12), Ok(1));
        assert_eq!(
            schedule.rate_at(ServiceCode::DailyCleaning, Level::Gold, at(9)),
            default
        );
        assert_eq!(
            schedule.rate_at(ServiceCode::DailyCleaning, Level::Gold, at(11)),
            1_000
        );
        assert_eq!(
            schedule.rate_at(ServiceCode::DailyCleaning, Level::Gold, at(13)),
            800
        );
        assert_eq!(
            schedule.current(ServiceCode::DailyCleaning, Level::Gold),
            800
        );
        // Other services and levels keep their defaults.
        assert_eq!(
            schedule.current(ServiceCode::DailyCleaning, Level::Silver),
            default_commission_bp(ServiceCode::DailyCleaning, Level::Silver)
        );
        // Setting the same rate again records nothing.
        assert_eq!(set(&mut schedule, 800, 14), Ok(0));
    }

    #[test]
    fn a_rate_must_be_in_range_and_explained() {
        let mut schedule = CommissionSchedule::default();
        assert_eq!(
            set(&mut schedule, MAX_BP + 1, 9),
            Err(CommissionError::OutOfRange)
        );
        let refused = schedule.decide(CommissionCommand::SetRate {
            service: ServiceCode::Nanny,
            level: Level::Standard,
            basis_points: 1_000,
            reason: "  ".into(),
            by: Actor::system(),
            now: at(9),
        });
        assert_eq!(refused, Err(CommissionError::ReasonRequired));
        assert_eq!(
            set(&mut schedule, 0, 9),
            Ok(1),
            "a zero commission is allowed"
        );
    }
}
