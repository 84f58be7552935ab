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

async fn app_with_wechat(api_url: &str) -> TestApp {
    let api_url = api_url.to_owned();
    spawn_app_with(move |settings| {
        settings.oauth = Some(command_api::routes::oauth::OAuthSettings {
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
    let started: Value = app
        .get("/api/v1/oauth/wechat/authorize", None)
        .await
        .json()
        .await
        .expect("json");
    let url = started["authorize_url"].as_str().expect("url");
    assert!(
        url.starts_with("https://open.weixin.qq.com/connect/qrconnect?appid=wx-test-app"),
        "{url}"
    );
    assert!(
        url.contains("scope=snsapi_login")
            && url.contains(started["state"].as_str().expect("state"))
    );
    provider
        .codes
        .lock()
        .expect("lock")
        .insert("code-1".into(), "union-li".into());
    let unlinked: Value = app
        .post(
            "/api/v1/oauth/wechat/callback",
            None,
            &json!({"code": "code-1", "state": started["state"]}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(unlinked["outcome"], "unlinked");
    let ticket = unlinked["link_ticket"].as_str().expect("ticket").to_owned();
    // Its owner signs in the usual way and links it.
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
    let started: Value = app
        .get("/api/v1/oauth/wechat/authorize", None)
        .await
        .json()
        .await
        .expect("json");
    provider
        .codes
        .lock()
        .expect("lock")
        .insert("code-2".into(), "union-li".into());
    let signed_in: Value = app
        .post(
            "/api/v1/oauth/wechat/callback",
            None,
            &json!({"code": "code-2", "state": started["state"]}),
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
    provider
        .codes
        .lock()
        .expect("lock")
        .insert("code-3".into(), "union-li".into());
    let replayed = app
        .post(
            "/api/v1/oauth/wechat/callback",
            None,
            &json!({"code": "code-3", "state": started["state"]}),
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
            &json!({"code": "code-3", "state": "made-up"}),
        )
        .await;
    assert_problem(
        forged,
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/invalid-input",
    )
    .await;
    let fresh: Value = app
        .get("/api/v1/oauth/wechat/authorize", None)
        .await
        .json()
        .await
        .expect("json");
    let bad_code = app
        .post(
            "/api/v1/oauth/wechat/callback",
            None,
            &json!({"code": "stolen", "state": fresh["state"]}),
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

    let started: Value = app
        .get("/api/v1/oauth/wechat/authorize", Some(&first.token))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(started["linking"], true);
    provider
        .codes
        .lock()
        .expect("lock")
        .insert("code-a".into(), "union-shared".into());
    let linked: Value = app
        .post(
            "/api/v1/oauth/wechat/callback",
            None,
            &json!({"code": "code-a", "state": started["state"]}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(linked["outcome"], "linked");

    let started: Value = app
        .get("/api/v1/oauth/wechat/authorize", Some(&second.token))
        .await
        .json()
        .await
        .expect("json");
    provider
        .codes
        .lock()
        .expect("lock")
        .insert("code-b".into(), "union-shared".into());
    let taken = app
        .post(
            "/api/v1/oauth/wechat/callback",
            None,
            &json!({"code": "code-b", "state": started["state"]}),
        )
        .await;
    assert_problem(taken, StatusCode::CONFLICT, "/problems/conflict").await;
    app.stop().await;
}
