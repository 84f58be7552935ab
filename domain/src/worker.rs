//! The `Worker` aggregate: a service worker's profile, skills, service area and standing.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::availability::{
    local_instant, travel_minutes, Availability, DayOverride, Leave, TimeRange, WeeklyPlan,
};
use crate::catalogue::ServiceCode;
use crate::message::{Explain, Text};
use crate::onboarding::{
    required_certificates, BackgroundCheckOutcome, Certificate, Level, ReviewDecision, ReviewStatus,
};
use crate::values::{required_text, Actor, GeoPoint, Sealed, ValueError};

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
    /// Where the profile photo is stored (an object-store key); the photo itself is not here.
    #[serde(default)]
    pub photo_ref: Option<String>,
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
        let photo_ref = match self.photo_ref.as_deref().map(str::trim) {
            Some("") | None => None,
            Some(reference) => Some(required_text("照片 photo reference", reference, 200)?),
        };
        Ok(WorkerProfile {
            photo_ref,
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
        reason: String,
        now: DateTime<Utc>,
    },
    /// The identity card number, checked (`IdCardNumber`) and sealed under the worker's key.
    SubmitIdentity {
        id_number: Sealed,
        now: DateTime<Utc>,
    },
    RecordBackgroundCheck {
        outcome: BackgroundCheckOutcome,
        now: DateTime<Utc>,
    },
    AddCertificate {
        certificate: Certificate,
        now: DateTime<Utc>,
    },
    /// From the expiry job: marks a certificate expired once `today` is past its expiry date.
    ExpireCertificate {
        certificate_id: Uuid,
        today: NaiveDate,
        now: DateTime<Utc>,
    },
    Review {
        by: Actor,
        decision: ReviewDecision,
        now: DateTime<Utc>,
    },
    CertifySkill {
        by: Actor,
        service: ServiceCode,
        now: DateTime<Utc>,
    },
    SetLevel {
        by: Actor,
        level: Level,
        now: DateTime<Utc>,
    },
    SetGroups {
        by: Actor,
        groups: Vec<String>,
        now: DateTime<Utc>,
    },
    /// Reserves the worker's time for an order. Refused if it overlaps another booking: a
    /// worker's own stream is where double booking is decided, so concurrent attempts from any
    /// number of processes meet at its optimistic concurrency check.
    Book {
        order_id: Uuid,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        /// Where the job is, for the travel time to and from the worker's other jobs. Only its
        /// cell (`GeoPoint::coarse`) is kept: a worker's calendar does not hold customers' homes.
        location: Option<GeoPoint>,
        now: DateTime<Utc>,
    },
    SetWeeklyPlan {
        plan: WeeklyPlan,
        now: DateTime<Utc>,
    },
    /// Hours for one date that differ from the plan; no ranges means a day off.
    SetDayHours {
        date: NaiveDate,
        ranges: Vec<TimeRange>,
        now: DateTime<Utc>,
    },
    TakeLeave {
        leave_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
        reason: String,
        now: DateTime<Utc>,
    },
    /// Where the worker starts from and how far they will travel for a job: the point, and the
    /// same point sealed under the worker's key (`SealedPoint::plaintext`). The log keeps the
    /// sealed point and its cell; reach and travel are reckoned from the cell.
    SetServiceBase {
        base: ServiceBase,
        sealed: Sealed,
        now: DateTime<Utc>,
    },
    /// Moves an order's booked time (the order was rescheduled or its place changed): checked
    /// like a new booking against every other job.
    MoveBooking {
        order_id: Uuid,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        location: Option<GeoPoint>,
        now: DateTime<Utc>,
    },
    /// Gives the time back (declined, cancelled, reassigned, or an assignment that failed).
    Release {
        order_id: Uuid,
        reason: String,
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
        #[serde(default)]
        reason: String,
        at: DateTime<Utc>,
    },
    IdentitySubmitted {
        id_number: Sealed,
        at: DateTime<Utc>,
        /// The name the identity (and its background check) was given under: the profile's
        /// name at that moment, sealed. Later profile edits do not change it (absent in events
        /// written before it was kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        legal_name: Option<Sealed>,
    },
    BackgroundChecked {
        outcome: BackgroundCheckOutcome,
        at: DateTime<Utc>,
    },
    CertificateAdded {
        certificate: Certificate,
        at: DateTime<Utc>,
    },
    CertificateExpired {
        certificate_id: Uuid,
        at: DateTime<Utc>,
    },
    WorkerApproved {
        by: Actor,
        level: Level,
        at: DateTime<Utc>,
    },
    WorkerRejected {
        by: Actor,
        reason: String,
        at: DateTime<Utc>,
    },
    DocumentsRequested {
        by: Actor,
        what: String,
        at: DateTime<Utc>,
    },
    SkillCertified {
        by: Actor,
        service: ServiceCode,
        at: DateTime<Utc>,
    },
    LevelSet {
        by: Actor,
        level: Level,
        at: DateTime<Utc>,
    },
    GroupsSet {
        by: Actor,
        groups: Vec<String>,
        at: DateTime<Utc>,
    },
    /// Version 2.0: `location` is the cell of the job's address (1.0 kept the point).
    WorkerBooked {
        order_id: Uuid,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        #[serde(default)]
        location: Option<GeoPoint>,
        at: DateTime<Utc>,
    },
    WeeklyPlanSet {
        plan: WeeklyPlan,
        at: DateTime<Utc>,
    },
    DayHoursSet {
        date: NaiveDate,
        ranges: Vec<TimeRange>,
        at: DateTime<Utc>,
    },
    LeaveTaken {
        leave_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
        reason: String,
        at: DateTime<Utc>,
    },
    /// Version 2.0: `base.location` is the base's cell and `sealed` the point itself, sealed
    /// under the worker's key (1.0 kept the point in clear in `base.location`).
    ServiceBaseSet {
        base: ServiceBase,
        sealed: Sealed,
        at: DateTime<Utc>,
    },
    BookingReleased {
        order_id: Uuid,
        reason: String,
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
            WorkerEvent::IdentitySubmitted { .. } => "IdentitySubmitted",
            WorkerEvent::BackgroundChecked { .. } => "BackgroundChecked",
            WorkerEvent::CertificateAdded { .. } => "CertificateAdded",
            WorkerEvent::CertificateExpired { .. } => "CertificateExpired",
            WorkerEvent::WorkerApproved { .. } => "WorkerApproved",
            WorkerEvent::WorkerRejected { .. } => "WorkerRejected",
            WorkerEvent::DocumentsRequested { .. } => "DocumentsRequested",
            WorkerEvent::SkillCertified { .. } => "SkillCertified",
            WorkerEvent::LevelSet { .. } => "LevelSet",
            WorkerEvent::GroupsSet { .. } => "GroupsSet",
            WorkerEvent::WorkerBooked { .. } => "WorkerBooked",
            WorkerEvent::BookingReleased { .. } => "BookingReleased",
            WorkerEvent::ServiceBaseSet { .. } => "ServiceBaseSet",
            WorkerEvent::WeeklyPlanSet { .. } => "WeeklyPlanSet",
            WorkerEvent::DayHoursSet { .. } => "DayHoursSet",
            WorkerEvent::LeaveTaken { .. } => "LeaveTaken",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        crate::upcast::current_version(&self.event_type()).to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WorkerError {
    NotFound,
    AlreadyRegistered,
    Suspended,
    NotSuspended,
    NoSkills,
    ReasonRequired,
    IdentityMissing,
    BackgroundCheckMissing,
    BackgroundCheckHit,
    SkillNotDeclared,
    CertificateExists,
    NoSuchCertificate,
    BadGroups {
        max: usize,
    },
    /// Says when the worker is busy (travel included, in Beijing time), never whose order it is.
    Overlap {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    EmptyWindow,
    Unavailable,
    Invalid(ValueError),
}

impl Explain for WorkerError {
    fn text(&self) -> Text {
        match self {
            WorkerError::NotFound => Text::new("worker.not-found"),
            WorkerError::AlreadyRegistered => Text::new("worker.already-registered"),
            WorkerError::Suspended => Text::new("worker.suspended"),
            WorkerError::NotSuspended => Text::new("worker.not-suspended"),
            WorkerError::NoSkills => Text::new("worker.no-skills"),
            WorkerError::ReasonRequired => Text::new("worker.reason-required"),
            WorkerError::IdentityMissing => Text::new("worker.identity-missing"),
            WorkerError::BackgroundCheckMissing => Text::new("worker.background-check-missing"),
            WorkerError::BackgroundCheckHit => Text::new("worker.background-check-hit"),
            WorkerError::SkillNotDeclared => Text::new("worker.skill-not-declared"),
            WorkerError::CertificateExists => Text::new("worker.certificate-exists"),
            WorkerError::NoSuchCertificate => Text::new("worker.no-such-certificate"),
            WorkerError::BadGroups { max } => Text::new("worker.bad-groups").with("max", max),
            WorkerError::Overlap { start, end } => Text::new("worker.overlap")
                .with("start", beijing_time(*start))
                .with("end", beijing_time(*end)),
            WorkerError::EmptyWindow => Text::new("worker.empty-window"),
            WorkerError::Unavailable => Text::new("worker.unavailable"),
            WorkerError::Invalid(inner) => inner.text(),
        }
    }
}

crate::message::explained!(WorkerError);

impl From<ValueError> for WorkerError {
    fn from(error: ValueError) -> Self {
        WorkerError::Invalid(error)
    }
}

/// Where a worker sets off from (home, or a branch office) and the furthest they will go.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServiceBase {
    pub location: GeoPoint,
    /// Straight-line kilometres from the base, 1 to 100.
    pub radius_km: u32,
}

impl ServiceBase {
    pub const MAX_RADIUS_KM: u32 = 100;

    pub fn validated(self) -> Result<Self, ValueError> {
        if !(1..=Self::MAX_RADIUS_KM).contains(&self.radius_km) {
            return Err(ValueError::OutOfRange {
                field: "服务半径 service radius (km)",
                min: 1,
                max: i64::from(Self::MAX_RADIUS_KM),
            });
        }
        Ok(self)
    }

    /// Whether a job at `location` is within the radius.
    pub fn reaches(&self, location: GeoPoint) -> bool {
        self.location.distance_m(location) <= f64::from(self.radius_km) * 1000.0
    }
}

/// One reserved stretch of a worker's time, `[start, end)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookedTime {
    pub order_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub location: Option<GeoPoint>,
    /// When the time was reserved.
    #[serde(default)]
    pub booked_at: Option<DateTime<Utc>>,
}

impl BookedTime {
    /// Whether a job at `[start, end)` in `location` would clash with this one, counting the
    /// travel time between the two places on either side.
    pub fn clashes(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        location: Option<GeoPoint>,
    ) -> bool {
        let travel = chrono::Duration::minutes(travel_minutes(self.location, location));
        start < self.end + travel && self.start < end + travel
    }
}

/// The most groups a worker can be in.
pub use crate::values::MAX_GROUPS;

/// The state a worker's events fold into.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    pub registered: bool,
    pub suspended: bool,
    pub online: bool,
    pub skills: Vec<ServiceCode>,
    pub identity_submitted: bool,
    pub background: Option<BackgroundCheckOutcome>,
    pub review: ReviewStatus,
    pub level: Level,
    pub certified_skills: Vec<ServiceCode>,
    /// Declared certificates, with whether the expiry job has marked them expired.
    pub certificates: Vec<(Certificate, bool)>,
    pub groups: Vec<String>,
    pub bookings: Vec<BookedTime>,
    pub availability: Availability,
    /// The base with its cell for a location (reach and travel are reckoned between cells).
    #[serde(default)]
    pub base: Option<ServiceBase>,
    /// The base's point itself, sealed under the worker's key.
    #[serde(default)]
    pub base_sealed: Option<Sealed>,
    /// The profile's name as it stands (sealed).
    #[serde(default)]
    pub profile_name: Option<Sealed>,
    /// The name of the submitted identity (sealed): what a payout account must be held by.
    #[serde(default)]
    pub legal_name: Option<Sealed>,
}

