use command_api::auth::Access;
use command_api::openapi::ROUTES;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{assert_problem, spawn_app};
use uuid::Uuid;

/// The role matrix, generated from the route table: every route as anonymous, customer,
/// worker, admin and analyst. Refused callers get 401 or 403; permitted ones get past the gate
/// (whatever the handler then says about the made-up ids and empty bodies).
#[tokio::test]
async fn every_route_answers_each_role_as_its_access_rule_says() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let worker = app.register_worker(&["nanny"]).await;
    let admin = app.create_admin().await;
    let analyst = app.create_analyst().await;
    let users = [
        ("customer", &customer),
        ("worker", &worker),
        ("admin", &admin),
        ("analyst", &analyst),
    ];
    let mut refusals = 0;
    // Signing out everywhere revokes the caller's own token: it goes last.
    let signs_out = |path: &str| path.ends_with("/sign-out-everywhere");
    let in_order = ROUTES
        .iter()
        .filter(|spec| !signs_out(spec.path))
        .chain(ROUTES.iter().filter(|spec| signs_out(spec.path)));
    for spec in in_order {
        let path = spec
            .path
            .replace("{order_id}", &Uuid::new_v4().to_string())
            .replace("{worker_id}", &Uuid::new_v4().to_string())
            .replace("{session_id}", &Uuid::new_v4().to_string())
            .replace("{address_id}", &Uuid::new_v4().to_string())
            .replace("{customer_id}", &Uuid::new_v4().to_string())
            .replace("{date}", "2026-12-01")
            .replace("{name}", "orders")
            .replace("{provider}", "wechat");
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
        let roles = match spec.access {
            Access::Public => {
                let anonymous = call(None).await.expect("request");
                assert!(
                    ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN]
                        .contains(&anonymous.status()),
                    "public {} {} refused an anonymous caller",
                    spec.method,
                    spec.path
                );
                continue;
            }
            Access::Roles(roles) => roles,
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
            let response = call(Some(user.token.clone())).await.expect("request");
            if allowed {
                assert!(
                    ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&response.status()),
                    "{role} may call {} {} but got {}",
                    spec.method,
                    spec.path,
                    response.status()
                );
            } else {
                assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;
                refusals += 1;
            }
        }
    }
    assert!(refusals > 40, "only {refusals} refusals were checked");
    app.stop().await;
}
