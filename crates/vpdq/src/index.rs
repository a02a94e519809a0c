//! Searching a list of videos frame by frame, without comparing the query with every video.
//!
//! A list of N videos of M counted frames each is one multi-index ([`MihIndex`], exact at any
//! radius up to 64) over all N·M frame hashes, with each position mapped back to its video and
//! frame. A query's counted frames are looked up one by one; the hits, grouped by video, give
//! for each video the query frames that have a close frame in it and its frames that have a
//! close frame in the query: exactly the two counts of the brute-force rule
//! ([`MatchRule::compare`]), for every video with at least one hit. A video without a hit has
//! 0% both ways and cannot match ([`MatchRule::is_match`] asks for more than 0%), so it is never
//! looked at. The tests compare every query with every listed video by brute force.
//!
//! [`frames_in_images`] is the other search users ask for (HMA's "a still from a listed
//! image appears in this video"): each counted frame of a video against an index of image
//! hashes.

use crate::FrameHash;
use crate::matching::{Comparison, MatchRule};
use scanlab_hashlist::{IndexError, MihIndex};
use std::collections::HashMap;

/// One listed video: an identifier, a label, and its vPDQ frames.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ListedVideo {
    /// Stable identifier, unique within a list.
    pub id: u64,
    /// In scanlab always a stand-in category.
    #[serde(default)]
    pub label: String,
    /// Its frame hashes, as `vpdq` writes them.
    pub frames: Vec<FrameHash>,
}

/// A listed video the query shares frames with.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoHit {
    /// Position of the video in the list the index was built from.
    pub position: usize,
    /// Its identifier.
    pub id: u64,
    /// The two percentages of the rule.
    pub comparison: Comparison,
    /// Whether they make a match under the index's rule.
    pub is_match: bool,
}

/// The frames of a list of videos, indexed for the vPDQ rule.
pub struct VideoIndex {
    rule: MatchRule,
    videos: Vec<ListedVideo>,
    /// Counted frames of each video (after the rule's quality filter and deduplication).
    counted: Vec<usize>,
    /// For each indexed hash: its video, and its place among that video's counted frames.
    owner: Vec<(u32, u32)>,
    index: MihIndex,
}

impl VideoIndex {
    /// Indexes the counted frames of `videos` for queries under `rule`.
    pub fn build(videos: Vec<ListedVideo>, rule: MatchRule) -> Result<VideoIndex, IndexError> {
        let radius = radius_of(&rule);
        if radius > Some(scanlab_hashlist::index::MAX_RADIUS) {
            return Err(IndexError::Radius(rule.distance));
        }
        let mut hashes = Vec::new();
        let mut owner = Vec::new();
        let mut counted = Vec::with_capacity(videos.len());
        for (v, video) in videos.iter().enumerate() {
            let frames = rule.filter(&video.frames);
            counted.push(frames.len());
            for (j, f) in frames.iter().enumerate() {
                hashes.push(f.hash);
                owner.push((v as u32, j as u32));
            }
        }
        if videos.len() > u32::MAX as usize {
            return Err(IndexError::TooMany(videos.len()));
        }
        Ok(VideoIndex {
            index: MihIndex::build(&hashes)?,
            rule,
            videos,
            counted,
            owner,
        })
    }

    /// The rule the index answers for.
    pub fn rule(&self) -> &MatchRule {
        &self.rule
    }

    /// The listed videos.
    pub fn videos(&self) -> &[ListedVideo] {
        &self.videos
    }

    /// Indexed frame hashes (the counted frames of every video).
    pub fn frames(&self) -> usize {
        self.owner.len()
    }

