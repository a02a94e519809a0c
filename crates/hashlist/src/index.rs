//! Exact Hamming-range search over 256-bit hashes: multi-index hashing (MIH), chunked by the
//! list's size, and saved to disk to be opened memory-mapped.
//!
//! # The construction
//! Norouzi, Punjani and Fleet, "Fast Search in Hamming Space with Multi-Index Hashing" (CVPR
//! 2012; long version "Fast Exact Search in Hamming Space with Multi-Index Hashing", TPAMI 2014),
//! as Meta's `pdq/cpp/index/mih.h` also uses it. Cut each 256-bit hash into `m` disjoint chunks.
//! If two hashes are within distance `r`, then by the pigeonhole principle at least one chunk
//! pair is within `s = ⌊r/m⌋` bits. So for each chunk position we keep a table from the chunk's
//! value to the hashes having it, and a query probes, in each table, every value within `s` bits
//! of its own chunk; each candidate is then checked with a full distance.
//!
//! A candidate can surface in several tables; it is reported only from the *first* table where
//! its chunk is within `s`, which removes duplicates without any per-query memory. The answer
//! is exact (100% recall): the pigeonhole argument leaves no match unprobed, and the property
//! tests compare every query with a linear scan, for every layout, on uniform and clustered lists.
//!
//! # Chunking by list size
//! The paper's analysis puts the cost minimum near chunks of `log2 n` bits: shorter chunks
//! leave each bucket crowded (`n / 2^w` hashes, nearly all of them candidates to verify, each a
//! cache miss); longer ones multiply the probes (`Σ_{k≤s} C(w, k)`) but leave most buckets
//! empty. [`Layout::for_len`] follows it: 16 chunks of 16 bits up to 2M hashes, 8 chunks of 32
//! bits beyond (where 8 measured faster than 10 or 12, at about the same memory).
//!
//! A table of `w`-bit chunks cannot be a dense array of `2^w` buckets once `w` passes ~24, so
//! tables are **sparse**: a dense directory over the chunk's top `d` bits (`d ≈ log2 n − 4`, a
//! handful of hashes per directory bucket), and in each bucket one packed entry per hash: its
//! position (`⌈log2 n⌉` bits) and the next few bits of its chunk (the *suffix*). A probe walks the
//! directory buckets within `s` bits of the query's top bits and keeps the entries whose suffix
//! is within the bits left; bits below the suffix are left to the full-distance check, so they
//! cost time, never recall.
//!
//! # Memory
//! Per hash: its 32 bytes, plus `m` packed entries of `⌈log2 n⌉ + suffix` bits, plus the
//! directories (`m · 4 · 2^d / n` bytes). [`MihIndex::memory_bytes`] counts all three.
//!
//! # On disk
//! [`MihIndex::save`] writes the tables (the hashes stay in the list) in the format of
//! [`MihIndex::open`], which maps the file and the binary list and builds nothing: the open
//! costs the header checks, one pass over each directory, and a sample of the list's hashes
//! checked against the fingerprint the index was built with. The format:
//!
//! ```text
//! 0   16  magic "scanlab-mih\0\0\0\0" with the format version (1) as its last byte
//! 16   8  n, hashes indexed (u64 LE)
//! 24   4  m, tables (u32 LE)
//! 28   4  position bits (u32 LE)
//! 32  32  SHA-256 of the sampled hashes of the list (see `fingerprint`)
//! 64  8m  per table: start bit (u16 LE), width, directory bits, suffix bits (u8 each), 3 zero bytes
//! ..      per table, each section starting at a multiple of 8: the directory, 2^d + 1 offsets
//!         (u32 LE); the entries, ⌈n·e/8⌉ + 8 bytes, entry i at bit i·e (e = position + suffix
//!         bits, little-endian bit order), position in the low bits
//! ```
//! Offsets, entry positions and sizes are checked before use, so a damaged file is a typed
//! [`IndexError`], never an out-of-bounds read. An index that does not fit its list can only
//! *miss* hashes, never report a wrong one, because every hit is checked on the list's own bytes.

use rayon::prelude::*;
use scanlab_pdq::Hash256;
use std::path::Path;
use std::sync::Arc;

/// One hit of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Hit {
    /// Position of the matching hash in the indexed slice.
    pub position: u32,
    /// Its Hamming distance to the query.
    pub distance: u32,
}

#[inline(always)]
fn distance(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    (a[0] ^ b[0]).count_ones()
        + (a[1] ^ b[1]).count_ones()
        + (a[2] ^ b[2]).count_ones()
        + (a[3] ^ b[3]).count_ones()
}

/// The hash at `i` of a buffer of 32-byte hashes, as [`Hash256::to_bytes`] lays them out.
#[inline(always)]
fn words(bytes: &[u8], i: usize) -> [u64; 4] {
    Hash256::from_bytes(bytes[32 * i..32 * i + 32].try_into().expect("32 bytes")).0
}

/// Bits `start .. start + width` of a hash (bit 0 the first hex digit's top bit), `width ≤ 32`.
#[inline(always)]
fn field(h: &[u64; 4], start: u32, width: u32) -> u32 {
    let (i, off) = ((start / 64) as usize, start % 64);
    let lo = if i < 3 { h[i + 1] } else { 0 };
    let both = ((h[i] as u128) << 64) | lo as u128;
    ((both << off) >> (128 - width)) as u32
}

