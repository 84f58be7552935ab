//! Attacks on signing in: guessing passwords in parallel, through a stolen token, in bursts, by
//! code, as staff, and by deriving a registration.

use super::*;

async fn failures_of(app: &TestApp, scope: &str, subject: &str) -> i32 {
    sqlx::query_scalar("SELECT failures FROM sign_in_failures WHERE scope = $1 AND subject = $2")
        .bind(scope)
        .bind(subject)
        .fetch_optional(&app.pool)
        .await
        .expect("failures")
        .unwrap_or(0)
}

#[tokio::test]
async fn forty_parallel_password_guesses_across_two_processes_get_at_most_five_checked() {
    let app = spawn_app().await;
    let login = customer_with_login(&app).await;
    let first = ServerProcess::start(&app.database_url).await;
    let second = ServerProcess::start(&app.database_url).await;

    let guesses = (0..40).map(|index| {
        let base = if index % 2 == 0 {
            &first.address
        } else {
            &second.address
        };
        app.client
            .post(format!("{base}/api/v1/sessions"))
            .json(&json!({"login": login, "password": format!("guess-number-{index}")}))
            .send()
    });
    let mut checked = 0;
    let mut refused = 0;
    for response in join_all(guesses).await {
        let response = response.expect("request");
        match response.status() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                refused += 1;
            }
            other => panic!(
                "unexpected {other}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
    assert!(
        (1..=5).contains(&checked),
        "{checked} guesses were checked, {refused} refused"
    );
    assert_eq!(checked + refused, 40);
    // Every guess that was checked counted, and the account is locked, even for the right
    // password.
    assert_eq!(failures_of(&app, "login", &login).await, checked);
    let right = app
        .post(
            "/api/v1/sessions",
            None,
            &json!({"login": login, "password": "the-right-password"}),
        )
        .await;
    if checked == 5 {
        assert_problem(right, StatusCode::TOO_MANY_REQUESTS, "/problems/locked-out").await;
    }
    first.terminate().await;
    second.terminate().await;
    app.stop().await;
}

#[tokio::test]
async fn a_stolen_access_token_cannot_guess_the_password_through_a_password_change() {
    let app = spawn_app().await;
    let login = customer_with_login(&app).await;
    let holder = app.sign_in(&login, "the-right-password").await;
    let change = |current: &'static str| {
        app.client
            .post(app.url("/api/v1/me/password"))
            .bearer_auth(&holder.token)
            .json(&json!({"current_password": current, "new_password": "a-brand-new-password"}))
            .send()
    };
    // Parallel guesses at the current password: at most five are checked.
    let outcomes = join_all((0..12).map(|_| change("not-the-password"))).await;
    let statuses: Vec<StatusCode> = outcomes
        .into_iter()
        .map(|response| response.expect("request").status())
        .collect();
    let checked = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    assert!((1..=5).contains(&checked), "{statuses:?}");
    assert!(statuses.iter().all(|status| matches!(
        *status,
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
    )));
    // Once locked, not even the right current password changes it, and signing in is locked
    // too: the guesses counted against the account.
    while failures_of(&app, "login", &login).await < 5 {
        let wrong = change("not-the-password").await.expect("request");
        assert!(matches!(
            wrong.status(),
            StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
        ));
    }
    let right = change("the-right-password").await.expect("request");
    assert_problem(right, StatusCode::TOO_MANY_REQUESTS, "/problems/locked-out").await;
    let hash_unchanged = app
        .post(
            "/api/v1/sessions",
            None,
            &json!({"login": login, "password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(hash_unchanged.status(), StatusCode::TOO_MANY_REQUESTS);
    sqlx::query("UPDATE sign_in_failures SET locked_until = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .expect("expire the lock");
    app.sign_in(&login, "the-right-password").await;
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_sign_ins_beyond_the_hashing_pool_is_answered_busy_and_not_counted() {
    let app = tests::spawn_app_with(|settings| {
        settings.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
        settings.passwords = command_api::auth::PasswordLimits {
            workers: 1,
            queue: 1,
        };
    })
    .await;
    // Thirty clients at once, each at an unknown login (checked against the dummy hash).
    let attempts = (0..30).map(|index| {
        app.client
            .post(app.url("/api/v1/sessions"))
            .header("x-forwarded-for", format!("198.51.100.{}", index + 1))
            .json(&json!({"login": format!("nobody-{index}@example.com"), "password": "some-password"}))
            .send()
    });
    let mut busy = 0;
    let mut checked = 0;
    for response in join_all(attempts).await {
        let response = response.expect("request");
        match response.status() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                let problem: Value = response.json().await.expect("problem");
                assert_eq!(problem["type"], "/problems/busy", "{problem}");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0 && checked > 0, "{busy} busy, {checked} checked");
    // A busy answer judged nothing, so it counted as no failure.
    let counted: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(failures), 0)::bigint FROM sign_in_failures WHERE scope = 'login'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("failures");
    assert_eq!(counted, checked);
    let in_flight: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(in_flight), 0)::bigint FROM sign_in_failures")
            .fetch_one(&app.pool)
            .await
            .expect("in flight");
    assert_eq!(in_flight, 0, "every reservation was settled");
    app.stop().await;
}

#[tokio::test]
async fn parallel_code_requests_across_two_processes_send_one_code() {
    let app = spawn_app().await;
    let first = ServerProcess::start(&app.database_url).await;
    let second = ServerProcess::start(&app.database_url).await;
    let destination = "13500001111";
    let requests = (0..12).map(|index| {
        let base = if index % 2 == 0 {
            &first.address
        } else {
            &second.address
        };
        app.client
            .post(format!("{base}/api/v1/verification-codes"))
            .json(&json!({"purpose": "register", "destination": destination}))
            .send()
    });
    let statuses: Vec<StatusCode> = join_all(requests)
        .await
        .into_iter()
        .map(|response| response.expect("request").status())
        .collect();
    let sent = statuses
        .iter()
        .filter(|status| **status == StatusCode::ACCEPTED)
        .count();
    assert_eq!(sent, 1, "{statuses:?}");
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        11
    );
    let codes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM verification_codes WHERE destination = $1")
            .bind(destination)
            .fetch_one(&app.pool)
            .await
            .expect("codes");
    let messages: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox_messages WHERE destination = $1")
            .bind(destination)
            .fetch_one(&app.pool)
            .await
            .expect("messages");
    assert_eq!((codes, messages), (1, 1));
    first.terminate().await;
    second.terminate().await;
    app.stop().await;
}

#[tokio::test]
async fn staff_cannot_sign_in_by_code_until_they_turn_it_on() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let me: Value = app
        .get("/api/v1/me/security", Some(&admin.token))
        .await
        .json()
        .await
        .expect("security");
    assert_eq!(me["settings"]["sign_in_by_code"], false, "{me}");
    let login: String = sqlx::query_scalar("SELECT login FROM credentials WHERE user_id = $1")
        .bind(admin.id)
        .fetch_one(&app.pool)
        .await
        .expect("login");
    let before = app.mail.count_to(&login);
    let asked = app
        .post(
            "/api/v1/verification-codes",
            None,
            &json!({"purpose": "sign_in", "destination": login}),
        )
        .await;
    assert_eq!(
        asked.status(),
        StatusCode::ACCEPTED,
        "the answer tells nothing"
    );
    assert_eq!(app.mail.count_to(&login), before, "no code went out");
    // Turned on by the admin themself, a code signs them in.
    let turned_on = app
        .client
        .put(app.url("/api/v1/me/security"))
        .bearer_auth(&admin.token)
        .json(&json!({"sign_in_by_code": true, "new_sign_in_alert": true}))
        .send()
        .await
        .expect("request");
    assert_eq!(turned_on.status(), StatusCode::OK);
    sqlx::query("UPDATE verification_codes SET created_at = created_at - interval '2 minutes'")
        .execute(&app.pool)
        .await
        .expect("age codes");
    let code = app.code_for("sign_in", &login).await;
    let signed_in = app
        .post(
            "/api/v1/sessions/code",
            None,
            &json!({"login": login, "code": code}),
        )
        .await;
    assert_eq!(signed_in.status(), StatusCode::CREATED);
    app.stop().await;
}

#[tokio::test]
async fn an_anonymous_registration_id_cannot_be_derived_from_the_clients_key() {
    let app = spawn_app().await;
    let login = format!("keyed-{}@example.com", Uuid::new_v4().simple());
    let code = app.code_for("register", &login).await;
    let key = "the-key-everybody-uses";
    let body = json!({"kind": "customer", "login": login, "password": "a-good-password",
                      "name": "周先生", "verification_code": code});
    let register = || {
        app.client
            .post(app.url("/api/v1/accounts"))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let created = register().await.expect("request");
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.expect("account");
    let user_id: Uuid = created["user_id"]
        .as_str()
        .expect("user id")
        .parse()
        .expect("uuid");
    let from_key_alone = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("anjia:account::{key}").as_bytes(),
    );
    assert_ne!(user_id, from_key_alone);
    // A retry after a lost answer is still the same registration.
    let again: Value = register()
        .await
        .expect("request")
        .json()
        .await
        .expect("account");
    assert_eq!(again["user_id"], created["user_id"]);
    app.stop().await;
}