    /// Every listed video sharing at least one counted frame with `query`, with its two
    /// percentages, the largest query share first (then list order).
    pub fn query(&self, query: &[FrameHash]) -> Vec<VideoHit> {
        let q = self.rule.filter(query);
        let Some(radius) = radius_of(&self.rule) else {
            return Vec::new();
        };
        if q.is_empty() {
            return Vec::new();
        }
        // Per video: which counted query frames hit it, which of its frames were hit.
        let mut seen: HashMap<u32, (Vec<bool>, Vec<bool>)> = HashMap::new();
        for (i, f) in q.iter().enumerate() {
            let hits = self
                .index
                .query(&f.hash, radius)
                .expect("radius checked at build");
            for h in hits {
                let (v, j) = self.owner[h.position as usize];
                let (qs, cs) = seen.entry(v).or_insert_with(|| {
                    (vec![false; q.len()], vec![false; self.counted[v as usize]])
                });
                qs[i] = true;
                cs[j as usize] = true;
            }
        }
        let share = |marks: &[bool]| {
            marks.iter().filter(|&&m| m).count() as f64 * 100.0 / marks.len() as f64
        };
        let mut out: Vec<VideoHit> = seen
            .into_iter()
            .map(|(v, (qs, cs))| {
                let comparison = Comparison {
                    query_percent: share(&qs),
                    compared_percent: share(&cs),
                };
                VideoHit {
                    position: v as usize,
                    id: self.videos[v as usize].id,
                    is_match: self.rule.is_match(&comparison),
                    comparison,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.comparison
                .query_percent
                .total_cmp(&a.comparison.query_percent)
                .then(a.position.cmp(&b.position))
        });
        out
    }

    /// The listed videos `query` matches under the rule.
    pub fn matches(&self, query: &[FrameHash]) -> Vec<VideoHit> {
        self.query(query)
            .into_iter()
            .filter(|h| h.is_match)
            .collect()
    }
}

/// The index radius that answers the rule's distance test: `<= D`, or `< D` when strict
/// (`None`: a strict rule with D = 0 matches nothing).
fn radius_of(rule: &MatchRule) -> Option<u32> {
    if rule.strict {
        rule.distance.checked_sub(1)
    } else {
        Some(rule.distance)
    }
}

/// A frame of a video within the radius of an indexed image hash.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameHit {
    /// The frame's number in the video.
    pub frame: u32,
    /// Its timestamp, seconds.
    pub timestamp: f64,
    /// Position of the image hash in the indexed slice.
    pub position: u32,
    /// Their Hamming distance.
    pub distance: u32,
}