/// The largest radius a query may ask for. Beyond 64 the pigeonhole probes outnumber the
/// hashes of any real list; a linear scan is the right tool there.
pub const MAX_RADIUS: u32 = 64;

/// Why an index was not built, opened or queried.
#[derive(Debug, thiserror::Error)]
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
    /// A layout that cannot be built.
    #[error("{0}")]
    Layout(String),
    /// A saved index that is damaged, of another version, or not of this list.
    #[error("{0}\n  rebuild it with `scanlab list index`")]
    Saved(String),
    /// The list is not a binary list, or is damaged.
    #[error("{0}\n  an index is built from a binary list: `scanlab list export --format bin`")]
    List(String),
    /// Reading or writing a saved index.
    #[error("{0}")]
    Io(#[from] std::io::Error),
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

/// Bytes an index reads: its own, or a window of a mapped file shared by several tables.
#[derive(Clone)]
pub(crate) enum Bytes {
    Owned(Arc<Vec<u8>>),
    Mapped {
        map: Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
    },
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Mapped { map, start, len } => &map[*start..*start + *len],
        }
    }
}

impl Bytes {
    /// Maps `path` read-only.
    pub(crate) fn map(path: &Path) -> Result<Bytes, IndexError> {
        let file = std::fs::File::open(path)?;
        // SAFETY: the map is read-only and every read through it is bounds-checked against
        // its length at open. What this cannot guard against is another process changing the
        // file while it is mapped: truncating it ends this process with SIGBUS, and rewriting
        // it in place (a shell's `> list.bin`) can change directory offsets after they were
        // checked, which then panics on a slice bound. scanlab itself never writes a list or
        // an index in place (it writes a new file and renames it); the module docs say so.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        let len = map.len();
        Ok(Bytes::Mapped {
            map: Arc::new(map),
            start: 0,
            len,
        })
    }

    fn slice(&self, start: usize, len: usize) -> Bytes {
        match self {
            Bytes::Owned(v) => Bytes::Owned(Arc::new(v[start..start + len].to_vec())),
            Bytes::Mapped { map, start: s, .. } => Bytes::Mapped {
                map: map.clone(),
                start: s + start,
                len,
            },
        }
    }
}

/// How hashes are cut into chunks and how each chunk's table is kept (module docs). Built by
/// [`Layout::for_len`] (the default) or [`Layout::new`] (for experiments); every table's
/// numbers are checked, so an invalid layout cannot be expressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    tables: Vec<TableLayout>,
    position_bits: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TableLayout {
    start: u32,
    width: u32,
    dir_bits: u32,
    suffix_bits: u32,
}

impl TableLayout {
    fn entry_bits(&self, position_bits: u32) -> u32 {
        position_bits + self.suffix_bits
    }
}

/// Bits needed to number `n` positions (at least 1).
fn bits_for(n: usize) -> u32 {
    (usize::BITS - n.saturating_sub(1).leading_zeros()).max(1)
}

impl Layout {
    /// The layout for a list of `n` hashes: 16 chunks of 16 bits up to 2^21 hashes, 8 chunks of
    /// 32 bits beyond (the paper's `log2 n`-bit chunks, with the boundary where they measured
    /// fastest here); beyond 2^21, entries of the position's `p` bits and 6 more (at most 32)
    /// and directories of `2^(p-5)` buckets, so that a 10M list costs under 64 bytes a hash,
    /// the hash included.
    pub fn for_len(n: usize) -> Result<Layout, IndexError> {
        let log = bits_for(n);
        // Measured (scripts/bench-index.sh, README): at 1M hashes 16 chunks answer in half
        // the time of 12 or 8; at 10M and 100M 8 chunks of 32 bits are the fastest for their
        // memory, and 10 or 12 chunks are neither smaller nor much faster. Beyond 2^21 the
        // entries hold 6 suffix bits (at most 32 bits in all) and the directories 2^(p-5)
        // buckets: at 10M, 63.7 bytes a hash in all, within the 64 that a list on a device
        // can afford; `Layout::new(n, 8, Some(20), 32)` is twice as fast there at 67.4.
        if log <= 21 {
            Layout::new(n, 16, None, 32)
        } else {
            Layout::new(n, 8, Some(log - 5), (log + 6).min(32))
        }
    }

    /// A layout of `chunks` tables (8–32) for `n` hashes, with directories over `dir_bits` top
    /// bits of each chunk (default `⌈log2 n⌉ − 4`, at least 8, at most the chunk), and entries
    /// of at most `entry_bits` bits (position bits up to 56), the rest of each entry holding the
    /// chunk's next bits.
    pub fn new(
        n: usize,
        chunks: usize,
        dir_bits: Option<u32>,
        entry_bits: u32,
    ) -> Result<Layout, IndexError> {
        if n >= u32::MAX as usize {
            return Err(IndexError::TooMany(n));
        }
        if !(8..=32).contains(&chunks) {
            return Err(IndexError::Layout(format!(
                "{chunks} chunks: use 8 to 32 (chunks of 8 to 32 bits)"
            )));
        }
        let position_bits = bits_for(n);
        if !(position_bits..=56).contains(&entry_bits) {
            return Err(IndexError::Layout(format!(
                "entries of {entry_bits} bits: use {position_bits} (the position of one of {n} hashes) to 56"
            )));
        }
        let d = dir_bits.unwrap_or_else(|| position_bits.saturating_sub(4).max(8));
        if !(1..=28).contains(&d) {
            return Err(IndexError::Layout(format!(
                "directories of {d} bits: use 1 to 28"
            )));
        }
        let (base, extra) = (256 / chunks as u32, 256 % chunks as u32);
        let mut start = 0;
        let tables = (0..chunks as u32)
            .map(|t| {
                let width = base + u32::from(t < extra);
                let dir_bits = d.min(width);
                let suffix_bits = (width - dir_bits).min(entry_bits - position_bits);
                let l = TableLayout {
                    start,
                    width,
                    dir_bits,
                    suffix_bits,
                };
                start += width;
                l
            })
            .collect();
        Ok(Layout {
            tables,
            position_bits,
        })
    }

