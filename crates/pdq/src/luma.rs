//! Pixels to luminance, in the two roundings Meta's references use.

use crate::{Layout, LumaMode};
use std::sync::OnceLock;

/// Per-channel products `v · coeff` for every byte value, in `f64` (NumPy mode) and `f32`
/// (C++ mode). A table lookup performs the very multiplication it replaces, so results are equal.
struct Tables {
    f64: [[f64; 256]; 3],
    f32: [[f32; 256]; 3],
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Tables {
            f64: [[0.0; 256]; 3],
            f32: [[0.0; 256]; 3],
        };
        for v in 0..256 {
            for c in 0..3 {
                t.f64[c][v] = v as f64 * COEFF_F64[c];
                t.f32[c][v] = COEFF_F32[c] * v as f32;
            }
        }
        t
    })
}

/// ITU-R BT.601 luma weights, as NumPy sees them (Python floats are `f64`).
const COEFF_F64: [f64; 3] = [0.299, 0.587, 0.114];
/// The same weights as Meta's C++ declares them (`const float`).
const COEFF_F32: [f32; 3] = [0.299, 0.587, 0.114];

/// Luma of one pixel.
#[inline(always)]
pub(crate) fn pixel(r: u8, g: u8, b: u8, mode: LumaMode) -> f32 {
    let t = tables();
    match mode {
        LumaMode::NumpyF64 => {
            ((t.f64[0][r as usize] + t.f64[1][g as usize]) + t.f64[2][b as usize]) as f32
        }
        LumaMode::CppF32 => (t.f32[0][r as usize] + t.f32[1][g as usize]) + t.f32[2][b as usize],
    }
}

/// Scalar luma of one row; `dst.len()` is the number of pixels.
pub(crate) fn row_scalar(src: &[u8], layout: Layout, mode: LumaMode, dst: &mut [f32]) {
    let ch = layout.channels();
    match layout {
        Layout::Gray8 => {
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = pixel(v, v, v, mode);
            }
        }
        Layout::Rgb8 | Layout::Rgba8 => {
            for (d, p) in dst.iter_mut().zip(src.chunks_exact(ch)) {
                *d = pixel(p[0], p[1], p[2], mode);
            }
        }
    }
}

/// Whether the CPU has AVX-512F, checked once. NumPy-mode luma is computed in `f64`, and
/// 512-bit registers convert and multiply eight pixels at a time instead of four.
#[cfg(target_arch = "x86_64")]
fn has_avx512f() -> bool {
    static F: OnceLock<bool> = OnceLock::new();
    *F.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f"))
}

/// Splits 8 RGB pixels at `p` into three vectors of 32-bit channel values. Each 128-bit half
/// loads 4 pixels (12 bytes, plus 4 read but unused); the shuffle zero-extends one channel's
/// bytes into 32-bit lanes.
///
/// # Safety
/// AVX2 must be available and 28 bytes must be readable at `p`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn deinterleave8(p: *const u8) -> [std::arch::x86_64::__m256i; 3] {
    use std::arch::x86_64::*;
    let z = -1i8;
    let masks = [0i8, 1, 2].map(|c| {
        _mm256_setr_epi8(
            c,
            z,
            z,
            z,
            c + 3,
            z,
            z,
            z,
            c + 6,
            z,
            z,
            z,
            c + 9,
            z,
            z,
            z,
            c,
            z,
            z,
            z,
            c + 3,
            z,
            z,
            z,
            c + 6,
            z,
            z,
            z,
            c + 9,
            z,
            z,
            z,
        )
    });
    // SAFETY: the caller guarantees 28 readable bytes.
    let v = unsafe {
        let lo = _mm_loadu_si128(p as *const __m128i);
        let hi = _mm_loadu_si128(p.add(12) as *const __m128i);
        _mm256_set_m128i(hi, lo)
    };
    masks.map(|m| _mm256_shuffle_epi8(v, m))
}

