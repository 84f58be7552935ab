//! Given/when/then tests of the `Worker` aggregate.

use cqrs_es::Aggregate;
use std::collections::HashSet;

use chrono::{TimeDelta, TimeZone, Timelike};
use cqrs_es::test::TestFramework;

use super::*;
use crate::onboarding::CertificateKind;
use crate::values::Role;

type WorkerTester = TestFramework<Worker>;

const WORKER_ID: Uuid = Uuid::from_u128(0x0a01);
const ADMIN_ID: Uuid = Uuid::from_u128(0x0ad1);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0)
        .single()
        .expect("a valid instant")
}

fn later(minutes: i64) -> DateTime<Utc> {
    now() + TimeDelta::minutes(minutes)
}

fn admin() -> Actor {
    Actor {
        id: ADMIN_ID,
        role: Role::Admin,
    }
}

fn profile() -> WorkerProfile {
    WorkerProfile {
        name: Sealed::from_ciphertext(format!("v1.{}.name", Uuid::nil())),
        phone: Sealed::from_ciphertext(format!("v1.{}.phone", Uuid::nil())),
        years_of_experience: 8,
        languages: vec!["普通话".to_owned(), "上海话".to_owned()],
        service_area: ServiceArea {
            city: "上海市".to_owned(),
            districts: vec!["浦东新区".to_owned(), "徐汇区".to_owned()],
        },
        photo_ref: Some("photos/li.jpg".to_owned()),
    }
}

fn skills() -> Vec<ServiceCode> {
    vec![ServiceCode::DailyCleaning, ServiceCode::DeepCleaning]
}

// Commands ------------------------------------------------------------------------------------

fn register(profile: WorkerProfile, skills: Vec<ServiceCode>) -> WorkerCommand {
    WorkerCommand::Register {
        worker_id: WORKER_ID,
        profile,
        skills,
        now: now(),
    }
}

fn update_profile(profile: WorkerProfile) -> WorkerCommand {
    WorkerCommand::UpdateProfile {
        profile,
        now: later(10),
    }
}

fn set_skills(skills: Vec<ServiceCode>) -> WorkerCommand {
    WorkerCommand::SetSkills {
        skills,
        now: later(20),
    }
}

fn go_online() -> WorkerCommand {
    WorkerCommand::GoOnline { now: later(30) }
}

fn go_offline() -> WorkerCommand {
    WorkerCommand::GoOffline { now: later(40) }
}

fn suspend(reason: &str) -> WorkerCommand {
    WorkerCommand::Suspend {
        by: admin(),
        reason: reason.to_owned(),
        now: later(50),
    }
}

fn reinstate() -> WorkerCommand {
    WorkerCommand::Reinstate {
        by: admin(),
        reason: "申诉成立 / appeal upheld".to_owned(),
        now: later(60),
    }
}

// Events --------------------------------------------------------------------------------------

fn registered() -> WorkerEvent {
    WorkerEvent::WorkerRegistered {
        worker_id: WORKER_ID,
        profile: profile(),
        skills: skills(),
        registered_at: now(),
    }
}

fn profile_updated(profile: WorkerProfile) -> WorkerEvent {
    WorkerEvent::WorkerProfileUpdated {
        profile,
        updated_at: later(10),
    }
}

fn skills_set(skills: Vec<ServiceCode>) -> WorkerEvent {
    WorkerEvent::WorkerSkillsSet {
        skills,
        set_at: later(20),
    }
}

fn went_online() -> WorkerEvent {
    WorkerEvent::WorkerWentOnline { at: later(30) }
}

fn went_offline() -> WorkerEvent {
    WorkerEvent::WorkerWentOffline { at: later(40) }
}

fn suspended(reason: &str) -> WorkerEvent {
    WorkerEvent::WorkerSuspended {
        by: admin(),
        reason: reason.to_owned(),
        at: later(50),
    }
}

fn reinstated() -> WorkerEvent {
    WorkerEvent::WorkerReinstated {
        by: admin(),
        reason: "申诉成立 / appeal upheld".to_owned(),
        at: later(60),
    }
}

fn fold(events: impl IntoIterator<Item = WorkerEvent>) -> Worker {
    let mut worker = Worker::default();
    for event in events {
        worker.apply(event);
    }
    worker
}

