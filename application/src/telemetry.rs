//! What the application counts, through the `metrics` facade: whoever installs a recorder (the
//! HTTP layer's Prometheus exporter) shows it.

/// Commands by aggregate and outcome.
pub const COMMANDS: &str = "anjia_commands_total";

/// `outcome`: `committed`, `refused` (the domain said no), `conflict` or `failed`.
pub fn count_command(aggregate: &'static str, outcome: &'static str) {
    metrics::counter!(COMMANDS, "aggregate" => aggregate, "outcome" => outcome).increment(1);
}
