//! Builds an index of N uniform or clustered hashes and times 1,000 queries at r = 31.
//! `cargo run --release -p scanlab-hashlist --example scale -- 10000000 clustered`
use scanlab_hashlist::{MihIndex, synth};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let shape = if args.next().as_deref() == Some("clustered") {
        synth::Shape::Clustered
    } else {
        synth::Shape::Uniform
    };
    let hashes = synth::list(n, shape, 1);
    let t = Instant::now();
    let idx = MihIndex::build(&hashes).unwrap();
    println!(
        "build {n} ({shape:?}) in {:?}, {:.1} bytes/hash",
        t.elapsed(),
        idx.memory_bytes() as f64 / n as f64
    );
    let qs = synth::queries(&hashes, 1000, 2);
    let t = Instant::now();
    let r = idx.query_batch(&qs, 31).unwrap();
    let hits: usize = r.iter().map(|v| v.len()).sum();
    println!("1000 queries r=31: {:?} ({hits} hits)", t.elapsed());
}