    /// Number of chunks (tables).
    pub fn chunks(&self) -> usize {
        self.tables.len()
    }

    /// Bits of each chunk, in order.
    pub fn widths(&self) -> Vec<u32> {
        self.tables.iter().map(|t| t.width).collect()
    }

    /// Directory bits of the first table.
    pub fn dir_bits(&self) -> u32 {
        self.tables[0].dir_bits
    }

    /// Bits of each packed entry of the first table (position and suffix).
    pub fn entry_bits(&self) -> u32 {
        self.tables[0].entry_bits(self.position_bits)
    }

    /// One line for reports: `8 chunks of 32 bits, directories of 19 bits, 32-bit entries`.
    pub fn describe(&self) -> String {
        let w = self.widths();
        let (lo, hi) = (w.iter().min().unwrap_or(&0), w.iter().max().unwrap_or(&0));
        let bits = if lo == hi {
            format!("{lo}")
        } else {
            format!("{lo}-{hi}")
        };
        format!(
            "{} chunks of {bits} bits, directories of {} bits, {}-bit entries",
            self.chunks(),
            self.dir_bits(),
            self.entry_bits()
        )
    }
}

struct Table {
    layout: TableLayout,
    /// `2^dir_bits + 1` offsets, u32 LE.
    dir: Bytes,
    /// Packed entries (module docs), 8 bytes of padding at the end.
    entries: Bytes,
}

impl Table {
    #[inline(always)]
    fn offset(&self, key: u32) -> usize {
        let at = 4 * key as usize;
        u32::from_le_bytes(self.dir[at..at + 4].try_into().expect("4 bytes")) as usize
    }
}

/// Builds one table by a two-pass radix sort, so that no pass writes at random over the whole
/// table (at 100M hashes a scattered write is a cache miss, and a counting sort straight into
/// the table costs two of them per hash): each hash becomes one word, `(the chunk's directory
/// and suffix bits) << position bits | position`; the words are partitioned by the directory
/// key's top 11 bits into buckets (sequential writes into a few thousand streams), and each
/// bucket, small enough for the cache, is counting-sorted by the key's remaining bits, which
/// gives the directory, and packed into the table. In a word the suffix and position are the
/// entry itself.
fn build_table(hashes: &[u8], n: usize, tl: TableLayout, pb: u32) -> Table {
    let (d, sb) = (tl.dir_bits, tl.suffix_bits);
    let shift = tl.width - d - sb;
    let top = d.min(8);
    let rest = d - top;
    let entry_shift = pb + sb;
    let low = entry_shift + rest;
    let mut starts = vec![0usize; (1 << top) + 1];
    let items: Vec<u64> = (0..n)
        .map(|i| {
            let x =
                ((field(&words(hashes, i), tl.start, tl.width) >> shift) as u64) << pb | i as u64;
            starts[(x >> low) as usize + 1] += 1;
            x
        })
        .collect();
    for b in 0..1 << top {
        starts[b + 1] += starts[b];
    }
    let mut parted = vec![0u64; n];
    let mut fill = starts.clone();
    for &x in &items {
        let b = (x >> low) as usize;
        parted[fill[b]] = x;
        fill[b] += 1;
    }
    drop(items);
    let e = tl.entry_bits(pb);
    let emask = (1u64 << entry_shift) - 1;
    let mut entries = vec![0u8; entries_len(n, e)];
    let mut dir = vec![0u8; 4 * ((1usize << d) + 1)];
    let rmask = (1u64 << rest) - 1;
    let mut counts = vec![0usize; (1 << rest) + 1];
    let mut scratch: Vec<u64> = Vec::new();
    for b in 0..1usize << top {
        let bucket = &parted[starts[b]..starts[b + 1]];
        counts.iter_mut().for_each(|c| *c = 0);
        for &x in bucket {
            counts[((x >> entry_shift) & rmask) as usize + 1] += 1;
        }
        for r in 0..1usize << rest {
            counts[r + 1] += counts[r];
            let key = (b << rest) | r;
            let off = (starts[b] + counts[r]) as u32;
            dir[4 * key..4 * key + 4].copy_from_slice(&off.to_le_bytes());
        }
        scratch.clear();
        scratch.resize(bucket.len(), 0);
        for &x in bucket {
            let r = ((x >> entry_shift) & rmask) as usize;
            scratch[counts[r]] = x & emask;
            counts[r] += 1;
        }
        let at = starts[b];
        if e == 32 {
            for (k, &v) in scratch.iter().enumerate() {
                let o = 4 * (at + k);
                entries[o..o + 4].copy_from_slice(&(v as u32).to_le_bytes());
            }
        } else {
            for (k, &v) in scratch.iter().enumerate() {
                write_entry(&mut entries, at + k, e, v);
            }
        }
    }
    let last = 4 * (1usize << d);
    dir[last..last + 4].copy_from_slice(&(n as u32).to_le_bytes());
    Table {
        layout: tl,
        dir: Bytes::Owned(Arc::new(dir)),
        entries: Bytes::Owned(Arc::new(entries)),
    }
}

