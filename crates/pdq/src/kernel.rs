//! The streaming Jarosz downsample: full-resolution luma to the 64×64 buffer PDQ hashes.
//!
//! # What Meta's reference does
//! `jaroszFilterFloat` runs a box filter along rows, then along columns, twice (a tent filter),
//! each pass over the whole image in a second full-size float buffer; `decimateFloat` then keeps
//! 64×64 samples. The column passes walk memory with a stride of a whole row, which is why the
//! reference spends most of its time in cache misses (about 0.9 s at 4096²).
//!
//! # What we do instead, with the same floating-point operations
//! Each 1-D box is a running sum whose exact sequence of adds, subtracts and divisions we keep.
//! But the four passes are pipelined over strips of 16 rows, so nothing full-size is ever stored:
//!
//! ```text
//!  RGB rows ─luma─▶ 16×W strip ─transpose─▶ pass A (rows, 16 lanes) ─transpose─▶ ring
//!  ring ─pass B (columns, 8 columns per vector, one row at a time)─▶ 16×W strip
//!  strip ─transpose─▶ pass C (rows; divides only at the 64 sampled columns) ─▶ 64-wide ring
//!  64-wide ring ─pass D (columns; emits only the 64 sampled rows)─▶ 64×64
//! ```
//!
//! Passes A and C are sequential along a row, so they run sixteen rows at once, one per lane
//! (two vectors, so two independent add chains overlap);
//! passes B and D run eight columns at once. In every lane the operations and their order are
//! those of `box1DFloat`, so each output is bit-identical; [`crate::reference`] is the oracle.

use crate::simd::{Arith, F8, Two};
use crate::{Image, LumaMode};

/// PDQ downsamples to 64×64.
const OUT: usize = 64;

/// Meta's `computeJaroszFilterWindowSize(old, 64)`, `(old + 2·64 − 1) / (2·64)`: the box
/// width for one dimension (a ceiling division).
#[inline]
pub(crate) fn window_size(dim: usize) -> usize {
    dim.div_ceil(2 * OUT)
}

/// Meta's `decimateFloat` sample positions: `floor((i + 0.5) · n / 64)`, computed in `f64`.
pub(crate) fn sample_positions(n: usize) -> [usize; OUT] {
    std::array::from_fn(|i| (((i as f64 + 0.5) * n as f64) / OUT as f64) as usize)
}

/// The four phases of `box1DFloat` for a vector of `n` values and a window of `w`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Phases {
    /// Adds without output.
    pub p1: usize,
    /// Adds, each followed by an output with a growing window.
    pub p2: usize,
    /// Add-subtract steps with a full window.
    pub p3: usize,
    /// Subtracts, each followed by an output with a shrinking window.
    pub p4: usize,
}

impl Phases {
    pub(crate) fn new(n: usize, w: usize) -> Self {
        assert!(w >= 1 && w <= n, "window {w} must be within 1..={n}");
        let half = (w + 2) / 2;
        Phases {
            p1: half - 1,
            p2: w - half + 1,
            p3: n - w,
            p4: half - 1,
        }
    }
}

/// One step of a running-sum box filter, as a consumer of the input sequence sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// `sum += in[ri]`.
    Add { ri: usize },
    /// `sum += in[ri]; out[oi] = sum / count`.
    AddEmit { ri: usize, oi: usize, count: f32 },
    /// `sum += in[ri]; sum -= in[li]; out[oi] = sum / count`.
    AddSubEmit {
        ri: usize,
        li: usize,
        oi: usize,
        count: f32,
    },
    /// `sum -= in[li]; out[oi] = sum / count`.
    SubEmit { li: usize, oi: usize, count: f32 },
}

/// Walks the steps of `box1DFloat` in order, one input at a time, so a vertical pass can be fed
/// row by row as rows become available.
#[derive(Clone, Debug)]
struct Cursor {
    ph: Phases,
    ri: usize,
    li: usize,
    oi: usize,
    count: usize,
    tail_done: usize,
}

impl Cursor {
    fn new(n: usize, w: usize) -> Self {
        Cursor {
            ph: Phases::new(n, w),
            ri: 0,
            li: 0,
            oi: 0,
            count: 0,
            tail_done: 0,
        }
    }

    /// The step that consumes the next input. Call exactly `n` times.
    #[inline(always)]
    fn on_input(&mut self) -> Step {
        let ri = self.ri;
        self.ri += 1;
        if ri < self.ph.p1 {
            self.count += 1;
            Step::Add { ri }
        } else if ri < self.ph.p1 + self.ph.p2 {
            self.count += 1;
            let oi = self.oi;
            self.oi += 1;
            Step::AddEmit {
                ri,
                oi,
                count: self.count as f32,
            }
        } else {
            let (li, oi) = (self.li, self.oi);
            self.li += 1;
            self.oi += 1;
            Step::AddSubEmit {
                ri,
                li,
                oi,
                count: self.count as f32,
            }
        }
    }

