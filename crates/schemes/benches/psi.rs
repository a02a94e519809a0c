//! S7's threshold PSI, per voucher and per table slot: what the cost goals are about
//! (client ≤ 0.5 ms a voucher, provider ≤ 0.2 ms, one hash-to-group and one scalar
//! multiplication per slot), beside the raw ristretto255 scalar multiplication they are made
//! of (the peer: a voucher costs about four, an opening two).
//!
//! `cargo bench -p scanlab-schemes --bench psi`

use criterion::{Criterion, criterion_group, criterion_main};
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use rand::{RngCore, SeedableRng};
use scanlab_schemes::psi::{Device, Share, Table, Threshold, recover};
use std::hint::black_box;

fn items(n: usize, seed: u64) -> Vec<[u8; 32]> {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut b = [0u8; 32];
            r.fill_bytes(&mut b);
            b
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let th = Threshold { t: 3, s: 2 };
    let list = items(10_000, 1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let (table, key, _) = Table::build(&list, 1.1, &mut rng).unwrap();
    let device = Device::from_seed([7; 32], th).unwrap();
    let thumb = vec![0x55u8; 2000];
    let mut g = c.benchmark_group("psi");
    g.bench_function("peer: one ristretto255 scalar multiplication", |b| {
        let p = RistrettoPoint::from_uniform_bytes(&[3; 64]);
        let s = Scalar::from_bytes_mod_order_wide(&[5; 64]);
        b.iter(|| black_box(black_box(p) * black_box(s)))
    });
    g.bench_function("client: real voucher", |b| {
        b.iter(|| device.voucher(&table, &list[5], &thumb, &mut rng).unwrap())
    });
    g.bench_function("client: synthetic voucher", |b| {
        b.iter(|| device.synthetic(&table, &[9; 32], &mut rng).unwrap())
    });
    let matching = device.voucher(&table, &list[5], &thumb, &mut rng).unwrap();
    let other = device
        .voucher(&table, &items(1, 9)[0], &thumb, &mut rng)
        .unwrap();
    g.bench_function("provider: open a match", |b| {
        b.iter(|| key.open(&th, &matching).unwrap().unwrap())
    });
    g.bench_function("provider: open a non-match", |b| {
        b.iter(|| assert!(key.open(&th, &other).unwrap().is_none()))
    });
    // Recovery over 12 opened shares: 8 real, 4 synthetic.
    let mut shares: Vec<Share> = list[..8]
        .iter()
        .map(|i| {
            let v = device.voucher(&table, i, &thumb, &mut rng).unwrap();
            key.open(&th, &v).unwrap().unwrap()
        })
        .collect();
    for image in items(4, 77) {
        let v = device.synthetic(&table, &image, &mut rng).unwrap();
        shares.push(key.open(&th, &v).unwrap().unwrap());
    }
    g.bench_function("provider: recover, 8 real and 4 synthetic shares", |b| {
        b.iter(|| assert_eq!(recover(&shares, &th).unwrap().real.len(), 8))
    });
    g.sample_size(10);
    g.bench_function("provider: table of 10,000 entries (both cores)", |b| {
        b.iter(|| Table::build(&list, 1.1, &mut rng).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