/// Reads entry `i` of `e` bits from a packed buffer.
#[inline(always)]
fn read_entry(buf: &[u8], i: usize, e: u32) -> u64 {
    let bit = i * e as usize;
    let word = u64::from_le_bytes(buf[bit / 8..bit / 8 + 8].try_into().expect("8 bytes"));
    (word >> (bit % 8)) & ((1u64 << e) - 1)
}

/// Writes entry `i` of `e` bits into a packed buffer (whose bits there are zero).
#[inline(always)]
fn write_entry(buf: &mut [u8], i: usize, e: u32, v: u64) {
    let bit = i * e as usize;
    let at = bit / 8;
    let mut word = u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
    word |= v << (bit % 8);
    buf[at..at + 8].copy_from_slice(&word.to_le_bytes());
}

fn entries_len(n: usize, e: u32) -> usize {
    (n * e as usize).div_ceil(8) + 8
}

/// The multi-index hash (see the module docs). Immutable once built; share it across threads.
pub struct MihIndex {
    n: usize,
    /// The hashes, 32 bytes each ([`Hash256::to_bytes`]): the index's own, or the list file's.
    hashes: Bytes,
    tables: Vec<Table>,
    layout: Layout,
}

impl std::fmt::Debug for MihIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MihIndex")
            .field("n", &self.n)
            .field("layout", &self.layout.describe())
            .finish()
    }
}

const MAGIC: &[u8; 16] = b"scanlab-mih\0\0\0\0\x01";
const HEADER: usize = 64;
/// Hashes of the list sampled into the fingerprint a saved index is checked against.
const SAMPLES: usize = 4096;

impl MihIndex {
    /// Builds the index of `hashes` with the layout for their number ([`Layout::for_len`]).
    pub fn build(hashes: &[Hash256]) -> Result<Self, IndexError> {
        Self::build_with(hashes, Layout::for_len(hashes.len())?)
    }

    /// Builds the index of `hashes` with a given layout (which must be for their number).
    pub fn build_with(hashes: &[Hash256], layout: Layout) -> Result<Self, IndexError> {
        let bytes: Vec<u8> = hashes.iter().flat_map(|h| h.to_bytes()).collect();
        Self::build_bytes(Bytes::Owned(Arc::new(bytes)), layout)
    }

    /// Builds the index over the hashes of a binary list file (mapped, not copied), with the
    /// layout for their number, or `layout` when given.
    pub fn build_from_list(path: &Path, layout: Option<Layout>) -> Result<Self, IndexError> {
        let hashes = list_hashes(path)?;
        let n = hashes.len() / 32;
        let layout = match layout {
            Some(l) => l,
            None => Layout::for_len(n)?,
        };
        Self::build_bytes(hashes, layout)
    }

    pub(crate) fn build_bytes(hashes: Bytes, layout: Layout) -> Result<Self, IndexError> {
        let n = hashes.len() / 32;
        if n >= u32::MAX as usize {
            return Err(IndexError::TooMany(n));
        }
        if layout.position_bits != bits_for(n) {
            return Err(IndexError::Layout(format!(
                "the layout is for lists of {}-bit positions, not {n} hashes",
                layout.position_bits
            )));
        }
        let pb = layout.position_bits;
        let tables = layout
            .tables
            .par_iter()
            .map(|&tl| build_table(&hashes, n, tl, pb))
            .collect();
        Ok(MihIndex {
            n,
            hashes,
            tables,
            layout,
        })
    }

    /// Number of hashes indexed.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The layout it was built with.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The hash at `position`.
    pub fn hash(&self, position: u32) -> Hash256 {
        Hash256(words(&self.hashes, position as usize))
    }

