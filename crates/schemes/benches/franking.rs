//! S9's message franking, per message: what the cost goals are about (≤ 10 µs on the
//! client, ≤ 10 µs at the provider beyond the signature the MIMI design asks it to make),
//! with the signature and its check timed on their own, and a peer in the same run: one
//! SHA-256 of the same 1 KiB message (franking is two HMACs, about four compressions more).
//!
//! `cargo bench -p scanlab-schemes --bench franking`

use criterion::{Criterion, criterion_group, criterion_main};
use scanlab_schemes::user_report::{Keys, salt_of, tag, verify_stamp};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let salt = [7u8; 32];
    let text = "x".repeat(1024);
    let p = serde_json::to_vec(&json!({
        "text": text, "attachment": null, "scheme": { "frank": { "salt": hex::encode(salt) } }
    }))
    .unwrap();
    let keys = Keys::derive(&[9u8; 32]);
    let t = tag(&salt, "chat-0123456789abcdef", "alice", &p);
    let stamp = keys.stamp(&t, "alice", "chat-0123456789abcdef", 1_700_000_000_000);
    let public = keys.public();
    let mut g = c.benchmark_group("franking");
    g.bench_function("peer: SHA-256 of the 1 KiB message", |b| {
        b.iter(|| black_box(Sha256::digest(black_box(&p))))
    });
    g.bench_function("client: frank (salt from the plaintext, tag)", |b| {
        b.iter(|| {
            let s = salt_of(black_box(&p)).unwrap();
            black_box(tag(&s, "chat-0123456789abcdef", "alice", &p))
        })
    });
    g.bench_function("provider: HMAC stamp, no signature", |b| {
        b.iter(|| black_box(keys.frank(black_box(&t), "alice", "chat-0123456789abcdef", 1)))
    });
    g.bench_function("provider: whole stamp (HMAC and Ed25519 signature)", |b| {
        b.iter(|| black_box(keys.stamp(black_box(&t), "alice", "chat-0123456789abcdef", 1)))
    });
    g.bench_function("recipient: check the stamp's signature", |b| {
        b.iter(|| {
            verify_stamp(
                &public,
                black_box(&t),
                &stamp,
                "alice",
                "chat-0123456789abcdef",
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
