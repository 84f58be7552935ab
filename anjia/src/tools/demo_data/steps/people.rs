//! The people of the generated history: workers onboarded with identity, certificates and a clean
//! background check, and the presence (sign-ins, app opens) of whoever acts.

use super::*;

pub(super) fn worker_actor(id: Uuid) -> Option<Actor> {
    Some(Actor {
        id,
        role: Role::Worker,
    })
}

pub(super) fn customer_actor(id: Uuid) -> Option<Actor> {
    Some(Actor {
        id,
        role: Role::Customer,
    })
}

/// A worker's onboarding as it happens on the platform: registration, identity, a clear
/// background check, the certificates their services need, approval at a level, certified
/// skills and a service base. Answers their skills.
pub(super) async fn onboard(
    state: &Services,
    worker: &mut DemoWorker,
    log: &mut Log,
    random: &mut Random,
    admin: Actor,
    at: DateTime<Utc>,
) -> anyhow::Result<Vec<ServiceCode>> {
    let id = worker.stream.id;
    let city = &CITIES[worker.city];
    // One to three services, the first by the mix; every city gets every service early.
    let mut skills = vec![worker.first_skill];
    for _ in 0..random.below(3) {
        let service = random.weighted(&SERVICE_MIX);
        if !skills.contains(&service) {
            skills.push(service);
        }
    }
    let worker_name = name(random);
    let mobile = phone(random);
    let id_number = id_number(random);
    let sealed = state
        .vault
        .seal_all(id, &[&worker_name, &mobile, &id_number])
        .await
        .map_err(|error| anyhow::anyhow!("sealing: {error}"))?;
    let me = Some(Actor {
        id,
        role: Role::Worker,
    });
    let profile = WorkerProfile {
        name: sealed[0].clone(),
        phone: sealed[1].clone(),
        years_of_experience: 1 + random.below(15) as u8,
        languages: vec!["普通话".to_owned()],
        service_area: ServiceArea {
            city: city.name.to_owned(),
            districts: vec![random.pick(city.districts).to_string()],
        },
        photo_ref: None,
    };
    must!(
        worker.stream,
        log,
        random,
        me,
        at,
        WorkerCommand::Register {
            worker_id: id,
            profile,
            skills: skills.clone(),
            now: at,
        }
    );
    must!(
        worker.stream,
        log,
        random,
        me,
        at,
        WorkerCommand::SubmitIdentity {
            id_number: sealed[2].clone(),
            now: at,
        }
    );
    must!(
        worker.stream,
        log,
        random,
        None,
        at,
        WorkerCommand::RecordBackgroundCheck {
            outcome: BackgroundCheckOutcome {
                source: "offline-blacklist".to_owned(),
                hits: Vec::new(),
            },
            now: at,
        }
    );
    let today = business_day(at);
    let kinds = certificates_for(&skills);
    for kind in kinds {
        must!(
            worker.stream,
            log,
            random,
            me,
            at,
            WorkerCommand::AddCertificate {
                certificate: Certificate {
                    certificate_id: random.uuid(),
                    kind,
                    number: format!("DEMO-{:08}", random.below(100_000_000)),
                    issued_on: today - Duration::days(200 + random.below(900) as i64),
                    expires_on: today + Duration::days(3 * 365),
                },
                now: at,
            }
        );
    }
    let approved = at + random.minutes(60, 60 * 24);
    must!(
        worker.stream,
        log,
        random,
        Some(admin),
        approved,
        WorkerCommand::Review {
            by: admin,
            decision: ReviewDecision::Approve {
                level: worker.level,
            },
            now: approved,
        }
    );
    for service in &skills {
        must!(
            worker.stream,
            log,
            random,
            Some(admin),
            approved,
            WorkerCommand::CertifySkill {
                by: admin,
                service: *service,
                now: approved,
            }
        );
    }
    let base = point_near(random, city.centre);
    let sealed_base = state
        .vault
        .seal(id, &SealedPoint::plaintext(&base))
        .await
        .map_err(|error| anyhow::anyhow!("sealing: {error}"))?;
    must!(
        worker.stream,
        log,
        random,
        me,
        approved,
        WorkerCommand::SetServiceBase {
            base: ServiceBase {
                location: base,
                radius_km: 30,
            },
            sealed: sealed_base,
            now: approved,
        }
    );
    Ok(skills)
}

/// A well-formed resident identity number (ISO 7064 check character) born in the 1970s–80s.
pub(super) fn id_number(random: &mut Random) -> String {
    let body = format!(
        "110105{}{:02}{:02}{:03}",
        1970 + random.below(20),
        1 + random.below(12),
        1 + random.below(28),
        random.below(1000)
    );
    let check = domain::onboarding::IdCardNumber::check_character(&body).expect("17 digits");
    format!("{body}{check}")
}

/// The presence stream of `user` today, made on first use.
pub(super) fn presence_of(
    presence: &mut HashMap<Uuid, Stream<Presence>>,
    user: Uuid,
    at: DateTime<Utc>,
) -> &mut Stream<Presence> {
    let id = presence_id(user, business_day(at));
    presence.entry(id).or_insert_with(|| Stream::new(id))
}

/// What a person did in the app.
pub(super) enum Seen {
    SignIn,
    AppOpen,
}

/// Records a sign-in or an app open (with a method or platform in the usual proportions).
pub(super) async fn seen(
    presence: &mut HashMap<Uuid, Stream<Presence>>,
    log: &mut Log,
    random: &mut Random,
    (user, role): (Uuid, Role),
    at: DateTime<Utc>,
    what: Seen,
) -> anyhow::Result<()> {
    let command = match what {
        Seen::SignIn => PresenceCommand::RecordSignIn {
            user_id: user,
            role,
            method: random.weighted(&[
                (SignInMethod::Code, 6),
                (SignInMethod::Password, 3),
                (SignInMethod::Oauth, 1),
            ]),
            now: at,
        },
        Seen::AppOpen => PresenceCommand::RecordAppOpen {
            user_id: user,
            role,
            platform: random.weighted(&[
                (Platform::MiniProgram, 45),
                (Platform::Ios, 25),
                (Platform::Android, 25),
                (Platform::Web, 5),
            ]),
            app_version: Some("4.2.0".to_owned()),
            now: at,
        },
    };
    let stream = presence_of(presence, user, at);
    must!(
        stream,
        log,
        random,
        Some(Actor { id: user, role }),
        at,
        command
    );
    Ok(())
}
