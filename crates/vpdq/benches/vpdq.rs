//! vPDQ speed, one thread: a video decoded and hashed frame by frame, beside the same number of
//! frames of the same size hashed as images from memory (no decoding). The ratio is what FFmpeg's
//! decoding and conversion add per frame (a frame is hashed by the same PDQ core, with Meta's
//! `f32` luminance, as an image of its size).
//!
//! The video is Meta's sample `doorknob-hd-no-bar.mp4` (1280×720, 120 frames) from `../shared`
//! (`$SCANLAB_VPDQ_REFERENCE` overrides). The side-by-side figure against Meta's vpdq is
//! `scripts/bench-vpdq.sh`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scanlab_pdq::{Hasher, Image, Layout, LumaMode};
use scanlab_vpdq::{Limits, Options, hash_bytes, visit_bytes};
use std::hint::black_box;
use std::path::PathBuf;

fn video() -> Vec<u8> {
    let dir = std::env::var_os("SCANLAB_VPDQ_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vpdq-reference")
        });
    std::fs::read(dir.join("videos/doorknob-hd-no-bar.mp4")).expect("Meta's sample video")
}

fn bench(c: &mut Criterion) {
    let bytes = video();
    let opts = Options::new().with_decode_threads(1);
    let limits = Limits::default();
    let v = hash_bytes(&bytes, &opts, &limits).unwrap();
    let n = v.frames.len();
    // One decoded frame, kept, to hash as an image n times.
    let mut first: Option<Vec<u8>> = None;
    let mut keep = |_: &scanlab_vpdq::FrameHash, img: &Image<'_>| {
        if first.is_none() {
            first = Some(
                (0..img.height())
                    .flat_map(|y| img.row(y).to_vec())
                    .collect(),
            );
        }
    };
    visit_bytes(&bytes, &opts, &limits, &mut keep).unwrap();
    let px = first.unwrap();
    let (w, h) = (v.width as usize, v.height as usize);

    let mut g = c.benchmark_group("vpdq");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(format!("video-decode-and-hash/{n}-frames-{w}x{h}"), |b| {
        b.iter(|| {
            let got = hash_bytes(black_box(&bytes), &opts, &limits).unwrap();
            assert_eq!(got.frames.len(), n);
        })
    });
    let img = Image::new(&px, w, h, Layout::Rgb8).unwrap();
    let mut hasher = Hasher::new().with_luma_mode(LumaMode::CppF32);
    g.bench_function(format!("images/{n}-frames-{w}x{h}"), |b| {
        b.iter(|| {
            for _ in 0..n {
                black_box(hasher.hash(black_box(&img)));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
