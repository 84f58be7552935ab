//! What the application counts for the metrics endpoint, without knowing how it is exposed.

use std::collections::BTreeMap;
use std::sync::Mutex;

static COMMANDS: Mutex<BTreeMap<(&'static str, &'static str), u64>> = Mutex::new(BTreeMap::new());

/// `outcome`: `committed`, `refused` (the domain said no), `conflict` or `failed`.
pub fn count_command(aggregate: &'static str, outcome: &'static str) {
    *COMMANDS
        .lock()
        .expect("command counter lock")
        .entry((aggregate, outcome))
        .or_default() += 1;
}

/// Commands run in this process so far, by aggregate and outcome.
pub fn command_counts() -> Vec<((&'static str, &'static str), u64)> {
    COMMANDS
        .lock()
        .expect("command counter lock")
        .iter()
        .map(|(key, count)| (*key, *count))
        .collect()
}
