//! The `anjia` binary's own crate: the one typed configuration (`config`), the composition root
//! that wires adapters into the application and the application into HTTP (`compose`),
//! starting and stopping the platform (`server`), and the tools (`tools`): demo data, the
//! dispatch simulator, the benchmarks and the analysts' SQL shell. The tests start the platform
//! through this library, as `main` does.

pub mod compose;
pub mod config;
pub mod server;
pub mod tools;
