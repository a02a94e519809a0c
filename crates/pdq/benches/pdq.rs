//! PDQ hashing speed, one thread, pixels in memory (no decoding).
//!
//! Peers in the same run: our `Portable` backend, and `reference`, a line-by-line Rust
//! transcription of Meta's full-buffer C++ pipeline (the algorithm the PyPI `pdqhash` wheel
//! runs). The Python-side comparison against the wheel itself is `scripts/bench-peer.sh`.
//!
//! Images are synthetic (seeded), so the benchmark needs no corpus: a 1600×1004 photo-sized
//! frame (the size of Meta's bridge test photo) and a 4096×4096 one.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use scanlab_pdq::{Backend, Hasher, Image, Layout, LumaMode, reference};
use std::hint::black_box;

fn synthetic(w: usize, h: usize) -> Vec<u8> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            let b = ((x / 7) ^ (y / 5)) as i32 & 255;
            [0, 40, 80].map(|c| (b + c + rng.random_range(-10..10)).clamp(0, 255) as u8)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pdq_hash");
    g.sample_size(20);
    for &(w, h) in &[(1600usize, 1004usize), (4096, 4096)] {
        let px = synthetic(w, h);
        let img = Image::new(&px, w, h, Layout::Rgb8).unwrap();
        g.throughput(Throughput::Elements((w * h) as u64));
        let id = format!("{w}x{h}");
        let mut fast = Hasher::new();
        let want = fast.hash(&img);
        g.bench_with_input(BenchmarkId::new("scanlab-avx2", &id), &img, |b, img| {
            b.iter(|| {
                let p = fast.hash(black_box(img));
                assert_eq!(p, want);
            })
        });
        let mut portable = Hasher::new().with_backend(Backend::Portable);
        g.bench_with_input(BenchmarkId::new("scanlab-portable", &id), &img, |b, img| {
            b.iter(|| assert_eq!(portable.hash(black_box(img)), want))
        });
        g.bench_with_input(
            BenchmarkId::new("meta-transcription", &id),
            &img,
            |b, img| {
                b.iter(|| {
                    let l = reference::luma(img, LumaMode::NumpyF64);
                    let buf = reference::downsample(&l, w, h);
                    assert_eq!(scanlab_pdq::hash_from_downsample(&buf), want);
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