fn unregistered() -> cqrs_es::test::AggregateTestExecutor<Worker> {
    WorkerTester::with(()).given_no_previous_events()
}

fn given(events: Vec<WorkerEvent>) -> cqrs_es::test::AggregateTestExecutor<Worker> {
    WorkerTester::with(()).given(events)
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

#[test]
fn a_new_worker_registers_with_a_profile_and_skills() {
    unregistered()
        .when(register(profile(), skills()))
        .then_expect_events(vec![registered()]);
}

#[test]
fn registering_twice_is_refused() {
    given(vec![registered()])
        .when(register(profile(), skills()))
        .then_expect_error(WorkerError::AlreadyRegistered);
}

#[test]
fn registering_again_while_suspended_is_still_refused() {
    given(vec![registered(), suspended("多次投诉")])
        .when(register(profile(), skills()))
        .then_expect_error(WorkerError::AlreadyRegistered);
}

#[test]
fn registering_without_skills_is_refused() {
    unregistered()
        .when(register(profile(), vec![]))
        .then_expect_error(WorkerError::NoSkills);
}

#[test]
fn duplicate_skills_are_recorded_once_in_a_stable_order() {
    let repeated = vec![
        ServiceCode::Nanny,
        ServiceCode::DailyCleaning,
        ServiceCode::Nanny,
        ServiceCode::HomeRepair,
        ServiceCode::DailyCleaning,
    ];
    unregistered()
        .when(register(profile(), repeated))
        .then_expect_events(vec![WorkerEvent::WorkerRegistered {
            worker_id: WORKER_ID,
            profile: profile(),
            skills: vec![
                ServiceCode::DailyCleaning,
                ServiceCode::HomeRepair,
                ServiceCode::Nanny,
            ],
            registered_at: now(),
        }]);
}

#[test]
fn the_profiles_free_text_is_trimmed_on_registration() {
    let untidy = WorkerProfile {
        service_area: ServiceArea {
            city: " 上海市".to_owned(),
            districts: vec!["浦东新区  ".to_owned(), "\t徐汇区".to_owned()],
        },
        ..profile()
    };
    unregistered()
        .when(register(untidy, skills()))
        .then_expect_events(vec![registered()]);
}

#[test]
fn a_profile_with_a_blank_city_or_district_is_refused() {
    let blank_city = WorkerProfile {
        service_area: ServiceArea {
            city: String::new(),
            ..profile().service_area
        },
        ..profile()
    };
    let blank_district = WorkerProfile {
        service_area: ServiceArea {
            districts: vec!["浦东新区".to_owned(), " ".to_owned()],
            ..profile().service_area
        },
        ..profile()
    };
    let cases = [(blank_city, "城市 city"), (blank_district, "区县 district")];
    for (profile, field) in cases {
        unregistered()
            .when(register(profile, skills()))
            .then_expect_error(WorkerError::Invalid(ValueError::Empty { field }));
    }
}

#[test]
fn a_profile_with_overlong_text_is_refused() {
    let long = "长".repeat(41);
    let long_city = WorkerProfile {
        service_area: ServiceArea {
            city: long.clone(),
            ..profile().service_area
        },
        ..profile()
    };
    let long_district = WorkerProfile {
        service_area: ServiceArea {
            districts: vec![long],
            ..profile().service_area
        },
        ..profile()
    };
    let cases = [(long_city, "城市 city"), (long_district, "区县 district")];
    for (profile, field) in cases {
        unregistered()
            .when(register(profile, skills()))
            .then_expect_error(WorkerError::Invalid(ValueError::TooLong { field, max: 40 }));
    }
}

#[test]
fn more_than_sixty_years_of_experience_is_refused() {
    let implausible = WorkerProfile {
        years_of_experience: 61,
        ..profile()
    };
    unregistered()
        .when(register(implausible, skills()))
        .then_expect_error(WorkerError::Invalid(ValueError::TooLong {
            field: "从业年限 years of experience",
            max: 60,
        }));
    let veteran = WorkerProfile {
        years_of_experience: 60,
        ..profile()
    };
    assert!(unregistered()
        .when(register(veteran, skills()))
        .inspect_result()
        .is_ok());
}

#[test]
fn a_newly_registered_worker_is_active_but_not_yet_approved_or_dispatchable() {
    let worker = fold(vec![registered()]);
    assert!(worker.registered && !worker.suspended && !worker.online);
    assert_eq!(
        worker.facts(WORKER_ID, today()),
        crate::order::WorkerFacts {
            worker_id: WORKER_ID,
            registered: true,
            active: true,
            approved: false,
            skills: vec![]
        }
    );
}

#[test]
fn an_unregistered_worker_is_neither_registered_nor_active() {
    let facts = Worker::default().facts(WORKER_ID, today());
    assert!(!facts.registered && !facts.active && facts.skills.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Commands before registration
// ---------------------------------------------------------------------------------------------

#[test]
fn every_command_before_registration_is_not_found() {
    let commands = [
        update_profile(profile()),
        set_skills(skills()),
        go_online(),
        go_offline(),
        suspend("多次投诉"),
        reinstate(),
    ];
    for command in commands {
        unregistered()
            .when(command)
            .then_expect_error(WorkerError::NotFound);
    }
}

// ---------------------------------------------------------------------------------------------
// Profile and skills
// ---------------------------------------------------------------------------------------------

#[test]
fn a_registered_worker_can_update_their_profile() {
    let moved = WorkerProfile {
        years_of_experience: 9,
        service_area: ServiceArea {
            city: "杭州市".to_owned(),
            districts: vec!["西湖区".to_owned()],
        },
        ..profile()
    };
    given(vec![registered()])
        .when(update_profile(moved.clone()))
        .then_expect_events(vec![profile_updated(moved)]);
}

#[test]
fn an_updated_profile_is_validated_and_trimmed() {
    given(vec![registered()])
        .when(update_profile(WorkerProfile {
            service_area: ServiceArea {
                city: "".to_owned(),
                ..profile().service_area
            },
            ..profile()
        }))
        .then_expect_error(WorkerError::Invalid(ValueError::Empty {
            field: "城市 city",
        }));
    given(vec![registered()])
        .when(update_profile(WorkerProfile {
            service_area: ServiceArea {
                city: " 上海市 ".to_owned(),
                ..profile().service_area
            },
            ..profile()
        }))
        .then_expect_events(vec![profile_updated(profile())]);
}

#[test]
fn a_suspended_worker_can_still_correct_their_profile() {
    given(vec![registered(), suspended("多次投诉")])
        .when(update_profile(profile()))
        .then_expect_events(vec![profile_updated(profile())]);
}

#[test]
fn setting_skills_replaces_them_deduplicated() {
    given(vec![registered()])
        .when(set_skills(vec![
            ServiceCode::MaternityNurse,
            ServiceCode::InfantCarer,
            ServiceCode::MaternityNurse,
        ]))
        .then_expect_events(vec![skills_set(vec![
            ServiceCode::InfantCarer,
            ServiceCode::MaternityNurse,
        ])]);
    let worker = fold(vec![
        registered(),
        skills_set(vec![ServiceCode::InfantCarer]),
    ]);
    assert_eq!(worker.skills, vec![ServiceCode::InfantCarer]);
}

#[test]
fn setting_no_skills_is_refused() {
    given(vec![registered()])
        .when(set_skills(vec![]))
        .then_expect_error(WorkerError::NoSkills);
}

// ---------------------------------------------------------------------------------------------
// Online and offline
// ---------------------------------------------------------------------------------------------

#[test]
fn a_registered_worker_can_go_online() {
    given(vec![registered()])
        .when(go_online())
        .then_expect_events(vec![went_online()]);
}

#[test]
fn going_online_twice_records_nothing() {
    given(vec![registered(), went_online()])
        .when(go_online())
        .then_expect_events(vec![]);
}

#[test]
fn an_online_worker_can_go_offline() {
    given(vec![registered(), went_online()])
        .when(go_offline())
        .then_expect_events(vec![went_offline()]);
}

#[test]
fn going_offline_while_offline_records_nothing() {
    given(vec![registered()])
        .when(go_offline())
        .then_expect_events(vec![]);
    given(vec![registered(), went_online(), went_offline()])
        .when(go_offline())
        .then_expect_events(vec![]);
}

#[test]
fn a_suspended_worker_cannot_go_online() {
    given(vec![registered(), suspended("多次投诉")])
        .when(go_online())
        .then_expect_error(WorkerError::Suspended);
}

#[test]
fn suspension_takes_an_online_worker_offline() {
    let worker = fold(vec![registered(), went_online(), suspended("多次投诉")]);
    assert!(worker.suspended);
    assert!(!worker.online);
    given(vec![registered(), went_online(), suspended("多次投诉")])
        .when(go_offline())
        .then_expect_events(vec![]);
}

// ---------------------------------------------------------------------------------------------
// Suspension and reinstatement
// ---------------------------------------------------------------------------------------------

#[test]
fn a_worker_can_be_suspended_with_a_trimmed_reason() {
    given(vec![registered(), went_online()])
        .when(suspend("  多次投诉 "))
        .then_expect_events(vec![suspended("多次投诉")]);
}

#[test]
fn suspending_without_a_reason_is_refused() {
    for reason in ["", "   ", "\n"] {
        given(vec![registered()])
            .when(suspend(reason))
            .then_expect_error(WorkerError::ReasonRequired);
    }
}

#[test]
fn suspending_a_suspended_worker_is_refused() {
    given(vec![registered(), suspended("多次投诉")])
        .when(suspend("再次停用"))
        .then_expect_error(WorkerError::Suspended);
}

#[test]
fn a_suspended_worker_is_not_eligible_for_orders() {
    let facts = fold(vec![registered(), suspended("多次投诉")]).facts(WORKER_ID, today());
    assert!(facts.registered);
    assert!(!facts.active);
}

#[test]
fn a_suspended_worker_can_be_reinstated() {
    given(vec![registered(), suspended("多次投诉")])
        .when(reinstate())
        .then_expect_events(vec![reinstated()]);
}

#[test]
fn reinstating_a_worker_who_is_not_suspended_is_refused() {
    given(vec![registered()])
        .when(reinstate())
        .then_expect_error(WorkerError::NotSuspended);
    given(vec![registered(), suspended("多次投诉"), reinstated()])
        .when(reinstate())
        .then_expect_error(WorkerError::NotSuspended);
}

#[test]
fn a_reinstated_worker_is_eligible_again_and_must_go_online_themselves() {
    let history = vec![
        registered(),
        went_online(),
        suspended("多次投诉"),
        reinstated(),
    ];
    let worker = fold(history.clone());
    assert!(!worker.suspended);
    assert!(!worker.online);
    assert!(worker.facts(WORKER_ID, today()).active);
    given(history)
        .when(go_online())
        .then_expect_events(vec![went_online()]);
}

#[test]
fn a_reinstated_worker_can_be_suspended_again() {
    given(vec![registered(), suspended("多次投诉"), reinstated()])
        .when(suspend("再次投诉"))
        .then_expect_events(vec![suspended("再次投诉")]);
}

// ---------------------------------------------------------------------------------------------
// Events on the wire
// ---------------------------------------------------------------------------------------------

fn one_of_every_event() -> Vec<WorkerEvent> {
    vec![
        registered(),
        profile_updated(profile()),
        skills_set(vec![ServiceCode::Nanny]),
        went_online(),
        went_offline(),
        suspended("多次投诉"),
        reinstated(),
        identity_submitted(),
        checked(&["(2024)京0105执12345号"]),
        WorkerEvent::CertificateAdded {
            certificate: certificate(CertificateKind::MaternityCare, today()),
            at: later(5),
        },
        WorkerEvent::CertificateExpired {
            certificate_id: Uuid::from_u128(1),
            at: later(6),
        },
        WorkerEvent::WorkerApproved {
            by: admin(),
            level: Level::Gold,
            at: later(3),
        },
        WorkerEvent::WorkerRejected {
            by: admin(),
            reason: "证件不清 / documents unreadable".into(),
            at: later(3),
        },
        WorkerEvent::DocumentsRequested {
            by: admin(),
            what: "健康证 / health certificate".into(),
            at: later(3),
        },
        WorkerEvent::SkillCertified {
            by: admin(),
            service: ServiceCode::Nanny,
            at: later(4),
        },
        WorkerEvent::LevelSet {
            by: admin(),
            level: Level::Silver,
            at: later(4),
        },
        WorkerEvent::GroupsSet {
            by: admin(),
            groups: vec!["浦东组".into()],
            at: later(7),
        },
        booked(1, 0, 3),
        WorkerEvent::BookingReleased {
            order_id: Uuid::from_u128(1),
            reason: "拒单 / declined".into(),
            at: later(8),
        },
        WorkerEvent::WeeklyPlanSet {
            plan: crate::availability::WeeklyPlan::default(),
            at: later(9),
        },
        WorkerEvent::DayHoursSet {
            date: today(),
            ranges: vec![],
            at: later(9),
        },
        WorkerEvent::LeaveTaken {
            leave_id: Uuid::from_u128(9),
            from: today(),
            to: today(),
            reason: "探亲 / family visit".into(),
            at: later(9),
        },
        WorkerEvent::ServiceBaseSet {
            base: crate::worker::ServiceBase {
                location: crate::values::GeoPoint::new(
                    31.2304,
                    121.4737,
                    crate::values::CoordinateSystem::Gcj02,
                )
                .expect("in range")
                .coarse(),
                radius_km: 15,
            },
            sealed: crate::values::Sealed::from_ciphertext("v1.base".to_owned()),
            at: later(10),
        },
    ]
}

#[test]
fn a_booking_outside_working_hours_or_on_leave_is_refused_and_travel_time_is_kept_free() {
    use crate::availability::{local_instant, TimeRange, WeeklyPlan};
    use chrono::NaiveTime;
    let hour = |h: u32| NaiveTime::from_hms_opt(h, 0, 0).expect("time");
    let mut plan = WeeklyPlan::default();
    for day in plan.days.iter_mut() {
        *day = vec![TimeRange::parse(hour(8), hour(20)).expect("range")];
    }
    let day = NaiveDate::from_ymd_opt(2026, 12, 2).expect("date");
    let at = |h: u32| local_instant(day, hour(h));
    let book = |order: u128, from: u32, to: u32| WorkerCommand::Book {
        order_id: Uuid::from_u128(order),
        start: at(from),
        end: at(to),
        location: None,
        now: later(9),
    };
    let planned = vec![
        registered(),
        WorkerEvent::WeeklyPlanSet {
            plan: plan.clone(),
            at: later(9),
        },
    ];
    given(planned.clone())
        .when(book(1, 6, 9))
        .then_expect_error(WorkerError::Unavailable);
    given(planned.clone())
        .when(book(1, 9, 12))
        .then_expect_events(vec![WorkerEvent::WorkerBooked {
            order_id: Uuid::from_u128(1),
            start: at(9),
            end: at(12),
            location: None,
            at: later(9),
        }]);
    let mut busy = planned.clone();
    busy.push(WorkerEvent::WorkerBooked {
        order_id: Uuid::from_u128(1),
        start: at(9),
        end: at(12),
        location: None,
        at: later(9),
    });
    // Without locations the travel allowance is 45 minutes: 12:00 to 12:45 stays free.
    given(busy.clone())
        .when(book(2, 12, 14))
        .then_expect_error(WorkerError::Overlap {
            start: at(9),
            end: at(12),
        });
    given(busy.clone())
        .when(book(2, 13, 15))
        .then_expect_events(vec![WorkerEvent::WorkerBooked {
            order_id: Uuid::from_u128(2),
            start: at(13),
            end: at(15),
            location: None,
            at: later(9),
        }]);
    let mut on_leave = planned;
    on_leave.push(WorkerEvent::LeaveTaken {
        leave_id: Uuid::from_u128(9),
        from: day,
        to: day,
        reason: "病假 / sick".into(),
        at: later(9),
    });
    given(on_leave)
        .when(book(1, 9, 12))
        .then_expect_error(WorkerError::Unavailable);
    // The slot listing agrees: hourly starts for a 2-hour job between 8:00 and 20:00, minus
    // 9:00–12:00 and its travel allowance on both sides.
    let worker = fold(busy);
    let slots: Vec<u32> = worker
        .free_slots(day, chrono::Duration::hours(2), 60, None, later(0))
        .into_iter()
        .map(|slot| {
            slot.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
                .hour()
        })
        .collect();
    assert_eq!(slots, vec![13, 14, 15, 16, 17, 18]);
}

fn booked(order: u128, from_hour: i64, to_hour: i64) -> WorkerEvent {
    WorkerEvent::WorkerBooked {
        order_id: Uuid::from_u128(order),
        start: later(24 * 60 + from_hour * 60),
        end: later(24 * 60 + to_hour * 60),
        location: None,
        at: later(8),
    }
}

fn book(order: u128, from_hour: i64, to_hour: i64) -> WorkerCommand {
    WorkerCommand::Book {
        order_id: Uuid::from_u128(order),
        start: later(24 * 60 + from_hour * 60),
        end: later(24 * 60 + to_hour * 60),
        location: None,
        now: later(8),
    }
}

#[test]
fn an_overlap_refusal_says_when_the_worker_is_busy_and_not_whose_order() {
    let refusal = WorkerError::Overlap {
        start: "2026-06-01T01:00:00Z".parse().unwrap(),
        end: "2026-06-01T03:30:00Z".parse().unwrap(),
    }
    .to_string();
    assert!(refusal.contains("2026-06-01 09:00"), "{refusal}");
    assert!(refusal.contains("2026-06-01 11:30"), "{refusal}");
    assert!(!refusal.contains("order"), "{refusal}");
}

#[test]
fn a_worker_is_never_booked_for_overlapping_times() {
    let history = vec![registered(), booked(1, 2, 5)];
    for (from, to) in [(2, 5), (1, 3), (4, 6), (3, 4), (0, 8)] {
        given(history.clone())
            .when(book(2, from, to))
            .then_expect_error(WorkerError::Overlap {
                start: later(24 * 60 + 2 * 60),
                end: later(24 * 60 + 5 * 60),
            });
    }
    // Back-to-back jobs need the travel allowance between them (45 minutes without
    // locations): touching ends clash, an hour apart does not.
    for (from, to) in [(5, 7), (0, 2)] {
        given(history.clone())
            .when(book(2, from, to))
            .then_expect_error(WorkerError::Overlap {
                start: later(24 * 60 + 2 * 60),
                end: later(24 * 60 + 5 * 60),
            });
    }
    given(history.clone())
        .when(book(2, 6, 8))
        .then_expect_events(vec![booked(2, 6, 8)]);
    given(history.clone())
        .when(book(2, 0, 1))
        .then_expect_events(vec![booked(2, 0, 1)]);
    // The same order again is a retry.
    given(history.clone())
        .when(book(1, 2, 5))
        .then_expect_events(vec![]);
    given(history)
        .when(book(3, 4, 4))
        .then_expect_error(WorkerError::EmptyWindow);
}

#[test]
fn a_released_booking_frees_the_time() {
    let release = WorkerCommand::Release {
        order_id: Uuid::from_u128(1),
        reason: "拒单 / declined".into(),
        now: later(8),
    };
    let released = WorkerEvent::BookingReleased {
        order_id: Uuid::from_u128(1),
        reason: "拒单 / declined".into(),
        at: later(8),
    };
    given(vec![registered(), booked(1, 2, 5)])
        .when(release.clone())
        .then_expect_events(vec![released.clone()]);
    given(vec![registered()])
        .when(release)
        .then_expect_events(vec![]);
    given(vec![registered(), booked(1, 2, 5), released])
        .when(book(2, 2, 5))
        .then_expect_events(vec![booked(2, 2, 5)]);
}

/// No catch-all arm: a new event kind fails to compile until it is added to the samples.
fn kind_index(event: &WorkerEvent) -> usize {
    match event {
        WorkerEvent::WorkerRegistered { .. } => 0,
        WorkerEvent::WorkerProfileUpdated { .. } => 1,
        WorkerEvent::WorkerSkillsSet { .. } => 2,
        WorkerEvent::WorkerWentOnline { .. } => 3,
        WorkerEvent::WorkerWentOffline { .. } => 4,
        WorkerEvent::WorkerSuspended { .. } => 5,
        WorkerEvent::WorkerReinstated { .. } => 6,
        WorkerEvent::IdentitySubmitted { .. } => 7,
        WorkerEvent::BackgroundChecked { .. } => 8,
        WorkerEvent::CertificateAdded { .. } => 9,
        WorkerEvent::CertificateExpired { .. } => 10,
        WorkerEvent::WorkerApproved { .. } => 11,
        WorkerEvent::WorkerRejected { .. } => 12,
        WorkerEvent::DocumentsRequested { .. } => 13,
        WorkerEvent::SkillCertified { .. } => 14,
        WorkerEvent::LevelSet { .. } => 15,
        WorkerEvent::GroupsSet { .. } => 16,
        WorkerEvent::WorkerBooked { .. } => 17,
        WorkerEvent::BookingReleased { .. } => 18,
        WorkerEvent::WeeklyPlanSet { .. } => 19,
        WorkerEvent::DayHoursSet { .. } => 20,
        WorkerEvent::LeaveTaken { .. } => 21,
        WorkerEvent::ServiceBaseSet { .. } => 22,
    }
}

#[test]
fn every_worker_event_survives_a_json_round_trip_under_a_distinct_type() {
    let events = one_of_every_event();
    let kinds: Vec<usize> = events.iter().map(kind_index).collect();
    assert_eq!(kinds, (0..23).collect::<Vec<_>>());
    let types: HashSet<String> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(types.len(), events.len());
    for event in events {
        let json = serde_json::to_string(&event).expect("serialises");
        let back: WorkerEvent = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, event, "{json}");
        assert_eq!(
            event.event_version(),
            crate::upcast::current_version(&event.event_type())
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Onboarding: identity, background check, review, certification, certificates
// ---------------------------------------------------------------------------------------------

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).expect("date")
}

fn identity_submitted() -> WorkerEvent {
    WorkerEvent::IdentitySubmitted {
        id_number: Sealed::from_ciphertext(format!("v1.{}.id", Uuid::nil())),
        at: later(1),
        legal_name: None,
    }
}

fn checked(hits: &[&str]) -> WorkerEvent {
    WorkerEvent::BackgroundChecked {
        outcome: BackgroundCheckOutcome {
            source: "offline-blacklist".to_owned(),
            hits: hits.iter().map(|hit| (*hit).to_owned()).collect(),
        },
        at: later(2),
    }
}

fn certificate(kind: CertificateKind, expires_on: NaiveDate) -> Certificate {
    Certificate {
        certificate_id: Uuid::from_u128(kind as u128 + 0xce),
        kind,
        number: format!("NO-{}", kind.as_str()),
        issued_on: NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"),
        expires_on,
    }
}

fn review(decision: ReviewDecision) -> WorkerCommand {
    WorkerCommand::Review {
        by: admin(),
        decision,
        now: later(3),
    }
}

#[test]
fn approval_needs_an_identity_and_a_clean_background_check() {
    given(vec![registered()])
        .when(review(ReviewDecision::Approve { level: Level::Gold }))
        .then_expect_error(WorkerError::IdentityMissing);
    given(vec![registered(), identity_submitted()])
        .when(review(ReviewDecision::Approve { level: Level::Gold }))
        .then_expect_error(WorkerError::BackgroundCheckMissing);
    given(vec![
        registered(),
        identity_submitted(),
        checked(&["(2024)京0105执12345号"]),
    ])
    .when(review(ReviewDecision::Approve { level: Level::Gold }))
    .then_expect_error(WorkerError::BackgroundCheckHit);
    given(vec![registered(), identity_submitted(), checked(&[])])
        .when(review(ReviewDecision::Approve { level: Level::Gold }))
        .then_expect_events(vec![WorkerEvent::WorkerApproved {
            by: admin(),
            level: Level::Gold,
            at: later(3),
        }]);
}

#[test]
fn a_new_identity_needs_a_new_background_check() {
    let worker = fold(vec![
        registered(),
        identity_submitted(),
        checked(&[]),
        identity_submitted(),
    ]);
    assert_eq!(worker.background, None);
}

#[test]
fn a_background_check_before_an_identity_is_refused() {
    given(vec![registered()])
        .when(WorkerCommand::RecordBackgroundCheck {
            outcome: BackgroundCheckOutcome {
                source: "offline-blacklist".to_owned(),
                hits: vec![],
            },
            now: later(2),
        })
        .then_expect_error(WorkerError::IdentityMissing);
}

#[test]
fn rejection_and_a_request_for_documents_need_their_reasons() {
    given(vec![registered()])
        .when(review(ReviewDecision::Reject {
            reason: " ".to_owned(),
        }))
        .then_expect_error(WorkerError::Invalid(ValueError::Empty {
            field: "原因 reason",
        }));
    given(vec![registered()])
        .when(review(ReviewDecision::RequestDocuments {
            what: "请上传健康证 / upload the health certificate".to_owned(),
        }))
        .then_expect_events(vec![WorkerEvent::DocumentsRequested {
            by: admin(),
            what: "请上传健康证 / upload the health certificate".to_owned(),
            at: later(3),
        }]);
}

#[test]
fn only_declared_skills_are_certified_and_only_once() {
    given(vec![registered()])
        .when(WorkerCommand::CertifySkill {
            by: admin(),
            service: ServiceCode::MaternityNurse,
            now: later(4),
        })
        .then_expect_error(WorkerError::SkillNotDeclared);
    let skill = skills()[0];
    given(vec![
        registered(),
        WorkerEvent::SkillCertified {
            by: admin(),
            service: skill,
            at: later(4),
        },
    ])
    .when(WorkerCommand::CertifySkill {
        by: admin(),
        service: skill,
        now: later(5),
    })
    .then_expect_events(vec![]);
}

#[test]
fn a_worker_is_dispatchable_for_a_service_only_with_approval_certification_and_valid_certificates()
{
    let skill = skills()[0];
    let next_year = NaiveDate::from_ymd_opt(2027, 1, 1).expect("date");
    let mut history = vec![registered(), identity_submitted(), checked(&[])];
    history.push(WorkerEvent::WorkerApproved {
        by: admin(),
        level: Level::Standard,
        at: later(3),
    });
    history.push(WorkerEvent::SkillCertified {
        by: admin(),
        service: skill,
        at: later(4),
    });
    let needs_certificates = !crate::onboarding::required_certificates(skill).is_empty();
    let before_certificates = fold(history.clone()).facts(WORKER_ID, today());
    assert!(before_certificates.approved);
    assert_eq!(
        before_certificates.skills.contains(&skill),
        !needs_certificates
    );
    for kind in crate::onboarding::required_certificates(skill) {
        history.push(WorkerEvent::CertificateAdded {
            certificate: certificate(*kind, next_year),
            at: later(5),
        });
    }
    assert!(fold(history.clone())
        .facts(WORKER_ID, today())
        .skills
        .contains(&skill));
    // The day after expiry, it no longer counts, even before the job marks it.
    let after_expiry = NaiveDate::from_ymd_opt(2027, 1, 2).expect("date");
    assert_eq!(
        fold(history.clone())
            .facts(WORKER_ID, after_expiry)
            .skills
            .contains(&skill),
        !needs_certificates
    );
}

#[test]
fn the_expiry_job_marks_a_certificate_once_and_only_after_its_date() {
    let health = certificate(CertificateKind::HealthCertificate, today());
    let history = vec![
        registered(),
        WorkerEvent::CertificateAdded {
            certificate: health.clone(),
            at: later(5),
        },
    ];
    let expire = |day: NaiveDate| WorkerCommand::ExpireCertificate {
        certificate_id: health.certificate_id,
        today: day,
        now: later(6),
    };
    given(history.clone())
        .when(expire(today()))
        .then_expect_events(vec![]);
    let tomorrow = today().succ_opt().expect("date");
    given(history.clone())
        .when(expire(tomorrow))
        .then_expect_events(vec![WorkerEvent::CertificateExpired {
            certificate_id: health.certificate_id,
            at: later(6),
        }]);
    let mut expired = history;
    expired.push(WorkerEvent::CertificateExpired {
        certificate_id: health.certificate_id,
        at: later(6),
    });
    given(expired)
        .when(expire(tomorrow))
        .then_expect_events(vec![]);
}

#[test]
fn a_certificate_is_recorded_once() {
    let health = certificate(CertificateKind::HealthCertificate, today());
    given(vec![
        registered(),
        WorkerEvent::CertificateAdded {
            certificate: health.clone(),
            at: later(5),
        },
    ])
    .when(WorkerCommand::AddCertificate {
        certificate: health,
        now: later(6),
    })
    .then_expect_error(WorkerError::CertificateExists);
}

#[test]
fn groups_are_trimmed_deduplicated_and_limited() {
    given(vec![registered()])
        .when(WorkerCommand::SetGroups {
            by: admin(),
            groups: vec![" 浦东组 ".into(), "浦东组".into(), "金牌月嫂".into()],
            now: later(7),
        })
        .then_expect_events(vec![WorkerEvent::GroupsSet {
            by: admin(),
            groups: vec!["浦东组".into(), "金牌月嫂".into()],
            at: later(7),
        }]);
    given(vec![registered()])
        .when(WorkerCommand::SetGroups {
            by: admin(),
            groups: (0..11).map(|n| format!("组{n}")).collect(),
            now: later(7),
        })
        .then_expect_error(WorkerError::BadGroups { max: MAX_GROUPS });
}
