//! The warehouse as a file other tools open: DuckDB Python reads it, and its Parquet export reads
//! back.

use super::*;

/// DuckDB's Python package of the warehouse's version, installed by `scripts/ensure-duckdb` in
/// the library's folder (which the build was given as `DUCKDB_LIB_DIR`).
fn duckdb_python() -> std::path::PathBuf {
    let python = std::path::Path::new(env!("DUCKDB_LIB_DIR")).join("python/bin/python");
    assert!(
        python.exists(),
        "DuckDB's Python package is missing: run scripts/ensure-duckdb"
    );
    python
}

#[tokio::test]
async fn the_warehouse_opens_read_only_in_duckdbs_python_package_and_its_parquet_export_reads_back()
{
    let (app, scratch, file) = app_with_warehouse_file(|_| {}).await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    let body = tests::order_body_starting_in(30);
    for _ in 0..2 {
        app.paid_through_sandbox(&customer, &body, "succeed").await;
    }
    refresh(&app, &admin).await;

    // The platform's own export: Parquet, partitioned by month.
    let export = scratch.join("export");
    let written = anjia_json(
        &app,
        &file,
        &["analytics", "export", &export.display().to_string()],
    );
    assert!(written["tables"]
        .as_array()
        .expect("tables")
        .contains(&json!(["order_facts", 2])));

    // DuckDB's Python package reads both, and may not write the warehouse.
    let script = r#"
import duckdb, json, sys
warehouse, export = sys.argv[1], sys.argv[2]
con = duckdb.connect(warehouse, read_only=True)
orders = con.sql("SELECT count(*) FROM order_facts").fetchone()[0]
gmv = con.sql("SELECT sum(amount_fen) FROM money_facts WHERE kind = 'captured'").fetchone()[0]
try:
    con.sql("DELETE FROM order_facts")
    writable = True
except duckdb.Error:
    writable = False
con.close()
other = duckdb.connect()
exported = other.sql(
    f"SELECT count(*), count(DISTINCT month) FROM read_parquet('{export}/order_facts/*/*.parquet', hive_partitioning = true)"
).fetchone()
exported_gmv = other.sql(
    f"SELECT sum(amount_fen) FROM read_parquet('{export}/money_facts/*/*.parquet', hive_partitioning = true) WHERE kind = 'captured'"
).fetchone()[0]
print(json.dumps({"version": duckdb.__version__, "orders": orders, "gmv": gmv, "writable": writable,
                  "exported_orders": exported[0], "months": exported[1], "exported_gmv": exported_gmv}))
"#;
    let output = std::process::Command::new(duckdb_python())
        .arg("-c")
        .arg(script)
        .arg(&file)
        .arg(&export)
        .output()
        .expect("running python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).expect("python's answer");
    assert_eq!(
        seen,
        json!({"version": "1.5.6", "orders": 2, "gmv": 30_000, "writable": false,
               "exported_orders": 2, "months": 1, "exported_gmv": 30_000})
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(&scratch);
}