/// Every frame of `frames` of quality at least `min_quality` within `radius` of a hash in
/// `images` (an index of image hashes): where in the video a listed still appears.
pub fn frames_in_images(
    images: &MihIndex,
    frames: &[FrameHash],
    radius: u32,
    min_quality: u8,
) -> Result<Vec<FrameHit>, IndexError> {
    let mut out = Vec::new();
    for f in frames.iter().filter(|f| f.quality >= min_quality) {
        for h in images.query(&f.hash, radius)? {
            out.push(FrameHit {
                frame: f.frame,
                timestamp: f.timestamp,
                position: h.position,
                distance: h.distance,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use scanlab_pdq::Hash256;

    fn flip(h: Hash256, bits: u32, rng: &mut impl Rng) -> Hash256 {
        let mut w = h.0;
        for _ in 0..bits {
            let b = rng.random_range(0..256);
            w[b / 64] ^= 1 << (b % 64);
        }
        Hash256(w)
    }

    /// Videos built from a few "scenes", each frame a scene's hash with a few to many bits
    /// flipped, so that videos share scenes, and distances straddle every radius.
    fn videos(rng: &mut impl Rng, n: usize, scenes: &[Hash256]) -> Vec<ListedVideo> {
        (0..n)
            .map(|v| {
                let len = rng.random_range(0..30);
                let frames = (0..len)
                    .map(|i| {
                        let s = scenes[rng.random_range(0..scenes.len())];
                        let bits = rng.random_range(0..45);
                        FrameHash {
                            frame: i,
                            quality: rng.random_range(30..=100),
                            // Sometimes an exact repeat, which the dedupe step must drop.
                            hash: if rng.random_bool(0.1) {
                                s
                            } else {
                                flip(s, bits, rng)
                            },
                            timestamp: f64::from(i),
                        }
                    })
                    .collect();
                ListedVideo {
                    id: 1000 + v as u64,
                    label: "stand-in".into(),
                    frames,
                }
            })
            .collect()
    }

    fn agrees_with_brute_force(rule: MatchRule, seed: u64) -> usize {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let scenes: Vec<Hash256> = (0..12).map(|_| Hash256(rng.random())).collect();
        let listed = videos(&mut rng, 60, &scenes);
        let queries = videos(&mut rng, 40, &scenes);
        let index = VideoIndex::build(listed.clone(), rule).unwrap();
        let mut matches = 0;
        for q in &queries {
            let got = index.query(&q.frames);
            for (v, c) in listed.iter().enumerate() {
                let want = rule.compare(&q.frames, &c.frames);
                let hit = got.iter().find(|h| h.position == v);
                match hit {
                    Some(h) => {
                        assert_eq!(h.comparison, want, "query {} video {v}", q.id);
                        assert_eq!(h.is_match, rule.is_match(&want));
                        matches += usize::from(h.is_match);
                    }
                    None => assert_eq!(want.query_percent, 0.0, "query {} video {v}", q.id),
                }
            }
            let m = index.matches(&q.frames);
            assert!(m.iter().all(|h| h.is_match));
        }
        matches
    }

    #[test]
    fn the_index_gives_the_brute_force_percentages_for_every_pair() {
        for seed in 0..3 {
            // Both rules, and thresholds with matches to find (the test is empty otherwise).
            assert!(agrees_with_brute_force(MatchRule::default(), seed) > 0);
            assert!(agrees_with_brute_force(MatchRule::upstream_cpp(), seed) > 0);
            let loose = MatchRule {
                query_percent: 30.0,
                distance: 20,
                ..MatchRule::default()
            };
            assert!(agrees_with_brute_force(loose, seed) > 0);
        }
    }

    #[test]
    fn a_frame_exactly_d_bits_away_counts_only_for_the_inclusive_rule() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let a = Hash256(rng.random());
        let b = Hash256([a.0[0] ^ ((1 << 31) - 1), a.0[1], a.0[2], a.0[3]]);
        assert_eq!(a.distance(&b), 31);
        let frame = |hash| FrameHash {
            frame: 0,
            quality: 100,
            hash,
            timestamp: 0.0,
        };
        let listed = vec![ListedVideo {
            id: 7,
            label: String::new(),
            frames: vec![frame(a)],
        }];
        let inclusive = VideoIndex::build(listed.clone(), MatchRule::default()).unwrap();
        assert_eq!(inclusive.matches(&[frame(b)]).len(), 1);
        let strict = VideoIndex::build(listed.clone(), MatchRule::upstream_cpp()).unwrap();
        assert!(strict.query(&[frame(b)]).is_empty());
        let nothing = MatchRule {
            distance: 0,
            ..MatchRule::upstream_cpp()
        };
        let zero = VideoIndex::build(listed, nothing).unwrap();
        assert!(zero.query(&[frame(a)]).is_empty());
    }

    #[test]
    fn a_radius_over_64_is_refused() {
        let rule = MatchRule {
            distance: 65,
            ..MatchRule::default()
        };
        assert!(matches!(
            VideoIndex::build(Vec::new(), rule),
            Err(IndexError::Radius(65))
        ));
    }

    #[test]
    fn frames_in_images_finds_every_frame_a_linear_scan_finds() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let scenes: Vec<Hash256> = (0..12).map(|_| Hash256(rng.random())).collect();
        let images: Vec<Hash256> = scenes.iter().map(|&s| flip(s, 10, &mut rng)).collect();
        let index = MihIndex::build(&images).unwrap();
        let linear = scanlab_hashlist::LinearIndex::new(&images);
        let mut found = 0;
        for v in videos(&mut rng, 30, &scenes) {
            let got = frames_in_images(&index, &v.frames, 31, 50).unwrap();
            let mut want = Vec::new();
            for f in v.frames.iter().filter(|f| f.quality >= 50) {
                for h in linear.query(&f.hash, 31) {
                    want.push((f.frame, h.position, h.distance));
                }
            }
            let mut got: Vec<_> = got
                .iter()
                .map(|h| (h.frame, h.position, h.distance))
                .collect();
            got.sort();
            want.sort();
            assert_eq!(got, want);
            found += got.len();
        }
        assert!(found > 0);
    }
}