impl Worker {
    /// The facts an order assignment is judged on, on `today` (a business day in
    /// Asia/Shanghai): which services the worker may be dispatched for right now. A service
    /// counts when it is a declared skill, certified by an admin, and every certificate it
    /// requires is in date and not marked expired.
    pub fn facts(&self, worker_id: Uuid, today: NaiveDate) -> crate::order::WorkerFacts {
        let dispatchable = self
            .skills
            .iter()
            .copied()
            .filter(|service| self.certified_skills.contains(service))
            .filter(|service| {
                required_certificates(*service).iter().all(|kind| {
                    self.certificates.iter().any(|(certificate, expired)| {
                        certificate.kind == *kind && !expired && certificate.valid_on(today)
                    })
                })
            })
            .collect();
        crate::order::WorkerFacts {
            worker_id,
            registered: self.registered,
            active: self.registered && !self.suspended,
            approved: self.review == ReviewStatus::Approved,
            skills: dispatchable,
        }
    }

    /// The start times on a local date at which a job of `duration` at `location` fits the
    /// worker's hours and leaves every booking its travel time: the slot listing.
    pub fn free_slots(
        &self,
        date: NaiveDate,
        duration: chrono::Duration,
        step_minutes: u32,
        location: Option<GeoPoint>,
        not_before: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let step = chrono::Duration::minutes(i64::from(step_minutes.max(5)));
        let day_start = local_instant(date, chrono::NaiveTime::MIN);
        let day_end = day_start + chrono::Duration::days(1);
        let mut slots = Vec::new();
        let mut start = day_start;
        while start < day_end {
            let end = start + duration;
            if start > not_before && self.is_free(start, end, location) {
                slots.push(start);
            }
            start += step;
        }
        slots
    }

