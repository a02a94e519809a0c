//! False positives: the distance distribution of unrelated pairs, its fitted tail, and the
//! projection to a messenger's daily volume.
//!
//! # Definitions
//! - **Pairs:** every unordered pair of distinct corpus images (originals), which the corpus
//!   notes vouch are unrelated.
//! - **Empirical rate** `p̂ = k / pairs`, `k` = pairs within the radius. Its 95% upper bound is
//!   the Wilson score bound (for `k = 0` close to the "rule of three", 3 / pairs).
//! - **Fitted tail:** a normal distribution fitted by moments to the distances; `p_fit =
//!   Φ((r + 0.5 − mean) / sd)`. Its 95% interval comes from a seeded bootstrap over images
//!   (not pairs, which are dependent).
//! - **Projection:** innocent images flagged per day = `N · (1 − (1 − p)^L)` for `N` images a
//!   day against a list of `L` entries, assuming list entries behave like corpus images.

use rand::{Rng, SeedableRng};
use scanlab_pdq::Hash256;

/// WhatsApp's photos per day (July 2017, see `literature.md`).
pub const PHOTOS_PER_DAY: f64 = 4.5e9;

/// One projected row.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Projection {
    /// List entries.
    pub list_size: u64,
    /// Innocent images flagged per day, from the fitted tail.
    pub per_day_fit: f64,
    /// 95% interval of that.
    pub per_day_fit_ci: [f64; 2],
    /// The empirical 95% upper bound per day.
    pub per_day_empirical_upper: f64,
    /// From the lower-tail fit.
    pub per_day_tail_fit: Option<f64>,
}

/// The false-positive analysis.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FalsePositives {
    /// Images.
    pub images: usize,
    /// Unrelated pairs.
    pub pairs: u64,
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
    /// Wilson 95% upper bound of the rate.
    pub empirical_upper_95: f64,
    /// Fitted per-pair probability.
    pub fitted_rate: f64,
    /// Its bootstrap 95% interval.
    pub fitted_ci: [f64; 2],
    /// The lower-tail (exponential) fit's per-pair probability, if the tail has enough points.
    pub tail_fit_rate: Option<f64>,
    /// Distance histogram, 0..=256.
    pub histogram: Vec<u64>,
    /// Daily projections.
    pub projection: Vec<Projection>,
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

fn moments(d: &[u32]) -> (f64, f64) {
    let n = d.len() as f64;
    let mean = d.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = d.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn per_day(p: f64, l: u64) -> f64 {
    // 1 − (1 − p)^L without cancellation for tiny p.
    PHOTOS_PER_DAY * -((l as f64) * (-p).ln_1p()).exp_m1()
}

/// Analyses `hashes` (one per image) at `radius`, projecting to `list_sizes`.
pub fn false_positives(
    hashes: &[Hash256],
    radius: u32,
    list_sizes: &[u64],
    seed: u64,
) -> FalsePositives {
    let n = hashes.len();
    let mut dist = vec![0u32; n * n];
    let mut all = Vec::with_capacity(n * (n - 1) / 2);
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
    let (mean, sd) = moments(&all);
    let fit = |m: f64, s: f64| normal_cdf((radius as f64 + 0.5 - m) / s);
    let fitted_rate = fit(mean, sd);
    // Bootstrap over images.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xB007);
    let mut boots: Vec<f64> = (0..200)
        .map(|_| {
            let pick: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
            let mut v = Vec::with_capacity(all.len());
            for a in 0..n {
                for b in a + 1..n {
                    if pick[a] != pick[b] {
                        v.push(dist[pick[a] * n + pick[b]]);
                    }
                }
            }
            let (m, s) = moments(&v);
            fit(m, s)
        })
        .collect();
    boots.sort_by(f64::total_cmp);
    let fitted_ci = [boots[4], boots[195]];
    let ph = k as f64 / pairs as f64;
    let upper = wilson(k as usize, pairs as usize)[1];
    let tail = tail_fit(&histogram, pairs, radius);
    FalsePositives {
        tail_fit_rate: tail,
        images: n,
        pairs,
        radius,
        within_radius: k,
        min_distance: all.iter().copied().min().unwrap_or(0),
        mean,
        sd,
        empirical_rate: ph,
        empirical_upper_95: upper,
        fitted_rate,
        fitted_ci,
        histogram,
        projection: list_sizes
            .iter()
            .map(|&l| Projection {
                list_size: l,
                per_day_fit: per_day(fitted_rate, l),
                per_day_fit_ci: [per_day(fitted_ci[0], l), per_day(fitted_ci[1], l)],
                per_day_empirical_upper: per_day(upper, l),
                per_day_tail_fit: tail.map(|p| per_day(p, l)),
            })
            .collect(),
    }
}

fn tail_fit(hist: &[u64], pairs: u64, radius: u32) -> Option<f64> {
    let mut cum = 0u64;
    let mut pts = Vec::new();
    for (d, &c) in hist.iter().enumerate() {
        cum += c;
        let f = cum as f64 / pairs as f64;
        if f > 0.01 {
            break;
        }
        if cum >= 5 {
            pts.push((d as f64, f.ln()));
        }
    }
    if pts.len() < 3 {
        return None;
    }
    let n = pts.len() as f64;
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
    let (mx, my) = (sx / n, sy / n);
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let b = sxy / sxx;
    Some((my + b * (radius as f64 - mx)).exp().min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_known_values_into_the_far_tail() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(-1.96) - 0.024998).abs() < 1e-5);
        assert!((normal_cdf(1.0) - 0.841345).abs() < 1e-5);
        // Φ(−7) = 1.279813e-12.
        assert!((normal_cdf(-7.0) / 1.279813e-12 - 1.0).abs() < 0.01);
        assert!((normal_cdf(-5.0) / 2.866516e-7 - 1.0).abs() < 0.01);
    }

    #[test]
    fn random_hashes_average_128_bits_apart_and_none_match() {
        let hashes: Vec<Hash256> =
            scanlab_hashlist::synth::list(200, scanlab_hashlist::synth::Shape::Uniform, 1);
        let fp = false_positives(&hashes, 31, &[1, 1_000_000], 3);
        assert_eq!(fp.pairs, 200 * 199 / 2);
        assert!((fp.mean - 128.0).abs() < 1.0, "{}", fp.mean);
        assert!((fp.sd - 8.0).abs() < 0.5, "{}", fp.sd);
        assert_eq!(fp.within_radius, 0);
        assert!(fp.fitted_ci[0] <= fp.fitted_rate && fp.fitted_rate <= fp.fitted_ci[1]);
        assert!(fp.projection[1].per_day_fit > fp.projection[0].per_day_fit);
        assert_eq!(fp.histogram.iter().sum::<u64>(), fp.pairs);
        // The exponential tail is heavier than the normal one, and below 1% at the radius.
        let t = fp.tail_fit_rate.unwrap();
        assert!(t > fp.fitted_rate && t < 0.01, "{t}");
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
