//! The `Interview` aggregate: a customer interviews a worker on video before hiring them for
//! live-in or childcare work.
//!
//! requested → (the worker accepts) scheduled, or declined; either side may propose another
//! time, which the other accepts; either may cancel before it ends. At the time both join a
//! call (the platform records that they joined, never the media). Afterwards the customer
//! records the outcome: hire, which leads straight to booking that worker, or not.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalogue::ServiceCode;
use crate::message::{Explain, Text};
use crate::values::{Actor, Role};

/// How long an interview lasts.
pub const LENGTH_MINUTES: i64 = 30;

/// Participants may join this long before the start.
pub const EARLY_JOIN_MINUTES: i64 = 10;

/// The services hired after an interview.
pub fn needs_interview(service: ServiceCode) -> bool {
    matches!(
        service,
        ServiceCode::Nanny | ServiceCode::MaternityNurse | ServiceCode::InfantCarer
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterviewStatus {
    #[default]
    New,
    /// Waiting for the worker.
    Requested,
    /// One side proposed another time; waiting for the other.
    Proposed,
    Scheduled,
    Declined,
    Cancelled,
    /// The customer recorded the outcome.
    Concluded,
}

impl InterviewStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InterviewStatus::New => "new",
            InterviewStatus::Requested => "requested",
            InterviewStatus::Proposed => "proposed",
            InterviewStatus::Scheduled => "scheduled",
            InterviewStatus::Declined => "declined",
            InterviewStatus::Cancelled => "cancelled",
            InterviewStatus::Concluded => "concluded",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Hire,
    NotHire,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InterviewCommand {
    Request {
        interview_id: Uuid,
        customer_id: Uuid,
        worker_id: Uuid,
        service: ServiceCode,
        start: DateTime<Utc>,
        note: String,
        now: DateTime<Utc>,
    },
    Accept {
        by: Actor,
        now: DateTime<Utc>,
    },
    Decline {
        by: Actor,
        reason: String,
        now: DateTime<Utc>,
    },
    ProposeTime {
        by: Actor,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    Cancel {
        by: Actor,
        reason: String,
        now: DateTime<Utc>,
    },
    Join {
        by: Actor,
        now: DateTime<Utc>,
    },
    RecordOutcome {
        by: Actor,
        outcome: Outcome,
        note: String,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InterviewEvent {
    InterviewRequested {
        interview_id: Uuid,
        customer_id: Uuid,
        worker_id: Uuid,
        service: ServiceCode,
        start: DateTime<Utc>,
        note: String,
        requested_at: DateTime<Utc>,
    },
    InterviewAccepted {
        by: Actor,
        start: DateTime<Utc>,
        accepted_at: DateTime<Utc>,
    },
    InterviewDeclined {
        by: Actor,
        reason: String,
        declined_at: DateTime<Utc>,
    },
    InterviewTimeProposed {
        by: Actor,
        start: DateTime<Utc>,
        proposed_at: DateTime<Utc>,
    },
    InterviewCancelled {
        by: Actor,
        reason: String,
        cancelled_at: DateTime<Utc>,
    },
    ParticipantJoined {
        by: Actor,
        joined_at: DateTime<Utc>,
    },
    InterviewConcluded {
        outcome: Outcome,
        note: String,
        concluded_at: DateTime<Utc>,
    },
}

impl DomainEvent for InterviewEvent {
    fn event_type(&self) -> String {
        match self {
            InterviewEvent::InterviewRequested { .. } => "InterviewRequested",
            InterviewEvent::InterviewAccepted { .. } => "InterviewAccepted",
            InterviewEvent::InterviewDeclined { .. } => "InterviewDeclined",
            InterviewEvent::InterviewTimeProposed { .. } => "InterviewTimeProposed",
            InterviewEvent::InterviewCancelled { .. } => "InterviewCancelled",
            InterviewEvent::ParticipantJoined { .. } => "ParticipantJoined",
            InterviewEvent::InterviewConcluded { .. } => "InterviewConcluded",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum InterviewError {
    NotFound,
    AlreadyExists,
    IllegalState(&'static str),
    NotParticipant,
    NoInterviewForService,
    StartInPast,
    OwnProposal,
    NotTheTime,
    TooEarlyForOutcome,
    ReasonRequired,
}

impl Explain for InterviewError {
    fn text(&self) -> Text {
        match self {
            InterviewError::NotFound => Text::new("interview.not-found"),
            InterviewError::AlreadyExists => Text::new("interview.already-exists"),
            InterviewError::IllegalState(v0) => Text::new("interview.illegal-state").with("0", v0),
            InterviewError::NotParticipant => Text::new("interview.not-participant"),
            InterviewError::NoInterviewForService => {
                Text::new("interview.no-interview-for-service")
            }
            InterviewError::StartInPast => Text::new("interview.start-in-past"),
            InterviewError::OwnProposal => Text::new("interview.own-proposal"),
            InterviewError::NotTheTime => {
                Text::new("interview.not-the-time").with("EARLY_JOIN_MINUTES", EARLY_JOIN_MINUTES)
            }
            InterviewError::TooEarlyForOutcome => Text::new("interview.too-early-for-outcome"),
            InterviewError::ReasonRequired => Text::new("interview.reason-required"),
        }
    }
}

crate::message::explained!(InterviewError);

/// The state an interview's events fold into.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interview {
    pub status: InterviewStatus,
    pub customer_id: Option<Uuid>,
    pub worker_id: Option<Uuid>,
    pub service: Option<ServiceCode>,
    pub start: Option<DateTime<Utc>>,
    /// Who proposed the time now on the table.
    pub proposed_by: Option<Uuid>,
    pub joined: Vec<Uuid>,
    pub outcome: Option<Outcome>,
}

impl Interview {
    pub fn end(&self) -> Option<DateTime<Utc>> {
        self.start
            .map(|start| start + Duration::minutes(LENGTH_MINUTES))
    }

    /// Whether `person` is the interview's customer or worker.
    pub fn participant(&self, person: Uuid) -> bool {
        self.customer_id == Some(person) || self.worker_id == Some(person)
    }

    /// Whether a participant may be in the call at `now`.
    pub fn open_at(&self, now: DateTime<Utc>) -> bool {
        match (self.status, self.start, self.end()) {
            (InterviewStatus::Scheduled, Some(start), Some(end)) => {
                now >= start - Duration::minutes(EARLY_JOIN_MINUTES) && now <= end
            }
            _ => false,
        }
    }

    fn require_participant(&self, actor: Actor) -> Result<(), InterviewError> {
        if self.participant(actor.id) || matches!(actor.role, Role::Admin | Role::System) {
            Ok(())
        } else {
            Err(InterviewError::NotParticipant)
        }
    }

    pub fn decide(&self, command: InterviewCommand) -> Result<Vec<InterviewEvent>, InterviewError> {
        use InterviewStatus as S;
        let state = self.status;
        if state == S::New && !matches!(command, InterviewCommand::Request { .. }) {
            return Err(InterviewError::NotFound);
        }
        match (state, command) {
            (
                S::New,
                InterviewCommand::Request {
                    interview_id,
                    customer_id,
                    worker_id,
                    service,
                    start,
                    note,
                    now,
                },
            ) => {
                if !needs_interview(service) {
                    return Err(InterviewError::NoInterviewForService);
                }
                if start <= now {
                    return Err(InterviewError::StartInPast);
                }
                Ok(vec![InterviewEvent::InterviewRequested {
                    interview_id,
                    customer_id,
                    worker_id,
                    service,
                    start,
                    note: note.trim().chars().take(500).collect(),
                    requested_at: now,
                }])
            }
            (_, InterviewCommand::Request { .. }) => Err(InterviewError::AlreadyExists),
            (S::Requested | S::Proposed, InterviewCommand::Accept { by, now }) => {
                self.require_participant(by)?;
                // The worker accepts a request; either side accepts the other's proposal.
                let answering = match state {
                    S::Requested => self.worker_id == Some(by.id),
                    _ => self.proposed_by != Some(by.id),
                };
                if !answering {
                    return Err(if state == S::Proposed {
                        InterviewError::OwnProposal
                    } else {
                        InterviewError::NotParticipant
                    });
                }
                let start = self.start.ok_or(InterviewError::NotFound)?;
                if start <= now {
                    return Err(InterviewError::StartInPast);
                }
                Ok(vec![InterviewEvent::InterviewAccepted {
                    by,
                    start,
                    accepted_at: now,
                }])
            }
            (S::Requested | S::Proposed, InterviewCommand::Decline { by, reason, now }) => {
                if self.worker_id != Some(by.id) {
                    return Err(InterviewError::NotParticipant);
                }
                Ok(vec![InterviewEvent::InterviewDeclined {
                    by,
                    reason: required(&reason)?,
                    declined_at: now,
                }])
            }
            (
                S::Requested | S::Proposed | S::Scheduled,
                InterviewCommand::ProposeTime { by, start, now },
            ) => {
                if !self.participant(by.id) {
                    return Err(InterviewError::NotParticipant);
                }
                if start <= now {
                    return Err(InterviewError::StartInPast);
                }
                Ok(vec![InterviewEvent::InterviewTimeProposed {
                    by,
                    start,
                    proposed_at: now,
                }])
            }
            (
                S::Requested | S::Proposed | S::Scheduled,
                InterviewCommand::Cancel { by, reason, now },
            ) => {
                self.require_participant(by)?;
                if self.end().is_some_and(|end| now > end) {
                    return Err(InterviewError::IllegalState("over"));
                }
                Ok(vec![InterviewEvent::InterviewCancelled {
                    by,
                    reason: required(&reason)?,
                    cancelled_at: now,
                }])
            }
            (S::Scheduled, InterviewCommand::Join { by, now }) => {
                if !self.participant(by.id) {
                    return Err(InterviewError::NotParticipant);
                }
                if !self.open_at(now) {
                    return Err(InterviewError::NotTheTime);
                }
                if self.joined.contains(&by.id) {
                    // Joining again after a dropped connection records nothing new.
                    return Ok(vec![]);
                }
                Ok(vec![InterviewEvent::ParticipantJoined {
                    by,
                    joined_at: now,
                }])
            }
            (
                S::Scheduled,
                InterviewCommand::RecordOutcome {
                    by,
                    outcome,
                    note,
                    now,
                },
            ) => {
                if self.customer_id != Some(by.id) {
                    return Err(InterviewError::NotParticipant);
                }
                if self.start.is_some_and(|start| now < start) {
                    return Err(InterviewError::TooEarlyForOutcome);
                }
                Ok(vec![InterviewEvent::InterviewConcluded {
                    outcome,
                    note: note.trim().chars().take(500).collect(),
                    concluded_at: now,
                }])
            }
            (state, _) => Err(InterviewError::IllegalState(state.as_str())),
        }
    }
}

fn required(reason: &str) -> Result<String, InterviewError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(InterviewError::ReasonRequired);
    }
    Ok(reason.chars().take(500).collect())
}

crate::aggregate!(
    Interview,
    "interview",
    InterviewCommand,
    InterviewEvent,
    InterviewError
);

impl Interview {
    /// Folds one event into the state: the aggregate's `apply`.
    fn fold(&mut self, event: InterviewEvent) {
        match event {
            InterviewEvent::InterviewRequested {
                customer_id,
                worker_id,
                service,
                start,
                ..
            } => {
                self.status = InterviewStatus::Requested;
                self.customer_id = Some(customer_id);
                self.worker_id = Some(worker_id);
                self.service = Some(service);
                self.start = Some(start);
                self.proposed_by = Some(customer_id);
            }
            InterviewEvent::InterviewAccepted { start, .. } => {
                self.status = InterviewStatus::Scheduled;
                self.start = Some(start);
                self.proposed_by = None;
            }
            InterviewEvent::InterviewDeclined { .. } => self.status = InterviewStatus::Declined,
            InterviewEvent::InterviewTimeProposed { by, start, .. } => {
                self.status = InterviewStatus::Proposed;
                self.start = Some(start);
                self.proposed_by = Some(by.id);
            }
            InterviewEvent::InterviewCancelled { .. } => self.status = InterviewStatus::Cancelled,
            InterviewEvent::ParticipantJoined { by, .. } => self.joined.push(by.id),
            InterviewEvent::InterviewConcluded { outcome, .. } => {
                self.status = InterviewStatus::Concluded;
                self.outcome = Some(outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests;
