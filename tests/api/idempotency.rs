use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use tests::{assert_problem, order_body, spawn_app, ServerProcess};

#[tokio::test]
async fn a_retried_request_returns_the_first_response_and_appends_nothing() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let other_process = ServerProcess::start(&app.database_url).await;
    let body = order_body();

    let first = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", "order-retry-1")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_location = first.headers().get("location").cloned().expect("location");
    let first_body: Value = first.json().await.expect("json");
    let events_after_first = app.event_count().await;

    // Retries, some concurrent and some through another process, all see the first answer.
    let retries = (0..6).map(|index| {
        let base = if index % 2 == 0 {
            app.address.clone()
        } else {
            other_process.address.clone()
        };
        app.client
            .post(format!("{base}/api/v1/orders"))
            .bearer_auth(&customer.token)
            .header("Idempotency-Key", "order-retry-1")
            .json(&body)
            .send()
    });
    for response in join_all(retries).await {
        let response = response.expect("request");
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers().get("location"), Some(&first_location));
        assert_eq!(
            response
                .headers()
                .get("idempotent-replayed")
                .map(|value| value.as_bytes()),
            Some(&b"true"[..])
        );
        let replayed: Value = response.json().await.expect("json");
        assert_eq!(replayed, first_body);
    }
    assert_eq!(app.event_count().await, events_after_first);

    // The same key with a different body is a client error, not a silent replay.
    let mut different = body.clone();
    different["quantity"] = 4.into();
    let reused = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", "order-retry-1")
        .json(&different)
        .send()
        .await
        .expect("request");
    assert_problem(
        reused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/idempotency-key-reused",
    )
    .await;
    assert_eq!(app.event_count().await, events_after_first);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_first_attempts_with_one_key_execute_once() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let before = app.event_count().await;
    let body = order_body();
    let attempts = (0..8).map(|_| {
        app.client
            .post(app.url("/api/v1/orders"))
            .bearer_auth(&customer.token)
            .header("Idempotency-Key", "race-1")
            .json(&body)
            .send()
    });
    let mut created = 0;
    for response in join_all(attempts).await {
        let response = response.expect("request");
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {
                assert_problem(
                    response,
                    StatusCode::CONFLICT,
                    "/problems/idempotency-in-progress",
                )
                .await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(created >= 1);
    // Placing an order appends two events, exactly once.
    assert_eq!(app.event_count().await, before + 2);
    app.stop().await;
}

#[tokio::test]
async fn a_passing_refusal_is_not_bound_to_the_key_so_a_later_retry_runs() {
    let app = spawn_app().await;
    let address = format!("retry-{}@example.com", uuid::Uuid::new_v4().simple());
    let request = || {
        app.client
            .post(app.url("/api/v1/verification-codes"))
            .header("Idempotency-Key", "code-retry-1")
            .json(&serde_json::json!({"purpose": "register", "destination": address}))
            .send()
    };
    app.code_for("register", &address).await;
    // Too soon after the first code: a send limit, which passes.
    let too_soon = request().await.expect("request");
    assert_problem(
        too_soon,
        StatusCode::TOO_MANY_REQUESTS,
        "/problems/code-send-limited",
    )
    .await;
    sqlx::query("UPDATE verification_codes SET created_at = created_at - interval '2 minutes'")
        .execute(&app.pool)
        .await
        .expect("age codes");
    // The same key, later: the request runs instead of replaying the lock-out.
    let later = request().await.expect("request");
    assert_eq!(later.status(), StatusCode::ACCEPTED);
    assert!(later.headers().get("idempotent-replayed").is_none());
    assert_eq!(app.mail.count_to(&address), 2);
    app.stop().await;
}

#[tokio::test]
async fn stored_responses_are_purged_after_their_retention_and_a_late_retry_still_creates_no_twin()
{
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let body = order_body();
    let send = || {
        app.client
            .post(app.url("/api/v1/orders"))
            .bearer_auth(&customer.token)
            .header("Idempotency-Key", "old-key")
            .json(&body)
            .send()
    };
    assert_eq!(send().await.expect("request").status(), StatusCode::CREATED);
    sqlx::query("UPDATE idempotency SET created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .expect("age");
    let removed = application::jobs::purge_expired(&app.pool)
        .await
        .expect("purge");
    assert_eq!(removed, Some(1));
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idempotency")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(stored, 0);
    // The key no longer replays, but the order id it derives is taken: no second order.
    let events_before = app.event_count().await;
    let late = send().await.expect("request");
    assert_problem(late, StatusCode::CONFLICT, "/problems/illegal-state").await;
    assert_eq!(app.event_count().await, events_before);
    app.stop().await;
}

#[tokio::test]
async fn the_claim_the_events_and_the_stored_answer_commit_as_one_transaction() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let placed = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", "one-commit-1")
        .json(&order_body())
        .send()
        .await
        .expect("request");
    assert_eq!(placed.status(), StatusCode::CREATED);
    // The stored answer's row version was written by the transaction that appended the events.
    let answered_by: String = sqlx::query_scalar(
        "SELECT xmin::text FROM idempotency WHERE key = 'one-commit-1' AND status = 201",
    )
    .fetch_one(&app.pool)
    .await
    .expect("the stored answer");
    let appended_by: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT transaction_id::text FROM events
          WHERE metadata->>'idempotency_key' = 'one-commit-1'",
    )
    .fetch_all(&app.pool)
    .await
    .expect("the order's events");
    assert_eq!(appended_by, vec![answered_by.clone()]);
    // The answer names where its events landed, as the stored answer does.
    let position = tests::position_of(&placed);
    let stored: String =
        sqlx::query_scalar("SELECT log_position FROM idempotency WHERE key = 'one-commit-1'")
            .fetch_one(&app.pool)
            .await
            .expect("the stored position");
    assert_eq!(position, stored);
    assert!(
        position.starts_with(&format!("{answered_by}-")),
        "{position}"
    );
    app.stop().await;
}

