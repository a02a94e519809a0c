//! False positives: the distance distribution of unrelated pairs, a model of it that respects
//! how PDQ distances are made, its intervals and its check, and the projection to a messenger's
//! daily volume.
//!
//! # What is measured
//! - **Pairs:** every unordered pair of distinct images (originals), which the corpus notes
//!   vouch are unrelated.
//! - **Empirical rate** `p̂ = k / pairs`, `k` = pairs within the radius, with its exact
//!   (Clopper–Pearson) 95% interval. It is what the corpus itself shows; with `k = 0` its upper
//!   bound is about `3.7 / pairs`, and nothing smaller can be measured from it.
//!
//! # The lattice model
//! A PDQ hash has exactly 128 of its 256 bits set (the median threshold), so two hashes
//! differ in `2j` bits, where `j` counts the positions where the first has a 1 and the second
//! a 0: distances are even, and a histogram or a fit that ignores it stands at half the bars.
//! For two *independent random* such hashes, `j` is hypergeometric:
//! `h(j) = C(128, j)² / C(256, 128)`. Real photos are not random: their distances spread
//! wider. The model is the exponential family tilting that exact null by a quadratic,
//!
//! ```text
//! P(j) ∝ C(128, j)² · exp(θ₁ u + θ₂ u²),   u = (j − 64) / 8,   j = 0..=128,
//! ```
//!
//! fitted by maximum likelihood, which for an exponential family is matching the mean and
//! variance of `u` (Newton's method on the convex log-partition). It is the maximum-entropy
//! distribution, relative to random hashes, with the observed mean and spread: with `θ = 0` it
//! is exactly the random-hash null, so it is exact where the answer is known, and it has mass
//! only on the lattice the data live on. Its per-pair probability at radius `r` is
//! `P(j ≤ ⌊r/2⌋)` (an odd distance, from a hash without 128 bits set, counts as `⌊d/2⌋`).
//! Its 95% interval comes from a seeded bootstrap over images (pairs that share an image are
//! dependent), refitting each time.
//!
//! **Its check** ([`TailCheck`]): at the distances below which 0.01%, 0.1%, 1% and 5% of pairs
//! lie, the observed count is set against the model's.
//!
//! **The estimate**: the model's, unless the corpus has more pairs within the radius than the
//! model allows (a Poisson test, p < 0.01), as near-duplicates make it; then the empirical rate
//! and its exact interval. The model describes the bulk of unrelated photos; it cannot see a
//! population of near-duplicates that the corpus does not contain.
//!
//! Both are validated on data whose answer is known (tests below): random balanced hashes,
//! where the truth is the hypergeometric tail, and the same with a known fraction of
//! near-duplicate pairs.
//!
//! # Projection
//! Innocent images flagged per day = `N · (1 − (1 − p)^L)` for `N` images a day against a list
//! of `L` entries, assuming list entries behave like the images measured.

use rand::{Rng, SeedableRng};
use scanlab_pdq::Hash256;
use std::fmt::Write as _;

/// WhatsApp's photos per day: 4.5 billion, as WhatsApp announced in July 2017 (`docs/sources.md`).
pub const PHOTOS_PER_DAY: f64 = 4.5e9;

/// Bootstrap replicates for the model's interval.
const BOOTSTRAP: usize = 200;

/// One projected row.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Projection {
    /// List entries.
    pub list_size: u64,
    /// Innocent images flagged per day, from the estimate.
    pub per_day: f64,
    /// 95% interval of that.
    pub per_day_ci: [f64; 2],
    /// From the empirical rate's exact 95% upper bound: what the corpus alone can rule out.
    pub per_day_empirical_upper: f64,
}

/// The model's fit against the observed lower tail at one distance.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct TailCheck {
    /// Distance (bits, even).
    pub distance: u32,
    /// Pairs at most this far apart.
    pub observed: u64,
    /// What the model expects.
    pub expected: f64,
}

