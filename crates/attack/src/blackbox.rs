//! Black-box evasion: only a "matched or not" oracle, with a query budget.
//!
//! The attacker knows nothing of PDQ beyond what any perceptual hash promises (robustness to
//! small, fine-grained change), so it perturbs with smooth noise: Gaussian values on a coarse
//! grid (4, 8 or 16 cells a side, drawn per direction), bilinearly upsampled, scaled to an RMS of
//! 1 per pixel, and added to R, G and B alike. The procedure:
//!
//! 1. **find a direction:** draw one and query it at RMS 2, 4, …, 32 until the oracle says "no
//!    match"; bisect (five queries) between the last match and the first miss; else draw another;
//! 2. **refine:** a (1+1) random search. Each query tries a candidate at 0.93 of the best scale:
//!    either the best direction mixed with fresh noise (`u + ½v`, renormalised) or, one time in
//!    two, a fresh direction. A miss replaces the best.
//!
//! Every query is counted against the budget, and the result is judged by the oracle's last
//! answer on the image returned. This is a plain hard-label random search, not a reproduction of
//! Jain et al.'s attack; it gives a floor on what a black-box attacker gets for its queries.

use crate::lift::apply;
use crate::{AttackError, Budget, Outcome, check_size, outcome};
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use scanlab_pdq::Hash256;

/// A standard normal sample (Box–Muller over the seeded generator).
fn normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// A smooth random field of RMS 1 over a `w × h` image.
fn direction(rng: &mut ChaCha20Rng, w: usize, h: usize) -> Vec<f32> {
    let cells = [4usize, 8, 16][rng.random_range(0..3)];
    let grid: Vec<f32> = (0..(cells + 1) * (cells + 1))
        .map(|_| normal(rng))
        .collect();
    let at = |gx: usize, gy: usize| grid[gy * (cells + 1) + gx];
    let mut f = Vec::with_capacity(w * h);
    for y in 0..h {
        let v = y as f32 / h as f32 * cells as f32;
        let (gy, ty) = (v.floor() as usize, v.fract());
        for x in 0..w {
            let u = x as f32 / w as f32 * cells as f32;
            let (gx, tx) = (u.floor() as usize, u.fract());
            let top = at(gx, gy) * (1.0 - tx) + at(gx + 1, gy) * tx;
            let bottom = at(gx, gy + 1) * (1.0 - tx) + at(gx + 1, gy + 1) * tx;
            f.push(top * (1.0 - ty) + bottom * ty);
        }
    }
    normalise(f)
}

fn normalise(mut f: Vec<f32>) -> Vec<f32> {
    let rms = (f.iter().map(|v| v * v).sum::<f32>() / f.len() as f32).sqrt();
    if rms > 0.0 {
        f.iter_mut().for_each(|v| *v /= rms);
    }
    f
}

/// Evasion against `matched`, which answers whether an image still matches (the attacker's
/// only view of the system). `reference` is used for the reported distance only, never by the
/// search.
pub fn evade(
    x0: &RgbImage,
    reference: &Hash256,
    matched: &mut dyn FnMut(&RgbImage) -> bool,
    budget: Budget,
    seed: u64,
) -> Result<Outcome, AttackError> {
    check_size(x0)?;
    let limit = budget.queries();
    let (w, h) = (x0.width() as usize, x0.height() as usize);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut queries = 0u32;
    let mut ask = |img: &RgbImage, q: &mut u32| {
        *q += 1;
        matched(img)
    };
    let mut best: Option<(f32, Vec<f32>)> = None;
    // 1. A first direction that evades at some scale.
    'find: while queries < limit {
        let u = direction(&mut rng, w, h);
        let mut lo = 0f32;
        let mut scale = 2f32;
        while scale <= 32.0 {
            if queries >= limit {
                break 'find;
            }
            if !ask(&apply(x0, &u, scale), &mut queries) {
                let mut hi = scale;
                for _ in 0..5 {
                    if queries >= limit {
                        break;
                    }
                    let mid = 0.5 * (lo + hi);
                    if ask(&apply(x0, &u, mid), &mut queries) {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                best = Some((hi, u));
                break 'find;
            }
            lo = scale;
            scale *= 2.0;
        }
    }
    // 2. Random search for a smaller one.
    if let Some((scale, u)) = best.as_mut() {
        while queries < limit {
            let fresh = direction(&mut rng, w, h);
            let cand = if rng.random_bool(0.5) {
                normalise(u.iter().zip(&fresh).map(|(a, b)| a + 0.5 * b).collect())
            } else {
                fresh
            };
            let s = 0.93 * *scale;
            if !ask(&apply(x0, &cand, s), &mut queries) {
                *scale = s;
                *u = cand;
            }
        }
    }
    Ok(match best {
        Some((scale, u)) => outcome(x0, apply(x0, &u, scale), reference, true, queries),
        None => outcome(x0, x0.clone(), reference, false, queries),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdq;

    fn scene(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = (128.0
                + 70.0 * (x as f32 / 23.0).sin() * (y as f32 / 31.0).cos()
                + 20.0 * ((x ^ y) % 9) as f32 / 9.0) as u8;
            image::Rgb([v, v / 2 + 40, 255 - v])
        })
    }

    #[test]
    fn the_oracle_decides_and_every_query_is_counted() {
        let x0 = scene(200, 150);
        let h0 = pdq(&x0);
        let mut asked = 0u32;
        let mut oracle = |img: &RgbImage| {
            asked += 1;
            pdq(img).distance(&h0) <= 31
        };
        let out = evade(&x0, &h0, &mut oracle, Budget::Default, 5).unwrap();
        assert_eq!(out.cost, asked);
        assert!(asked <= Budget::Default.queries());
        if out.success {
            assert!(pdq(&out.image).distance(&h0) > 31);
        }
    }

    #[test]
    fn an_oracle_that_always_matches_gives_no_success_and_the_input_back() {
        let x0 = scene(64, 64);
        let out = evade(&x0, &pdq(&x0), &mut |_| true, Budget::Default, 1).unwrap();
        assert!(!out.success);
        assert_eq!(out.image, x0);
        assert_eq!(out.cost, Budget::Default.queries());
    }

    #[test]
    fn the_same_seed_gives_the_same_image() {
        let x0 = scene(96, 80);
        let h0 = pdq(&x0);
        let run = |seed| {
            let mut o = |img: &RgbImage| pdq(img).distance(&h0) <= 31;
            evade(&x0, &h0, &mut o, Budget::Default, seed)
                .unwrap()
                .image
        };
        assert_eq!(run(3), run(3));
    }
}
