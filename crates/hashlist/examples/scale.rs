//! Builds an index of N uniform or clustered hashes and times 1,000 queries at r = 31.
//! `cargo run --release -p scanlab-hashlist --example scale -- 10000000 clustered`
use rand::{Rng, SeedableRng};
use scanlab_hashlist::MihIndex;
use scanlab_pdq::Hash256;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let clustered = args.next().as_deref() == Some("clustered");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let rh = |rng: &mut rand_chacha::ChaCha8Rng| {
        Hash256([rng.random(), rng.random(), rng.random(), rng.random()])
    };
    let centres: Vec<Hash256> = (0..(n / 100).max(1)).map(|_| rh(&mut rng)).collect();
    let flip = |h: Hash256, k: usize, rng: &mut rand_chacha::ChaCha8Rng| {
        let mut w = h.0;
        for _ in 0..k {
            let b = rng.random_range(0..256);
            w[b / 64] ^= 1 << (b % 64);
        }
        Hash256(w)
    };
    let hashes: Vec<Hash256> = (0..n)
        .map(|_| {
            if clustered {
                let c = centres[rng.random_range(0..centres.len())];
                let k = rng.random_range(0..32);
                flip(c, k, &mut rng)
            } else {
                rh(&mut rng)
            }
        })
        .collect();
    let t = Instant::now();
    let idx = MihIndex::build(&hashes).unwrap();
    println!(
        "build {n} ({}) in {:?}, {:.1} bytes/hash",
        if clustered { "clustered" } else { "uniform" },
        t.elapsed(),
        idx.memory_bytes() as f64 / n as f64
    );
    let qs: Vec<Hash256> = (0..1000)
        .map(|i| {
            if i % 2 == 0 {
                flip(
                    hashes[rng.random_range(0..n)],
                    rng.random_range(0..30),
                    &mut rng,
                )
            } else {
                rh(&mut rng)
            }
        })
        .collect();
    let t = Instant::now();
    let r = idx.query_batch(&qs, 31).unwrap();
    let hits: usize = r.iter().map(|v| v.len()).sum();
    println!("1000 queries r=31: {:?} ({hits} hits)", t.elapsed());
}
