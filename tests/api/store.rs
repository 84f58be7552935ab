//! What the event-store libraries really do, checked against the real database, so the
//! platform's choices rest on behaviour rather than on documentation.

use chrono::Utc;
use domain::customer::{Customer, CustomerCommand};
use domain::{Address, Sealed};
use serde_json::Value;
use tests::spawn_app;
use uuid::Uuid;

/// FIXME(upstream cqrs-es 0.5): in snapshot mode, `EventSink::write` applies each new event to
/// the loaded aggregate and `PersistedEventStore::commit` applies it again before saving the
/// snapshot, so snapshots hold events twice. The platform therefore uses event-store mode
/// (`new_event_store`) only; this test shows why and will fail when upstream fixes it.
#[tokio::test]
async fn cqrs_es_snapshot_mode_applies_each_new_event_twice_so_the_platform_does_not_use_it() {
    let app = spawn_app().await;
    let framework =
        postgres_es::postgres_snapshot_cqrs::<Customer>(app.pool.clone(), vec![], 1, ());
    let customer_id = Uuid::new_v4();
    let id = customer_id.to_string();
    framework
        .execute(
            &id,
            CustomerCommand::Register {
                customer_id,
                name: Sealed::from_ciphertext(format!("v1.{customer_id}.name")),
                phone: None,
                now: Utc::now(),
            },
        )
        .await
        .expect("register");
    let address_id = Uuid::new_v4();
    // The aggregate never opens sealed values, so stand-ins will do here.
    let sealed = |label: &str| Sealed::from_ciphertext(format!("v1.{customer_id}.{label}"));
    let address = Address {
        city: "杭州市".into(),
        district: "西湖区".into(),
        detail: sealed("detail"),
        contact_name: sealed("name"),
        contact_phone: sealed("phone"),
        location: None,
    };
    framework
        .execute(
            &id,
            CustomerCommand::AddAddress {
                address_id,
                label: "家".into(),
                address,
                now: Utc::now(),
            },
        )
        .await
        .expect("add address");
    let snapshot: Value =
        sqlx::query_scalar("SELECT payload::jsonb FROM snapshots WHERE aggregate_id = $1")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .expect("snapshot");
    let stored_ids = snapshot["address_ids"]
        .as_array()
        .expect("address ids")
        .len();
    assert_eq!(stored_ids, 2, "one address added, stored twice: {snapshot}");
    app.stop().await;
}

/// The log's horizon leaves projectors' transactions out (`projections::log::HORIZON`), which is
/// sound only while a projector's connection never appends an event: the table refuses one.
#[tokio::test]
async fn a_projectors_connection_may_not_append_events() {
    use sqlx::ConnectOptions;
    let app = spawn_app().await;
    let options: sqlx::postgres::PgConnectOptions = app.database_url.parse().expect("url");
    let mut projector = options
        .application_name(projections::log::PROJECTOR_APPLICATION)
        .connect()
        .await
        .expect("a projector's connection");
    let refused = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('customer', 'nobody', 1, 'CustomerRegistered', '1.0', '{}', '{}')",
    )
    .execute(&mut projector)
    .await
    .expect_err("refused");
    assert!(
        refused.to_string().contains("may not append events"),
        "{refused}"
    );
    app.stop().await;
}
