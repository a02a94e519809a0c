//! Eight-lane `f32` vectors: an AVX2 backend chosen at run time, and a portable twin.
//!
//! The streaming kernel in [`crate::kernel`] is written once, generic over [`F8`], and is
//! instantiated for each backend. Every lane does the very same IEEE operations as the scalar
//! reference, so the backends agree bit for bit (property-tested in `kernel`).

/// Lane-wise arithmetic: what a running-sum box filter needs.
pub(crate) trait Arith: Copy {
    fn splat(x: f32) -> Self;
    fn load(s: &[f32]) -> Self;
    fn store(self, d: &mut [f32]);
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
}

/// Two vectors side by side (16 lanes, stored contiguously). The horizontal passes are a chain
/// of dependent adds; running two independent chains at once hides the add latency.
#[derive(Clone, Copy)]
pub(crate) struct Two<V>(pub V, pub V);

impl<V: Arith> Arith for Two<V> {
    #[inline(always)]
    fn splat(x: f32) -> Self {
        Two(V::splat(x), V::splat(x))
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        Two(V::load(s), V::load(&s[8..]))
    }
    #[inline(always)]
    fn store(self, d: &mut [f32]) {
        self.0.store(d);
        self.1.store(&mut d[8..]);
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Two(self.0.add(o.0), self.1.add(o.1))
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Two(self.0.sub(o.0), self.1.sub(o.1))
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Two(self.0.div(o.0), self.1.div(o.1))
    }
}

/// Eight `f32` lanes. Only the operations the PDQ kernel needs.
pub(crate) trait F8: Arith {
    /// Transposes an 8×8 tile held as eight row vectors.
    fn transpose(r: &mut [Self; 8]);
    /// Transposes the 8×8 tile whose row `r` is `src[src_off[r]..][..8]`, storing row `c` of
    /// the result at `dst[dst_off[c]..]` for `c < n`. Memory to memory, so the tile never
    /// round-trips through a stack array.
    #[inline(always)]
    fn transpose_tile(
        src: &[f32],
        src_off: [usize; 8],
        dst: &mut [f32],
        dst_off: [usize; 8],
        n: usize,
    ) {
        let mut t: [Self; 8] = std::array::from_fn(|r| Self::load(&src[src_off[r]..]));
        Self::transpose(&mut t);
        for (c, v) in t.iter().enumerate().take(n) {
            v.store(&mut dst[dst_off[c]..]);
        }
    }
    /// Luma of one row of pixels into `dst` (`dst.len()` pixels).
    fn luma_row(src: &[u8], layout: crate::Layout, mode: crate::LumaMode, dst: &mut [f32]);
}

/// Portable backend: plain arrays, which LLVM vectorises as far as the target allows.
#[derive(Clone, Copy)]
pub(crate) struct P8([f32; 8]);

impl Arith for P8 {
    #[inline(always)]
    fn splat(x: f32) -> Self {
        P8([x; 8])
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        P8(s[..8].try_into().expect("8 lanes"))
    }
    #[inline(always)]
    fn store(self, d: &mut [f32]) {
        d[..8].copy_from_slice(&self.0);
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        P8(std::array::from_fn(|i| self.0[i] + o.0[i]))
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        P8(std::array::from_fn(|i| self.0[i] - o.0[i]))
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        P8(std::array::from_fn(|i| self.0[i] / o.0[i]))
    }
}

impl F8 for P8 {
    #[inline(always)]
    fn transpose(r: &mut [Self; 8]) {
        let m = *r;
        for (i, row) in r.iter_mut().enumerate() {
            row.0 = std::array::from_fn(|j| m[j].0[i]);
        }
    }
    #[inline(always)]
    fn luma_row(src: &[u8], layout: crate::Layout, mode: crate::LumaMode, dst: &mut [f32]) {
        crate::luma::row_scalar(src, layout, mode, dst)
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::A8;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Arith, F8};
    use std::arch::x86_64::*;

    /// AVX2 backend. A value of this type only exists inside a function that was entered after
    /// `is_x86_feature_detected!("avx2")` returned true (see `kernel::downsample`), which is what
    /// makes the `unsafe` intrinsic calls below sound.
    #[derive(Clone, Copy)]
    pub(crate) struct A8(__m256);

