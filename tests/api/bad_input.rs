use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, order_body, spawn_app};
use uuid::Uuid;

fn with(mut body: Value, pointer: &str, value: Value) -> Value {
    *body.pointer_mut(pointer).expect("field exists") = value;
    body
}

#[tokio::test]
async fn bad_input_gets_a_problem_document_and_appends_nothing() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let admin = app.create_admin().await;
    let existing_order = app.place_order(&customer).await;
    let before = app.event_count().await;

    let oversized = json!({"reason": "很".repeat(100_000)});
    // (path, raw body or JSON, content type, expected status, expected problem type)
    let cases: Vec<(&str, String, &str, StatusCode, &str)> = vec![
        (
            "/api/v1/orders",
            "{\"service\": ".into(),
            "application/json",
            StatusCode::BAD_REQUEST,
            "/problems/bad-request",
        ),
        (
            "/api/v1/orders",
            order_body().to_string(),
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "/problems/unsupported-media-type",
        ),
        (
            "/api/v1/orders",
            with(order_body(), "/quantity", json!("three")).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        ),
        (
            "/api/v1/orders",
            with(order_body(), "/service", json!("window_washing")).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        ),
        (
            "/api/v1/orders",
            with(order_body(), "/unit_price", json!(-100)).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        ),
        (
            "/api/v1/orders",
            with(order_body(), "/unit_price", json!(100)).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        ),
        (
            "/api/v1/orders",
            with(order_body(), "/quantity", json!(0)).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        ),
        (
            "/api/v1/orders",
            with(
                order_body(),
                "/scheduled_start",
                json!("2001-01-01T00:00:00Z"),
            )
            .to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        ),
        (
            "/api/v1/orders",
            with(order_body(), "/address/contact_phone", json!("12345")).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        ),
        (
            "/api/v1/orders",
            with(order_body(), "/address/city", json!("   ")).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        ),
        (
            "/api/v1/orders",
            with(order_body(), "/address/location/latitude", json!(123.0)).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        ),
        (
            "/api/v1/orders",
            with(order_body(), "/duration_minutes", json!(5)).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        ),
        (
            "/api/v1/orders",
            json!({"surprise": true}).to_string(),
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        ),
        (
            "/api/v1/orders",
            oversized.to_string(),
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "/problems/payload-too-large",
        ),
        (
            "/api/v1/orders/not-a-uuid/cancel",
            json!({"reason": "x"}).to_string(),
            "application/json",
            StatusCode::NOT_FOUND,
            "/problems/not-found",
        ),
    ];
    for (path, body, content_type, status, problem_type) in cases {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&customer.token)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            status,
            "{path} {}",
            &body[..body.len().min(120)]
        );
        assert_problem(response, status, problem_type).await;
    }

    // Unknown ids, and commands that do not fit the state, are refused too.
    let unknown = Uuid::new_v4();
    let cancel_unknown = app
        .post(
            &format!("/api/v1/orders/{unknown}/cancel"),
            Some(&customer.token),
            &json!({"reason": "不要了"}),
        )
        .await;
    assert_problem(cancel_unknown, StatusCode::NOT_FOUND, "/problems/not-found").await;
    let show_unknown = app
        .get(&format!("/api/v1/orders/{unknown}"), Some(&customer.token))
        .await;
    assert_problem(show_unknown, StatusCode::NOT_FOUND, "/problems/not-found").await;
    let underpaid = app
        .post(
            &format!("/api/v1/orders/{existing_order}/payments"),
            Some(&admin.token),
            &json!({"reference": "R", "amount": 1}),
        )
        .await;
    assert_problem(
        underpaid,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let negative = app
        .post(
            &format!("/api/v1/orders/{existing_order}/payments"),
            Some(&admin.token),
            &json!({"reference": "R", "amount": -15000}),
        )
        .await;
    assert_problem(
        negative,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let early_dispatch = app
        .post(
            &format!("/api/v1/orders/{existing_order}/dispatch"),
            Some(&admin.token),
            &json!({}),
        )
        .await;
    let problem = assert_problem(
        early_dispatch,
        StatusCode::CONFLICT,
        "/problems/illegal-state",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("待支付"),
        "{problem}"
    );
    let bad_list = app
        .get("/api/v1/orders?status=teleported", Some(&admin.token))
        .await;
    assert_problem(
        bad_list,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let bad_cursor = app
        .get("/api/v1/orders?cursor=garbage", Some(&admin.token))
        .await;
    assert_problem(
        bad_cursor,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;

    let wrong_method = app
        .client
        .delete(app.url("/api/v1/catalogue"))
        .send()
        .await
        .expect("request");
    assert_problem(
        wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "/problems/method-not-allowed",
    )
    .await;
    let nowhere = app.get("/api/v1/nowhere", None).await;
    assert_problem(nowhere, StatusCode::NOT_FOUND, "/problems/not-found").await;

    assert_eq!(
        app.event_count().await,
        before,
        "refused requests appended events"
    );
    app.stop().await;
}

#[tokio::test]
async fn registration_refuses_bad_codes_weak_passwords_duplicate_logins_and_bad_sign_ins() {
    let app = spawn_app().await;
    let code = app.code_for("register", "Mei@Example.com").await;
    let body = json!({"kind": "customer", "login": "Mei@Example.com", "verification_code": code, "password": "long-enough-1", "name": "梅", "phone": "13912345678"});
    let wrong_code = if code == "000000" { "111111" } else { "000000" };
    let guessed = app
        .post(
            "/api/v1/accounts",
            None,
            &with(body.clone(), "/verification_code", json!(wrong_code)),
        )
        .await;
    assert_problem(
        guessed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/bad-code",
    )
    .await;
    let mut without_code = body.clone();
    without_code
        .as_object_mut()
        .expect("object")
        .remove("verification_code");
    let missing = app.post("/api/v1/accounts", None, &without_code).await;
    assert_problem(
        missing,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let weak = app
        .post(
            "/api/v1/accounts",
            None,
            &with(body.clone(), "/password", json!("short")),
        )
        .await;
    assert_problem(
        weak,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let bad_phone = app
        .post(
            "/api/v1/accounts",
            None,
            &with(body.clone(), "/phone", json!("1234")),
        )
        .await;
    assert_problem(
        bad_phone,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let worker_without_profile = app
        .post(
            "/api/v1/accounts",
            None,
            &with(body.clone(), "/kind", json!("worker")),
        )
        .await;
    assert_problem(
        worker_without_profile,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;

    // The right code, after one wrong guess, still works once.
    assert_eq!(
        app.post("/api/v1/accounts", None, &body).await.status(),
        StatusCode::CREATED
    );
    let duplicate = app
        .post(
            "/api/v1/accounts",
            None,
            &with(body, "/login", json!("mei@example.com")),
        )
        .await;
    assert_problem(duplicate, StatusCode::CONFLICT, "/problems/conflict").await;
    let wrong = app
        .post(
            "/api/v1/sessions",
            None,
            &json!({"login": "mei@example.com", "password": "wrong-password"}),
        )
        .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "/problems/bad-credentials").await;
    let user = app.sign_in("MEI@example.com", "long-enough-1").await;
    assert_eq!(user.role, "customer");
    app.stop().await;
}

/// A problem is written in the language the request asks for (Chinese unless it asks for
/// English), with the same stable code in both; a domain refusal's code names the refusal.
#[tokio::test]
async fn problems_speak_the_language_asked_for_and_carry_a_stable_code() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let admin = app.create_admin().await;
    let unpaid = app.place_order(&customer).await;
    let ask = |language: Option<&'static str>, path: String, token: Option<String>, body: Value| {
        let app = &app;
        async move {
            let mut request = app.client.post(app.url(&path)).json(&body);
            if let Some(language) = language {
                request = request.header("accept-language", language);
            }
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("request");
            let status = response.status();
            (status, response.json::<Value>().await.expect("a problem"))
        }
    };
    let wrong_password = json!({"login": "nobody@example.com", "password": "not-the-password"});
    for (language, detail, title) in [
        (None, "登录名或密码错误", "未登录"),
        (
            Some("zh-CN,zh;q=0.9,en;q=0.8"),
            "登录名或密码错误",
            "未登录",
        ),
        (
            Some("en-US,en;q=0.9"),
            "wrong login or password",
            "Unauthenticated",
        ),
        (
            Some("fr, en;q=0.5"),
            "wrong login or password",
            "Unauthenticated",
        ),
    ] {
        let (status, problem) = ask(
            language,
            "/api/v1/sessions".into(),
            None,
            wrong_password.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(problem["detail"], detail, "{language:?}: {problem}");
        assert_eq!(problem["title"], title, "{language:?}: {problem}");
        assert_eq!(problem["code"], "bad-credentials", "{problem}");
    }
    // The domain's refusal: dispatching an order that awaits payment.
    let dispatch = format!("/api/v1/orders/{unpaid}/dispatch");
    let (status, chinese) = ask(None, dispatch.clone(), Some(admin.token.clone()), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, english) = ask(Some("en"), dispatch, Some(admin.token.clone()), json!({})).await;
    assert_eq!(chinese["code"], "order.illegal-transition", "{chinese}");
    assert_eq!(english["code"], chinese["code"]);
    assert_eq!(chinese["type"], english["type"]);
    let chinese = chinese["detail"].as_str().unwrap_or_default();
    let english = english["detail"].as_str().unwrap_or_default();
    assert!(
        chinese.contains("待支付") && !chinese.contains(" / "),
        "{chinese}"
    );
    assert!(
        !chinese.chars().any(|c| c.is_ascii_alphabetic()),
        "{chinese}"
    );
    assert!(
        english.contains("awaiting payment") && !english.contains("待支付"),
        "{english}"
    );
    // A field's refusal: the field's name in both, its reason in the language asked for.
    let mut body = order_body();
    body["quantity"] = json!("three");
    let (status, problem) = ask(
        Some("en"),
        "/api/v1/orders".into(),
        Some(customer.token.clone()),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "invalid-field", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("invalid field quantity"),
        "{problem}"
    );
    app.stop().await;
}
