//! The build script of every member whose programs link DuckDB's library (`analytics` and the
//! members above it): it writes the library's folder, `DUCKDB_LIB_DIR` (set by the scripts from
//! `scripts/ensure-duckdb`), into the run path of each binary and test, so that `anjia` and the
//! tests find the library without `LD_LIBRARY_PATH`.

// A build script reads cargo's environment and answers on standard output; the rules against
// both are for the programs.
#[allow(clippy::disallowed_methods, clippy::print_stdout)]
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
