//! White-box attacks: steer chosen DCT coefficients across PDQ's median.
//!
//! Bit `k` of a PDQ hash is `D_k > m`, where `D` is the 16×16 DCT and `m` its median. To make
//! the hash differ from a reference in more bits (evasion) or agree with it in more (collision),
//! the attack picks the bits to change, cheapest first (smallest `|D_k − m|`, taken alternately
//! from bits to raise and bits to lower so the median stays put), and runs a projected hinge
//! descent:
//!
//! 1. for each bit with a wanted side `s_k = ±1` whose margin `s_k·(D_k − m)` is below `τ`, add
//!    `s_k·(τ − margin)` (over-relaxed by 1.5, as the filter attenuates) to its coefficient in the
//!    accumulated change `G`;
//! 2. render `x0 + lift(G)` as 8-bit RGB (see [`crate::lift`]) and hash it with scanlab's PDQ;
//! 3. stop when the goal holds; when several steps bring no success, widen the set of bits by
//!    four.
//!
//! The margin `τ` is a tenth of the median `|D_k − m|` of the starting image. Once the goal
//! holds, a bisection over `α ∈ (0, 1]` finds the smallest `α·G` that still meets it, so the
//! reported change is close to minimal for the chosen bits. For collision the bits that
//! already agree with the target are held on their side too.
//!
//! This is the "gradient step on a smooth surrogate of the sign" approach of Jain et al.
//! (USENIX Security 2022, their DCT attacks) and Dolhansky and Canton Ferrer (arXiv 2011.09473),
//! made exact for PDQ by its linearity: the gradient of each coefficient with respect to the
//! image is its basis image.

use crate::lift::{Lift, apply};
use crate::{AttackError, Budget, Outcome, check_size, outcome};
use image::RgbImage;
use scanlab_pdq::{Hash256, Hasher, dct};

/// Coefficients, median and hash of an image.
struct Measured {
    d: [[f32; 16]; 16],
    median: f32,
    hash: Hash256,
}

fn measure(hasher: &mut Hasher, img: &RgbImage) -> Measured {
    let buf = hasher
        .luma64(&scanlab_imaging::pdq_image(img))
        .expect("attack inputs are at least 8×8");
    let d = scanlab_pdq::dct16(&buf);
    let flat: Vec<f32> = d.iter().flatten().copied().collect();
    Measured {
        median: dct::torben(&flat),
        hash: scanlab_pdq::hash_from_dct16(&d),
        d,
    }
}

/// What the steering is after.
#[derive(Clone, Copy)]
enum Goal {
    /// Distance from the reference above the radius.
    Away,
    /// Distance from the reference at most the radius.
    Toward,
}

impl Goal {
    fn met(self, h: &Hash256, reference: &Hash256, radius: u32) -> bool {
        match self {
            Goal::Away => h.distance(reference) > radius,
            Goal::Toward => h.distance(reference) <= radius,
        }
    }
}

/// Evasion: an image near `x0` whose PDQ is more than `radius` bits from `reference` (the
/// listed hash of the image `x0` copies).
pub fn evade(
    x0: &RgbImage,
    reference: &Hash256,
    radius: u32,
    budget: Budget,
) -> Result<Outcome, AttackError> {
    steer(x0, reference, radius, Goal::Away, budget.iterations())
}

/// Collision: an image near `x0` (a benign photo) whose PDQ is within `radius` bits of
/// `target` (a listed hash).
pub fn collide(
    x0: &RgbImage,
    target: &Hash256,
    radius: u32,
    budget: Budget,
) -> Result<Outcome, AttackError> {
    steer(x0, target, radius, Goal::Toward, budget.iterations())
}