    /// Whether a job at `[start, end)` in `location` fits the worker's hours and leaves every
    /// booking its travel time.
    pub fn is_free(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        location: Option<GeoPoint>,
    ) -> bool {
        self.availability.covers(start, end)
            && !self
                .bookings
                .iter()
                .any(|booked| booked.clashes(start, end, location))
    }

    /// Where the worker will be just before `start`: the place of their last job that ends
    /// before it, else their base.
    pub fn position_before(&self, start: DateTime<Utc>) -> Option<GeoPoint> {
        self.bookings
            .iter()
            .filter(|booked| booked.end <= start && booked.location.is_some())
            .max_by_key(|booked| booked.end)
            .and_then(|booked| booked.location)
            .or(self.base.map(|base| base.location))
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
            WorkerCommand::Reinstate { by, reason, now } => {
                if !self.suspended {
                    return Err(WorkerError::NotSuspended);
                }
                Ok(vec![WorkerEvent::WorkerReinstated {
                    by,
                    reason: required_text("原因 reason", &reason, 500)?,
                    at: now,
                }])
            }
            WorkerCommand::SubmitIdentity { id_number, now } => {
                Ok(vec![WorkerEvent::IdentitySubmitted {
                    id_number,
                    at: now,
                    legal_name: self.profile_name.clone(),
                }])
            }
            WorkerCommand::RecordBackgroundCheck { outcome, now } => {
                if !self.identity_submitted {
                    return Err(WorkerError::IdentityMissing);
                }
                Ok(vec![WorkerEvent::BackgroundChecked { outcome, at: now }])
            }
            WorkerCommand::AddCertificate { certificate, now } => {
                let duplicate = self.certificates.iter().any(|(existing, _)| {
                    existing.certificate_id == certificate.certificate_id
                        || (existing.kind == certificate.kind
                            && existing.number == certificate.number)
                });
                if duplicate {
                    return Err(WorkerError::CertificateExists);
                }
                Ok(vec![WorkerEvent::CertificateAdded {
                    certificate,
                    at: now,
                }])
            }
            WorkerCommand::ExpireCertificate {
                certificate_id,
                today,
                now,
            } => {
                let (certificate, expired) = self
                    .certificates
                    .iter()
                    .find(|(certificate, _)| certificate.certificate_id == certificate_id)
                    .ok_or(WorkerError::NoSuchCertificate)?;
                // Only once, and only when it really is past its date: the job may run twice.
                Ok(if !expired && certificate.expires_on < today {
                    vec![WorkerEvent::CertificateExpired {
                        certificate_id,
                        at: now,
                    }]
                } else {
                    vec![]
                })
            }
            WorkerCommand::Review { by, decision, now } => match decision {
                ReviewDecision::Approve { level } => {
                    if !self.identity_submitted {
                        return Err(WorkerError::IdentityMissing);
                    }
                    match &self.background {
                        None => Err(WorkerError::BackgroundCheckMissing),
                        Some(outcome) if !outcome.clear() => Err(WorkerError::BackgroundCheckHit),
                        Some(_) => Ok(vec![WorkerEvent::WorkerApproved { by, level, at: now }]),
                    }
                }
                ReviewDecision::Reject { reason } => Ok(vec![WorkerEvent::WorkerRejected {
                    by,
                    reason: required_text("原因 reason", &reason, 500)?,
                    at: now,
                }]),
                ReviewDecision::RequestDocuments { what } => {
                    Ok(vec![WorkerEvent::DocumentsRequested {
                        by,
                        what: required_text("所需材料 documents", &what, 500)?,
                        at: now,
                    }])
                }
            },
            WorkerCommand::CertifySkill { by, service, now } => {
                if !self.skills.contains(&service) {
                    return Err(WorkerError::SkillNotDeclared);
                }
                Ok(if self.certified_skills.contains(&service) {
                    vec![]
                } else {
                    vec![WorkerEvent::SkillCertified {
                        by,
                        service,
                        at: now,
                    }]
                })
            }
            WorkerCommand::SetLevel { by, level, now } => {
                Ok(vec![WorkerEvent::LevelSet { by, level, at: now }])
            }
            WorkerCommand::Book {
                order_id,
                start,
                end,
                location,
                now,
            } => {
                let location = location.map(GeoPoint::coarse);
                if end <= start {
                    return Err(WorkerError::EmptyWindow);
                }
                if self
                    .bookings
                    .iter()
                    .any(|booked| booked.order_id == order_id)
                {
                    // Booking the same order again is a retry, not a new reservation.
                    return Ok(vec![]);
                }
                if !self.availability.covers(start, end) {
                    return Err(WorkerError::Unavailable);
                }
                if let Some(clash) = self
                    .bookings
                    .iter()
                    .find(|booked| booked.clashes(start, end, location))
                {
                    return Err(WorkerError::Overlap {
                        start: clash.start,
                        end: clash.end,
                    });
                }
                Ok(vec![WorkerEvent::WorkerBooked {
                    order_id,
                    start,
                    end,
                    location,
                    at: now,
                }])
            }
            WorkerCommand::MoveBooking {
                order_id,
                start,
                end,
                location,
                now,
            } => {
                let location = location.map(GeoPoint::coarse);
                if end <= start {
                    return Err(WorkerError::EmptyWindow);
                }
                let Some(current) = self
                    .bookings
                    .iter()
                    .find(|booked| booked.order_id == order_id)
                else {
                    return Err(WorkerError::NotFound);
                };
                if current.start == start && current.end == end && current.location == location {
                    return Ok(vec![]);
                }
                if !self.availability.covers(start, end) {
                    return Err(WorkerError::Unavailable);
                }
                if let Some(clash) = self.bookings.iter().find(|booked| {
                    booked.order_id != order_id && booked.clashes(start, end, location)
                }) {
                    return Err(WorkerError::Overlap {
                        start: clash.start,
                        end: clash.end,
                    });
                }
                Ok(vec![
                    WorkerEvent::BookingReleased {
                        order_id,
                        reason: "订单改期或改址 / the order was rescheduled or moved".into(),
                        at: now,
                    },
                    WorkerEvent::WorkerBooked {
                        order_id,
                        start,
                        end,
                        location,
                        at: now,
                    },
                ])
            }
            WorkerCommand::SetWeeklyPlan { plan, now } => Ok(vec![WorkerEvent::WeeklyPlanSet {
                plan: plan.validated()?,
                at: now,
            }]),
            WorkerCommand::SetDayHours { date, ranges, now } => {
                Ok(vec![WorkerEvent::DayHoursSet {
                    date,
                    ranges: crate::availability::validated_ranges(ranges)?,
                    at: now,
                }])
            }
            WorkerCommand::TakeLeave {
                leave_id,
                from,
                to,
                reason,
                now,
            } => {
                if to < from {
                    return Err(WorkerError::Invalid(ValueError::BadDates));
                }
                Ok(vec![WorkerEvent::LeaveTaken {
                    leave_id,
                    from,
                    to,
                    reason: required_text("原因 reason", &reason, 200)?,
                    at: now,
                }])
            }
            WorkerCommand::SetServiceBase { base, sealed, now } => {
                let base = base.validated()?;
                Ok(vec![WorkerEvent::ServiceBaseSet {
                    base: ServiceBase {
                        location: base.location.coarse(),
                        ..base
                    },
                    sealed,
                    at: now,
                }])
            }
            WorkerCommand::Release {
                order_id,
                reason,
                now,
            } => Ok(
                if self
                    .bookings
                    .iter()
                    .any(|booked| booked.order_id == order_id)
                {
                    vec![WorkerEvent::BookingReleased {
                        order_id,
                        reason,
                        at: now,
                    }]
                } else {
                    vec![]
                },
            ),
            WorkerCommand::SetGroups { by, groups, now } => Ok(vec![WorkerEvent::GroupsSet {
                by,
                groups: crate::values::group_names(&groups)
                    .ok_or(WorkerError::BadGroups { max: MAX_GROUPS })?,
                at: now,
            }]),
        }
    }
}

