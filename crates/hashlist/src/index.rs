//! Exact Hamming-range search over 256-bit hashes: multi-index hashing (MIH).
//!
//! # The construction
//! Norouzi, Punjani and Fleet, "Fast Search in Hamming Space with Multi-Index Hashing" (CVPR
//! 2012), as Meta's `pdq/cpp/index/mih.h` also uses it. Cut each 256-bit hash into 16 chunks of
//! 16 bits. If two hashes are within distance `r`, then by the pigeonhole principle at least one
//! chunk pair is within `s = ⌊r/16⌋` bits. So for each chunk position we keep a table from the
//! 16-bit chunk value to the hashes having it, and a query probes, in each table, every value
//! within `s` bits of its own chunk; each candidate is then checked with a full distance.
//!
//! For PDQ's usual `r = 31`, `s = 1`: 17 probes in each of 16 tables. A candidate can surface in
//! several tables; it is reported only from the *first* table where its chunk is within `s`,
//! which removes duplicates without any per-query memory.
//!
//! The answer is exact (100% recall): the pigeonhole argument leaves no match unprobed, and the
//! property tests compare every query with a linear scan, on uniform and on clustered lists.
//!
//! # Memory
//! Each table is a counting-sort of positions by chunk value: `u32` offsets (65,537 of them) and
//! one position per hash, packed in 3 bytes while the list has under 2^24 (16.7M) hashes and 4
//! beyond. So 16 × 3 = 48 bytes per hash, plus 4 MiB of offsets (0.4 bytes per hash at 10M),
//! beside the 32-byte hashes themselves: 80.4 bytes per hash in all at 10M.

use rayon::prelude::*;
use scanlab_pdq::Hash256;

/// Chunks per hash, and bits per chunk.
const CHUNKS: usize = 16;
const BUCKETS: usize = 1 << 16;

/// One hit of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Hit {
    /// Position of the matching hash in the indexed slice.
    pub position: u32,
    /// Its Hamming distance to the query.
    pub distance: u32,
}

#[inline(always)]
fn chunk(h: &[u64; 4], t: usize) -> usize {
    ((h[t / 4] >> (48 - 16 * (t % 4))) & 0xFFFF) as usize
}

#[inline(always)]
fn distance(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// The largest radius a query may ask for. Beyond 64 the pigeonhole probes (each chunk within
/// 4+ bits) outnumber the hashes of any real list; a linear scan is the right tool there.
pub const MAX_RADIUS: u32 = 64;

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Radius over [`MAX_RADIUS`].
    #[error(
        "radius {0} is over the maximum of 64\n  PDQ's match threshold is 31; use a linear scan for wider searches"
    )]
    Radius(u32),
    /// More hashes than `u32` positions.
    #[error("{0} hashes is more than an index holds (2^32 - 1)")]
    TooMany(usize),
}

/// Brute force: every hash compared with every query. The correctness oracle, and the baseline
/// in benchmarks.
pub struct LinearIndex {
    hashes: Vec<[u64; 4]>,
}

impl LinearIndex {
    /// Indexes a copy of `hashes`.
    pub fn new(hashes: &[Hash256]) -> Self {
        LinearIndex {
            hashes: hashes.iter().map(|h| h.0).collect(),
        }
    }

    /// All hashes within `radius` of `q`, by position.
    pub fn query(&self, q: &Hash256, radius: u32) -> Vec<Hit> {
        #[cfg(target_arch = "x86_64")]
        if has_popcnt() {
            // SAFETY: POPCNT was detected.
            return unsafe { self.query_popcnt(q, radius) };
        }
        self.query_impl(q, radius)
    }

    /// [`LinearIndex::query`] compiled with the POPCNT instruction.
    ///
    /// # Safety
    /// The CPU must support POPCNT.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn query_popcnt(&self, q: &Hash256, radius: u32) -> Vec<Hit> {
        self.query_impl(q, radius)
    }

    #[inline(always)]
    fn query_impl(&self, q: &Hash256, radius: u32) -> Vec<Hit> {
        self.hashes
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let d = distance(h, &q.0);
                (d <= radius).then_some(Hit {
                    position: i as u32,
                    distance: d,
                })
            })
            .collect()
    }
}

struct Table {
    offsets: Vec<u32>,
    /// Positions, `width` little-endian bytes each.
    positions: Vec<u8>,
}

