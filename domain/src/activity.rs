//! The `Presence` aggregate: one person's sign-ins and app opens on one Beijing day.
//!
//! Activity is what the analytics warehouse counts as a person being active (daily, weekly and
//! monthly actives, retention). It is written to the event log like everything else, so the
//! warehouse follows it by checkpoint. A stream per person and day keeps every stream short:
//! recording an open never loads a person's whole history.
//!
//! An app that comes back to the foreground within [`RESUME_WINDOW`] of its last recorded open
//! on the same platform is a resume, not a new open, and records nothing.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::message::{Explain, Text};
use crate::values::Role;

/// Opens closer together than this on one platform count once.
pub const RESUME_WINDOW: Duration = Duration::minutes(10);

/// The longest app version accepted.
pub const MAX_VERSION: usize = 32;

/// The stream of `user`'s activity on the Beijing day `day`.
pub fn presence_id(user: Uuid, day: NaiveDate) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("anjia:presence:{user}:{day}").as_bytes(),
    )
}

/// How someone signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInMethod {
    Password,
    Code,
    Oauth,
}

/// Where the app runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Ios,
    Android,
    Web,
    MiniProgram,
}

impl Platform {
    pub fn parse(text: &str) -> Option<Platform> {
        match text {
            "ios" => Some(Platform::Ios),
            "android" => Some(Platform::Android),
            "web" => Some(Platform::Web),
            "mini_program" => Some(Platform::MiniProgram),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Web => "web",
            Platform::MiniProgram => "mini_program",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PresenceCommand {
    RecordSignIn {
        user_id: Uuid,
        role: Role,
        method: SignInMethod,
        now: DateTime<Utc>,
    },
    RecordAppOpen {
        user_id: Uuid,
        role: Role,
        platform: Platform,
        app_version: Option<String>,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PresenceEvent {
    SignedIn {
        user_id: Uuid,
        role: Role,
        method: SignInMethod,
        at: DateTime<Utc>,
    },
    AppOpened {
        user_id: Uuid,
        role: Role,
        platform: Platform,
        app_version: Option<String>,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for PresenceEvent {
    fn event_type(&self) -> String {
        match self {
            PresenceEvent::SignedIn { .. } => "SignedIn".to_owned(),
            PresenceEvent::AppOpened { .. } => "AppOpened".to_owned(),
        }
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PresenceError {
    SomeoneElse,
    BadVersion,
}

impl Explain for PresenceError {
    fn text(&self) -> Text {
        match self {
            PresenceError::SomeoneElse => Text::new("presence.someone-else"),
            PresenceError::BadVersion => {
                Text::new("presence.bad-version").with("MAX_VERSION", MAX_VERSION)
            }
        }
    }
}

crate::message::explained!(PresenceError);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub user_id: Option<Uuid>,
    pub sign_ins: u32,
    /// The last recorded open on each platform.
    pub last_opens: Vec<(Platform, DateTime<Utc>)>,
}

impl Presence {
    fn check_owner(&self, user_id: Uuid) -> Result<(), PresenceError> {
        match self.user_id {
            Some(owner) if owner != user_id => Err(PresenceError::SomeoneElse),
            _ => Ok(()),
        }
    }

    pub fn decide(&self, command: PresenceCommand) -> Result<Vec<PresenceEvent>, PresenceError> {
        match command {
            PresenceCommand::RecordSignIn {
                user_id,
                role,
                method,
                now,
            } => {
                self.check_owner(user_id)?;
                Ok(vec![PresenceEvent::SignedIn {
                    user_id,
                    role,
                    method,
                    at: now,
                }])
            }
            PresenceCommand::RecordAppOpen {
                user_id,
                role,
                platform,
                app_version,
                now,
            } => {
                self.check_owner(user_id)?;
                let app_version = match app_version.map(|version| version.trim().to_owned()) {
                    Some(version)
                        if version.is_empty()
                            || version.chars().count() > MAX_VERSION
                            || version.chars().any(char::is_control) =>
                    {
                        return Err(PresenceError::BadVersion)
                    }
                    version => version,
                };
                let resumed = self
                    .last_opens
                    .iter()
                    .any(|(seen, at)| *seen == platform && now >= *at && now - *at < RESUME_WINDOW);
                if resumed {
                    return Ok(vec![]);
                }
                Ok(vec![PresenceEvent::AppOpened {
                    user_id,
                    role,
                    platform,
                    app_version,
                    at: now,
                }])
            }
        }
    }
}

crate::aggregate!(
    Presence,
    "presence",
    PresenceCommand,
    PresenceEvent,
    PresenceError
);

impl Presence {
    /// Folds one event into the state: the aggregate's `apply`.
    fn fold(&mut self, event: PresenceEvent) {
        match event {
            PresenceEvent::SignedIn { user_id, .. } => {
                self.user_id = Some(user_id);
                self.sign_ins += 1;
            }
            PresenceEvent::AppOpened {
                user_id,
                platform,
                at,
                ..
            } => {
                self.user_id = Some(user_id);
                self.last_opens.retain(|(seen, _)| *seen != platform);
                self.last_opens.push((platform, at));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cqrs_es::Aggregate;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 2, minute, 0)
            .single()
            .expect("time")
    }

    fn open(presence: &mut Presence, user: Uuid, platform: Platform, minute: u32) -> usize {
        let events = presence
            .decide(PresenceCommand::RecordAppOpen {
                user_id: user,
                role: Role::Customer,
                platform,
                app_version: Some("3.2.1".into()),
                now: at(minute),
            })
            .expect("recorded");
        let count = events.len();
        for event in events {
            presence.apply(event);
        }
        count
    }

    #[test]
    fn an_open_within_ten_minutes_on_the_same_platform_is_a_resume() {
        let user = Uuid::from_u128(1);
        let mut presence = Presence::default();
        assert_eq!(open(&mut presence, user, Platform::Ios, 0), 1);
        assert_eq!(open(&mut presence, user, Platform::Ios, 9), 0);
        assert_eq!(open(&mut presence, user, Platform::Web, 9), 1);
        assert_eq!(open(&mut presence, user, Platform::Ios, 10), 1);
        assert_eq!(open(&mut presence, user, Platform::Ios, 19), 0);
    }

    #[test]
    fn a_day_belongs_to_one_person_and_versions_are_checked() {
        let mut presence = Presence::default();
        open(&mut presence, Uuid::from_u128(1), Platform::Android, 0);
        let other = presence.decide(PresenceCommand::RecordSignIn {
            user_id: Uuid::from_u128(2),
            role: Role::Worker,
            method: SignInMethod::Password,
            now: at(1),
        });
        assert_eq!(other, Err(PresenceError::SomeoneElse));
        for version in ["", "   ", "1.0\u{7}beta", &"9".repeat(33)] {
            let refused = presence.decide(PresenceCommand::RecordAppOpen {
                user_id: Uuid::from_u128(1),
                role: Role::Customer,
                platform: Platform::Web,
                app_version: Some(version.to_owned()),
                now: at(30),
            });
            assert_eq!(refused, Err(PresenceError::BadVersion), "{version:?}");
        }
    }
}
