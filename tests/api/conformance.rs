//! The API document is exact: openapi-spec-validator finds nothing in it, and Schemathesis,
//! sending generated requests to every operation of a real server (anonymous, as an admin and
//! as a customer, each request with its own Idempotency-Key), finds no server error and no answer
//! that differs from the document in status, content type, schema or headers.
//!
//! The tools come from PyPI through `scripts/ensure-schemathesis`, which the README's test
//! command runs first; `tests/conformance/run` is the runner, also usable by hand.

use tests::{spawn_app, ServerProcess};

#[tokio::test]
async fn the_api_document_is_valid_and_a_real_server_answers_exactly_as_it_says() {
    let app = spawn_app().await;
    let admin = app.create_admin().await;
    let customer = app.register_customer().await;
    // A separate process, so the generated traffic runs on its own threads.
    let server = ServerProcess::start(&app.database_url).await;
    let runner = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/run");
    let output = tokio::process::Command::new(&runner)
        .env("BASE_URL", &server.address)
        .env("ANJIA_ADMIN_TOKEN", &admin.token)
        .env("ANJIA_CUSTOMER_TOKEN", &customer.token)
        .env("CONFORMANCE_MAX_EXAMPLES", "8")
        .output()
        .await
        .unwrap_or_else(|error| panic!("running {}: {error}", runner.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The end of each run's summary, whatever happened, for the log.
    eprintln!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the document or the server's answers differ (see the report above; \
         scripts/ensure-schemathesis installs the tools)"
    );
    app.stop().await;
}
