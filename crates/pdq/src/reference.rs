//! A direct, unoptimised transcription of Meta's full-buffer pipeline (`jaroszFilterFloat` +
//! `decimateFloat`). It exists as the test oracle for the streaming kernel: the two must agree
//! bit for bit on every input. Do not use it for real work; it is several times slower.

use crate::kernel::{Phases, sample_positions, window_size};
use crate::{Image, LumaMode};

/// Meta's `box1DFloat`, with `stride` for the column passes.
fn box1d(input: &[f32], out: &mut [f32], base: usize, n: usize, stride: usize, w: usize) {
    let ph = Phases::new(n, w);
    let (mut li, mut ri, mut oi) = (base, base, base);
    let mut sum = 0f32;
    let mut count = 0i32;
    for _ in 0..ph.p1 {
        sum += input[ri];
        count += 1;
        ri += stride;
    }
    for _ in 0..ph.p2 {
        sum += input[ri];
        count += 1;
        out[oi] = sum / count as f32;
        ri += stride;
        oi += stride;
    }
    for _ in 0..ph.p3 {
        sum += input[ri];
        sum -= input[li];
        out[oi] = sum / count as f32;
        li += stride;
        ri += stride;
        oi += stride;
    }
    for _ in 0..ph.p4 {
        sum -= input[li];
        count -= 1;
        out[oi] = sum / count as f32;
        li += stride;
        oi += stride;
    }
}

/// Full-resolution luma of `img`, row-major.
pub fn luma(img: &Image<'_>, mode: LumaMode) -> Vec<f32> {
    let mut l = vec![0f32; img.width * img.height];
    for y in 0..img.height {
        crate::luma::row_scalar(
            img.row(y),
            img.layout,
            mode,
            &mut l[y * img.width..(y + 1) * img.width],
        );
    }
    l
}

/// Meta's `jaroszFilterFloat` (two row+column passes) then `decimateFloat`.
pub fn downsample(luma: &[f32], w: usize, h: usize) -> [[f32; 64]; 64] {
    let mut b1 = luma.to_vec();
    let mut b2 = vec![0f32; w * h];
    let (wr, wc) = (window_size(w), window_size(h));
    for _ in 0..2 {
        for i in 0..h {
            box1d(&b1, &mut b2, i * w, w, 1, wr);
        }
        for j in 0..w {
            box1d(&b2, &mut b1, j, h, w, wc);
        }
    }
    let (xs, ys) = (sample_positions(w), sample_positions(h));
    let mut out = [[0f32; 64]; 64];
    for (oy, &y) in ys.iter().enumerate() {
        for (ox, &x) in xs.iter().enumerate() {
            out[oy][ox] = b1[y * w + x];
        }
    }
    out
}
