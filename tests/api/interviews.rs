//! Video interviews before hiring: request, counter-proposal, admission to the call with a room
//! token, and the outcome leading to a booking.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, spawn_app};
use uuid::Uuid;

#[tokio::test]
async fn a_customer_interviews_a_worker_who_proposes_another_time_then_both_are_admitted_and_the_customer_hires(
) {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let worker = app.register_worker(&["nanny"]).await;
    let stranger = app.register_customer().await;
    let soon =
        |seconds: i64| (chrono::Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339();

    let cleaning = app
        .post(
            "/api/v1/interviews",
            Some(&customer.token),
            &json!({"worker_id": worker.id, "service": "daily_cleaning", "start": soon(3_600)}),
        )
        .await;
    assert_problem(
        cleaning,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let requested = app
        .post(
            "/api/v1/interviews",
            Some(&customer.token),
            &json!({"worker_id": worker.id, "service": "nanny", "start": soon(3_600),
                    "note": "想了解带娃经验 / childcare experience"}),
        )
        .await;
    assert_eq!(requested.status(), StatusCode::CREATED);
    let requested: Value = requested.json().await.expect("interview");
    let id: Uuid = requested["interview_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let path = |action: &str| format!("/api/v1/interviews/{id}/{action}");
    let hidden = app
        .get(&format!("/api/v1/interviews/{id}"), Some(&stranger.token))
        .await;
    assert_problem(hidden, StatusCode::NOT_FOUND, "/problems/not-found").await;

    // The worker proposes a time a moment away; the customer accepts it.
    let proposed = app
        .post(
            &path("propose"),
            Some(&worker.token),
            &json!({"start": soon(6)}),
        )
        .await;
    assert_eq!(proposed.status(), StatusCode::OK);
    let own = app
        .post(&path("accept"), Some(&worker.token), &json!({}))
        .await;
    assert_problem(own, StatusCode::CONFLICT, "/problems/illegal-state").await;
    let accepted = app
        .post(&path("accept"), Some(&customer.token), &json!({}))
        .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let scheduled: Value = accepted.json().await.expect("interview");
    assert_eq!(scheduled["status"], "scheduled");
    let told: Vec<Value> = app
        .get("/api/v1/me/notifications", Some(&customer.token))
        .await
        .json()
        .await
        .expect("notifications");
    assert!(told
        .iter()
        .any(|note| note["kind"] == "interview_time_proposed"));

    // Admission: the room token names this interview and this participant, signed by the key
    // every process shares.
    let outsider = app
        .post(&path("join"), Some(&stranger.token), &json!({}))
        .await;
    assert_eq!(outsider.status(), StatusCode::FORBIDDEN);
    for (person, role) in [(&customer, "customer"), (&worker, "worker")] {
        let admitted = app
            .post(&path("join"), Some(&person.token), &json!({}))
            .await;
        assert_eq!(admitted.status(), StatusCode::OK);
        let admission: Value = admitted.json().await.expect("admission");
        let key: Vec<u8> =
            sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = 'room_token_key'")
                .fetch_one(&app.pool)
                .await
                .expect("key");
        let claims = signaling::token::verify_room_token(
            &key,
            admission["room_token"].as_str().expect("token"),
            chrono::Utc::now(),
        )
        .expect("a valid token");
        assert_eq!(
            (claims.room, claims.sub, claims.role.as_str()),
            (id, person.id, role)
        );
    }

    // The outcome comes after the start; a hire leads to booking this worker.
    let deadline = Instant::now() + Duration::from_secs(15);
    let concluded = loop {
        let response = app
            .post(
                &path("outcome"),
                Some(&customer.token),
                &json!({"outcome": "hire", "note": "经验丰富 / experienced"}),
            )
            .await;
        if response.status() == StatusCode::OK {
            break response.json::<Value>().await.expect("outcome");
        }
        assert_eq!(
            response.status(),
            StatusCode::CONFLICT,
            "too early, nothing else"
        );
        assert!(Instant::now() < deadline, "the interview never started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(concluded["interview"]["outcome"], "hire");
    assert_eq!(concluded["booking"]["worker_id"], worker.id.to_string());
    assert_eq!(concluded["booking"]["service"], "nanny");
    let late = app
        .post(
            &path("decline"),
            Some(&worker.token),
            &json!({"reason": "x"}),
        )
        .await;
    assert_problem(late, StatusCode::CONFLICT, "/problems/illegal-state").await;
    app.stop().await;
}

/// The reminders of an interview: (kind, recipient, due, delivered, cancelled), by due time.
async fn interview_reminders(
    app: &tests::TestApp,
    interview: Uuid,
) -> Vec<(String, Uuid, chrono::DateTime<chrono::Utc>, bool, bool)> {
    app.wait_for_projections().await;
    sqlx::query_as(
        "SELECT kind, recipient_id, due_at, delivered_at IS NOT NULL, cancelled_at IS NOT NULL
           FROM reminders WHERE interview_id = $1 ORDER BY due_at, kind, recipient_id",
    )
    .bind(interview)
    .fetch_all(&app.pool)
    .await
    .expect("reminders")
}

#[tokio::test]
async fn both_parties_are_reminded_of_an_interview_and_a_new_time_moves_the_reminders() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let worker = app.register_worker(&["infant_carer"]).await;
    let at = |seconds: i64| chrono::Utc::now() + chrono::Duration::seconds(seconds);
    let whole = |time: chrono::DateTime<chrono::Utc>| time.timestamp();

    let start = at(3 * 3_600);
    let requested: Value = app
        .post(
            "/api/v1/interviews",
            Some(&customer.token),
            &json!({"worker_id": worker.id, "service": "infant_carer", "start": start.to_rfc3339()}),
        )
        .await
        .json()
        .await
        .expect("interview");
    let id: Uuid = requested["interview_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let path = |action: &str| format!("/api/v1/interviews/{id}/{action}");
    assert!(
        interview_reminders(&app, id).await.is_empty(),
        "nothing before it is accepted"
    );
    let accepted = app
        .post(&path("accept"), Some(&worker.token), &json!({}))
        .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let reminders = interview_reminders(&app, id).await;
    let mut expected = vec![
        ("interview_in_60", customer.id, whole(start) - 3_600),
        ("interview_in_60", worker.id, whole(start) - 3_600),
        ("interview_open", customer.id, whole(start) - 600),
        ("interview_open", worker.id, whole(start) - 600),
    ];
    expected.sort_by_key(|(kind, who, due)| (*due, *kind, *who));
    assert_eq!(
        reminders
            .iter()
            .map(|(kind, who, due, delivered, cancelled)| {
                assert!(!delivered && !cancelled);
                (kind.as_str(), *who, whole(*due))
            })
            .collect::<Vec<_>>(),
        expected
    );

    // The customer proposes a time ten minutes and a few seconds away: the old reminders are
    // cancelled; once the worker accepts, the call-open reminder is due almost at once (the
    // hour-before one has passed) and reaches both inboxes.
    let soon = at(600 + 4);
    let proposed = app
        .post(
            &path("propose"),
            Some(&customer.token),
            &json!({"start": soon.to_rfc3339()}),
        )
        .await;
    assert_eq!(proposed.status(), StatusCode::OK);
    let reminders = interview_reminders(&app, id).await;
    assert!(reminders
        .iter()
        .all(|(_, _, _, delivered, cancelled)| *cancelled && !*delivered));
    let accepted = app
        .post(&path("accept"), Some(&worker.token), &json!({}))
        .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let live: Vec<_> = interview_reminders(&app, id)
            .await
            .into_iter()
            .filter(|(_, _, _, _, cancelled)| !cancelled)
            .collect();
        assert!(live.iter().all(|(kind, ..)| kind == "interview_open"));
        assert_eq!(live.len(), 2, "one call-open reminder each: {live:?}");
        if live.iter().all(|(_, _, _, delivered, _)| *delivered) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reminders not delivered: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for person in [&customer, &worker] {
        let inbox: Vec<Value> = app
            .get("/api/v1/me/notifications", Some(&person.token))
            .await
            .json()
            .await
            .expect("notifications");
        let opened: Vec<&Value> = inbox
            .iter()
            .filter(|note| note["kind"] == "interview_open")
            .collect();
        assert_eq!(opened.len(), 1, "{inbox:?}");
        assert_eq!(
            opened[0]["title"],
            "视频面试可以进入了 / Your video interview is open"
        );
    }

    // A cancellation cancels what is still waiting (nothing, here) and sends nothing more.
    let cancelled = app
        .post(
            &path("cancel"),
            Some(&customer.token),
            &json!({"reason": "已找到 / found someone"}),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    app.stop().await;
}