/// The fitted lattice model.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct LatticeFit {
    /// Natural parameters `θ₁, θ₂` (0, 0 is the random-hash null).
    pub theta: [f64; 2],
    /// Per-pair probability within the radius.
    pub rate: f64,
    /// Its bootstrap 95% interval.
    pub ci: [f64; 2],
    /// Observed against expected in the lower tail.
    pub tail_check: Vec<TailCheck>,
    /// Whether the observed count within the radius is what the model allows (Poisson, p ≥
    /// 0.01).
    pub consistent: bool,
}

/// The false-positive analysis.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct FalsePositives {
    /// Images.
    pub images: usize,
    /// Unrelated pairs.
    pub pairs: u64,
    /// Pairs at an odd distance (some hash without exactly 128 bits set).
    pub odd_pairs: u64,
    /// Match radius.
    pub radius: u32,
    /// Pairs within the radius.
    pub within_radius: u64,
    /// Smallest distance seen.
    pub min_distance: u32,
    /// Mean distance.
    pub mean: f64,
    /// Standard deviation.
    pub sd: f64,
    /// `k / pairs`.
    pub empirical_rate: f64,
    /// Its exact (Clopper–Pearson) 95% interval.
    pub empirical_ci: [f64; 2],
    /// The lattice model, if it could be fitted.
    pub model: Option<LatticeFit>,
    /// The per-pair probability used for the projection.
    pub estimate: f64,
    /// Its 95% interval.
    pub estimate_ci: [f64; 2],
    /// Where the estimate comes from: `model` or `empirical`.
    pub estimate_from: String,
    /// Images a day the projection assumes.
    pub daily: f64,
    /// Distance histogram, 0..=256.
    pub histogram: Vec<u64>,
    /// Daily projections.
    pub projection: Vec<Projection>,
    /// What these figures cannot show, in words.
    pub limits: String,
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 erfc, |error| < 1.5e-7, then relative
/// accuracy through the tail by the asymptotic Mills ratio below −6).
pub fn normal_cdf(z: f64) -> f64 {
    if z < -6.0 {
        // Mills ratio: φ(z)/|z| · (1 − 1/z² + 3/z⁴).
        let phi = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        return phi / -z * (1.0 - 1.0 / (z * z) + 3.0 / z.powi(4));
    }
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.3275911 * x);
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// The median, `None` for no values.
pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    })
}

/// Wilson score 95% interval of `k` successes in `n` trials.
pub fn wilson(k: usize, n: usize) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let (z, n, p) = (1.96f64, n as f64, k as f64 / n as f64);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// A mean with its 95% interval and the sample it rests on.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct MeanCi {
    /// Sample mean.
    pub mean: f64,
    /// Percentile-bootstrap 95% interval of the mean.
    pub ci95: [f64; 2],
    /// Sample size.
    pub n: usize,
}