/// AVX2 luma of one row. RGB rows take the vector path; other layouts are rare in practice
/// (decoders give RGB) and use the scalar path.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn row_avx2(src: &[u8], layout: Layout, mode: LumaMode, dst: &mut [f32]) {
    use std::arch::x86_64::*;
    if layout != Layout::Rgb8 {
        return row_scalar(src, layout, mode, dst);
    }
    if mode == LumaMode::NumpyF64 && has_avx512f() {
        // SAFETY: AVX-512F was detected; AVX2 is the caller's contract.
        return unsafe { row_rgb_f64_avx512(src, dst) };
    }
    let n = dst.len();
    assert!(src.len() >= 3 * n);
    let mut x = 0;
    // The second half-load reads bytes 12..28 of the 24-byte group: keep 4 bytes of slack.
    while x + 8 <= n && 3 * x + 28 <= src.len() {
        // SAFETY: 3x + 28 <= src.len() was checked, and x + 8 <= n = dst.len().
        unsafe {
            let [r, g, b] = deinterleave8(src.as_ptr().add(3 * x));
            let out = match mode {
                LumaMode::NumpyF64 => {
                    let cr = _mm256_set1_pd(COEFF_F64[0]);
                    let cg = _mm256_set1_pd(COEFF_F64[1]);
                    let cb = _mm256_set1_pd(COEFF_F64[2]);
                    let half = |v: __m256i, hi: bool| {
                        let h = if hi {
                            _mm256_extracti128_si256::<1>(v)
                        } else {
                            _mm256_castsi256_si128(v)
                        };
                        _mm256_cvtepi32_pd(h)
                    };
                    let y = |hi: bool| {
                        let s = _mm256_add_pd(
                            _mm256_mul_pd(half(r, hi), cr),
                            _mm256_mul_pd(half(g, hi), cg),
                        );
                        _mm256_cvtpd_ps(_mm256_add_pd(s, _mm256_mul_pd(half(b, hi), cb)))
                    };
                    _mm256_set_m128(y(true), y(false))
                }
                LumaMode::CppF32 => {
                    let rf = _mm256_cvtepi32_ps(r);
                    let gf = _mm256_cvtepi32_ps(g);
                    let bf = _mm256_cvtepi32_ps(b);
                    let s = _mm256_add_ps(
                        _mm256_mul_ps(_mm256_set1_ps(COEFF_F32[0]), rf),
                        _mm256_mul_ps(_mm256_set1_ps(COEFF_F32[1]), gf),
                    );
                    _mm256_add_ps(s, _mm256_mul_ps(_mm256_set1_ps(COEFF_F32[2]), bf))
                }
            };
            _mm256_storeu_ps(dst.as_mut_ptr().add(x), out);
        }
        x += 8;
    }
    row_scalar(&src[3 * x..], layout, mode, &mut dst[x..]);
}

/// NumPy-mode luma of one RGB row with AVX-512F: eight pixels per `f64` operation.
///
/// # Safety
/// The CPU must support AVX2 and AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f")]
unsafe fn row_rgb_f64_avx512(src: &[u8], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = dst.len();
    assert!(src.len() >= 3 * n);
    let cr = _mm512_set1_pd(COEFF_F64[0]);
    let cg = _mm512_set1_pd(COEFF_F64[1]);
    let cb = _mm512_set1_pd(COEFF_F64[2]);
    let mut x = 0;
    while x + 8 <= n && 3 * x + 28 <= src.len() {
        // SAFETY: 3x + 28 <= src.len() was checked, and x + 8 <= n = dst.len().
        unsafe {
            let [r, g, b] = deinterleave8(src.as_ptr().add(3 * x)).map(|c| _mm512_cvtepi32_pd(c));
            let s = _mm512_add_pd(_mm512_mul_pd(r, cr), _mm512_mul_pd(g, cg));
            let y = _mm512_cvtpd_ps(_mm512_add_pd(s, _mm512_mul_pd(b, cb)));
            _mm256_storeu_ps(dst.as_mut_ptr().add(x), y);
        }
        x += 8;
    }
    row_scalar(
        &src[3 * x..],
        Layout::Rgb8,
        LumaMode::NumpyF64,
        &mut dst[x..],
    );
}
