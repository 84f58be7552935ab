use chrono::TimeZone;

use super::*;
use cqrs_es::Aggregate;

const CUSTOMER: Uuid = Uuid::from_u128(0xC1);
const WORKER: Uuid = Uuid::from_u128(0xA1);
const STRANGER: Uuid = Uuid::from_u128(0x57);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0)
        .single()
        .expect("time")
}

fn at(minutes: i64) -> DateTime<Utc> {
    now() + Duration::minutes(minutes)
}

fn customer() -> Actor {
    Actor {
        id: CUSTOMER,
        role: Role::Customer,
    }
}

fn worker() -> Actor {
    Actor {
        id: WORKER,
        role: Role::Worker,
    }
}

fn stranger() -> Actor {
    Actor {
        id: STRANGER,
        role: Role::Customer,
    }
}

fn request(service: ServiceCode, start: DateTime<Utc>) -> InterviewCommand {
    InterviewCommand::Request {
        interview_id: Uuid::from_u128(1),
        customer_id: CUSTOMER,
        worker_id: WORKER,
        service,
        start,
        note: "想了解带娃经验 / childcare experience".into(),
        now: now(),
    }
}

/// Runs commands in order; every one must be accepted.
fn run(commands: Vec<InterviewCommand>) -> Interview {
    let mut interview = Interview::default();
    for command in commands {
        let events = interview
            .decide(command.clone())
            .unwrap_or_else(|error| panic!("{command:?} was refused: {error}"));
        for event in events {
            interview.apply(event);
        }
    }
    interview
}

fn scheduled() -> Interview {
    run(vec![
        request(ServiceCode::MaternityNurse, at(24 * 60)),
        InterviewCommand::Accept {
            by: worker(),
            now: at(5),
        },
    ])
}

#[test]
fn only_live_in_and_childcare_services_are_interviewed_and_only_in_the_future() {
    let fresh = Interview::default();
    assert_eq!(
        fresh.decide(request(ServiceCode::DailyCleaning, at(60))),
        Err(InterviewError::NoInterviewForService)
    );
    assert_eq!(
        fresh.decide(request(ServiceCode::Nanny, at(-1))),
        Err(InterviewError::StartInPast)
    );
    assert!(fresh
        .decide(request(ServiceCode::InfantCarer, at(60)))
        .is_ok());
}

#[test]
fn the_worker_accepts_a_request_and_a_counter_proposal_is_accepted_by_the_other_side() {
    let requested = run(vec![request(ServiceCode::Nanny, at(60))]);
    // The customer cannot accept their own request.
    assert_eq!(
        requested.decide(InterviewCommand::Accept {
            by: customer(),
            now: at(1)
        }),
        Err(InterviewError::NotParticipant)
    );
    let proposed = run(vec![
        request(ServiceCode::Nanny, at(60)),
        InterviewCommand::ProposeTime {
            by: worker(),
            start: at(180),
            now: at(2),
        },
    ]);
    assert_eq!(proposed.status, InterviewStatus::Proposed);
    assert_eq!(
        proposed.decide(InterviewCommand::Accept {
            by: worker(),
            now: at(3)
        }),
        Err(InterviewError::OwnProposal)
    );
    let mut agreed = proposed.clone();
    for event in proposed
        .decide(InterviewCommand::Accept {
            by: customer(),
            now: at(3),
        })
        .expect("accepted")
    {
        agreed.apply(event);
    }
    assert_eq!(agreed.status, InterviewStatus::Scheduled);
    assert_eq!(agreed.start, Some(at(180)));
}

#[test]
fn only_participants_act_and_join_only_around_the_time() {
    let interview = scheduled();
    assert_eq!(
        interview.decide(InterviewCommand::Join {
            by: stranger(),
            now: at(24 * 60)
        }),
        Err(InterviewError::NotParticipant)
    );
    assert_eq!(
        interview.decide(InterviewCommand::Join {
            by: customer(),
            now: at(24 * 60 - EARLY_JOIN_MINUTES - 1)
        }),
        Err(InterviewError::NotTheTime)
    );
    assert_eq!(
        interview.decide(InterviewCommand::Join {
            by: customer(),
            now: at(24 * 60 + LENGTH_MINUTES + 1)
        }),
        Err(InterviewError::NotTheTime)
    );
    let joined = run(vec![
        request(ServiceCode::MaternityNurse, at(24 * 60)),
        InterviewCommand::Accept {
            by: worker(),
            now: at(5),
        },
        InterviewCommand::Join {
            by: customer(),
            now: at(24 * 60 - 5),
        },
    ]);
    // Back after a dropped connection: nothing new.
    assert_eq!(
        joined.decide(InterviewCommand::Join {
            by: customer(),
            now: at(24 * 60 + 1)
        }),
        Ok(vec![])
    );
    assert!(joined.open_at(at(24 * 60)));
    assert!(!joined.open_at(at(24 * 60 + LENGTH_MINUTES + 1)));
}

#[test]
fn the_customer_records_the_outcome_after_the_interview_and_either_side_may_cancel_before() {
    let interview = scheduled();
    let outcome = |by: Actor, minutes: i64| InterviewCommand::RecordOutcome {
        by,
        outcome: Outcome::Hire,
        note: "经验丰富 / experienced".into(),
        now: at(minutes),
    };
    assert_eq!(
        interview.decide(outcome(customer(), 60)),
        Err(InterviewError::TooEarlyForOutcome)
    );
    assert_eq!(
        interview.decide(outcome(worker(), 24 * 60 + 40)),
        Err(InterviewError::NotParticipant)
    );
    assert!(interview.decide(outcome(customer(), 24 * 60 + 40)).is_ok());
    assert_eq!(
        interview.decide(InterviewCommand::Cancel {
            by: worker(),
            reason: " ".into(),
            now: at(30)
        }),
        Err(InterviewError::ReasonRequired)
    );
    assert!(interview
        .decide(InterviewCommand::Cancel {
            by: worker(),
            reason: "临时有事 / something came up".into(),
            now: at(30)
        })
        .is_ok());
    let declined = run(vec![
        request(ServiceCode::Nanny, at(60)),
        InterviewCommand::Decline {
            by: worker(),
            reason: "已有长期雇主 / already employed".into(),
            now: at(1),
        },
    ]);
    assert_eq!(
        declined.decide(InterviewCommand::Join {
            by: customer(),
            now: at(60)
        }),
        Err(InterviewError::IllegalState("declined"))
    );
}

#[test]
fn every_interview_event_survives_a_json_round_trip() {
    let events = vec![
        InterviewEvent::InterviewTimeProposed {
            by: worker(),
            start: at(90),
            proposed_at: at(1),
        },
        InterviewEvent::InterviewConcluded {
            outcome: Outcome::NotHire,
            note: String::new(),
            concluded_at: at(100),
        },
    ];
    for event in events {
        let json = serde_json::to_string(&event).expect("serialises");
        assert_eq!(
            serde_json::from_str::<InterviewEvent>(&json).expect("reads"),
            event
        );
    }
}