/// Resamples for [`mean_ci`].
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// The mean of `xs` with a percentile-bootstrap 95% interval ([`BOOTSTRAP_RESAMPLES`]
/// resamples, seeded). With fewer than two values the interval is the value itself (nothing
/// to resample). Its coverage is tested on normal samples whose mean is known.
pub fn mean_ci(xs: &[f64], seed: u64) -> MeanCi {
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n.max(1) as f64;
    if n < 2 {
        return MeanCi {
            mean,
            ci95: [mean, mean],
            n,
        };
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x00B0_075C);
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| (0..n).map(|_| xs[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
    MeanCi {
        mean,
        ci95: [at(0.025), at(0.975)],
        n,
    }
}

/// `P(X ≤ k)` for `X ~ Binomial(n, p)`, summed in log space.
fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return if k >= n { 1.0 } else { 0.0 };
    }
    let (lp, lq) = (p.ln(), (-p).ln_1p());
    let mut ln_c = 0.0f64;
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k.min(n) {
        if i > 0 {
            ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        terms.push(ln_c + i as f64 * lp + (n - i) as f64 * lq);
    }
    log_sum_exp(&terms).exp().min(1.0)
}

/// Exact (Clopper–Pearson) 95% interval of `k` successes in `n` trials: the `p` at which
/// `P(X ≥ k) = 2.5%` and `P(X ≤ k) = 2.5%`, found by bisection on the binomial CDF.
pub fn clopper_pearson(k: u64, n: u64) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let a = 0.025;
    let solve = |f: &dyn Fn(f64) -> f64| {
        // f is increasing in p on [0, 1]; find f(p) = 0 in log-spaced then linear bisection.
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for _ in 0..200 {
            let mid = if hi / lo.max(1e-300) > 4.0 && lo > 0.0 {
                (lo * hi).sqrt()
            } else {
                0.5 * (lo + hi)
            };
            if f(mid) < 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    let lower = if k == 0 {
        0.0
    } else {
        // P(X ≥ k; p) = 1 − P(X ≤ k − 1; p) rises with p.
        solve(&|p| (1.0 - binomial_cdf(k - 1, n, p)) - a)
    };
    let upper = if k >= n {
        1.0
    } else {
        // P(X ≤ k; p) falls with p.
        solve(&|p| a - binomial_cdf(k, n, p))
    };
    [lower, upper]
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// `ln C(128, j)²`, the log of the random-hash null's weights (up to a constant).
fn null_weights() -> [f64; 129] {
    let mut w = [0.0; 129];
    let mut ln_c = 0.0f64;
    for (j, slot) in w.iter_mut().enumerate() {
        if j > 0 {
            ln_c += ((129 - j) as f64).ln() - (j as f64).ln();
        }
        *slot = 2.0 * ln_c;
    }
    w
}

fn u_of(j: usize) -> f64 {
    (j as f64 - 64.0) / 8.0
}

/// The tilted model's log-probabilities of `j = 0..=128` for `theta`.
fn model_log_pmf(theta: [f64; 2]) -> [f64; 129] {
    let w = null_weights();
    let mut lp = [0.0; 129];
    for j in 0..=128 {
        let u = u_of(j);
        lp[j] = w[j] + theta[0] * u + theta[1] * u * u;
    }
    let z = log_sum_exp(&lp);
    for x in lp.iter_mut() {
        *x -= z;
    }
    lp
}

/// Fits `θ` so that the model's mean and second moment of `u` are `m1`, `m2`: Newton's method
/// with step halving on the convex `A(θ) − θ·m`. `None` if the moments are not reachable.
fn fit_lattice(m1: f64, m2: f64) -> Option<[f64; 2]> {
    let objective = |t: [f64; 2]| {
        let w = null_weights();
        let lp: Vec<f64> = (0..=128)
            .map(|j| w[j] + t[0] * u_of(j) + t[1] * u_of(j).powi(2))
            .collect();
        log_sum_exp(&lp) - t[0] * m1 - t[1] * m2
    };
    let mut t = [0.0f64, 0.0];
    for _ in 0..200 {
        let lp = model_log_pmf(t);
        let (mut e1, mut e2, mut e3, mut e4) = (0.0, 0.0, 0.0, 0.0);
        for (j, l) in lp.iter().enumerate() {
            let (p, u) = (l.exp(), u_of(j));
            e1 += p * u;
            e2 += p * u * u;
            e3 += p * u * u * u;
            e4 += p * u * u * u * u;
        }
        let g = [e1 - m1, e2 - m2];
        if g[0].abs() < 1e-12 && g[1].abs() < 1e-12 {
            return Some(t);
        }
        // Hessian: the covariance of (u, u²).
        let (h11, h12, h22) = (e2 - e1 * e1, e3 - e1 * e2, e4 - e2 * e2);
        let det = h11 * h22 - h12 * h12;
        if det.abs() < 1e-300 || !det.is_finite() {
            return None;
        }
        let step = [
            (h22 * g[0] - h12 * g[1]) / det,
            (h11 * g[1] - h12 * g[0]) / det,
        ];
        let f0 = objective(t);
        let mut scale = 1.0;
        loop {
            let next = [t[0] - scale * step[0], t[1] - scale * step[1]];
            if objective(next) <= f0 || scale < 1e-10 {
                t = next;
                break;
            }
            scale *= 0.5;
        }
        if !t[0].is_finite() || !t[1].is_finite() {
            return None;
        }
    }
    let lp = model_log_pmf(t);
    let e1: f64 = lp.iter().enumerate().map(|(j, l)| l.exp() * u_of(j)).sum();
    ((e1 - m1).abs() < 1e-6).then_some(t)
}

/// The model's probabilities of `j = 0..=128` (distance `2j`) for `theta`.
pub fn lattice_pmf(theta: [f64; 2]) -> Vec<f64> {
    model_log_pmf(theta).iter().map(|l| l.exp()).collect()
}

/// `P(j ≤ jmax)` under the model.
fn model_tail(theta: [f64; 2], jmax: usize) -> f64 {
    let lp = model_log_pmf(theta);
    log_sum_exp(&lp[..=jmax.min(128)]).exp()
}

/// `u` moments of the pairs' half-distances.
fn u_moments(half: impl Iterator<Item = u32>) -> (f64, f64) {
    let (mut n, mut s1, mut s2) = (0u64, 0.0f64, 0.0f64);
    for j in half {
        let u = u_of(j as usize);
        n += 1;
        s1 += u;
        s2 += u * u;
    }
    (s1 / n.max(1) as f64, s2 / n.max(1) as f64)
}

/// `P(X ≥ k)` for `X ~ Poisson(mu)`.
fn poisson_upper(k: u64, mu: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if mu <= 0.0 {
        return 0.0;
    }
    // ln(e^−μ μ^i / i!), built up term by term (linear in k, for files with many
    // near-duplicates).
    let ln_term = |from: u64, to: u64| -> Vec<f64> {
        let mut t = -mu;
        let mut out = Vec::new();
        for i in 0..to {
            if i > 0 {
                t += mu.ln() - (i as f64).ln();
            }
            if i >= from {
                out.push(t);
            }
        }
        out
    };
    // 1 − P(X < k), or, where that cancels (tiny μ), the upper terms summed directly: the
    // first 50 dominate.
    let below = log_sum_exp(&ln_term(0, k)).exp();
    if below < 0.999 {
        1.0 - below
    } else {
        log_sum_exp(&ln_term(k, k + 50)).exp()
    }
}

fn per_day(p: f64, l: u64, daily: f64) -> f64 {
    // 1 − (1 − p)^L without cancellation for tiny p.
    daily * -((l as f64) * (-p).ln_1p()).exp_m1()
}

/// Analyses `hashes` (one per image) at `radius`, projecting `daily` images a day against
/// lists of `list_sizes` entries; `seed` drives the bootstrap.
pub fn false_positives(
    hashes: &[Hash256],
    radius: u32,
    list_sizes: &[u64],
    daily: f64,
    seed: u64,
) -> FalsePositives {
    let n = hashes.len();
    let mut dist = vec![0u32; n * n];
    let mut all = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    let mut histogram = vec![0u64; 257];
    for i in 0..n {
        for j in i + 1..n {
            let d = hashes[i].distance(&hashes[j]);
            dist[i * n + j] = d;
            dist[j * n + i] = d;
            all.push(d);
            histogram[d as usize] += 1;
        }
    }
    let pairs = all.len() as u64;
    let k = all.iter().filter(|&&d| d <= radius).count() as u64;
    let mean = all.iter().map(|&d| d as f64).sum::<f64>() / pairs.max(1) as f64;
    let sd = (all.iter().map(|&d| (d as f64 - mean).powi(2)).sum::<f64>()
        / (pairs.max(2) - 1) as f64)
        .sqrt();
    let jmax = (radius / 2) as usize;
    let (m1, m2) = u_moments(all.iter().map(|d| d / 2));
    let model = fit_lattice(m1, m2).map(|theta| {
        let rate = model_tail(theta, jmax);
        // Bootstrap over images.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xB007);
        let mut boots: Vec<f64> = (0..BOOTSTRAP)
            .filter_map(|_| {
                let pick: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
                let mut v = Vec::with_capacity(all.len());
                for a in 0..n {
                    for b in a + 1..n {
                        if pick[a] != pick[b] {
                            v.push(dist[pick[a] * n + pick[b]] / 2);
                        }
                    }
                }
                let (b1, b2) = u_moments(v.into_iter());
                fit_lattice(b1, b2).map(|t| model_tail(t, jmax))
            })
            .collect();
        boots.sort_by(f64::total_cmp);
        let q = |f: f64| boots[((boots.len() as f64 - 1.0) * f).round() as usize];
        let ci = if boots.is_empty() {
            [0.0, 1.0]
        } else {
            [q(0.025), q(0.975)]
        };
        let tail_check = tail_check(&histogram, pairs, theta);
        let consistent = poisson_upper(k, rate * pairs as f64) >= 0.01;
        LatticeFit {
            theta,
            rate,
            ci,
            tail_check,
            consistent,
        }
    });
    let empirical_rate = k as f64 / pairs.max(1) as f64;
    let empirical_ci = clopper_pearson(k, pairs);
    let (estimate, estimate_ci, from) = match &model {
        Some(m) if m.consistent => (m.rate, m.ci, "model"),
        _ => (empirical_rate, empirical_ci, "empirical"),
    };
    let limits = limits(pairs, k, empirical_ci[1], &model, from);
    FalsePositives {
        images: n,
        pairs,
        odd_pairs: all.iter().filter(|&&d| d % 2 == 1).count() as u64,
        radius,
        within_radius: k,
        min_distance: all.iter().copied().min().unwrap_or(0),
        mean,
        sd,
        empirical_rate,
        empirical_ci,
        model,
        estimate,
        estimate_ci,
        estimate_from: from.into(),
        daily,
        histogram,
        projection: list_sizes
            .iter()
            .map(|&l| Projection {
                list_size: l,
                per_day: per_day(estimate, l, daily),
                per_day_ci: [
                    per_day(estimate_ci[0], l, daily),
                    per_day(estimate_ci[1], l, daily),
                ],
                per_day_empirical_upper: per_day(empirical_ci[1], l, daily),
            })
            .collect(),
        limits,
    }
}

/// Observed against expected pairs at the distances below which 0.01%, 0.1%, 1% and 5% of
/// pairs lie.
fn tail_check(histogram: &[u64], pairs: u64, theta: [f64; 2]) -> Vec<TailCheck> {
    let mut out: Vec<TailCheck> = Vec::new();
    for q in [1e-4, 1e-3, 1e-2, 5e-2] {
        let mut cum = 0u64;
        for (d, &c) in histogram.iter().enumerate() {
            cum += c;
            if cum as f64 >= q * pairs as f64 && cum > 0 {
                let d = d as u32 | 1; // the odd distance closing this even one
                if out.last().is_none_or(|t| t.distance != d - 1) {
                    let observed = histogram[..=(d as usize).min(256)].iter().sum();
                    out.push(TailCheck {
                        distance: d - 1,
                        observed,
                        expected: pairs as f64 * model_tail(theta, (d / 2) as usize),
                    });
                }
                break;
            }
        }
    }
    out
}

/// What the figures can and cannot show, generated from them.
fn limits(pairs: u64, k: u64, upper: f64, model: &Option<LatticeFit>, from: &str) -> String {
    let mut s = format!(
        "{pairs} pairs can show a per-pair rate no smaller than about {upper:.1e} (the exact 95% upper bound with {k} pairs within the radius); "
    );
    match (model, from) {
        (Some(m), "model") => {
            s.push_str(
                "the estimate below that comes from the lattice model of unrelated photos and holds only as far as its fit to the lower tail (shown) carries down to the radius; it cannot see near-duplicates or image families absent from this corpus, which raise the rate on real traffic.",
            );
            // Where the data's own lowest tail outruns the model, say so: the extrapolation is
            // then likely an underestimate.
            if let Some(t) = m.tail_check.first()
                && t.observed >= 5
                && t.observed as f64 > 2.0 * t.expected
            {
                let _ = write!(
                    s,
                    " At {} bits, the lowest distance checked, the corpus has {} pairs where the model expects {:.1} ({:.1}×): its tail is heavier than the model's there, so the estimate is more likely too low than too high.",
                    t.distance,
                    t.observed,
                    t.expected,
                    t.observed as f64 / t.expected
                );
            }
        }
        (Some(_), _) => s.push_str(
            "the corpus has more pairs within the radius than the model of unrelated photos allows (near-duplicates), so the estimate is the empirical rate, which is only as representative as the corpus.",
        ),
        _ => s.push_str("the model could not be fitted, so the estimate is the empirical rate."),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_odd_even_tied_and_no_values() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![5.0, 5.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(vec![-1.0]), Some(-1.0));
        assert_eq!(median(Vec::new()), None);
    }

    #[test]
    fn normal_cdf_matches_known_values_into_the_far_tail() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(-1.96) - 0.024998).abs() < 1e-5);
        assert!((normal_cdf(1.0) - 0.841345).abs() < 1e-5);
        // Φ(−7) = 1.279813e-12.
        assert!((normal_cdf(-7.0) / 1.279813e-12 - 1.0).abs() < 0.01);
        assert!((normal_cdf(-5.0) / 2.866516e-7 - 1.0).abs() < 0.01);
    }

    /// `n` random hashes with exactly 128 bits set, as PDQ's are.
    fn balanced(n: usize, seed: u64) -> Vec<Hash256> {
        use rand::seq::SliceRandom;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let mut bits: Vec<bool> = (0..256).map(|i| i < 128).collect();
                bits.shuffle(&mut rng);
                let mut b = [0u64; 4];
                for (i, &x) in bits.iter().enumerate() {
                    b[i / 64] |= (x as u64) << (i % 64);
                }
                Hash256(b)
            })
            .collect()
    }

    /// The exact per-pair probability within `radius` of two random balanced hashes.
    fn hypergeometric_tail(radius: u32) -> f64 {
        model_tail([0.0, 0.0], (radius / 2) as usize)
    }

    #[test]
    fn the_null_is_the_hypergeometric_law_of_random_balanced_hashes() {
        // Its moments are the hypergeometric ones: mean 64, variance 128·128·128·128/(256²·255).
        let lp = model_log_pmf([0.0, 0.0]);
        let mean: f64 = lp.iter().enumerate().map(|(j, l)| l.exp() * j as f64).sum();
        let var: f64 = lp
            .iter()
            .enumerate()
            .map(|(j, l)| l.exp() * (j as f64 - mean).powi(2))
            .sum();
        assert!((mean - 64.0).abs() < 1e-9);
        assert!((var - 128.0f64.powi(4) / (256.0f64.powi(2) * 255.0)).abs() < 1e-9);
        // P(j = 0) = 1 / C(256, 128).
        let c256: f64 = (1..=128).map(|i| ((128 + i) as f64 / i as f64).ln()).sum();
        assert!((lp[0] + c256).abs() < 1e-6);
    }

    #[test]
    fn the_bootstrap_interval_of_a_mean_covers_the_truth_about_95_percent_of_the_time() {
        // The answer is known: samples of 30 from N(0.4, 0.1²). Over 300 seeded samples the
        // interval must cover 0.4 between 88% and 99% of the time (the percentile bootstrap
        // runs a little narrow at n = 30), and a canary interval of half the width must not.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (mut covered, mut narrow) = (0, 0);
        for rep in 0..300u64 {
            let xs: Vec<f64> = (0..30)
                .map(|_| {
                    // Box–Muller.
                    let (u, v): (f64, f64) = (rng.random(), rng.random());
                    0.4 + 0.1 * (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
                })
                .collect();
            let m = mean_ci(&xs, rep);
            assert_eq!(m.n, 30);
            covered += (m.ci95[0] <= 0.4 && 0.4 <= m.ci95[1]) as usize;
            let half = (m.ci95[1] - m.ci95[0]) / 4.0;
            narrow += ((m.mean - half) <= 0.4 && 0.4 <= (m.mean + half)) as usize;
        }
        let rate = covered as f64 / 300.0;
        assert!((0.88..=0.99).contains(&rate), "coverage {rate}");
        assert!(
            (narrow as f64 / 300.0) < 0.8,
            "a half-width interval must under-cover"
        );
        assert_eq!(mean_ci(&[0.5], 1).ci95, [0.5, 0.5]);
    }

    #[test]
    fn on_random_balanced_hashes_the_model_lands_near_the_exact_tail() {
        // The answer is known: the hypergeometric tail, about 1e-37 at radius 31. A normal fit
        // by moments is off by some four orders of magnitude there; the model must be within a
        // factor of 10, from a sample the size of the corpus.
        let hashes = balanced(400, 1);
        let fp = false_positives(&hashes, 31, &[1, 1_000_000], PHOTOS_PER_DAY, 3);
        assert_eq!(fp.pairs, 400 * 399 / 2);
        assert_eq!(
            fp.odd_pairs, 0,
            "balanced hashes are an even distance apart"
        );
        assert_eq!(fp.within_radius, 0);
        let truth = hypergeometric_tail(31);
        let m = fp.model.clone().unwrap();
        assert!(m.consistent);
        assert_eq!(fp.estimate_from, "model");
        let factor = (m.rate / truth).max(truth / m.rate);
        assert!(factor < 10.0, "model {} against truth {truth}", m.rate);
        assert!(m.ci[0] <= m.rate && m.rate <= m.ci[1]);
        assert!(
            m.ci[0] < truth * 10.0 && truth < m.ci[1] * 10.0,
            "{:?}",
            m.ci
        );
        // A canary: the normal law with the same moments is far off.
        let z = (31.5 - fp.mean) / fp.sd;
        assert!(normal_cdf(z) / truth > 100.0);
        // Its lower tail is checked, and fits.
        for t in &m.tail_check {
            assert!(
                (t.observed as f64) < 3.0 * t.expected + 10.0
                    && (t.observed as f64) > t.expected / 3.0 - 10.0,
                "{t:?}"
            );
        }
        assert!(fp.projection[1].per_day > fp.projection[0].per_day);
        assert_eq!(fp.histogram.iter().sum::<u64>(), fp.pairs);
        assert!(
            !fp.limits.contains("heavier"),
            "the model fits: {}",
            fp.limits
        );
    }

    #[test]
    fn with_a_known_fraction_of_near_duplicates_the_estimate_finds_them() {
        // 400 random images, 20 of them near-duplicates of others (6 to 12 bits swapped each
        // way, so 12 to 24 bits apart): the truth is 20 pairs in 79,800 within radius 31,
        // with the bulk adding ~1e-37. The model of the bulk alone would miss it by 30 orders
        // of magnitude; the test on the count switches to the empirical rate.
        let mut hashes = balanced(380, 2);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for i in 0..20 {
            let mut h = hashes[i];
            let bit = |h: &Hash256, b: usize| h.0[b / 64] >> (b % 64) & 1;
            let ones: Vec<usize> = (0..256).filter(|&b| bit(&h, b) == 1).collect();
            let zeros: Vec<usize> = (0..256).filter(|&b| bit(&h, b) == 0).collect();
            let s = rng.random_range(6..=12);
            for t in 0..s {
                let (o, z) = (ones[t * 7 % ones.len()], zeros[t * 5 % zeros.len()]);
                h.0[o / 64] ^= 1 << (o % 64);
                h.0[z / 64] ^= 1 << (z % 64);
            }
            hashes.push(h);
        }
        let fp = false_positives(&hashes, 31, &[1], PHOTOS_PER_DAY, 3);
        let truth = 20.0 / fp.pairs as f64;
        assert_eq!(fp.within_radius, 20);
        assert!(!fp.model.as_ref().unwrap().consistent);
        assert_eq!(fp.estimate_from, "empirical");
        assert!((fp.estimate / truth - 1.0).abs() < 1e-9);
        assert!(fp.estimate_ci[0] < truth && truth < fp.estimate_ci[1]);
        assert!(fp.limits.contains("near-duplicates"), "{}", fp.limits);
    }

    #[test]
    fn a_tail_heavier_than_the_model_is_said_in_words() {
        // Balanced random hashes, plus images that share most of their bits with a common
        // template (a family of similar photos): their pairs sit far below the bulk.
        let mut hashes = balanced(300, 4);
        let template = hashes[0];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..12 {
            let mut h = template;
            let bit = |h: &Hash256, b: usize| h.0[b / 64] >> (b % 64) & 1;
            let ones: Vec<usize> = (0..256).filter(|&b| bit(&template, b) == 1).collect();
            let zeros: Vec<usize> = (0..256).filter(|&b| bit(&template, b) == 0).collect();
            for _ in 0..22 {
                let (o, z) = (
                    ones[rng.random_range(0..ones.len())],
                    zeros[rng.random_range(0..zeros.len())],
                );
                if bit(&h, o) == 1 && bit(&h, z) == 0 {
                    h.0[o / 64] ^= 1 << (o % 64);
                    h.0[z / 64] ^= 1 << (z % 64);
                }
            }
            hashes.push(h);
        }
        let fp = false_positives(&hashes, 31, &[1], PHOTOS_PER_DAY, 3);
        assert!(fp.limits.contains("heavier"), "{}", fp.limits);
    }

    #[test]
    fn poisson_tails_match_known_values() {
        // P(X ≥ 3 | μ = 1) = 1 − (1 + 1 + 1/2)/e = 0.0803014; P(X ≥ 1 | μ = 1e-20) ≈ 1e-20.
        assert!((poisson_upper(3, 1.0) - 0.0803014).abs() < 1e-6);
        assert!((poisson_upper(1, 1e-20) / 1e-20 - 1.0).abs() < 1e-6);
        assert_eq!(poisson_upper(0, 5.0), 1.0);
        // Many observed against few expected: fast, and tiny.
        assert!(poisson_upper(100_000, 3.0) < 1e-300 || poisson_upper(100_000, 3.0) == 0.0);
    }

    #[test]
    fn clopper_pearson_matches_known_values() {
        // R's binom.test: 5 of 10, 1 of 100, 0 of 10.
        let close =
            |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6;
        assert!(
            close(clopper_pearson(5, 10), [0.1870860, 0.8129140]),
            "{:?}",
            clopper_pearson(5, 10)
        );
        assert!(
            close(clopper_pearson(1, 100), [0.0002531460, 0.0544593854]),
            "{:?}",
            clopper_pearson(1, 100)
        );
        assert!(
            close(clopper_pearson(0, 10), [0.0, 0.3084971]),
            "{:?}",
            clopper_pearson(0, 10)
        );
        assert_eq!(clopper_pearson(0, 0), [0.0, 1.0]);
        // For k = 0 the upper bound is 1 − 0.025^(1/n), about 3.69 / n.
        let u = clopper_pearson(0, 1_000_000)[1];
        assert!((u - (1.0 - 0.025f64.powf(1e-6))).abs() / u < 1e-6, "{u}");
    }

    #[test]
    fn wilson_intervals_match_known_values() {
        // 24 of 24: the lower bound is 0.862 (the usual textbook figure).
        let [lo, hi] = wilson(24, 24);
        assert!((lo - 0.8620).abs() < 1e-3 && hi == 1.0);
        let [lo, hi] = wilson(12, 24);
        assert!((lo - 0.3136).abs() < 1e-3 && (hi - 0.6864).abs() < 1e-3);
        assert_eq!(wilson(0, 0), [0.0, 1.0]);
    }
}
