//! How long a cache at capacity takes to keep new entries: `cargo run --release -p vault
//! --example cache_bench [CAPACITY] [PUTS]`. Every put past capacity makes room first.

use std::io::Write;
use std::time::{Duration, Instant};

use vault::cache::Cache;

fn main() -> std::io::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let capacity: usize = arguments
        .next()
        .and_then(|value| value.parse().ok())
        .unwrap_or(50_000);
    let puts: u64 = arguments
        .next()
        .and_then(|value| value.parse().ok())
        .unwrap_or(200_000);
    let cache: Cache<u64, [u8; 32]> = Cache::new(Duration::from_secs(60), capacity);
    cache.trust(true);
    let started = Instant::now();
    for key in 0..capacity as u64 {
        cache.put(cache.ticket(), key, &[1; 32]);
    }
    let filled = started.elapsed();
    let started = Instant::now();
    for key in capacity as u64..capacity as u64 + puts {
        cache.put(cache.ticket(), key, &[2; 32]);
    }
    let beyond = started.elapsed();
    writeln!(
        std::io::stdout(),
        "capacity {capacity}: filled in {:.1} ms ({:.2} µs a put); {puts} puts beyond it in {:.1} ms ({:.2} µs a put)",
        filled.as_secs_f64() * 1e3,
        filled.as_secs_f64() * 1e6 / capacity as f64,
        beyond.as_secs_f64() * 1e3,
        beyond.as_secs_f64() * 1e6 / puts as f64,
    )
}
