//! S8's cost, single organisation against two with point functions, per image, on one
//! thread: the device's sealing, and an organisation's answer at several list sizes (the
//! multi variant evaluates every distinct chunk value of the list, so it grows with the
//! list; the single one opens a capsule and makes one index lookup). The peer in the same
//! run is the single variant itself: the README reports multi ÷ single.
//!
//! `cargo bench -p scanlab-schemes --bench third_party`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::{RngCore, SeedableRng};
use scanlab_hashlist::{Entry, HashList};
use scanlab_pdq::Hash256;
use scanlab_schemes::seal::{self, KeyPair};
use scanlab_schemes::{Matcher, third_party, third_party_multi};
use std::hint::black_box;
use std::sync::Arc;

fn list(n: usize, rng: &mut impl RngCore) -> HashList {
    HashList {
        entries: (0..n)
            .map(|i| {
                let mut h = [0u8; 32];
                rng.fill_bytes(&mut h);
                Entry {
                    id: i as u64 + 1,
                    kind: Default::default(),
                    hash: Hash256::from_bytes(h),
                    label: "stand-in".into(),
                    vouched_by: vec![],
                    added: 0,
                    quality: None,
                }
            })
            .collect(),
    }
}

fn bench(c: &mut Criterion) {
    use base64::Engine;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
    let mut q = [0u8; 32];
    rng.fill_bytes(&mut q);
    let query = Hash256::from_bytes(q);
    let keys = [KeyPair::generate(), KeyPair::generate()].map(Arc::new);
    let publics = [keys[0].public(), keys[1].public()];
    let mut g = c.benchmark_group("third-party, device");
    g.bench_function("single: seal the hash", |b| {
        b.iter(|| {
            seal::seal(
                &publics[0],
                third_party::INFO,
                b"blob",
                &black_box(query).to_bytes(),
            )
            .unwrap()
        })
    });
    g.bench_function("multi: 16 point functions, sealed to 2", |b| {
        b.iter(|| third_party_multi::seal_hash(&publics, "blob", black_box(&query)).unwrap())
    });
    g.finish();
    let mut g = c.benchmark_group("third-party, one organisation's answer");
    g.sample_size(10);
    for n in [100usize, 1_000, 10_000] {
        let l = list(n, &mut rng);
        let single =
            third_party::Organisation::new(Matcher::new(l.clone(), 31).unwrap(), keys[0].clone());
        let capsule =
            seal::seal(&publics[0], third_party::INFO, b"blob", &query.to_bytes()).unwrap();
        g.bench_with_input(BenchmarkId::new("single", n), &n, |b, _| {
            b.iter(|| single.check("blob", black_box(&capsule)).unwrap())
        });
        let multi =
            third_party_multi::Organisation::new(Matcher::new(l, 31).unwrap(), keys[0].clone());
        let sealed = third_party_multi::seal_hash(&publics, "blob", &query).unwrap();
        let capsule = base64::engine::general_purpose::STANDARD
            .decode(&sealed[0])
            .unwrap();
        g.bench_with_input(BenchmarkId::new("multi", n), &n, |b, _| {
            b.iter(|| multi.answer("blob", black_box(&capsule)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