fn beijing_time(at: DateTime<Utc>) -> String {
    let shanghai = chrono::FixedOffset::east_opt(8 * 3600).expect("a valid offset");
    at.with_timezone(&shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn distinct_skills(mut skills: Vec<ServiceCode>) -> Result<Vec<ServiceCode>, WorkerError> {
    skills.sort_by_key(|skill| skill.as_str());
    skills.dedup();
    if skills.is_empty() {
        return Err(WorkerError::NoSkills);
    }
    Ok(skills)
}

crate::aggregate!(Worker, "worker", WorkerCommand, WorkerEvent, WorkerError);

impl Worker {
    /// Folds one event into the state: the aggregate's `apply`.
    fn fold(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::WorkerRegistered {
                skills, profile, ..
            } => {
                self.registered = true;
                self.skills = skills;
                self.profile_name = Some(profile.name);
            }
            WorkerEvent::WorkerProfileUpdated { profile, .. } => {
                self.profile_name = Some(profile.name);
            }
            WorkerEvent::WorkerSkillsSet { skills, .. } => self.skills = skills,
            WorkerEvent::WorkerWentOnline { .. } => self.online = true,
            WorkerEvent::WorkerWentOffline { .. } => self.online = false,
            WorkerEvent::WorkerSuspended { .. } => {
                self.suspended = true;
                self.online = false;
            }
            WorkerEvent::WorkerReinstated { .. } => self.suspended = false,
            WorkerEvent::IdentitySubmitted { legal_name, .. } => {
                self.identity_submitted = true;
                // Events from before the name was kept: the profile's name at that point of
                // the stream is the name the identity was given under.
                self.legal_name = legal_name.or_else(|| self.profile_name.clone());
                // A new identity needs a new check.
                self.background = None;
            }
            WorkerEvent::BackgroundChecked { outcome, .. } => self.background = Some(outcome),
            WorkerEvent::CertificateAdded { certificate, .. } => {
                self.certificates.push((certificate, false))
            }
            WorkerEvent::CertificateExpired { certificate_id, .. } => {
                for (certificate, expired) in &mut self.certificates {
                    if certificate.certificate_id == certificate_id {
                        *expired = true;
                    }
                }
            }
            WorkerEvent::WorkerApproved { level, .. } => {
                self.review = ReviewStatus::Approved;
                self.level = level;
            }
            WorkerEvent::WorkerRejected { reason, .. } => {
                self.review = ReviewStatus::Rejected { reason }
            }
            WorkerEvent::DocumentsRequested { what, .. } => {
                self.review = ReviewStatus::DocumentsRequested { what }
            }
            WorkerEvent::SkillCertified { service, .. } => self.certified_skills.push(service),
            WorkerEvent::LevelSet { level, .. } => self.level = level,
            WorkerEvent::GroupsSet { groups, .. } => self.groups = groups,
            WorkerEvent::WorkerBooked {
                order_id,
                start,
                end,
                location,
                at,
            } => self.bookings.push(BookedTime {
                order_id,
                start,
                end,
                location,
                booked_at: Some(at),
            }),
            WorkerEvent::WeeklyPlanSet { plan, .. } => self.availability.plan = Some(plan),
            WorkerEvent::DayHoursSet { date, ranges, .. } => {
                self.availability
                    .overrides
                    .retain(|special| special.date != date);
                self.availability
                    .overrides
                    .push(DayOverride { date, ranges });
            }
            WorkerEvent::LeaveTaken {
                leave_id, from, to, ..
            } => self.availability.leaves.push(Leave { leave_id, from, to }),
            WorkerEvent::ServiceBaseSet { base, sealed, .. } => {
                self.base = Some(base);
                self.base_sealed = Some(sealed);
            }
            WorkerEvent::BookingReleased { order_id, .. } => {
                self.bookings.retain(|booked| booked.order_id != order_id)
            }
        }
    }
}

#[cfg(test)]
mod tests;