/// The multi-index hash (see the module docs). Immutable once built; share it across threads.
pub struct MihIndex {
    hashes: Vec<[u64; 4]>,
    tables: Vec<Table>,
    /// Bytes per stored position: 3 below 2^24 hashes, else 4.
    width: usize,
}

impl MihIndex {
    /// Builds the 16 tables (in parallel, one per chunk position).
    pub fn build(hashes: &[Hash256]) -> Result<Self, IndexError> {
        if hashes.len() >= u32::MAX as usize {
            return Err(IndexError::TooMany(hashes.len()));
        }
        Ok(Self::build_with_width(
            hashes,
            if hashes.len() < 1 << 24 { 3 } else { 4 },
        ))
    }

    fn build_with_width(hashes: &[Hash256], width: usize) -> Self {
        let hs: Vec<[u64; 4]> = hashes.iter().map(|h| h.0).collect();
        let tables = (0..CHUNKS)
            .into_par_iter()
            .map(|t| {
                let mut offsets = vec![0u32; BUCKETS + 1];
                for h in &hs {
                    offsets[chunk(h, t) + 1] += 1;
                }
                for b in 0..BUCKETS {
                    offsets[b + 1] += offsets[b];
                }
                let mut fill = offsets.clone();
                // One spare byte, so every 3-byte position can be read as a masked 4-byte word.
                let mut positions = vec![0u8; hs.len() * width + 1];
                for (i, h) in hs.iter().enumerate() {
                    let c = chunk(h, t);
                    let at = fill[c] as usize * width;
                    positions[at..at + width].copy_from_slice(&(i as u32).to_le_bytes()[..width]);
                    fill[c] += 1;
                }
                Table { offsets, positions }
            })
            .collect();
        MihIndex {
            hashes: hs,
            tables,
            width,
        }
    }

    /// Number of hashes indexed.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Bytes of memory held (tables and hashes).
    pub fn memory_bytes(&self) -> usize {
        self.hashes.len() * 32
            + self
                .tables
                .iter()
                .map(|t| 4 * t.offsets.len() + t.positions.len())
                .sum::<usize>()
    }

    /// All hashes within `radius` of `q`, sorted by position.
    pub fn query(&self, q: &Hash256, radius: u32) -> Result<Vec<Hit>, IndexError> {
        if radius > MAX_RADIUS {
            return Err(IndexError::Radius(radius));
        }
        #[cfg(target_arch = "x86_64")]
        if has_popcnt() {
            // SAFETY: POPCNT was detected.
            return Ok(unsafe { self.query_popcnt(q, radius) });
        }
        Ok(self.query_impl(q, radius))
    }

    /// [`MihIndex::query`] compiled with the POPCNT instruction.
    ///
    /// # Safety
    /// The CPU must support POPCNT.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn query_popcnt(&self, q: &Hash256, radius: u32) -> Vec<Hit> {
        self.query_impl(q, radius)
    }

    #[inline(always)]
    fn query_impl(&self, q: &Hash256, radius: u32) -> Vec<Hit> {
        let s = radius / CHUNKS as u32;
        let q = q.0;
        let qc: [usize; CHUNKS] = std::array::from_fn(|t| chunk(&q, t));
        // Gather candidates first (sequential reads of the tables), then verify them with the
        // hash loads prefetched ahead: at 10M hashes nearly every verification is a cache
        // miss, and overlapping them is most of the speed.
        let mut cand: Vec<(u32, u8)> = Vec::new();
        for (t, table) in self.tables.iter().enumerate() {
            for_each_within(qc[t] as u16, s, |probe| {
                let (lo, hi) = (
                    table.offsets[probe as usize] as usize,
                    table.offsets[probe as usize + 1] as usize,
                );
                let w = self.width;
                let mask = if w == 3 { 0x00FF_FFFF } else { u32::MAX };
                let bytes = &table.positions[lo * w..hi * w + 1];
                cand.extend((0..hi - lo).map(|k| {
                    let word: [u8; 4] = bytes[k * w..k * w + 4].try_into().expect("4 bytes");
                    (u32::from_le_bytes(word) & mask, t as u8)
                }));
            });
        }
        const AHEAD: usize = 16;
        let mut out = Vec::new();
        for i in 0..cand.len() {
            if let Some(&(p, _)) = cand.get(i + AHEAD) {
                prefetch(&self.hashes[p as usize]);
            }
            let (p, t) = cand[i];
            let h = &self.hashes[p as usize];
            let d = distance(h, &q);
            if d > radius {
                continue;
            }
            // Report from the first table where this hash's chunk is within `s` only.
            if (0..t as usize).all(|u| ((chunk(h, u) ^ qc[u]) as u16).count_ones() > s) {
                out.push(Hit {
                    position: p,
                    distance: d,
                });
            }
        }
        out.sort_unstable();
        out
    }

    /// Many queries on all threads of the current rayon pool; results in query order.
    pub fn query_batch(&self, qs: &[Hash256], radius: u32) -> Result<Vec<Vec<Hit>>, IndexError> {
        qs.par_iter().map(|q| self.query(q, radius)).collect()
    }
}