    impl Arith for A8 {
        #[inline(always)]
        fn splat(x: f32) -> Self {
            // SAFETY: AVX is available whenever an `A8` is in use (type invariant above).
            A8(unsafe { _mm256_set1_ps(x) })
        }
        #[inline(always)]
        fn load(s: &[f32]) -> Self {
            assert!(s.len() >= 8);
            // SAFETY: bounds checked above; unaligned load.
            A8(unsafe { _mm256_loadu_ps(s.as_ptr()) })
        }
        #[inline(always)]
        fn store(self, d: &mut [f32]) {
            assert!(d.len() >= 8);
            // SAFETY: bounds checked above; unaligned store.
            unsafe { _mm256_storeu_ps(d.as_mut_ptr(), self.0) }
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            // SAFETY: type invariant.
            A8(unsafe { _mm256_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            // SAFETY: type invariant.
            A8(unsafe { _mm256_sub_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn div(self, o: Self) -> Self {
            // SAFETY: type invariant. `vdivps` is correctly rounded, like scalar division.
            A8(unsafe { _mm256_div_ps(self.0, o.0) })
        }
    }

    impl F8 for A8 {
        #[inline(always)]
        fn transpose(r: &mut [Self; 8]) {
            // SAFETY: type invariant. The classic unpack / shuffle / permute 8×8 transpose.
            unsafe {
                let t0 = _mm256_unpacklo_ps(r[0].0, r[1].0);
                let t1 = _mm256_unpackhi_ps(r[0].0, r[1].0);
                let t2 = _mm256_unpacklo_ps(r[2].0, r[3].0);
                let t3 = _mm256_unpackhi_ps(r[2].0, r[3].0);
                let t4 = _mm256_unpacklo_ps(r[4].0, r[5].0);
                let t5 = _mm256_unpackhi_ps(r[4].0, r[5].0);
                let t6 = _mm256_unpacklo_ps(r[6].0, r[7].0);
                let t7 = _mm256_unpackhi_ps(r[6].0, r[7].0);
                let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                r[0].0 = _mm256_permute2f128_ps::<0x20>(s0, s4);
                r[1].0 = _mm256_permute2f128_ps::<0x20>(s1, s5);
                r[2].0 = _mm256_permute2f128_ps::<0x20>(s2, s6);
                r[3].0 = _mm256_permute2f128_ps::<0x20>(s3, s7);
                r[4].0 = _mm256_permute2f128_ps::<0x31>(s0, s4);
                r[5].0 = _mm256_permute2f128_ps::<0x31>(s1, s5);
                r[6].0 = _mm256_permute2f128_ps::<0x31>(s2, s6);
                r[7].0 = _mm256_permute2f128_ps::<0x31>(s3, s7);
            }
        }
        #[inline(always)]
        fn transpose_tile(
            src: &[f32],
            src_off: [usize; 8],
            dst: &mut [f32],
            dst_off: [usize; 8],
            n: usize,
        ) {
            assert!(n <= 8);
            assert!(src_off.iter().all(|&o| o + 8 <= src.len()));
            assert!(dst_off[..n].iter().all(|&o| o + 8 <= dst.len()));
            // SAFETY: every load and store is within bounds (asserted above); AVX per the type
            // invariant.
            unsafe {
                let ld = |r: usize| A8(_mm256_loadu_ps(src.as_ptr().add(src_off[r])));
                let mut t = [ld(0), ld(1), ld(2), ld(3), ld(4), ld(5), ld(6), ld(7)];
                Self::transpose(&mut t);
                for c in 0..n {
                    _mm256_storeu_ps(dst.as_mut_ptr().add(dst_off[c]), t[c].0);
                }
            }
        }
        #[inline(always)]
        fn luma_row(src: &[u8], layout: crate::Layout, mode: crate::LumaMode, dst: &mut [f32]) {
            // SAFETY: type invariant (AVX2 present).
            unsafe { crate::luma::row_avx2(src, layout, mode, dst) }
        }
    }
}
