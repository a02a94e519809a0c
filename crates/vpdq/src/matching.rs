//! The vPDQ match rule between a query video Q and a compared video C.
//!
//! Drop the frames of quality below F on both sides (and, in the Python library, frames whose
//! hash repeats an earlier frame's); q% is the share of Q's remaining frames that have a frame
//! of C within distance D, c% the same for C in Q; the videos match when q% ≥ P_q and
//! c% ≥ P_c.
//!
//! Upstream disagrees with itself, and these are our settlements ([`MatchRule::default`]):
//! - **distance**: the C++ matcher counts `distance < D`, the README and the Python library
//!   `distance <= D`. We use `<=`, as the Python library (and so HMA) does, and as scanlab
//!   matches images: "within 31" means 31 counts.
//! - **duplicates**: the Python library dedupes frames by hash before counting, the C++ does
//!   not. We dedupe, as the Python library does: a static scene of many identical frames
//!   should weigh once.
//! - **thresholds**: the README's example requires P_c = 80%, P_q = 0%; the Python library's
//!   constants are query 80%, index 0%. We follow the library: P_q = 80%, P_c = 0% (most of
//!   the query must be in the listed video; a short clip of a long listed video matches).
//! - **no frames left** after filtering: the C++ gives 0% and 0%, the Python library divides
//!   by zero. We give 0% and 0%, so a video of only low-quality frames never matches.
//!
//! [`MatchRule::upstream_cpp`] is the C++ matcher's rule, with which the percentages in
//! upstream's README are reproduced from the published hashes (`tests/reference.rs`).

use crate::FrameHash;
use std::collections::HashSet;

/// The parameters of the rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatchRule {
    /// D: largest distance between matching frames (see `strict`).
    pub distance: u32,
    /// F: frames of lower quality are ignored.
    pub quality: u8,
    /// P_q: least share of the query's frames that must match, in percent.
    pub query_percent: f64,
    /// P_c: least share of the compared video's frames that must match, in percent.
    pub compared_percent: f64,
    /// Count `distance < D` (the C++ matcher) instead of `distance <= D`.
    pub strict: bool,
    /// Drop frames whose hash repeats an earlier frame's (the Python library).
    pub dedupe: bool,
}

impl Default for MatchRule {
    /// D = 31, F = 50, P_q = 80%, P_c = 0%, `<=`, deduplicated: the Python library's rule.
    fn default() -> Self {
        MatchRule {
            distance: 31,
            quality: 50,
            query_percent: 80.0,
            compared_percent: 0.0,
            strict: false,
            dedupe: true,
        }
    }
}

impl MatchRule {
    /// The C++ `match-hashes-brute` rule, with the README's thresholds (P_c = 80%, P_q = 0%).
    pub fn upstream_cpp() -> Self {
        MatchRule {
            query_percent: 0.0,
            compared_percent: 80.0,
            strict: true,
            dedupe: false,
            ..MatchRule::default()
        }
    }

    /// Whether two frame hashes are close enough.
    pub fn frames_match(&self, a: &FrameHash, b: &FrameHash) -> bool {
        let d = a.hash.distance(&b.hash);
        if self.strict {
            d < self.distance
        } else {
            d <= self.distance
        }
    }

    /// The frames the rule counts: quality ≥ F, deduplicated if asked.
    pub fn filter<'a>(&self, frames: &'a [FrameHash]) -> Vec<&'a FrameHash> {
        self.counted(frames)
            .into_iter()
            .map(|i| &frames[i])
            .collect()
    }

    /// The positions in `frames` of the frames the rule counts, in order.
    pub fn counted(&self, frames: &[FrameHash]) -> Vec<usize> {
        let mut seen = HashSet::new();
        frames
            .iter()
            .enumerate()
            .filter(|(_, f)| !self.dedupe || seen.insert(f.hash))
            .filter(|(_, f)| f.quality >= self.quality)
            .map(|(i, _)| i)
            .collect()
    }

    /// Both percentages, by comparing every pair of frames (upstream's brute-force matcher).
    pub fn compare(&self, query: &[FrameHash], compared: &[FrameHash]) -> Comparison {
        let (q, c) = (self.filter(query), self.filter(compared));
        if q.is_empty() || c.is_empty() {
            return Comparison::default();
        }
        let share = |a: &[&FrameHash], b: &[&FrameHash]| {
            let hits = a
                .iter()
                .filter(|x| b.iter().any(|y| self.frames_match(x, y)))
                .count();
            hits as f64 * 100.0 / a.len() as f64
        };
        Comparison {
            query_percent: share(&q, &c),
            compared_percent: share(&c, &q),
        }
    }

    /// Whether a comparison is a match under this rule (and at least one frame matched, so
    /// that thresholds of 0% do not match every video).
    pub fn is_match(&self, c: &Comparison) -> bool {
        c.query_percent >= self.query_percent
            && c.compared_percent >= self.compared_percent
            && c.query_percent > 0.0
    }
}

/// The two percentages of a comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Comparison {
    /// Share of the query's counted frames with a match in the compared video, percent.
    pub query_percent: f64,
    /// Share of the compared video's counted frames with a match in the query, percent.
    pub compared_percent: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanlab_pdq::Hash256;

    fn f(frame: u32, quality: u8, bits: u64) -> FrameHash {
        FrameHash {
            frame,
            quality,
            hash: Hash256([bits, 0, 0, 0]),
            timestamp: 0.0,
        }
    }

    #[test]
    fn distance_boundary_follows_strictness() {
        // 31 bits apart.
        let (a, b) = (f(0, 100, 0), f(0, 100, (1 << 31) - 1));
        assert_eq!(a.hash.distance(&b.hash), 31);
        assert!(MatchRule::default().frames_match(&a, &b));
        assert!(!MatchRule::upstream_cpp().frames_match(&a, &b));
    }

    #[test]
    fn quality_filter_duplicates_and_shares() {
        let q = [f(0, 100, 0), f(1, 100, 0), f(2, 100, u64::MAX), f(3, 10, 0)];
        let c = [f(0, 100, 1)];
        let r = MatchRule::default();
        // Deduplicated: {0, MAX} counted, 0 matches: 50%; C's one frame matches: 100%.
        assert_eq!(
            r.compare(&q, &c),
            Comparison {
                query_percent: 50.0,
                compared_percent: 100.0
            }
        );
        assert!(!r.is_match(&r.compare(&q, &c)));
        let cpp = MatchRule::upstream_cpp();
        let got = cpp.compare(&q, &c);
        assert!((got.query_percent - 200.0 / 3.0).abs() < 1e-9);
        assert!(cpp.is_match(&got));
        // Nothing left after the quality filter: no match, no division by zero.
        let low = [f(0, 10, 0)];
        assert_eq!(r.compare(&low, &c), Comparison::default());
        assert!(!r.is_match(&Comparison::default()));
    }
}