    /// The steps after the last input (phase 4).
    #[inline(always)]
    fn next_tail(&mut self) -> Option<Step> {
        if self.tail_done == self.ph.p4 {
            return None;
        }
        self.tail_done += 1;
        self.count -= 1;
        let (li, oi) = (self.li, self.oi);
        self.li += 1;
        self.oi += 1;
        Some(Step::SubEmit {
            li,
            oi,
            count: self.count as f32,
        })
    }
}

/// Where a horizontal pass reads input `i`: `buf[i*SH..]`, one lane per row of the strip.
struct Lanes<'a>(&'a [f32]);

/// What a horizontal pass does with each output's running sum and window size.
///
/// These are traits with `#[inline(always)]` methods rather than closures on purpose: closures
/// are separate functions that LLVM may leave un-inlined, and then they run without the AVX2
/// features of the `#[target_feature]` entry point (measured: 2× slower).
trait Sink<V> {
    fn emit(&mut self, oi: usize, sum: V, count: f32);
}

/// Pass A: every output, divided, stored in lane layout.
struct DivideAll<'a>(&'a mut [f32]);

impl<V: Arith> Sink<V> for DivideAll<'_> {
    #[inline(always)]
    fn emit(&mut self, oi: usize, sum: V, count: f32) {
        sum.div(V::splat(count)).store(&mut self.0[oi * SH..]);
    }
}

/// Pass C: only the 64 sampled columns are divided and kept.
struct Sampled<'a, V> {
    xs: &'a [usize; OUT],
    next: usize,
    out: [V; OUT],
}

impl<V: Arith> Sink<V> for Sampled<'_, V> {
    #[inline(always)]
    fn emit(&mut self, oi: usize, sum: V, count: f32) {
        while self.next < OUT && self.xs[self.next] == oi {
            self.out[self.next] = sum.div(V::splat(count));
            self.next += 1;
        }
    }
}

/// A whole 1-D box over `n` lane-vectors read from `input`; each output's running sum and window
/// size go to `sink` (which divides, or not).
#[inline(always)]
fn box1d<V: Arith>(n: usize, w: usize, input: Lanes<'_>, sink: &mut impl Sink<V>) {
    let read = |i: usize| V::load(&input.0[i * SH..]);
    let ph = Phases::new(n, w);
    let mut sum = V::splat(0.0);
    let mut ri = 0;
    let mut li = 0;
    let mut oi = 0;
    let mut count = 0usize;
    for _ in 0..ph.p1 {
        sum = sum.add(read(ri));
        count += 1;
        ri += 1;
    }
    for _ in 0..ph.p2 {
        sum = sum.add(read(ri));
        count += 1;
        sink.emit(oi, sum, count as f32);
        ri += 1;
        oi += 1;
    }
    let c = count as f32;
    for _ in 0..ph.p3 {
        sum = sum.add(read(ri));
        sum = sum.sub(read(li));
        sink.emit(oi, sum, c);
        li += 1;
        ri += 1;
        oi += 1;
    }
    for _ in 0..ph.p4 {
        sum = sum.sub(read(li));
        count -= 1;
        sink.emit(oi, sum, count as f32);
        li += 1;
        oi += 1;
    }
}

/// Reusable scratch memory, so hashing many images allocates only when a larger one arrives.
#[derive(Default)]
pub(crate) struct Scratch {
    luma: Vec<f32>,
    t_in: Vec<f32>,
    t_out: Vec<f32>,
    ring_b: Vec<f32>,
    sum_b: Vec<f32>,
    strip_c: Vec<f32>,
    ring_d: Vec<f32>,
}

/// Makes `v` at least `n` long, without clearing it: re-zeroing every buffer on every image cost
/// a measurable share of small-image time. Stale contents are harmless: every value is written
/// before it is read, except in padding lanes and columns, which never flow into a sampled
/// output and always hold finite numbers from an earlier image.
fn fit(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

/// Rows per strip: two vectors of eight lanes, so the horizontal passes run two independent
/// add chains (measured: about 25% faster than one at 1600×1004).
const SH: usize = 16;

/// Transposes the `16 × wp` row-major strip `src` into `dst[j*16 + r]`.
#[inline(always)]
fn strip_to_lanes<V: F8>(src: &[f32], wp: usize, dst: &mut [f32]) {
    for half in 0..2 {
        for jt in (0..wp).step_by(8) {
            let src_off = std::array::from_fn(|r| (half * 8 + r) * wp + jt);
            let dst_off = std::array::from_fn(|c| (jt + c) * SH + half * 8);
            V::transpose_tile(src, src_off, dst, dst_off, 8);
        }
    }
}

/// Pipeline state shared by the passes of one [`downsample`] call.
struct Pipe<'o> {
    w: usize,
    wp: usize,
    wr: usize,
    ring_rows: usize,
    xs: [usize; OUT],
    ys: [usize; OUT],
    cur_b: Cursor,
    cur_d: Cursor,
    sum_d: [f32; OUT],
    /// Rows of pass-B output waiting in `strip_c`, and the first one's index.
    strip_c_rows: usize,
    strip_c_first: usize,
    /// Next entry of `ys` to fill.
    next_y: usize,
    out: &'o mut [[f32; 64]; 64],
}

