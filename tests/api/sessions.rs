use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, spawn_app, TestApp, User};

async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.post(
        "/api/v1/sessions/refresh",
        None,
        &json!({"refresh_token": refresh_token}),
    )
    .await
}

#[tokio::test]
async fn refreshing_rotates_the_token_and_reusing_a_spent_one_revokes_the_session() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;

    let first = refresh(&app, &customer.refresh_token).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let rotated: Value = first.json().await.expect("json");
    assert_ne!(rotated["refresh_token"], customer.refresh_token.as_str());
    assert_eq!(rotated["session_id"], customer.session_id.to_string());
    let new_access = rotated["access_token"].as_str().expect("token").to_owned();
    assert_eq!(
        app.get("/api/v1/me", Some(&new_access)).await.status(),
        StatusCode::OK
    );

    // The spent token comes back: somebody copied it. The whole family is revoked.
    let replayed = refresh(&app, &customer.refresh_token).await;
    assert_problem(
        replayed,
        StatusCode::UNAUTHORIZED,
        "/problems/unauthenticated",
    )
    .await;
    let newest = refresh(&app, rotated["refresh_token"].as_str().expect("token")).await;
    assert_problem(
        newest,
        StatusCode::UNAUTHORIZED,
        "/problems/unauthenticated",
    )
    .await;
    for token in [&customer.token, &new_access] {
        let refused = app.get("/api/v1/me", Some(token)).await;
        assert_problem(
            refused,
            StatusCode::UNAUTHORIZED,
            "/problems/unauthenticated",
        )
        .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn two_concurrent_refreshes_with_one_token_cannot_both_succeed() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let attempts = (0..4).map(|_| refresh(&app, &customer.refresh_token));
    let statuses: Vec<StatusCode> = join_all(attempts)
        .await
        .iter()
        .map(|response| response.status())
        .collect();
    let successes = statuses
        .iter()
        .filter(|status| **status == StatusCode::CREATED)
        .count();
    assert!(successes <= 1, "{statuses:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_person_lists_sessions_revokes_one_and_a_password_change_revokes_the_others() {
    let app = spawn_app().await;
    let login = format!("multi-{}@example.com", uuid::Uuid::new_v4().simple());
    let registered = app
        .register(json!({"kind": "customer", "login": login, "password": "first-password", "name": "陈先生", "phone": "13812345678"}),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let phone: User = app.sign_in(&login, "first-password").await;
    let laptop: User = app.sign_in(&login, "first-password").await;
    let tablet: User = app.sign_in(&login, "first-password").await;

    let sessions: Vec<Value> = app
        .get("/api/v1/sessions", Some(&phone.token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(sessions.len(), 3);
    assert_eq!(
        sessions
            .iter()
            .filter(|session| session["current"] == true)
            .count(),
        1
    );

    let revoked = app
        .client
        .delete(app.url(&format!("/api/v1/sessions/{}", tablet.session_id)))
        .bearer_auth(&phone.token)
        .send()
        .await
        .expect("request");
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get("/api/v1/me", Some(&tablet.token)).await,
        StatusCode::UNAUTHORIZED,
        "/problems/unauthenticated",
    )
    .await;
    // Someone else's session id is not found, not revoked.
    let stranger = app.register_customer().await;
    let foreign = app
        .client
        .delete(app.url(&format!("/api/v1/sessions/{}", laptop.session_id)))
        .bearer_auth(&stranger.token)
        .send()
        .await
        .expect("request");
    assert_problem(foreign, StatusCode::NOT_FOUND, "/problems/not-found").await;

    let wrong = app
        .post(
            "/api/v1/me/password",
            Some(&phone.token),
            &json!({"current_password": "nope-nope-nope", "new_password": "second-password"}),
        )
        .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "/problems/bad-credentials").await;
    let changed = app
        .post(
            "/api/v1/me/password",
            Some(&phone.token),
            &json!({"current_password": "first-password", "new_password": "second-password"}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/me", Some(&phone.token)).await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.get("/api/v1/me", Some(&laptop.token)).await,
        StatusCode::UNAUTHORIZED,
        "/problems/unauthenticated",
    )
    .await;
    assert_problem(
        refresh(&app, &laptop.refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "/problems/unauthenticated",
    )
    .await;
    let old_password = app
        .post(
            "/api/v1/sessions",
            None,
            &json!({"login": login, "password": "first-password"}),
        )
        .await;
    assert_problem(
        old_password,
        StatusCode::UNAUTHORIZED,
        "/problems/bad-credentials",
    )
    .await;
    app.sign_in(&login, "second-password").await;
    app.stop().await;
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account_out_even_for_the_right_password() {
    let app = spawn_app().await;
    let login = format!("target-{}@example.com", uuid::Uuid::new_v4().simple());
    let registered = app
        .register(json!({"kind": "customer", "login": login, "password": "the-right-password", "name": "黄女士", "phone": "13812345678"}),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    for _ in 0..4 {
        let wrong = app
            .post(
                "/api/v1/sessions",
                None,
                &json!({"login": login, "password": "a-wrong-password"}),
            )
            .await;
        assert_problem(wrong, StatusCode::UNAUTHORIZED, "/problems/bad-credentials").await;
    }
    let fifth = app
        .post(
            "/api/v1/sessions",
            None,
            &json!({"login": login, "password": "a-wrong-password"}),
        )
        .await;
    // The fifth wrong password is still told it is wrong, and locks: five lock, as documented.
    assert_problem(fifth, StatusCode::UNAUTHORIZED, "/problems/bad-credentials").await;
    let locked = app
        .post(
            "/api/v1/sessions",
            None,
            &json!({"login": login, "password": "the-right-password"}),
        )
        .await;
    let retry_after: i64 = locked
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("Retry-After");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_problem(
        locked,
        StatusCode::TOO_MANY_REQUESTS,
        "/problems/locked-out",
    )
    .await;
    // The address is locked too: guessing at another account from it is refused as well.
    let other = app
        .post(
            "/api/v1/sessions",
            None,
            &json!({"login": "someone-else@example.com", "password": "whatever-it-is"}),
        )
        .await;
    assert_problem(other, StatusCode::TOO_MANY_REQUESTS, "/problems/locked-out").await;
    // When the lock runs out, the right password works and clears the account's count.
    sqlx::query("UPDATE sign_in_failures SET locked_until = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .expect("expire the lock");
    app.sign_in(&login, "the-right-password").await;
    app.stop().await;
}

#[tokio::test]
async fn security_settings_switch_off_code_sign_in_and_new_sign_ins_are_reported() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let notes: Vec<Value> = app
        .get("/api/v1/me/notifications", Some(&customer.token))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        notes.iter().any(|note| note["kind"] == "new_sign_in"),
        "{notes:?}"
    );
    let view: Value = app
        .get("/api/v1/me/security", Some(&customer.token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        view["settings"],
        json!({"sign_in_by_code": true, "new_sign_in_alert": true})
    );
    assert_eq!(view["live_sessions"], 1);

    let me: Value = app
        .get("/api/v1/me", Some(&customer.token))
        .await
        .json()
        .await
        .expect("json");
    let login = me["login"].as_str().expect("login").to_owned();
    let changed = app
        .client
        .put(app.url("/api/v1/me/security"))
        .bearer_auth(&customer.token)
        .json(&json!({"sign_in_by_code": false, "new_sign_in_alert": false}))
        .send()
        .await
        .expect("request");
    assert_eq!(changed.status(), StatusCode::OK);
    sqlx::query("UPDATE verification_codes SET created_at = created_at - interval '2 minutes'")
        .execute(&app.pool)
        .await
        .expect("age codes");
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
        "the answer does not reveal the setting"
    );
    assert_eq!(
        app.mail.count_to(&login),
        before,
        "no code is sent when code sign-in is off"
    );
    let refused = app
        .post(
            "/api/v1/sessions/code",
            None,
            &json!({"login": login, "code": "123456"}),
        )
        .await;
    assert_problem(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/bad-code",
    )
    .await;
    let bad = app
        .client
        .put(app.url("/api/v1/me/security"))
        .bearer_auth(&customer.token)
        .json(&json!({"sign_in_by_code": "sometimes"}))
        .send()
        .await
        .expect("request");
    assert_problem(
        bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_lock_outs_follow_the_forwarded_client_address() {
    let app = tests::spawn_app_with(|settings| {
        settings.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")]
    })
    .await;
    let customer = app.register_customer().await;
    let me: Value = app
        .get("/api/v1/me", Some(&customer.token))
        .await
        .json()
        .await
        .expect("json");
    let login = me["login"].as_str().expect("login").to_owned();
    let from = |address: &'static str, body: Value| {
        app.client
            .post(app.url("/api/v1/sessions"))
            .header("x-forwarded-for", address)
            .json(&body)
            .send()
    };
    for _ in 0..6 {
        let wrong = from(
            "198.51.100.1",
            json!({"login": "nobody@example.com", "password": "wrong-password"}),
        )
        .await
        .expect("request");
        assert!(matches!(
            wrong.status(),
            StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
        ));
    }
    let locked = from(
        "198.51.100.1",
        json!({"login": login, "password": "a-good-password"}),
    )
    .await
    .expect("request");
    assert_problem(
        locked,
        StatusCode::TOO_MANY_REQUESTS,
        "/problems/locked-out",
    )
    .await;
    // Another client behind the same proxy is not affected.
    let other = from(
        "198.51.100.2",
        json!({"login": login, "password": "a-good-password"}),
    )
    .await
    .expect("request");
    assert_eq!(other.status(), StatusCode::CREATED);
    // The session records the client, not the proxy.
    let recorded: Option<String> =
        sqlx::query_scalar("SELECT client_ip FROM sessions ORDER BY created_at DESC LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .expect("session");
    assert_eq!(recorded.as_deref(), Some("198.51.100.2"));
    app.stop().await;
}
