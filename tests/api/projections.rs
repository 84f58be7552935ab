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

/// How the equivalence test feeds a projection the log.
#[derive(Clone, Copy, Debug)]
enum Feeding {
    OneByOne,
    InSevens,
    Whole,
}

/// Every projection folds a batch into fewer writes (`Projection::apply_batch`). Fed the same
/// log one event at a time, in batches of seven and whole, each builds the same tables.
#[tokio::test]
async fn every_projection_builds_the_same_tables_from_one_event_at_a_time_or_a_batch() {
    // Money settles at once, so the ledger sees escrow released and wallets credited.
    let app = tests::spawn_app_with(tests::money_settles_at_once).await;
    let customer = app.register_customer().await;
    let admin = app.create_admin().await;
    // Whole lives, reviewed; one cancelled after payment; some waiting for a worker; a block.
    // A worker's time is booked by the order they serve: one worker each.
    let mut workers = Vec::new();
    let mut served_orders = Vec::new();
    for quality in [5, 3] {
        let worker = app.qualified_worker(&["daily_cleaning"], &admin).await;
        let (served, _) = app
            .paid_through_sandbox(&customer, &tests::order_body_starting_in(30), "succeed")
            .await;
        app.grab_and_serve(served, &worker).await;
        workers.push(worker);
        served_orders.push(served);
        let reviewed = app
            .post(
                &format!("/api/v1/orders/{served}/review"),
                Some(&customer.token),
                &serde_json::json!({"quality": quality, "attitude": 4, "skill": 5}),
            )
            .await;
        assert_eq!(reviewed.status(), StatusCode::OK);
    }
    // A hidden review moves its worker's ratings back within the same batch.
    let hidden = app
        .post(
            &format!("/api/v1/admin/orders/{}/review/hide", served_orders[1]),
            Some(&admin.token),
            &serde_json::json!({"reason": "含有个人信息 / contains personal data"}),
        )
        .await;
    assert_eq!(hidden.status(), StatusCode::OK);
    let cancelled = app.dispatchable_order(&customer, &admin).await;
    let cancel = app
        .post(
            &format!("/api/v1/admin/orders/{cancelled}/cancel"),
            Some(&admin.token),
            &serde_json::json!({"reason": "客户要求 / customer asked"}),
        )
        .await;
    assert_eq!(cancel.status(), StatusCode::OK);
    for _ in 0..3 {
        app.dispatchable_order(&customer, &admin).await;
    }
    // An order moved to a new time and a new price while the batch that places it is still
    // open: the row goes in with both.
    let corrected = app.place_order(&customer).await;
    let new_start = (chrono::Utc::now() + chrono::Duration::days(6))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (path, body) in [
        (
            "reschedule",
            serde_json::json!({"scheduled_start": new_start, "reason": "客户要求 / customer asked"}),
        ),
        (
            "price",
            serde_json::json!({"total": 12_000, "reason": "优惠 / a discount"}),
        ),
    ] {
        let response = app
            .post(
                &format!("/api/v1/admin/orders/{corrected}/{path}"),
                Some(&admin.token),
                &body,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // Wait for the escrow to be released and settled into both workers' wallets.
    tests::wait_until("settling both workers' incomes", async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(DISTINCT aggregate_id) FROM events
              WHERE aggregate_type = 'wallet' AND event_type = 'IncomeSettled'",
        )
        .fetch_one(&app.pool)
        .await
        .expect("wallets")
            == 2
    })
    .await;
    let blocked = app
        .post(
            "/api/v1/me/blocked-workers",
            Some(&customer.token),
            &serde_json::json!({"worker_id": workers[0].id}),
        )
        .await;
    assert!(blocked.status().is_success(), "{}", blocked.status());
    app.wait_for_projections().await;

    let mut connection = app.pool.acquire().await.expect("connection");
    let events = projections::log::read_after(
        &mut connection,
        projections::log::Checkpoint::default(),
        100_000,
    )
    .await
    .expect("the log");
    assert!(events.len() > 50, "a log worth folding: {}", events.len());
    for projection in projections::all_projections(&app.vault) {
        let mut built: Vec<(Feeding, Vec<Vec<Value>>)> = Vec::new();
        for feeding in [Feeding::OneByOne, Feeding::InSevens, Feeding::Whole] {
            let schema = format!("fold_{}_{feeding:?}", projection.name()).to_lowercase();
            let create = format!(
                "CREATE SCHEMA {schema}; {}",
                projection.create_tables(&schema)
            );
            sqlx::raw_sql(&create)
                .execute(&mut *connection)
                .await
                .expect("tables");
            let size = match feeding {
                Feeding::OneByOne => 1,
                Feeding::InSevens => 7,
                Feeding::Whole => events.len(),
            };
            for batch in events.chunks(size) {
                let outcome = if size == 1 {
                    projection.apply(&mut connection, &schema, &batch[0]).await
                } else {
                    projection
                        .apply_batch(&mut connection, &schema, batch)
                        .await
                };
                outcome.unwrap_or_else(|error| {
                    panic!("{} fed {feeding:?}: {error:#}", projection.name())
                });
            }
            let mut tables = Vec::new();
            for table in projection.tables() {
                let rows: Vec<Value> = sqlx::query_scalar(&format!(
                    "SELECT to_jsonb(t) FROM {schema}.{table} t ORDER BY to_jsonb(t)::text"
                ))
                .fetch_all(&mut *connection)
                .await
                .expect("rows");
                tables.push(rows);
            }
            built.push((feeding, tables));
        }
        let (_, one_by_one) = &built[0];
        let rows: usize = one_by_one.iter().map(Vec::len).sum();
        assert!(rows > 0, "{} built nothing", projection.name());
        for (feeding, tables) in &built[1..] {
            for (index, table) in projection.tables().iter().enumerate() {
                assert_eq!(
                    tables[index],
                    one_by_one[index],
                    "{}.{table} fed {feeding:?} differs from one event at a time",
                    projection.name()
                );
            }
        }
    }
    app.stop().await;
}
