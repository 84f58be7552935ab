//! The `Worker` aggregate: a service worker's profile, skills, service area and standing.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalogue::ServiceCode;
use crate::values::{required_text, Actor, Sealed, ValueError};

/// The city and districts a worker serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceArea {
    pub city: String,
    pub districts: Vec<String>,
}

/// What a worker tells us about themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerProfile {
    /// A `PersonName`, sealed under the worker's own key.
    pub name: Sealed,
    /// Sealed under the worker's own key.
    pub phone: Sealed,
    pub years_of_experience: u8,
    pub languages: Vec<String>,
    pub service_area: ServiceArea,
}

impl WorkerProfile {
    /// Normalises free text and refuses what cannot be right.
    pub fn validated(self) -> Result<Self, ValueError> {
        let city = required_text("城市 city", &self.service_area.city, 40)?;
        let mut districts = Vec::with_capacity(self.service_area.districts.len());
        for district in &self.service_area.districts {
            districts.push(required_text("区县 district", district, 40)?);
        }
        if self.years_of_experience > 60 {
            return Err(ValueError::TooLong {
                field: "从业年限 years of experience",
                max: 60,
            });
        }
        Ok(WorkerProfile {
            service_area: ServiceArea { city, districts },
            ..self
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WorkerCommand {
    Register {
        worker_id: Uuid,
        profile: WorkerProfile,
        skills: Vec<ServiceCode>,
        now: DateTime<Utc>,
    },
    UpdateProfile {
        profile: WorkerProfile,
        now: DateTime<Utc>,
    },
    SetSkills {
        skills: Vec<ServiceCode>,
        now: DateTime<Utc>,
    },
    GoOnline {
        now: DateTime<Utc>,
    },
    GoOffline {
        now: DateTime<Utc>,
    },
    Suspend {
        by: Actor,
        reason: String,
        now: DateTime<Utc>,
    },
    Reinstate {
        by: Actor,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerEvent {
    WorkerRegistered {
        worker_id: Uuid,
        profile: WorkerProfile,
        skills: Vec<ServiceCode>,
        registered_at: DateTime<Utc>,
    },
    WorkerProfileUpdated {
        profile: WorkerProfile,
        updated_at: DateTime<Utc>,
    },
    WorkerSkillsSet {
        skills: Vec<ServiceCode>,
        set_at: DateTime<Utc>,
    },
    WorkerWentOnline {
        at: DateTime<Utc>,
    },
    WorkerWentOffline {
        at: DateTime<Utc>,
    },
    WorkerSuspended {
        by: Actor,
        reason: String,
        at: DateTime<Utc>,
    },
    WorkerReinstated {
        by: Actor,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for WorkerEvent {
    fn event_type(&self) -> String {
        let name = match self {
            WorkerEvent::WorkerRegistered { .. } => "WorkerRegistered",
            WorkerEvent::WorkerProfileUpdated { .. } => "WorkerProfileUpdated",
            WorkerEvent::WorkerSkillsSet { .. } => "WorkerSkillsSet",
            WorkerEvent::WorkerWentOnline { .. } => "WorkerWentOnline",
            WorkerEvent::WorkerWentOffline { .. } => "WorkerWentOffline",
            WorkerEvent::WorkerSuspended { .. } => "WorkerSuspended",
            WorkerEvent::WorkerReinstated { .. } => "WorkerReinstated",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkerError {
    #[error("服务人员不存在 / no such worker")]
    NotFound,
    #[error("服务人员已注册 / the worker is already registered")]
    AlreadyRegistered,
    #[error("服务人员已停用 / the worker is suspended")]
    Suspended,
    #[error("服务人员未停用 / the worker is not suspended")]
    NotSuspended,
    #[error("至少需要一项技能 / at least one skill is required")]
    NoSkills,
    #[error("请填写原因 / a reason is required")]
    ReasonRequired,
    #[error("{0}")]
    Invalid(#[from] ValueError),
}

/// The state a worker's events fold into.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    pub registered: bool,
    pub suspended: bool,
    pub online: bool,
    pub skills: Vec<ServiceCode>,
}

impl Worker {
    /// The facts an order assignment is judged on.
    pub fn facts(&self, worker_id: Uuid) -> crate::order::WorkerFacts {
        crate::order::WorkerFacts {
            worker_id,
            registered: self.registered,
            active: self.registered && !self.suspended,
            skills: self.skills.clone(),
        }
    }

    fn decide(&self, command: WorkerCommand) -> Result<Vec<WorkerEvent>, WorkerError> {
        if let WorkerCommand::Register {
            worker_id,
            profile,
            skills,
            now,
        } = command
        {
            if self.registered {
                return Err(WorkerError::AlreadyRegistered);
            }
            let skills = distinct_skills(skills)?;
            return Ok(vec![WorkerEvent::WorkerRegistered {
                worker_id,
                profile: profile.validated()?,
                skills,
                registered_at: now,
            }]);
        }
        if !self.registered {
            return Err(WorkerError::NotFound);
        }
        match command {
            WorkerCommand::Register { .. } => Err(WorkerError::AlreadyRegistered),
            WorkerCommand::UpdateProfile { profile, now } => {
                Ok(vec![WorkerEvent::WorkerProfileUpdated {
                    profile: profile.validated()?,
                    updated_at: now,
                }])
            }
            WorkerCommand::SetSkills { skills, now } => Ok(vec![WorkerEvent::WorkerSkillsSet {
                skills: distinct_skills(skills)?,
                set_at: now,
            }]),
            WorkerCommand::GoOnline { now } => {
                if self.suspended {
                    return Err(WorkerError::Suspended);
                }
                // Going online twice is harmless and records nothing.
                Ok(if self.online {
                    vec![]
                } else {
                    vec![WorkerEvent::WorkerWentOnline { at: now }]
                })
            }
            WorkerCommand::GoOffline { now } => Ok(if self.online {
                vec![WorkerEvent::WorkerWentOffline { at: now }]
            } else {
                vec![]
            }),
            WorkerCommand::Suspend { by, reason, now } => {
                if self.suspended {
                    return Err(WorkerError::Suspended);
                }
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(WorkerError::ReasonRequired);
                }
                Ok(vec![WorkerEvent::WorkerSuspended {
                    by,
                    reason: reason.to_owned(),
                    at: now,
                }])
            }
            WorkerCommand::Reinstate { by, now } => {
                if !self.suspended {
                    return Err(WorkerError::NotSuspended);
                }
                Ok(vec![WorkerEvent::WorkerReinstated { by, at: now }])
            }
        }
    }
}

fn distinct_skills(mut skills: Vec<ServiceCode>) -> Result<Vec<ServiceCode>, WorkerError> {
    skills.sort_by_key(|skill| skill.as_str());
    skills.dedup();
    if skills.is_empty() {
        return Err(WorkerError::NoSkills);
    }
    Ok(skills)
}

impl Aggregate for Worker {
    const TYPE: &'static str = "worker";
    type Command = WorkerCommand;
    type Event = WorkerEvent;
    type Error = WorkerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            WorkerEvent::WorkerRegistered { skills, .. } => {
                self.registered = true;
                self.skills = skills;
            }
            WorkerEvent::WorkerProfileUpdated { .. } => {}
            WorkerEvent::WorkerSkillsSet { skills, .. } => self.skills = skills,
            WorkerEvent::WorkerWentOnline { .. } => self.online = true,
            WorkerEvent::WorkerWentOffline { .. } => self.online = false,
            WorkerEvent::WorkerSuspended { .. } => {
                self.suspended = true;
                self.online = false;
            }
            WorkerEvent::WorkerReinstated { .. } => self.suspended = false,
        }
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