impl Pipe<'_> {
    /// Pass D, one step: input rows are already in `ring_d`.
    #[inline(always)]
    fn pass_d<V: F8>(&mut self, step: Step, ring_d: &[f32]) {
        let rr = self.ring_rows;
        let row = |i: usize| &ring_d[(i % rr) * OUT..(i % rr) * OUT + OUT];
        let sum_d = &mut self.sum_d;
        let (oi, count) = match step {
            Step::Add { ri } => {
                let r = row(ri);
                for j in (0..OUT).step_by(8) {
                    V::load(&sum_d[j..])
                        .add(V::load(&r[j..]))
                        .store(&mut sum_d[j..]);
                }
                return;
            }
            Step::AddEmit { ri, oi, count } => {
                let r = row(ri);
                for j in (0..OUT).step_by(8) {
                    V::load(&sum_d[j..])
                        .add(V::load(&r[j..]))
                        .store(&mut sum_d[j..]);
                }
                (oi, count)
            }
            Step::AddSubEmit { ri, li, oi, count } => {
                let (r, l) = (row(ri), row(li));
                for j in (0..OUT).step_by(8) {
                    let v = V::load(&sum_d[j..])
                        .add(V::load(&r[j..]))
                        .sub(V::load(&l[j..]));
                    v.store(&mut sum_d[j..]);
                }
                (oi, count)
            }
            Step::SubEmit { li, oi, count } => {
                let l = row(li);
                for j in (0..OUT).step_by(8) {
                    V::load(&sum_d[j..])
                        .sub(V::load(&l[j..]))
                        .store(&mut sum_d[j..]);
                }
                (oi, count)
            }
        };
        while self.next_y < OUT && self.ys[self.next_y] == oi {
            let c = V::splat(count);
            for j in (0..OUT).step_by(8) {
                V::load(&self.sum_d[j..])
                    .div(c)
                    .store(&mut self.out[self.next_y][j..]);
            }
            self.next_y += 1;
        }
    }

    /// Pass C over the rows waiting in `strip_c`, feeding pass D.
    #[inline(always)]
    fn flush_c<V: F8>(&mut self, s: &mut Scratch) {
        let (first, rows) = (self.strip_c_first, self.strip_c_rows);
        strip_to_lanes::<V>(&s.strip_c, self.wp, &mut s.t_in);
        let mut sink = Sampled {
            xs: &self.xs,
            next: 0,
            out: [Two::<V>::splat(0.0); OUT],
        };
        box1d::<Two<V>>(self.w, self.wr, Lanes(&s.t_in), &mut sink);
        let samples = sink.out;
        for half in 0..2 {
            for jt in (0..OUT).step_by(8) {
                let mut t: [V; 8] = std::array::from_fn(|c| {
                    if half == 0 {
                        samples[jt + c].0
                    } else {
                        samples[jt + c].1
                    }
                });
                V::transpose(&mut t);
                for (r, v) in t.iter().enumerate().take(rows.saturating_sub(half * 8)) {
                    let slot = ((first + half * 8 + r) % self.ring_rows) * OUT;
                    v.store(&mut s.ring_d[slot + jt..]);
                }
            }
        }
        for _ in 0..rows {
            let step = self.cur_d.on_input();
            self.pass_d::<V>(step, &s.ring_d);
        }
        self.strip_c_first += rows;
        self.strip_c_rows = 0;
    }

    /// Pass B emission: `sum_b / count` becomes the next row of `strip_c`.
    #[inline(always)]
    fn emit_b<V: F8>(&mut self, s: &mut Scratch, count: f32) {
        let c = V::splat(count);
        let base = self.strip_c_rows * self.wp;
        for j in (0..self.wp).step_by(8) {
            V::load(&s.sum_b[j..])
                .div(c)
                .store(&mut s.strip_c[base + j..]);
        }
        self.strip_c_rows += 1;
        if self.strip_c_rows == SH {
            self.flush_c::<V>(s);
        }
    }
}

