//! WeChat-style sign-in against a small OAuth server this test starts: it issues codes for
//! people and answers the code exchange the way WeChat's API does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::Query;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{assert_problem, spawn_app_with, TestApp};

/// The provider: `codes` maps a one-time code to the person's unionid.
#[derive(Clone, Default)]
struct Provider {
    codes: Arc<Mutex<HashMap<String, String>>>,
}

async fn start_provider() -> (Provider, String) {
    let provider = Provider::default();
    let codes = provider.codes.clone();
    let router = axum::Router::new().route(
        "/sns/oauth2/access_token",
        axum::routing::get(move |Query(query): Query<HashMap<String, String>>| {
            let codes = codes.clone();
            async move {
                if query.get("appid").map(String::as_str) != Some("wx-test-app")
                    || query.get("secret").map(String::as_str) != Some("wx-test-secret")
                    || query.get("grant_type").map(String::as_str) != Some("authorization_code")
                {
                    return axum::Json(json!({"errcode": 40125, "errmsg": "invalid appsecret"}));
                }
                // A code works once, as WeChat's do.
                let subject = query.get("code").and_then(|code| codes.lock().expect("lock").remove(code));
                match subject {
                    Some(unionid) => axum::Json(json!({"access_token": "at", "expires_in": 7200, "refresh_token": "rt",
                        "openid": format!("openid-{unionid}"), "scope": "snsapi_login", "unionid": unionid})),
                    None => axum::Json(json!({"errcode": 40029, "errmsg": "invalid code"})),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (provider, format!("http://{address}"))
}

/// The verifier a client keeps to itself, and the S256 challenge it starts the flow with.
fn pkce() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = format!("verifier-{}", uuid::Uuid::new_v4().simple());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Starts a flow (signed in with `token`: linking); answers what the server said and the
/// verifier to finish it with.
async fn start(app: &TestApp, token: Option<&str>) -> (Value, String) {
    let (verifier, challenge) = pkce();
    let started: Value = app
        .get(
            &format!("/api/v1/oauth/wechat/authorize?code_challenge={challenge}"),
            token,
        )
        .await
        .json()
        .await
        .expect("json");
    (started, verifier)
}

/// WeChat sends the browser back: `code` (good for `unionid`) and the flow's `state`, posted
/// with `verifier` as the page would.
async fn returns(
    app: &TestApp,
    provider: &Provider,
    code: &str,
    unionid: &str,
    state: &Value,
    verifier: &str,
) -> reqwest::Response {
    provider
        .codes
        .lock()
        .expect("lock")
        .insert(code.into(), unionid.into());
    app.post(
        "/api/v1/oauth/wechat/callback",
        None,
        &json!({"code": code, "state": state, "code_verifier": verifier}),
    )
    .await
}

/// Confirms the signed-in person with their password, as linking asks.
async fn reauthenticate(app: &TestApp, token: &str) {
    let confirmed = app
        .post(
            "/api/v1/me/reauthentication",
            Some(token),
            &json!({"password": "a-good-password"}),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);
}

async fn app_with_wechat(api_url: &str) -> TestApp {
    let api_url = api_url.to_owned();
    spawn_app_with(move |settings| {
        settings.oauth = Some(adapters::wechat_sign_in::OAuthSettings {
            authorize_url: "https://open.weixin.qq.com/connect/qrconnect".into(),
            api_url,
            app_id: "wx-test-app".into(),
            app_secret: "wx-test-secret".into(),
            redirect_uri: "https://anjia.test/oauth/wechat".into(),
        })
    })
    .await
}

#[tokio::test]
async fn a_wechat_identity_is_linked_to_an_existing_account_and_then_signs_it_in() {
    let (provider, api_url) = start_provider().await;
    let app = app_with_wechat(&api_url).await;
    let customer = app.register_customer().await;

    // Unknown identity: the callback hands out a link ticket instead of a session.
    let (started, verifier) = start(&app, None).await;
    let url = started["authorize_url"].as_str().expect("url");
    assert!(
        url.starts_with("https://open.weixin.qq.com/connect/qrconnect?appid=wx-test-app"),
        "{url}"
    );
    assert!(
        url.contains("scope=snsapi_login")
            && url.contains(started["state"].as_str().expect("state"))
    );
    let unlinked: Value = returns(
        &app,
        &provider,
        "code-1",
        "union-li",
        &started["state"],
        &verifier,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(unlinked["outcome"], "unlinked");
    let ticket = unlinked["link_ticket"].as_str().expect("ticket").to_owned();
    // Its owner signs in the usual way, confirms it is them, and links it.
    reauthenticate(&app, &customer.token).await;
    let linked = app
        .post(
            "/api/v1/oauth/wechat/link",
            Some(&customer.token),
            &json!({"link_ticket": ticket}),
        )
        .await;
    assert_eq!(linked.status(), StatusCode::OK);
    let again = app
        .post(
            "/api/v1/oauth/wechat/link",
            Some(&customer.token),
            &json!({"link_ticket": ticket}),
        )
        .await;
    assert_problem(
        again,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;

    // Next time, WeChat alone signs the customer in.
    let (started, verifier) = start(&app, None).await;
    let signed_in: Value = returns(
        &app,
        &provider,
        "code-2",
        "union-li",
        &started["state"],
        &verifier,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(signed_in["outcome"], "signed_in");
    assert_eq!(signed_in["session"]["user_id"], customer.id.to_string());
    let token = signed_in["session"]["access_token"]
        .as_str()
        .expect("token");
    assert_eq!(
        app.get("/api/v1/me", Some(token)).await.status(),
        StatusCode::OK
    );

    // The same state again, an unknown state, and a code WeChat refuses are all refused.
    let replayed = returns(
        &app,
        &provider,
        "code-3",
        "union-li",
        &started["state"],
        &verifier,
    )
    .await;
    assert_problem(
        replayed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let forged = app
        .post(
            "/api/v1/oauth/wechat/callback",
            None,
            &json!({"code": "code-3", "state": "made-up", "code_verifier": verifier}),
        )
        .await;
    assert_problem(
        forged,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let (fresh, fresh_verifier) = start(&app, None).await;
    let bad_code = app
        .post(
            "/api/v1/oauth/wechat/callback",
            None,
            &json!({"code": "stolen", "state": fresh["state"], "code_verifier": fresh_verifier}),
        )
        .await;
    assert_problem(
        bad_code,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/bad-code",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_signed_in_person_links_wechat_directly_and_one_identity_cannot_serve_two_accounts() {
    let (provider, api_url) = start_provider().await;
    let app = app_with_wechat(&api_url).await;
    let first = app.register_customer().await;
    let second = app.register_customer().await;

    reauthenticate(&app, &first.token).await;
    let (started, verifier) = start(&app, Some(&first.token)).await;
    assert_eq!(started["linking"], true);
    let linked: Value = returns(
        &app,
        &provider,
        "code-a",
        "union-shared",
        &started["state"],
        &verifier,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(linked["outcome"], "linked");

    reauthenticate(&app, &second.token).await;
    let (started, verifier) = start(&app, Some(&second.token)).await;
    let taken = returns(
        &app,
        &provider,
        "code-b",
        "union-shared",
        &started["state"],
        &verifier,
    )
    .await;
    assert_problem(taken, StatusCode::CONFLICT, "/problems/conflict").await;
    app.stop().await;
}

#[tokio::test]
async fn a_stolen_token_cannot_link_wechat_and_the_owner_sees_removes_and_outlives_links() {
    let (provider, api_url) = start_provider().await;
    let app = app_with_wechat(&api_url).await;
    let customer = app.register_customer().await;

    // With the access token alone, neither way of linking works.
    let (verifier, challenge) = pkce();
    let refused = app
        .get(
            &format!("/api/v1/oauth/wechat/authorize?code_challenge={challenge}"),
            Some(&customer.token),
        )
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    let (anonymous, anonymous_verifier) = start(&app, None).await;
    let unlinked: Value = returns(
        &app,
        &provider,
        "code-x",
        "union-attacker",
        &anonymous["state"],
        &anonymous_verifier,
    )
    .await
    .json()
    .await
    .expect("json");
    let ticket = unlinked["link_ticket"].as_str().expect("ticket").to_owned();
    let refused = app
        .post(
            "/api/v1/oauth/wechat/link",
            Some(&customer.token),
            &json!({"link_ticket": ticket}),
        )
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    // A wrong password to re-authenticate is a failed attempt, not a way in.
    let wrong = app
        .post(
            "/api/v1/me/reauthentication",
            Some(&customer.token),
            &json!({"password": "not-my-password"}),
        )
        .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "/problems/bad-credentials").await;
    let nothing: Vec<Value> = app
        .get("/api/v1/me/linked-accounts", Some(&customer.token))
        .await
        .json()
        .await
        .expect("links");
    assert!(nothing.is_empty());

    // Someone else's flow cannot be finished in the victim's browser: the verifier is theirs.
    let (attackers, _attackers_verifier) = start(&app, None).await;
    let hijacked = returns(
        &app,
        &provider,
        "code-y",
        "union-victim",
        &attackers["state"],
        &verifier,
    )
    .await;
    let problem = assert_problem(
        hijacked,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    assert_eq!(problem["field"], "code_verifier");

    // Confirmed with the password, the owner links, sees the link and removes it.
    reauthenticate(&app, &customer.token).await;
    let (started, verifier) = start(&app, Some(&customer.token)).await;
    let linked: Value = returns(
        &app,
        &provider,
        "code-z",
        "union-owner",
        &started["state"],
        &verifier,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(linked["outcome"], "linked");
    let links: Vec<Value> = app
        .get("/api/v1/me/linked-accounts", Some(&customer.token))
        .await
        .json()
        .await
        .expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["provider"], "wechat");
    let removed = app
        .client
        .delete(app.url("/api/v1/me/linked-accounts/wechat"))
        .bearer_auth(&customer.token)
        .send()
        .await
        .expect("unlink");
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);

    // Linked again, then "sign out everywhere" with removal: sessions and link both go.
    reauthenticate(&app, &customer.token).await;
    let (started, verifier) = start(&app, Some(&customer.token)).await;
    let relinked: Value = returns(
        &app,
        &provider,
        "code-w",
        "union-owner",
        &started["state"],
        &verifier,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(relinked["outcome"], "linked");
    let out = app
        .post(
            "/api/v1/sessions/sign-out-everywhere",
            Some(&customer.token),
            &json!({"remove_linked_accounts": true}),
        )
        .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/me", Some(&customer.token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let links: i64 = sqlx::query_scalar("SELECT count(*) FROM external_identities")
        .fetch_one(&app.pool)
        .await
        .expect("links");
    assert_eq!(links, 0);

    // Linked once more from a new session, then the password is reset by code: the link goes
    // with the old password.
    let login: String = sqlx::query_scalar("SELECT login FROM credentials WHERE user_id = $1")
        .bind(customer.id)
        .fetch_one(&app.pool)
        .await
        .expect("login");
    let again = app.sign_in(&login, "a-good-password").await;
    reauthenticate(&app, &again.token).await;
    let (started, verifier) = start(&app, Some(&again.token)).await;
    let relinked: Value = returns(
        &app,
        &provider,
        "code-v",
        "union-owner",
        &started["state"],
        &verifier,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(relinked["outcome"], "linked");
    sqlx::query("UPDATE verification_codes SET created_at = created_at - interval '2 minutes'")
        .execute(&app.pool)
        .await
        .expect("age codes");
    let code = app.code_for("reset_password", &login).await;
    let reset = app
        .post(
            "/api/v1/password-resets",
            None,
            &json!({"login": login, "code": code, "new_password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let links: i64 = sqlx::query_scalar("SELECT count(*) FROM external_identities")
        .fetch_one(&app.pool)
        .await
        .expect("links");
    assert_eq!(links, 0, "a password reset removes links");
    app.stop().await;
}
