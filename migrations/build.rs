//! Rebuilds this crate when a migration is added or changed: `sqlx::migrate!` reads the folder
//! at compile time, and cargo would not otherwise notice a new file.
fn main() {
    println!("cargo:rerun-if-changed=sql");
}
