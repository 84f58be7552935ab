//! Reviews: once per order inside the window, with stars, text and tags; the worker's single
//! reply; the default recorded when the window closes; admins hiding a review; the public list
//! with masked names and the rating summary, which feeds dispatch.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::assert_problem;
use uuid::Uuid;

#[tokio::test]
async fn a_review_is_given_once_answered_once_hidden_by_admins_and_summarised_for_everyone() {
    let app = tests::spawn_app_with(|settings| {
        settings.reviews.window = chrono::Duration::seconds(4);
        settings.reviews.schedule = "*/1 * * * * *".to_owned();
    })
    .await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let reviewed_worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let silent_worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
    let reviewed = app.served_order(&customer, &admin, &reviewed_worker).await;
    let review = |order_id: Uuid, body: Value| {
        let app = &app;
        let token = customer.token.clone();
        async move {
            app.post(
                &format!("/api/v1/orders/{order_id}/review"),
                Some(&token),
                &body,
            )
            .await
        }
    };
    for (bad, why) in [
        (
            json!({"quality": 6, "attitude": 4, "skill": 3}),
            "six stars",
        ),
        (
            json!({"quality": 5, "attitude": 4, "skill": 3, "tags": ["sparkly"]}),
            "an unknown tag",
        ),
    ] {
        let refused = review(reviewed, bad).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
    }
    let given = review(
        reviewed,
        json!({"quality": 5, "attitude": 4, "skill": 3, "comment": "打扫得很干净，就是来晚了一点",
               "tags": ["careful", "punctual", "careful"]}),
    )
    .await;
    assert_eq!(given.status(), StatusCode::OK);
    let twice = review(reviewed, json!({"quality": 1, "attitude": 1, "skill": 1})).await;
    assert_problem(twice, StatusCode::CONFLICT, "/problems/illegal-state").await;

    // The worker answers, once; nobody else may.
    let reply_path = format!("/api/v1/orders/{reviewed}/review/reply");
    let other = app
        .post(
            &reply_path,
            Some(&silent_worker.token),
            &json!({"reply": "x"}),
        )
        .await;
    assert_eq!(
        other.status(),
        StatusCode::NOT_FOUND,
        "another worker's order"
    );
    let replied = app
        .post(
            &reply_path,
            Some(&reviewed_worker.token),
            &json!({"reply": "谢谢您，下次一定准时 / thank you, I will be on time"}),
        )
        .await;
    assert_eq!(replied.status(), StatusCode::OK);
    let again = app
        .post(
            &reply_path,
            Some(&reviewed_worker.token),
            &json!({"reply": "again"}),
        )
        .await;
    assert_problem(again, StatusCode::CONFLICT, "/problems/illegal-state").await;

    // An order nobody reviews gets the default when its window closes; then it is too late.
    let silent = app.served_order(&customer, &admin, &silent_worker).await;
    app.wait_for_order(&customer.token, silent, |order| {
        order["status"] == "reviewed"
    })
    .await;
    let late = review(silent, json!({"quality": 1, "attitude": 1, "skill": 1})).await;
    assert_problem(late, StatusCode::CONFLICT, "/problems/illegal-state").await;

    // Anyone sees the reviews, the reviewer's name masked.
    app.wait_for_projections().await;
    let listed: Vec<Value> = app
        .get(
            &format!("/api/v1/workers/{}/reviews", reviewed_worker.id),
            None,
        )
        .await
        .json()
        .await
        .expect("reviews");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["reviewer"], "李**");
    assert_eq!(
        listed[0]["reply"],
        "谢谢您，下次一定准时 / thank you, I will be on time"
    );
    let codes: Vec<&str> = listed[0]["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|tag| tag["code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, ["careful", "punctual"], "sorted, without the repeat");
    assert_eq!(listed[0]["tags"][0]["zh"], "细致认真");
    let defaulted: Vec<Value> = app
        .get(
            &format!("/api/v1/workers/{}/reviews", silent_worker.id),
            None,
        )
        .await
        .json()
        .await
        .expect("reviews");
    assert_eq!(defaulted[0]["by_default"], true);
    assert_eq!(defaulted[0]["quality"], 5);

    let summary: Value = app
        .get(
            &format!("/api/v1/workers/{}/ratings", reviewed_worker.id),
            None,
        )
        .await
        .json()
        .await
        .expect("ratings");
    assert_eq!(summary["count"], 1);
    assert_eq!(summary["averages"]["quality"], 5.0);
    assert_eq!(summary["averages"]["attitude"], 4.0);
    assert_eq!(summary["averages"]["skill"], 3.0);
    assert_eq!(summary["averages"]["overall"], 4.0);
    assert_eq!(summary["distribution"], json!([0, 0, 0, 1, 0]));
    assert_eq!(summary["trend"].as_array().expect("trend").len(), 1);
    assert_eq!(summary["trend"][0]["reviews"], 1);
    assert_eq!(summary["tags"].as_array().expect("tags").len(), 2);
    let ratings_for_dispatch = || {
        let pool = app.pool.clone();
        let worker_id = reviewed_worker.id;
        async move {
            sqlx::query_scalar::<_, i32>(
                "SELECT reviews FROM read_worker_ratings WHERE worker_id = $1",
            )
            .bind(worker_id)
            .fetch_optional(&pool)
            .await
            .expect("ratings")
        }
    };
    assert_eq!(
        ratings_for_dispatch().await,
        Some(1),
        "ratings feed dispatch"
    );

    // Admins hide it, with a reason; it leaves the list, the summary and the dispatch score.
    let hide_path = format!("/api/v1/admin/orders/{reviewed}/review/hide");
    let by_customer = app
        .post(&hide_path, Some(&customer.token), &json!({"reason": "x"}))
        .await;
    assert_eq!(by_customer.status(), StatusCode::FORBIDDEN);
    let no_reason = app
        .post(&hide_path, Some(&admin.token), &json!({"reason": " "}))
        .await;
    assert_problem(
        no_reason,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let hidden = app
        .post(
            &hide_path,
            Some(&admin.token),
            &json!({"reason": "含有其他客户的电话号码 / contains another customer's phone number"}),
        )
        .await;
    assert_eq!(hidden.status(), StatusCode::OK);
    let twice = app
        .post(&hide_path, Some(&admin.token), &json!({"reason": "again"}))
        .await;
    assert_problem(twice, StatusCode::CONFLICT, "/problems/illegal-state").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        app.wait_for_projections().await;
        let summary: Value = app
            .get(
                &format!("/api/v1/workers/{}/ratings", reviewed_worker.id),
                None,
            )
            .await
            .json()
            .await
            .expect("ratings");
        if summary["count"] == 0 {
            assert_eq!(summary["averages"], Value::Null);
            break;
        }
        assert!(Instant::now() < deadline, "the hidden review still counts");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ratings_for_dispatch().await, Some(0));
    let listed: Vec<Value> = app
        .get(
            &format!("/api/v1/workers/{}/reviews", reviewed_worker.id),
            None,
        )
        .await
        .json()
        .await
        .expect("reviews");
    assert!(listed.is_empty());
    // Who hid it and why stays in the audit trail.
    let history: Vec<Value> = app
        .get(
            &format!("/api/v1/admin/audit/streams/order/{reviewed}"),
            Some(&admin.token),
        )
        .await
        .json()
        .await
        .expect("history");
    let hiding = history
        .iter()
        .find(|event| event["event_type"] == "ReviewHidden")
        .expect("the hiding");
    assert_eq!(hiding["metadata"]["actor_id"], admin.id.to_string());
    assert!(hiding["payload"]["ReviewHidden"]["reason"]
        .as_str()
        .expect("reason")
        .contains("phone"));
    app.stop().await;
}
