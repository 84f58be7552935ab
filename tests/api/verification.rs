use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, spawn_app};

#[tokio::test]
async fn an_email_code_arrives_over_smtp_in_chinese_and_english_and_registers_the_address() {
    let app = spawn_app().await;
    let address = format!("li-{}@example.com", uuid::Uuid::new_v4().simple());
    let code = app.code_for("register", &address).await;
    let mail = app.mail.latest_to(&address).await;
    assert_eq!(mail.from, "no-reply@anjia.test");
    let text = mail.text();
    assert!(
        text.contains("验证码") && text.contains("verification")
            || text.contains("Your Anjia code"),
        "{text}"
    );
    assert!(text.contains(&code));
    let registered = app
        .post(
            "/api/v1/accounts",
            None,
            &json!({"kind": "customer", "login": address, "verification_code": code, "password": "a-good-password", "name": "李先生"}),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    // A code works once.
    let again = app
        .post(
            "/api/v1/sessions/code",
            None,
            &json!({"login": address, "code": code}),
        )
        .await;
    assert_problem(
        again,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/bad-code",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_phone_registers_and_signs_in_by_sms_code() {
    let app = spawn_app().await;
    let phone = "13698765432";
    let code = app.code_for("register", "+86 136 9876 5432").await;
    let registered = app
        .post(
            "/api/v1/accounts",
            None,
            &json!({"kind": "customer", "login": phone, "verification_code": code, "password": "a-good-password", "name": "王先生"}),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    // The SMS resend window is a minute; let this test move past it.
    sqlx::query("UPDATE verification_codes SET created_at = created_at - interval '2 minutes'")
        .execute(&app.pool)
        .await
        .expect("age codes");
    let sign_in_code = app.code_for("sign_in", phone).await;
    let session = app
        .post(
            "/api/v1/sessions/code",
            None,
            &json!({"login": phone, "code": sign_in_code}),
        )
        .await;
    assert_eq!(session.status(), StatusCode::CREATED);
    let session: Value = session.json().await.expect("json");
    let me: Value = app
        .get("/api/v1/me", session["access_token"].as_str())
        .await
        .json()
        .await
        .expect("me");
    assert_eq!(me["login"], "136****5432");
    app.stop().await;
}

#[tokio::test]
async fn codes_are_rate_limited_per_destination_and_limited_in_attempts() {
    let app = spawn_app().await;
    let address = format!("busy-{}@example.com", uuid::Uuid::new_v4().simple());
    app.code_for("register", &address).await;
    let too_soon = app
        .post_in_english(
            "/api/v1/verification-codes",
            None,
            &json!({"purpose": "register", "destination": address}),
        )
        .await;
    assert!(too_soon.headers().get("retry-after").is_some());
    let problem = assert_problem(
        too_soon,
        StatusCode::TOO_MANY_REQUESTS,
        "/problems/code-send-limited",
    )
    .await;
    // Nothing failed, and the answer does not say so.
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("less than a minute ago"), "{problem}");
    assert!(!detail.contains("failed"), "{problem}");
    assert_eq!(app.mail.count_to(&address), 1);

    // Five wrong guesses spend the code: the right one no longer works.
    let code: String = app.mail.latest_to(&address).await.code().expect("code");
    let wrong = if code == "999999" { "000000" } else { "999999" };
    let body = |code: &str| json!({"kind": "customer", "login": address, "verification_code": code, "password": "a-good-password", "name": "忙"});
    for _ in 0..5 {
        let guessed = app.post("/api/v1/accounts", None, &body(wrong)).await;
        assert_problem(
            guessed,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/bad-code",
        )
        .await;
    }
    let right_too_late = app.post("/api/v1/accounts", None, &body(&code)).await;
    assert_problem(
        right_too_late,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/bad-code",
    )
    .await;

    // An expired code is refused too.
    sqlx::query("UPDATE verification_codes SET created_at = created_at - interval '20 minutes', expires_at = now() - interval '1 minute', attempts = 0")
        .execute(&app.pool)
        .await
        .expect("expire");
    let expired = app.post("/api/v1/accounts", None, &body(&code)).await;
    assert_problem(
        expired,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/bad-code",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_password_reset_by_code_sets_the_password_and_signs_out_everywhere() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let me: Value = app
        .get("/api/v1/me", Some(&customer.token))
        .await
        .json()
        .await
        .expect("me");
    let login = me["login"].as_str().expect("login").to_owned();
    sqlx::query("UPDATE verification_codes SET created_at = created_at - interval '2 minutes'")
        .execute(&app.pool)
        .await
        .expect("age codes");
    // Nobody is told whether an account exists: an unknown address gets the same answer and no mail.
    let unknown = app
        .post(
            "/api/v1/verification-codes",
            None,
            &json!({"purpose": "reset_password", "destination": "nobody@example.com"}),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    assert_eq!(app.mail.count_to("nobody@example.com"), 0);

    let code = app.code_for("reset_password", &login).await;
    let weak = app
        .post(
            "/api/v1/password-resets",
            None,
            &json!({"login": login, "code": code, "new_password": "short"}),
        )
        .await;
    assert_problem(
        weak,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let reset = app
        .post(
            "/api/v1/password-resets",
            None,
            &json!({"login": login, "code": code, "new_password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get("/api/v1/me", Some(&customer.token)).await,
        StatusCode::UNAUTHORIZED,
        "/problems/unauthenticated",
    )
    .await;
    app.sign_in(&login, "a-brand-new-password").await;
    app.stop().await;
}

#[tokio::test]
async fn the_http_sms_adapter_posts_to_the_configured_gateway_with_its_token() {
    use std::sync::{Arc, Mutex};
    /// What the gateway saw: the Authorization header and the JSON body of each call.
    type Calls = Arc<Mutex<Vec<(Option<String>, Value)>>>;
    let received: Calls = Arc::default();
    let store = received.clone();
    let gateway = axum::Router::new().route(
        "/send",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let store = store.clone();
                async move {
                    let token = headers
                        .get("authorization")
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned);
                    store.lock().expect("lock").push((token, body));
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, gateway).await });

    let app = spawn_app().await;
    let settings = adapters::notify::NotifySettings {
        sms_gateway_url: Some(format!("http://{address}/send")),
        sms_gateway_token: Some("gateway-secret".into()),
        ..Default::default()
    };
    let notifier = settings.build(&app.pool).expect("notifier");
    notifier
        .sms
        .send("13800001111", "【安家】您的验证码是 123456")
        .await
        .expect("sent");
    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0.as_deref(), Some("Bearer gateway-secret"));
    assert_eq!(
        received[0].1,
        json!({"phone": "13800001111", "text": "【安家】您的验证码是 123456"})
    );
    // Nothing went to the development outbox.
    let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox_messages")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(outbox, 0);
    app.stop().await;
}
