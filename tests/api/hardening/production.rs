//! Production mode refuses what only a developer machine may run.

use super::*;

/// Starts `anjia serve` in production mode (no ANJIA_MODE) with `env` on a fresh database;
/// answers the child and the first line it printed, or its exit and what it said.
fn serve_in_production(
    database_url: &str,
    env: &[(&str, &str)],
) -> Result<(std::process::Child, String), String> {
    use std::io::{BufRead, BufReader, Read};
    let mut command = std::process::Command::new(tests::anjia_binary());
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .env_remove("ANJIA_MODE")
        .env_remove("ANJIA_MASTER_KEY")
        .env_remove("ANJIA_PAYMENT_SANDBOX")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("starting anjia serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reading");
    if line.starts_with("anjia listening on ") {
        return Ok((
            child,
            line.trim()
                .trim_start_matches("anjia listening on ")
                .to_owned(),
        ));
    }
    let status = child.wait().expect("exit");
    let mut said = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut said)
        .expect("stderr");
    Err(format!("{status}: {said}"))
}

#[tokio::test]
async fn production_mode_refuses_the_payment_sandbox_and_a_key_kept_in_the_database() {
    let database_url = tests::fresh_database().await;
    let master_key = "YW5qaWEtdGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";
    let without_key = tokio::task::spawn_blocking({
        let url = database_url.clone();
        move || serve_in_production(&url, &[])
    })
    .await
    .expect("ran");
    let said = without_key.expect_err("production needs a master key");
    assert!(said.contains("ANJIA_MASTER_KEY"), "{said}");
    let with_sandbox = tokio::task::spawn_blocking({
        let url = database_url.clone();
        move || {
            serve_in_production(
                &url,
                &[
                    ("ANJIA_MASTER_KEY", master_key),
                    ("ANJIA_PAYMENT_SANDBOX", "on"),
                ],
            )
        }
    })
    .await
    .expect("ran");
    let said = with_sandbox.expect_err("production refuses the sandbox");
    assert!(said.contains("sandbox"), "{said}");

    // With a key and no real provider, it starts, and no method takes a payment: not even a
    // bank card, which the sandbox used to confirm by itself.
    let (mut child, address) = tokio::task::spawn_blocking({
        let url = database_url.clone();
        move || serve_in_production(&url, &[("ANJIA_MASTER_KEY", master_key)])
    })
    .await
    .expect("ran")
    .expect("production starts with a master key");
    let pool = sqlx::PgPool::connect(&database_url).await.expect("pool");
    let client = reqwest::Client::new();
    let phone = "13900002222";
    let asked = client
        .post(format!("{address}/api/v1/verification-codes"))
        .json(&json!({"purpose": "register", "destination": phone}))
        .send()
        .await
        .expect("code");
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let sms: String = sqlx::query_scalar("SELECT body FROM outbox_messages WHERE destination = $1")
        .bind(phone)
        .fetch_one(&pool)
        .await
        .expect("sms");
    let code = sms
        .split(|c: char| !c.is_ascii_digit())
        .find(|digits| digits.len() == 6)
        .expect("code")
        .to_owned();
    let registered = client
        .post(format!("{address}/api/v1/accounts"))
        .json(
            &json!({"kind": "customer", "login": phone, "password": "a-good-password",
                      "name": "陈先生", "verification_code": code}),
        )
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), StatusCode::CREATED);
    let session: Value = client
        .post(format!("{address}/api/v1/sessions"))
        .json(&json!({"login": phone, "password": "a-good-password"}))
        .send()
        .await
        .expect("sign in")
        .json()
        .await
        .expect("session");
    let token = session["access_token"].as_str().expect("token").to_owned();
    let placed: Value = client
        .post(format!("{address}/api/v1/orders"))
        .bearer_auth(&token)
        .json(&tests::order_body())
        .send()
        .await
        .expect("order")
        .json()
        .await
        .expect("ack");
    let order_id = placed["order_id"].as_str().expect("order id").to_owned();
    for method in ["bank_card", "alipay", "wechat_pay"] {
        let refused = client
            .post(format!(
                "{address}/api/v1/orders/{order_id}/payment-intents"
            ))
            .bearer_auth(&token)
            .json(&json!({"method": method, "sandbox": "succeed"}))
            .send()
            .await
            .expect("intent");
        assert_problem(
            refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-input",
        )
        .await;
    }
    let payments: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'payment'")
            .fetch_one(&pool)
            .await
            .expect("payments");
    assert_eq!(payments, 0);
    let sandbox_endpoint = client
        .post(format!("{address}/api/v1/payments/notifications/sandbox"))
        .body("{}")
        .send()
        .await
        .expect("notification");
    assert_ne!(sandbox_endpoint.status(), StatusCode::OK);
    let _ = child.kill();
    let _ = child.wait();
}
