//! The binary's tools. Each takes the application's services (or a pool), never an HTTP state.

pub mod analytics_bench;
pub mod bench;
pub mod demo_data;
pub mod flow_bench;
pub mod search_bench;
pub mod signaling_bench;
pub mod simulate;
pub mod sql_cost;
pub mod sql_shell;