/// A request's unit begins no transaction while it has written one command: the command's
/// events, the key's claim and the answer go in with one statement at the end. Should the
/// stream move on between the decision and that statement, nothing of the unit stands and it
/// says to run the request again; a second command begins the transaction at once.
#[tokio::test]
async fn a_lazy_unit_lands_its_one_command_with_its_claim_or_nothing_when_the_stream_moved() {
    use application::commands::{Answer, Claim, CommandContext, Finished, Unit, UnitEnd};
    use domain::customer::CustomerCommand;

    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let services = app.services();
    let context = CommandContext::system();
    let groups = |name: &str| CustomerCommand::SetGroups {
        by: domain::Actor::system(),
        groups: vec![name.to_owned()],
        now: chrono::Utc::now(),
    };
    let claim = |key: &str| Claim {
        caller: customer.id.to_string(),
        key: key.to_owned(),
        method: "POST".to_owned(),
        route: "/test".to_owned(),
        request_hash: vec![1],
    };
    let answer = Answer {
        status: 200,
        body: b"{}",
        content_type: Some("application/json".to_owned()),
        location: None,
        log_position: None,
    };
    let events = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events WHERE aggregate_id = $1")
            .bind(customer.id.to_string())
            .fetch_one(&app.pool)
            .await
            .expect("count")
    };
    let pool = &app.pool;
    let claimed = |key: &'static str| async move {
        sqlx::query_as::<_, (Option<String>, String)>(
            "SELECT log_position, xmin::text FROM idempotency WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(pool)
        .await
        .expect("claim")
    };
    // Decides the command inside whichever unit runs it.
    let (context, groups) = (&context, &groups);
    let set = |name: &'static str| async move {
        services
            .customers
            .execute(customer.id, groups(name), context)
            .await
            .map(drop)
            .expect("decided");
    };
    let start = events().await;

    // Lazy to the end: nothing is written until the one statement.
    let unit = Unit::lazy(services.units.clone(), claim("lazy-1"));
    unit.run(set("a")).await;
    assert_eq!(events().await, start, "the command waits for the end");
    let UnitEnd::Lazy(waiting) = unit.end().await else {
        panic!("a unit with one command stays lazy");
    };
    let Finished::Committed(Some(landed)) = waiting
        .finish(&claim("lazy-1"), &answer)
        .await
        .expect("finish")
    else {
        panic!("the command and the claim landed");
    };
    assert_eq!(events().await, start + 1);
    let (position, claimed_by) = claimed("lazy-1").await.expect("the claim");
    assert_eq!(
        position,
        Some(format!("{}-{}", landed.transaction_id, landed.position))
    );
    assert_eq!(
        landed.transaction_id % (1 << 32),
        claimed_by.parse::<u64>().expect("xid"),
        "one transaction"
    );

    // Another writer moves the stream on after the decision: the statement fails whole.
    let unit = Unit::lazy(services.units.clone(), claim("lazy-2"));
    unit.run(set("b")).await;
    set("c").await;
    let UnitEnd::Lazy(waiting) = unit.end().await else {
        panic!("still lazy");
    };
    assert!(matches!(
        waiting
            .finish(&claim("lazy-2"), &answer)
            .await
            .expect("finish"),
        Finished::Surprised
    ));
    assert_eq!(events().await, start + 2, "only the other writer's event");
    assert!(claimed("lazy-2").await.is_none(), "and no claim");

    // A second command begins the transaction, with the first appended before it.
    let unit = Unit::lazy(services.units.clone(), claim("lazy-3"));
    unit.run(async {
        set("d").await;
        set("e").await;
    })
    .await;
    let UnitEnd::Open(mut transaction) = unit.end().await else {
        panic!("a second command begins the transaction");
    };
    let inside: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'CustomerGroupsSet'->'groups'->>0 FROM events
          WHERE aggregate_id = $1 AND transaction_id = pg_current_xact_id() ORDER BY sequence",
    )
    .bind(customer.id.to_string())
    .fetch_all(&mut *transaction)
    .await
    .expect("the transaction's events");
    assert_eq!(
        inside,
        ["d", "e"],
        "both commands, the first appended first"
    );
    transaction.rollback().await.expect("rollback");
    assert_eq!(events().await, start + 2, "rolled back: nothing of it");
    app.stop().await;
}
