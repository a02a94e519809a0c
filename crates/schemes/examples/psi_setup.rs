//! Builds S7's blinded table for N random list entries and prints its time and size:
//! `cargo run --release -p scanlab-schemes --example psi_setup -- 1000000`.

use rand::{RngCore, SeedableRng};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let eps: f64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1.1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let items: Vec<[u8; 32]> = (0..n)
        .map(|_| {
            let mut b = [0u8; 32];
            rng.fill_bytes(&mut b);
            b
        })
        .collect();
    let t = std::time::Instant::now();
    let (table, _key, setup) = scanlab_schemes::psi::Table::build(&items, eps, &mut rng).unwrap();
    println!(
        "{} entries, epsilon {eps}: {} slots, {} left out, {:.1} s on {} threads, {:.1} MB published",
        setup.items,
        table.points.len(),
        setup.left_out,
        t.elapsed().as_secs_f64(),
        rayon::current_num_threads(),
        table.len_bytes() as f64 / 1e6
    );
}