/// Whether the CPU has POPCNT, checked once. The default x86-64 target predates it, so without
/// this `count_ones` compiles to a bit-twiddling sequence several times slower; the binary must
/// still run on any x86-64, hence runtime detection rather than a global `target-cpu`.
#[cfg(target_arch = "x86_64")]
fn has_popcnt() -> bool {
    static P: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *P.get_or_init(|| std::arch::is_x86_feature_detected!("popcnt"))
}

/// Hints the CPU to start loading `x` into cache.
#[inline(always)]
fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            x as *const T as *const i8,
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// Calls `f` on every 16-bit value within `s` bits of `v` (each exactly once).
fn for_each_within(v: u16, s: u32, mut f: impl FnMut(u16)) {
    fn rec(v: u16, from: u32, left: u32, f: &mut impl FnMut(u16)) {
        f(v);
        if left == 0 {
            return;
        }
        for b in from..16 {
            rec(v ^ (1 << b), b + 1, left - 1, f);
        }
    }
    rec(v, 0, s.min(16), &mut f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    fn random_hash(rng: &mut impl Rng) -> Hash256 {
        Hash256([rng.random(), rng.random(), rng.random(), rng.random()])
    }

    fn clustered(n: usize, seed: u64) -> Vec<Hash256> {
        synth::list(n, synth::Shape::Clustered, seed)
    }

    #[test]
    fn probes_enumerate_each_value_once() {
        let mut seen = std::collections::HashSet::new();
        for_each_within(0xABCD, 2, |p| assert!(seen.insert(p)));
        assert_eq!(seen.len(), 1 + 16 + 120);
        assert!(seen.iter().all(|p| (p ^ 0xABCD).count_ones() <= 2));
    }

    #[test]
    fn radius_over_64_is_refused() {
        let idx = MihIndex::build(&[Hash256::ZERO]).unwrap();
        assert_eq!(idx.query(&Hash256::ZERO, 65), Err(IndexError::Radius(65)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn mih_equals_linear_scan(seed in any::<u64>(), radius in 0u32..=64, clustered_list in any::<bool>()) {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let hashes = if clustered_list { clustered(3000, seed) } else { (0..3000).map(|_| random_hash(&mut rng)).collect() };
            let mih = MihIndex::build(&hashes).unwrap();
            let lin = LinearIndex::new(&hashes);
            for _ in 0..20 {
                // Queries near list entries (so there are hits) and far from them.
                let base = hashes[rng.random_range(0..hashes.len())];
                let q = if rng.random_bool(0.8) { synth::flip(base, rng.random_range(0..48), &mut rng) } else { random_hash(&mut rng) };
                prop_assert_eq!(mih.query(&q, radius).unwrap(), lin.query(&q, radius));
            }
        }
    }

    #[test]
    fn four_byte_positions_give_the_same_answers() {
        // Lists of 2^24 hashes or more store 4-byte positions; same answers as 3-byte ones.
        let hashes = clustered(3000, 11);
        let (a, b) = (
            MihIndex::build_with_width(&hashes, 3),
            MihIndex::build_with_width(&hashes, 4),
        );
        assert_eq!(b.memory_bytes() - a.memory_bytes(), 16 * 3000);
        for q in hashes.iter().step_by(101) {
            assert_eq!(a.query(q, 31).unwrap(), b.query(q, 31).unwrap());
        }
    }

    #[test]
    fn batch_equals_single_queries() {
        let hashes = clustered(2000, 5);
        let mih = MihIndex::build(&hashes).unwrap();
        let qs: Vec<Hash256> = hashes.iter().step_by(37).copied().collect();
        let batch = mih.query_batch(&qs, 31).unwrap();
        for (q, b) in qs.iter().zip(&batch) {
            assert_eq!(&mih.query(q, 31).unwrap(), b);
            assert!(!b.is_empty(), "each query is itself in the list");
        }
    }
}
