//! Hashes a synthetic 1600×1004 image N times: a profiling target (`perf record`).
use scanlab_pdq::{Hasher, Image, Layout};
fn main() {
    let w: usize = std::env::var("W")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1600);
    let h: usize = std::env::var("H")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1004);
    let px: Vec<u8> = (0..w * h * 3)
        .map(|i| ((i * 2654435761usize) >> 13) as u8)
        .collect();
    let img = Image::new(&px, w, h, Layout::Rgb8).unwrap();
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mut hs = Hasher::new();
    let t = std::time::Instant::now();
    let mut acc = 0u32;
    for _ in 0..n {
        acc ^= hs.hash(&img).hash.count_ones();
    }
    println!("{:?} per hash ({acc})", t.elapsed() / n as u32);
}