    /// Bytes the index reads: the hashes (32 each), the tables' entries and their directories.
    pub fn memory_bytes(&self) -> usize {
        self.hashes.len()
            + self
                .tables
                .iter()
                .map(|t| t.dir.len() + t.entries.len())
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
            return unsafe { self.query_popcnt(q, radius) };
        }
        self.query_impl(q, radius)
    }

    /// [`MihIndex::query`] compiled with the POPCNT instruction.
    ///
    /// # Safety
    /// The CPU must support POPCNT.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn query_popcnt(&self, q: &Hash256, radius: u32) -> Result<Vec<Hit>, IndexError> {
        self.query_impl(q, radius)
    }

    #[inline(always)]
    fn query_impl(&self, q: &Hash256, radius: u32) -> Result<Vec<Hit>, IndexError> {
        let m = self.tables.len() as u32;
        let s = radius / m;
        let q = q.0;
        let pb = self.layout.position_bits;
        let pmask = (1u64 << pb) - 1;
        let qc: Vec<u32> = self
            .tables
            .iter()
            .map(|t| field(&q, t.layout.start, t.layout.width))
            .collect();
        // Gather candidates first (sequential reads of the tables), then verify them with the
        // hash loads prefetched ahead: at 10M hashes nearly every verification is a cache
        // miss, and overlapping them is most of the speed.
        let mut cand: Vec<(u32, u8)> = Vec::new();
        let mut probes: Vec<(u32, u32)> = Vec::new();
        let mut ranges: Vec<(usize, usize, u32)> = Vec::new();
        for (t, table) in self.tables.iter().enumerate() {
            let tl = table.layout;
            let shift = tl.width - tl.dir_bits;
            let qkey = qc[t] >> shift;
            let sb = tl.suffix_bits;
            let qsuf = (qc[t] >> (shift - sb)) as u64 & ((1u64 << sb) - 1);
            let e = tl.entry_bits(pb);
            let buf = &table.entries[..];
            // Three passes, so the cache misses of one probe overlap the others': the
            // directory words of every probe are prefetched, then the bucket starts, then the
            // buckets are read. With 8 chunks a query makes thousands of probes.
            probes.clear();
            for_each_within(qkey, tl.dir_bits, s, |key, used| {
                prefetch(&table.dir[4 * key as usize]);
                probes.push((key, used));
            });
            ranges.clear();
            for &(key, used) in &probes {
                let (lo, hi) = (table.offset(key), table.offset(key + 1));
                if lo < hi {
                    prefetch(&buf[lo * e as usize / 8]);
                    ranges.push((lo, hi, s - used));
                }
            }
            let tag = t as u8;
            for &(lo, hi, left) in &ranges {
                if sb == 0 || left >= sb {
                    cand.extend((lo..hi).map(|k| ((read_entry(buf, k, e) & pmask) as u32, tag)));
                } else if e == 32 {
                    // Whole 32-bit words: the common layout, scanned without bit unpacking.
                    let words = buf[4 * lo..4 * hi]
                        .chunks_exact(4)
                        .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")) as u64);
                    if left == 0 {
                        for v in words {
                            if v >> pb == qsuf {
                                cand.push(((v & pmask) as u32, tag));
                            }
                        }
                    } else {
                        for v in words {
                            if ((v >> pb) ^ qsuf).count_ones() <= left {
                                cand.push(((v & pmask) as u32, tag));
                            }
                        }
                    }
                } else {
                    for k in lo..hi {
                        let v = read_entry(buf, k, e);
                        if ((v >> pb) ^ qsuf).count_ones() <= left {
                            cand.push(((v & pmask) as u32, tag));
                        }
                    }
                }
            }
        }
        const AHEAD: usize = 16;
        let mut out = Vec::new();
        for i in 0..cand.len() {
            if let Some(&(p, _)) = cand.get(i + AHEAD)
                && (p as usize) < self.n
            {
                prefetch(&self.hashes[32 * p as usize]);
            }
            let (p, t) = cand[i];
            if p as usize >= self.n {
                return Err(IndexError::Saved(format!(
                    "table {t} names position {p} of a list of {}",
                    self.n
                )));
            }
            let h = words(&self.hashes, p as usize);
            let d = distance(&h, &q);
            if d > radius {
                continue;
            }
            // Report from the first table where this hash's whole chunk is within `s` only
            // (its chunk in table `t` may be out of reach in the bits below the suffix).
            let within = |u: usize| {
                let l = self.tables[u].layout;
                (field(&h, l.start, l.width) ^ qc[u]).count_ones() <= s
            };
            if within(t as usize) && (0..t as usize).all(|u| !within(u)) {
                out.push(Hit {
                    position: p,
                    distance: d,
                });
            }
        }
        out.sort_unstable();
        // Only a damaged table names a position twice; it must not report a hit twice.
        out.dedup();
        Ok(out)
    }

    /// Many queries on all threads of the current rayon pool; results in query order.
    pub fn query_batch(&self, qs: &[Hash256], radius: u32) -> Result<Vec<Vec<Hit>>, IndexError> {
        qs.par_iter().map(|q| self.query(q, radius)).collect()
    }

    /// Writes the tables (not the hashes, which stay in the list) to `path`, through a
    /// temporary file renamed into place.
    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{}.tmp", std::process::id()));
        let tmp = std::path::PathBuf::from(name);
        let written = self
            .write_to(&tmp)
            .and_then(|()| Ok(std::fs::rename(&tmp, path)?));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    fn write_to(&self, tmp: &Path) -> Result<(), IndexError> {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(tmp)?);
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&(self.n as u64).to_le_bytes());
        header.extend_from_slice(&(self.tables.len() as u32).to_le_bytes());
        header.extend_from_slice(&self.layout.position_bits.to_le_bytes());
        header.extend_from_slice(&fingerprint(&self.hashes));
        for t in &self.layout.tables {
            header.extend_from_slice(&(t.start as u16).to_le_bytes());
            header.extend_from_slice(&[t.width as u8, t.dir_bits as u8, t.suffix_bits as u8]);
            header.extend_from_slice(&[0; 3]);
        }
        out.write_all(&header)?;
        let mut at = header.len();
        for t in &self.tables {
            for section in [&t.dir, &t.entries] {
                let pad = at.next_multiple_of(8) - at;
                out.write_all(&[0u8; 8][..pad])?;
                out.write_all(section)?;
                at += pad + section.len();
            }
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    }

    /// Opens a saved index of the binary list at `list`, both mapped: nothing is built. The
    /// index must have been saved from this list (its count, and a fingerprint of 4,096 of its
    /// hashes spread over the list, are checked).
    pub fn open(index: &Path, list: &Path) -> Result<Self, IndexError> {
        // A list changed after its index was saved (a shell's `> list.bin` keeps the old index
        // beside it) is refused by time, as `make` would: the fingerprint samples 4,096
        // hashes, so an edit between samples would otherwise go unseen (and such hashes could
        // then not be found; a wrong hit is impossible either way).
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified());
        if modified(list)? > modified(index)? {
            return Err(IndexError::Saved(format!(
                "the list {} changed after its index was saved",
                list.display()
            )));
        }
        let hashes = list_hashes(list)?;
        let file = Bytes::map(index)?;
        Self::from_saved(file, hashes)
    }

    pub(crate) fn from_saved(file: Bytes, hashes: Bytes) -> Result<Self, IndexError> {
        let bad = |m: String| IndexError::Saved(m);
        if file.len() < HEADER || file[..15] != MAGIC[..15] {
            return Err(bad("not a scanlab index (no magic)".into()));
        }
        if file[15] != MAGIC[15] {
            return Err(bad(format!(
                "index format version {} (this scanlab reads {})",
                file[15], MAGIC[15]
            )));
        }
        let u32_at = |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().expect("4"));
        let n = u64::from_le_bytes(file[16..24].try_into().expect("8")) as usize;
        if n != hashes.len() / 32 {
            return Err(bad(format!(
                "the index is of a list of {n} hashes, this list holds {}",
                hashes.len() / 32
            )));
        }
        if file[32..64] != fingerprint(&hashes) {
            return Err(bad(
                "the index was built from another list (its sampled hashes differ)".into(),
            ));
        }
        let m = u32_at(24) as usize;
        let pb = u32_at(28);
        if !(8..=32).contains(&m) || pb != bits_for(n) || file.len() < HEADER + 8 * m {
            return Err(bad(format!(
                "bad header: {m} tables, {pb}-bit positions for {n} hashes"
            )));
        }
        let mut layouts = Vec::with_capacity(m);
        let mut next_start = 0;
        for t in 0..m {
            let h = &file[HEADER + 8 * t..HEADER + 8 * t + 8];
            let l = TableLayout {
                start: u16::from_le_bytes([h[0], h[1]]) as u32,
                width: h[2] as u32,
                dir_bits: h[3] as u32,
                suffix_bits: h[4] as u32,
            };
            if l.start != next_start
                || !(1..=32).contains(&l.width)
                || !(1..=28).contains(&l.dir_bits)
                || l.dir_bits + l.suffix_bits > l.width
                || pb + l.suffix_bits > 56
            {
                return Err(bad(format!("bad layout of table {t}: {l:?}")));
            }
            next_start += l.width;
            layouts.push(l);
        }
        if next_start != 256 {
            return Err(bad(format!("the chunks cover {next_start} bits, not 256")));
        }
        let mut at = HEADER + 8 * m;
        let mut tables = Vec::with_capacity(m);
        for l in &layouts {
            let mut section = |len: usize| -> Result<Bytes, IndexError> {
                at = at.next_multiple_of(8);
                if file.len() < at + len {
                    return Err(bad("the file is truncated".into()));
                }
                let b = file.slice(at, len);
                at += len;
                Ok(b)
            };
            let dir = section(4 * ((1usize << l.dir_bits) + 1))?;
            let entries = section(entries_len(n, l.entry_bits(pb)))?;
            let table = Table {
                layout: *l,
                dir,
                entries,
            };
            // Offsets must rise from 0 to n: then every bucket read is within the entries.
            let mut prev = 0;
            for key in 0..=1u32 << l.dir_bits {
                let o = table.offset(key);
                if o < prev || o > n {
                    return Err(bad(format!("directory offset {o} out of order or range")));
                }
                prev = o;
            }
            if prev != n || table.offset(0) != 0 {
                return Err(bad("a directory does not cover the list".into()));
            }
            tables.push(table);
        }
        if at != file.len() {
            return Err(bad(format!(
                "{} bytes after the last table",
                file.len() - at
            )));
        }
        Ok(MihIndex {
            n,
            hashes,
            tables,
            layout: Layout {
                tables: layouts,
                position_bits: pb,
            },
        })
    }
}

