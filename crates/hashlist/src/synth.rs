//! Seeded synthetic hash sets for tests and benchmarks.
//!
//! Uniform random hashes are the easy case for an index; real lists are **clustered**: many
//! near-duplicates (re-encodes, resizes, crops of one image) around each original. Both are
//! generated here, from a seed, so a Rust benchmark and its Python peer can load the very same
//! bytes.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scanlab_pdq::Hash256;

/// How the list is distributed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// Independent uniform hashes.
    Uniform,
    /// `n / 100` centres, each list hash a centre with 0–31 random bits flipped.
    Clustered,
}

fn random(rng: &mut ChaCha8Rng) -> Hash256 {
    Hash256([rng.random(), rng.random(), rng.random(), rng.random()])
}

/// `h` with `k` random bits flipped (a bit may flip twice, so the distance is at most `k`).
pub fn flip(h: Hash256, k: usize, rng: &mut impl Rng) -> Hash256 {
    let mut w = h.0;
    for _ in 0..k {
        let b = rng.random_range(0..256);
        w[b / 64] ^= 1 << (b % 64);
    }
    Hash256(w)
}

/// `n` list hashes of the given shape.
pub fn list(n: usize, shape: Shape, seed: u64) -> Vec<Hash256> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    match shape {
        Shape::Uniform => (0..n).map(|_| random(&mut rng)).collect(),
        Shape::Clustered => {
            let centres: Vec<Hash256> = (0..(n / 100).max(1)).map(|_| random(&mut rng)).collect();
            (0..n)
                .map(|_| {
                    let c = centres[rng.random_range(0..centres.len())];
                    let k = rng.random_range(0..32);
                    flip(c, k, &mut rng)
                })
                .collect()
        }
    }
}

/// `m` queries: half are list hashes with 0–30 bits flipped (so most match), half uniform.
pub fn queries(list: &[Hash256], m: usize, seed: u64) -> Vec<Hash256> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    (0..m)
        .map(|i| {
            if i % 2 == 0 && !list.is_empty() {
                let base = list[rng.random_range(0..list.len())];
                let k = rng.random_range(0..31);
                flip(base, k, &mut rng)
            } else {
                random(&mut rng)
            }
        })
        .collect()
}
