use command_api::auth::{Access, ROUTES};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{assert_problem, spawn_app};
use uuid::Uuid;

#[tokio::test]
async fn every_route_refuses_callers_without_a_token_or_with_another_role() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let worker = app.register_worker(&["nanny"]).await;
    let admin = app.create_admin().await;
    let users = [
        ("customer", &customer),
        ("worker", &worker),
        ("admin", &admin),
    ];
    let mut checked = 0;
    for spec in ROUTES {
        let Access::Roles(roles) = spec.access else {
            continue;
        };
        let path = spec
            .path
            .replace("{order_id}", &Uuid::new_v4().to_string())
            .replace("{worker_id}", &Uuid::new_v4().to_string())
            .replace("{name}", "orders");
        let method = Method::from_bytes(spec.method.as_str().as_bytes()).expect("method");
        let call = |token: Option<String>| {
            let mut request = app
                .client
                .request(method.clone(), app.url(&path))
                .json(&json!({}));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let anonymous = call(None).await.expect("request");
        assert_problem(
            anonymous,
            StatusCode::UNAUTHORIZED,
            "/problems/unauthenticated",
        )
        .await;
        let forged = call(Some("not-a-token".into())).await.expect("request");
        assert_eq!(
            forged.status(),
            StatusCode::UNAUTHORIZED,
            "{} {}",
            spec.method,
            spec.path
        );
        for (role, user) in users {
            let allowed = roles.iter().any(|allowed| allowed.as_str() == role);
            if !allowed {
                let response = call(Some(user.token.clone())).await.expect("request");
                assert_eq!(
                    response.status(),
                    StatusCode::FORBIDDEN,
                    "{role} on {} {}",
                    spec.method,
                    spec.path
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 30, "only {checked} refusals were checked");
    app.stop().await;
}