/// SHA-256 over the count and [`SAMPLES`] hashes spread evenly over the list (all of them in a
/// shorter list): what binds a saved index to its list at a cost independent of the list's size.
fn fingerprint(hashes: &[u8]) -> [u8; 32] {
    use sha2_11::Digest;
    let n = hashes.len() / 32;
    let mut d = sha2_11::Sha256::new();
    d.update((n as u64).to_le_bytes());
    let step = n.div_ceil(SAMPLES).max(1);
    for i in (0..n).step_by(step).chain(n.checked_sub(1)) {
        d.update(&hashes[32 * i..32 * i + 32]);
    }
    d.finalize().into()
}

/// The hashes of a binary list file, mapped: its body after the 64-byte header.
fn list_hashes(path: &Path) -> Result<Bytes, IndexError> {
    let map = Bytes::map(path)?;
    let body = crate::list::binary_body(&map).map_err(|e| IndexError::List(e.to_string()))?;
    Ok(map.slice(body.start, body.len()))
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

/// Calls `f(value, flips)` on every `bits`-bit value within `s` bits of `v` (each exactly once).
fn for_each_within(v: u32, bits: u32, s: u32, mut f: impl FnMut(u32, u32)) {
    fn rec(v: u32, from: u32, bits: u32, used: u32, left: u32, f: &mut impl FnMut(u32, u32)) {
        f(v, used);
        if left == 0 {
            return;
        }
        for b in from..bits {
            rec(v ^ (1 << b), b + 1, bits, used + 1, left - 1, f);
        }
    }
    rec(v, 0, bits, 0, s.min(bits), &mut f);
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
        for_each_within(0xABCD, 16, 2, |p, used| {
            assert!(seen.insert(p));
            assert_eq!((p ^ 0xABCD).count_ones(), used);
        });
        assert_eq!(seen.len(), 1 + 16 + 120);
        let mut n = 0;
        for_each_within(5, 20, 3, |p, _| {
            assert!(p < 1 << 20);
            n += 1;
        });
        assert_eq!(n, 1 + 20 + 190 + 1140);
    }

    #[test]
    fn fields_cross_word_boundaries() {
        let h = Hash256::from_bytes(std::array::from_fn(|i| i as u8));
        assert_eq!(field(&h.0, 0, 8), 0);
        assert_eq!(field(&h.0, 8, 16), 0x0102);
        assert_eq!(field(&h.0, 56, 16), 0x0708);
        assert_eq!(field(&h.0, 232, 24), 0x1d1e1f);
        assert_eq!(field(&h.0, 224, 32), 0x1c1d1e1f);
    }

    #[test]
    fn radius_over_64_is_refused() {
        let idx = MihIndex::build(&[Hash256::ZERO]).unwrap();
        assert!(matches!(
            idx.query(&Hash256::ZERO, 65),
            Err(IndexError::Radius(65))
        ));
    }

    #[test]
    fn default_layout_follows_list_size() {
        assert_eq!(Layout::for_len(1000).unwrap().chunks(), 16);
        assert_eq!(Layout::for_len(1_000_000).unwrap().chunks(), 16);
        assert_eq!(Layout::for_len(3_000_000).unwrap().chunks(), 8);
        assert_eq!(Layout::for_len(10_000_000).unwrap().chunks(), 8);
        assert_eq!(Layout::for_len(100_000_000).unwrap().chunks(), 8);
        // At 10M: 24-bit positions and 6 bits of suffix, 2^19-bucket directories.
        let l = Layout::for_len(10_000_000).unwrap();
        assert_eq!((l.entry_bits(), l.dir_bits()), (30, 19));
        let idx = MihIndex::build_with(&[Hash256::ZERO; 3], Layout::for_len(3).unwrap()).unwrap();
        assert_eq!(idx.layout().chunks(), 16);
        // Under 64 bytes a hash at 10M, hashes, entries and directories counted.
        let bytes = 32.0 + 8.0 * 30.0 / 8.0 + 8.0 * 4.0 * f64::from(1u32 << 19) / 1e7;
        assert!(bytes < 64.0, "{bytes}");
        // At 100M: 27-bit positions in 32-bit entries, 2^22-bucket directories.
        let l = Layout::for_len(100_000_000).unwrap();
        assert_eq!((l.entry_bits(), l.dir_bits()), (32, 22));
        assert!(Layout::new(10, 7, None, 32).is_err());
        assert!(Layout::new(1 << 20, 8, None, 19).is_err());
    }

    /// Layouts the property test covers: the default, and odd ones (uneven chunks, no
    /// suffix, a suffix that leaves bits to the full check, tiny directories).
    fn layouts(n: usize) -> Vec<Layout> {
        let p = bits_for(n);
        vec![
            Layout::for_len(n).unwrap(),
            Layout::new(n, 16, None, 32).unwrap(),
            Layout::new(n, 8, Some(6), p + 3).unwrap(),
            Layout::new(n, 10, None, p).unwrap(),
            Layout::new(n, 11, Some(13), 56).unwrap(),
            Layout::new(n, 32, Some(2), p + 1).unwrap(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn mih_equals_linear_scan(seed in any::<u64>(), radius in 0u32..=64, clustered_list in any::<bool>()) {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let hashes = if clustered_list { clustered(3000, seed) } else { (0..3000).map(|_| random_hash(&mut rng)).collect() };
            let lin = LinearIndex::new(&hashes);
            let qs: Vec<Hash256> = (0..20).map(|_| {
                // Queries near list entries (so there are hits) and far from them.
                let base = hashes[rng.random_range(0..hashes.len())];
                if rng.random_bool(0.8) { synth::flip(base, rng.random_range(0..48), &mut rng) } else { random_hash(&mut rng) }
            }).collect();
            for layout in layouts(hashes.len()) {
                let mih = MihIndex::build_with(&hashes, layout.clone()).unwrap();
                for q in &qs {
                    prop_assert_eq!(mih.query(q, radius).unwrap(), lin.query(q, radius), "{}", layout.describe());
                }
            }
        }
    }

    #[test]
    fn a_wrong_table_entry_is_caught_by_the_linear_comparison() {
        // Canary for the property test: an index missing one hash's entry in every table
        // must disagree with the linear scan on a query at that hash.
        let hashes = clustered(2000, 3);
        let mut mih = MihIndex::build(&hashes).unwrap();
        let lin = LinearIndex::new(&hashes);
        let victim = hashes[777];
        for t in mih.tables.iter_mut() {
            let e = t.layout.entry_bits(mih.layout.position_bits);
            let mut buf = t.entries.to_vec();
            for k in 0..mih.n {
                if read_entry(&buf, k, e) & ((1 << mih.layout.position_bits) - 1) == 777 {
                    // Point it at another position.
                    let v = read_entry(&buf, k, e) ^ 1;
                    let bit = k * e as usize;
                    let at = bit / 8;
                    let mut word = u64::from_le_bytes(buf[at..at + 8].try_into().unwrap());
                    word &= !(((1u64 << e) - 1) << (bit % 8));
                    word |= v << (bit % 8);
                    buf[at..at + 8].copy_from_slice(&word.to_le_bytes());
                }
            }
            t.entries = Bytes::Owned(Arc::new(buf));
        }
        assert_ne!(mih.query(&victim, 31).unwrap(), lin.query(&victim, 31));
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

    fn write_list(dir: &Path, hashes: &[Hash256]) -> std::path::PathBuf {
        let list = crate::HashList::from_hashes(hashes);
        let path = dir.join("list.bin");
        std::fs::write(&path, list.to_binary([0; 32])).unwrap();
        path
    }

    fn tempdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("scanlab-mih-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn saved_and_opened_index_answers_as_built() {
        let dir = tempdir("saved");
        let hashes = clustered(5000, 9);
        let list = write_list(&dir, &hashes);
        for layout in [
            Layout::for_len(5000).unwrap(),
            Layout::new(5000, 8, None, 32).unwrap(),
        ] {
            let built = MihIndex::build_from_list(&list, Some(layout)).unwrap();
            let idx = dir.join("list.bin.mih");
            built.save(&idx).unwrap();
            let opened = MihIndex::open(&idx, &list).unwrap();
            assert_eq!(opened.layout(), built.layout());
            assert_eq!(opened.memory_bytes(), built.memory_bytes());
            let lin = LinearIndex::new(&hashes);
            for q in synth::queries(&hashes, 200, 4) {
                assert_eq!(opened.query(&q, 31).unwrap(), lin.query(&q, 31));
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_or_foreign_index_is_a_typed_error() {
        let dir = tempdir("damaged");
        let hashes = clustered(3000, 2);
        let list = write_list(&dir, &hashes);
        let idx = dir.join("list.bin.mih");
        MihIndex::build_from_list(&list, None)
            .unwrap()
            .save(&idx)
            .unwrap();
        let good = std::fs::read(&idx).unwrap();
        let open = |bytes: &[u8]| {
            let file = Bytes::Owned(Arc::new(bytes.to_vec()));
            MihIndex::from_saved(file, list_hashes(&list).unwrap())
        };
        assert!(open(&good).is_ok());
        // Truncated anywhere, bytes appended, a version from elsewhere, no magic.
        for cut in [0, 10, 63, 64, 200, good.len() / 2, good.len() - 1] {
            assert!(
                matches!(open(&good[..cut]), Err(IndexError::Saved(_))),
                "cut {cut}"
            );
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(open(&longer).is_err());
        let mut v2 = good.clone();
        v2[15] = 2;
        assert!(open(&v2).unwrap_err().to_string().contains("version 2"));
        // A directory offset out of range.
        let mut bad_dir = good.clone();
        let first_dir = HEADER + 8 * Layout::for_len(3000).unwrap().chunks();
        bad_dir[first_dir + 4..first_dir + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(open(&bad_dir).is_err());
        // A position beyond the list: a typed error at query time, not a panic.
        let mut bad_pos = good.clone();
        let entries = (first_dir + 4 * ((1 << Layout::for_len(3000).unwrap().dir_bits()) + 1))
            .next_multiple_of(8);
        bad_pos[entries..entries + 8].copy_from_slice(&[0xFF; 8]);
        let idx_bad = open(&bad_pos).unwrap();
        // A query whose first chunk is 0x00FF: directory key 0 and suffix 0xFF, as the
        // damaged first entries now read (16 chunks, 8 directory bits at this size).
        assert_eq!(Layout::for_len(3000).unwrap().chunks(), 16);
        assert!(matches!(
            idx_bad.query(&Hash256([0x00FF << 48, 0, 0, 0]), 31),
            Err(IndexError::Saved(_))
        ));
        // The index of another list (same size, older than the index) is refused.
        let other = write_list(&tempdir("other"), &clustered(3000, 99));
        MihIndex::build_from_list(&list, None)
            .unwrap()
            .save(&idx)
            .unwrap();
        let err = MihIndex::open(&idx, &other).unwrap_err().to_string();
        assert!(err.contains("another list"), "{err}");
        // A list rewritten after its index was saved is refused by time, even where the
        // sampled fingerprint would not see the change (an unsampled hash changed).
        let mut changed = clustered(3000, 2);
        changed[1] = Hash256([1, 2, 3, 4]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let list = write_list(&dir, &changed);
        let err = MihIndex::open(&idx, &list).unwrap_err().to_string();
        assert!(err.contains("changed after its index was saved"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