fn steer(
    x0: &RgbImage,
    reference: &Hash256,
    radius: u32,
    goal: Goal,
    iterations: u32,
) -> Result<Outcome, AttackError> {
    check_size(x0)?;
    let mut hasher = Hasher::new();
    let lift = Lift::new(x0.width(), x0.height());
    let start = measure(&mut hasher, x0);
    let mut cost = 1;
    if goal.met(&start.hash, reference, radius) {
        return Ok(outcome(x0, x0.clone(), reference, true, cost));
    }
    let at = |k: usize| (k / 16, k % 16);
    let side = |k: usize| if reference.bit(k) { 1.0f32 } else { -1.0 };
    // Bits to change, cheapest first, alternating raise and lower.
    let movable: Vec<usize> = (0..256)
        .filter(|&k| match goal {
            Goal::Away => start.hash.bit(k) == reference.bit(k),
            Goal::Toward => start.hash.bit(k) != reference.bit(k),
        })
        .collect();
    let cost_of = |k: usize| {
        let (i, j) = at(k);
        (start.d[i][j] - start.median).abs()
    };
    let (mut up, mut down): (Vec<usize>, Vec<usize>) =
        movable.iter().partition(|&&k| !start.hash.bit(k));
    up.sort_by(|&a, &b| cost_of(a).total_cmp(&cost_of(b)));
    down.sort_by(|&a, &b| cost_of(a).total_cmp(&cost_of(b)));
    let mut order = Vec::with_capacity(movable.len());
    let (mut ui, mut di) = (up.into_iter(), down.into_iter());
    loop {
        match (ui.next(), di.next()) {
            (None, None) => break,
            (a, b) => order.extend(a.into_iter().chain(b)),
        }
    }
    let d0 = start.hash.distance(reference);
    let needed = match goal {
        Goal::Away => radius + 1 - d0,
        Goal::Toward => d0 - radius,
    } as usize;
    let mut chosen = (needed + 4).min(order.len());
    // Wanted side per bit (0 = free).
    let mut want = [0f32; 256];
    if let Goal::Toward = goal {
        for k in (0..256).filter(|&k| start.hash.bit(k) == reference.bit(k)) {
            want[k] = side(k);
        }
    }
    let flip = |k: usize| match goal {
        Goal::Away => -side(k),
        Goal::Toward => side(k),
    };
    for &k in &order[..chosen] {
        want[k] = flip(k);
    }
    let mut spread: Vec<f32> = (0..256).map(cost_of).collect();
    spread.sort_by(f32::total_cmp);
    let tau = (0.1 * spread[128]).max(0.05);

    let mut g = [[0f32; 16]; 16];
    let mut now = start;
    let mut stalled = 0;
    let mut found = None;
    while cost < iterations {
        for (k, &s) in want.iter().enumerate() {
            if s == 0.0 {
                continue;
            }
            let (i, j) = at(k);
            let margin = s * (now.d[i][j] - now.median);
            if margin < tau {
                g[i][j] += 1.5 * s * (tau - margin);
            }
        }
        let field = lift.field(&g);
        let img = apply(x0, &field, 1.0);
        now = measure(&mut hasher, &img);
        cost += 1;
        if goal.met(&now.hash, reference, radius) {
            found = Some(field);
            break;
        }
        stalled += 1;
        if stalled >= 6 && chosen < order.len() {
            stalled = 0;
            for &k in &order[chosen..(chosen + 4).min(order.len())] {
                want[k] = flip(k);
            }
            chosen = (chosen + 4).min(order.len());
        }
    }
    let Some(field) = found else {
        let img = apply(x0, &lift.field(&g), 1.0);
        return Ok(outcome(x0, img, reference, false, cost));
    };
    // The smallest multiple of the change that still meets the goal.
    let (mut lo, mut hi) = (0f32, 1f32);
    for _ in 0..8 {
        let mid = 0.5 * (lo + hi);
        let h = measure(&mut hasher, &apply(x0, &field, mid)).hash;
        cost += 1;
        if goal.met(&h, reference, radius) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(outcome(x0, apply(x0, &field, hi), reference, true, cost))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdq;

    /// A deterministic photo-like image: smooth shapes and texture.
    fn scene(w: u32, h: u32, seed: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let s = seed as f32;
            let v = 128.0
                + 60.0 * (6.0 * fx + s).sin() * (4.0 * fy + 0.5 * s).cos()
                + 30.0 * ((fx - 0.3).powi(2) + (fy - 0.6).powi(2)).sqrt().sin()
                + 10.0 * ((x * 7 + y * 13 + seed) % 17) as f32 / 17.0;
            let v = v.clamp(0.0, 255.0) as u8;
            image::Rgb([v, v.saturating_sub(20), v.saturating_add(15)])
        })
    }

    #[test]
    fn an_evading_copy_lies_beyond_the_radius_and_stays_close() {
        let x0 = scene(320, 240, 1);
        let h0 = pdq(&x0);
        let out = evade(&x0, &h0, 31, Budget::Default).unwrap();
        assert!(out.success);
        assert_eq!(out.hash, pdq(&out.image), "judged by re-hashing");
        assert!(out.distance > 31, "{}", out.distance);
        assert!(out.change.psnr > 30.0, "{:?}", out.change);
    }

    #[test]
    fn a_colliding_image_lies_within_the_radius_of_its_target() {
        let x0 = scene(320, 240, 2);
        let target = pdq(&scene(320, 240, 9));
        assert!(pdq(&x0).distance(&target) > 31, "the pair starts apart");
        let out = collide(&x0, &target, 31, Budget::Default).unwrap();
        assert!(out.success, "{}", out.distance);
        assert!(pdq(&out.image).distance(&target) <= 31);
    }

    #[test]
    fn a_budget_of_one_hash_fails_honestly() {
        let x0 = scene(128, 128, 3);
        let h0 = pdq(&x0);
        let out = steer(&x0, &h0, 31, Goal::Away, 1).unwrap();
        assert!(!out.success);
        assert_eq!(out.distance, 0);
        assert_eq!(out.image, x0);
    }

    #[test]
    fn tiny_images_are_refused() {
        let x0 = RgbImage::new(4, 30);
        assert_eq!(
            evade(&x0, &Hash256::ZERO, 31, Budget::Default).unwrap_err(),
            AttackError::TooSmall(4, 30)
        );
    }
}
