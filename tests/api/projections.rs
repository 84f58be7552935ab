use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tests::{run_anjia, spawn_app};

async fn snapshot(pool: &sqlx::PgPool) -> Vec<Value> {
    sqlx::query_scalar("SELECT to_jsonb(o) FROM read_orders o ORDER BY order_id")
        .fetch_all(pool)
        .await
        .expect("snapshot")
}

#[tokio::test]
async fn a_projection_rebuilt_while_the_api_serves_equals_the_live_one() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let admin = app.create_admin().await;
    for _ in 0..20 {
        app.dispatchable_order(&customer, &admin).await;
    }
    app.wait_for_projections().await;
    let before = snapshot(&app.pool).await;
    assert_eq!(before.len(), 20);

    // Writes go on while another process rebuilds.
    let writer = {
        let base = app.address.clone();
        let token = customer.token.clone();
        let client = app.client.clone();
        tokio::spawn(async move {
            let mut placed = 0;
            for _ in 0..30 {
                let response = client
                    .post(format!("{base}/api/v1/orders"))
                    .bearer_auth(&token)
                    .json(&tests::order_body())
                    .send()
                    .await;
                if response
                    .map(|r| r.status() == StatusCode::CREATED)
                    .unwrap_or(false)
                {
                    placed += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            placed
        })
    };
    let database_url = app.database_url.clone();
    let report = tokio::task::spawn_blocking(move || {
        run_anjia(&database_url, &["rebuild-projection", "orders"])
    })
    .await
    .expect("rebuild");
    let report: Value = serde_json::from_str(report.trim()).expect("report json");
    assert_eq!(report["generation"], 2);
    let placed = writer.await.expect("writer");
    assert_eq!(placed, 30);
    app.wait_for_projections().await;

    let live = snapshot(&app.pool).await;
    assert_eq!(live.len(), 50);
    // Rows that existed before are identical after the rebuild.
    for row in &before {
        assert!(live.contains(row), "row changed by the rebuild: {row}");
    }
    // And a second rebuild, through the admin API, reproduces the incrementally maintained model.
    let rebuilt = app
        .post(
            "/api/v1/admin/projections/orders/rebuild",
            Some(&admin.token),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(rebuilt.status(), StatusCode::OK);
    app.wait_for_projections().await;
    assert_eq!(snapshot(&app.pool).await, live);

    let statuses: Value = app
        .get("/api/v1/admin/projections", Some(&admin.token))
        .await
        .json()
        .await
        .expect("status");
    let orders = statuses
        .as_array()
        .expect("array")
        .iter()
        .find(|status| status["name"] == "orders")
        .expect("orders status")
        .clone();
    assert_eq!(orders["generation"], 3);
    assert_eq!(orders["pending_events"], 0);
    assert!(orders["lag_seconds"].as_f64().is_some());
    app.stop().await;
}

#[tokio::test]
async fn admin_lists_page_with_keyset_cursors_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let customer = app.register_customer().await;
    let admin = app.create_admin().await;
    let mut placed = Vec::new();
    for _ in 0..23 {
        placed.push(app.place_order(&customer).await.to_string());
    }
    app.wait_for_projections().await;
    for sort in ["placed_at", "scheduled_start", "total"] {
        for direction in ["asc", "desc"] {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/api/v1/orders?limit=5&sort={sort}&direction={direction}");
                if let Some(cursor) = &cursor {
                    path.push_str(&format!("&cursor={cursor}"));
                }
                let page: Value = app
                    .get(&path, Some(&admin.token))
                    .await
                    .json()
                    .await
                    .expect("page");
                for item in page["items"].as_array().expect("items") {
                    seen.push(item["order_id"].as_str().expect("id").to_owned());
                }
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            let mut sorted_seen = seen.clone();
            sorted_seen.sort();
            sorted_seen.dedup();
            assert_eq!(
                sorted_seen.len(),
                seen.len(),
                "{sort} {direction} repeated a row"
            );
            let mut expected = placed.clone();
            expected.sort();
            assert_eq!(sorted_seen, expected, "{sort} {direction} missed a row");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn an_event_the_projector_cannot_read_is_parked_with_its_error_shown_and_the_log_flows_on() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let order_id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('order', $1, 1, 'OrderPlaced', '0.1', '{\"OrderPlaced\": {}}', '{}')",
    )
    .bind(order_id.to_string())
    .execute(&app.pool)
    .await
    .expect("insert");
    let customer = app.register_customer().await;
    let placed = app.place_order(&customer).await;
    app.wait_for_order(&customer.token, placed, |_| true).await;
    app.wait_for_projections().await;
    let parked: Value = app
        .get("/api/v1/admin/projections/parked", Some(&admin.token))
        .await
        .json()
        .await
        .expect("parked");
    let orders = parked
        .as_array()
        .expect("array")
        .iter()
        .find(|stream| stream["projection"] == "orders")
        .unwrap_or_else(|| panic!("the orders projection parked nothing: {parked}"))
        .clone();
    assert_eq!(orders["aggregate_id"], order_id.to_string());
    assert!(
        orders["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no upcaster"),
        "{orders}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_projection_built_from_older_table_definitions_is_rebuilt_at_start_up() {
    let app = tests::spawn_app().await;
    let customer = app.register_customer().await;
    let order_id = app.place_order(&customer).await;
    app.wait_for_order(&customer.token, order_id, |_| true)
        .await;
    // As if the live generation had been built by an older program.
    sqlx::query("UPDATE projections SET definition = 'an older shape' WHERE name = 'orders'")
        .execute(&app.pool)
        .await
        .expect("aging");
    let before: i32 =
        sqlx::query_scalar("SELECT active_generation FROM projections WHERE name = 'orders'")
            .fetch_one(&app.pool)
            .await
            .expect("generation");
    projections::ensure_all(&app.pool, &projections::all_projections(&app.vault))
        .await
        .expect("start-up");
    let (after, definition): (i32, Option<String>) = sqlx::query_as(
        "SELECT active_generation, definition FROM projections WHERE name = 'orders'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("generation");
    assert!(after > before, "rebuilt into a new generation");
    assert_ne!(definition.as_deref(), Some("an older shape"));
    let untouched: i32 =
        sqlx::query_scalar("SELECT active_generation FROM projections WHERE name = 'workers'")
            .fetch_one(&app.pool)
            .await
            .expect("generation");
    assert_eq!(
        untouched, 1,
        "projections whose tables did not change are left alone"
    );
    // The order is still there, read from the new generation.
    let shown = app
        .get(&format!("/api/v1/orders/{order_id}"), Some(&customer.token))
        .await;
    assert_eq!(shown.status(), reqwest::StatusCode::OK);
    app.stop().await;
}