/// Runs the full downsample of `img` into `out` (rows of the 64×64 buffer), with backend `V`.
///
/// Everything called from here is `#[inline(always)]` and closure-free at the top level: the
/// AVX2 entry point is a `#[target_feature]` function, and only code inlined into it is compiled
/// with AVX2 enabled.
#[inline(always)]
pub(crate) fn downsample<V: F8>(
    img: &Image<'_>,
    mode: LumaMode,
    s: &mut Scratch,
    out: &mut [[f32; 64]; 64],
) {
    let (w, h) = (img.width, img.height);
    let wp = w.div_ceil(8) * 8;
    let (wr, wc) = (window_size(w), window_size(h));
    // Pass B (and D) still need the `wc + 1` rows of their window while a new strip is written.
    let ring_rows = wc + 1 + SH;
    fit(&mut s.luma, SH * wp);
    fit(&mut s.t_in, SH * wp);
    fit(&mut s.t_out, SH * wp);
    fit(&mut s.ring_b, ring_rows * wp);
    // The running sums must start at zero.
    s.sum_b.clear();
    s.sum_b.resize(wp, 0.0);
    fit(&mut s.strip_c, SH * wp);
    fit(&mut s.ring_d, ring_rows * OUT);
    let mut p = Pipe {
        w,
        wp,
        wr,
        ring_rows,
        xs: sample_positions(w),
        ys: sample_positions(h),
        cur_b: Cursor::new(h, wc),
        cur_d: Cursor::new(h, wc),
        sum_d: [0f32; OUT],
        strip_c_rows: 0,
        strip_c_first: 0,
        next_y: 0,
        out,
    };

    for y0 in (0..h).step_by(SH) {
        let n = (h - y0).min(SH);
        // Luma of up to 16 rows; lanes past the image keep whatever they hold, which is finite
        // and never read back into a real row.
        for r in 0..n {
            V::luma_row(
                img.row(y0 + r),
                img.layout,
                mode,
                &mut s.luma[r * wp..r * wp + w],
            );
        }
        strip_to_lanes::<V>(&s.luma, wp, &mut s.t_in);
        // Pass A: along rows, 16 rows per step.
        {
            box1d::<Two<V>>(w, wr, Lanes(&s.t_in), &mut DivideAll(&mut s.t_out));
        }
        // Back to rows, straight into pass B's ring.
        for half in 0..2 {
            let rows = n.saturating_sub(half * 8).min(8);
            let dst_off: [usize; 8] =
                std::array::from_fn(|r| ((y0 + half * 8 + r) % ring_rows) * wp);
            for jt in (0..wp).step_by(8) {
                let src_off = std::array::from_fn(|c| (jt + c) * SH + half * 8);
                V::transpose_tile(
                    &s.t_out,
                    src_off,
                    &mut s.ring_b,
                    dst_off.map(|o| o + jt),
                    rows,
                );
            }
        }
        // Pass B: along columns, one input row at a time.
        for _ in 0..n {
            let step = p.cur_b.on_input();
            let row = |i: usize| (i % ring_rows) * wp;
            let count = match step {
                Step::Add { ri } => {
                    let r = row(ri);
                    for j in (0..wp).step_by(8) {
                        let v = V::load(&s.sum_b[j..]).add(V::load(&s.ring_b[r + j..]));
                        v.store(&mut s.sum_b[j..]);
                    }
                    None
                }
                Step::AddEmit { ri, count, .. } => {
                    let r = row(ri);
                    for j in (0..wp).step_by(8) {
                        let v = V::load(&s.sum_b[j..]).add(V::load(&s.ring_b[r + j..]));
                        v.store(&mut s.sum_b[j..]);
                    }
                    Some(count)
                }
                Step::AddSubEmit { ri, li, count, .. } => {
                    let (r, l) = (row(ri), row(li));
                    for j in (0..wp).step_by(8) {
                        let v = V::load(&s.sum_b[j..])
                            .add(V::load(&s.ring_b[r + j..]))
                            .sub(V::load(&s.ring_b[l + j..]));
                        v.store(&mut s.sum_b[j..]);
                    }
                    Some(count)
                }
                Step::SubEmit { .. } => unreachable!("inputs never produce tail steps"),
            };
            if let Some(count) = count {
                p.emit_b::<V>(s, count);
            }
        }
    }
    // Pass B tail.
    while let Some(Step::SubEmit { li, count, .. }) = p.cur_b.next_tail() {
        let l = (li % ring_rows) * wp;
        for j in (0..wp).step_by(8) {
            let v = V::load(&s.sum_b[j..]).sub(V::load(&s.ring_b[l + j..]));
            v.store(&mut s.sum_b[j..]);
        }
        p.emit_b::<V>(s, count);
    }
    if p.strip_c_rows > 0 {
        p.flush_c::<V>(s);
    }
    // Pass D tail.
    while let Some(step) = p.cur_d.next_tail() {
        p.pass_d::<V>(step, &s.ring_d);
    }
    debug_assert_eq!(p.next_y, OUT, "every sampled row was emitted");
}
