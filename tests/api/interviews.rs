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
