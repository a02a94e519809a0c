//! Everything after the 64×64 downsample: the quality metric, the 16×16 DCT, the median
//! threshold and the dihedral transforms.
//!
//! Each function performs the same IEEE-754 single-precision operations, in the same order, as
//! Meta's `pdqhashing.cpp`; that is what makes the hash bit-exact. Vectorising across independent
//! outputs is allowed (it does not change any single result), reassociating a sum is not, and
//! neither is a fused multiply-add (Rust never contracts `a * b + c` on its own).

use crate::hash::Hash256;
use std::sync::OnceLock;

/// The 16×64 DCT-II matrix PDQ uses: rows 1..=16 of the 64-point DCT basis.
///
/// Meta computes `float(sqrt(2/64)) * cos(π/128 · (i+1) · (2j+1))` in double precision and
/// rounds each entry to `float`; so do we.
pub(crate) fn dct_matrix() -> &'static [[f32; 64]; 16] {
    static M: OnceLock<[[f32; 64]; 16]> = OnceLock::new();
    M.get_or_init(|| {
        let scale = (2.0f64 / 64.0).sqrt() as f32;
        let mut m = [[0f32; 64]; 16];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                let arg = (std::f64::consts::PI / 2.0 / 64.0) * (i + 1) as f64 * (2 * j + 1) as f64;
                *x = (scale as f64 * arg.cos()) as f32;
            }
        }
        m
    })
}

/// The DCT matrix transposed to `[k][j]`, so the second product can be vectorised over `j`.
fn dct_matrix_t() -> &'static [[f32; 16]; 64] {
    static M: OnceLock<[[f32; 16]; 64]> = OnceLock::new();
    M.get_or_init(|| {
        let d = dct_matrix();
        let mut t = [[0f32; 16]; 64];
        for (k, row) in t.iter_mut().enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                *x = d[j][k];
            }
        }
        t
    })
}

/// Meta's image-domain quality metric (0..=100) on the 64×64 downsample.
///
/// Each neighbouring difference is scaled, truncated to an integer, and the absolute values are
/// summed; the sum over 90 is capped at 100. The `pdqhash` Rust crate sums floats instead and
/// overestimates; this is the integer version Meta ships.
pub fn quality(a: &[[f32; 64]; 64]) -> u8 {
    let mut sum: i32 = 0;
    for pair in a.windows(2) {
        for (u, v) in pair[0].iter().zip(&pair[1]) {
            let d = (((u - v) * 100.0) / 255.0) as i32;
            sum += d.abs();
        }
    }
    for row in a.iter() {
        for j in 0..63 {
            let d = (((row[j] - row[j + 1]) * 100.0) / 255.0) as i32;
            sum += d.abs();
        }
    }
    (sum / 90).min(100) as u8
}

/// `B = D · A · Dᵀ`: the 16×16 low-frequency corner of the 2-D DCT of the 64×64 downsample.
///
/// Both products accumulate over `k = 0..64` in order, starting from `0.0`, exactly as
/// `dct64To16` does; the loops below are vectorised across output columns only.
pub fn dct64_to_16(a: &[[f32; 64]; 64]) -> [[f32; 16]; 16] {
    let d = dct_matrix();
    let dt = dct_matrix_t();
    let mut t = [[0f32; 64]; 16];
    for (i, trow) in t.iter_mut().enumerate() {
        for (k, arow) in a.iter().enumerate() {
            let c = d[i][k];
            for (t, &x) in trow.iter_mut().zip(arow) {
                *t += c * x;
            }
        }
    }
    let mut b = [[0f32; 16]; 16];
    for (i, brow) in b.iter_mut().enumerate() {
        for (k, dtrow) in dt.iter().enumerate() {
            let c = t[i][k];
            for (b, &x) in brow.iter_mut().zip(dtrow) {
                *b += c * x;
            }
        }
    }
    b
}

/// Torben's median, transcribed from Meta's `torben.cpp`.
///
/// For 256 values it returns the 128th smallest. We keep Meta's search rather than a sort so
/// that ties and signed zeros behave identically.
pub fn torben(m: &[f32]) -> f32 {
    let n = m.len() as i32;
    let (mut min, mut max) = (m[0], m[0]);
    for &x in &m[1..] {
        if x < min {
            min = x;
        }
        if x > max {
            max = x;
        }
    }
    let half = (n + 1) / 2;
    loop {
        // Meta's midpoint, bit for bit, wherever it is finite. Huge finite values (over half of
        // f32::MAX) overflow it to infinity, where the search would never end; halving first
        // keeps it finite and between min and max.
        let mut guess = (min + max) / 2.0;
        if !guess.is_finite() {
            guess = min / 2.0 + max / 2.0;
        }
        let (mut less, mut greater, mut equal) = (0, 0, 0);
        let (mut maxltguess, mut mingtguess) = (min, max);
        for &x in m {
            if x < guess {
                less += 1;
                if x > maxltguess {
                    maxltguess = x;
                }
            } else if x > guess {
                greater += 1;
                if x < mingtguess {
                    mingtguess = x;
                }
            } else {
                equal += 1;
            }
        }
        if less <= half && greater <= half {
            return if less >= half {
                maxltguess
            } else if less + equal >= half {
                guess
            } else {
                mingtguess
            };
        } else if less > greater {
            max = maxltguess;
        } else {
            min = mingtguess;
        }
    }
}

/// Thresholds the 16×16 DCT at its median: bit `16i + j` is set when `B[i][j] > median`.
pub fn dct_to_hash(b: &[[f32; 16]; 16]) -> Hash256 {
    let flat: Vec<f32> = b.iter().flatten().copied().collect();
    let median = torben(&flat);
    let mut bits = [[false; 16]; 16];
    for i in 0..16 {
        for j in 0..16 {
            bits[i][j] = b[i][j] > median;
        }
    }
    Hash256::from_bit_matrix(&bits)
}

/// The eight dihedral transforms of an image, in Meta's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dihedral {
    /// The image as given.
    Original,
    /// Rotated 90° counter-clockwise.
    Rotate90,
    /// Rotated 180°.
    Rotate180,
    /// Rotated 270° counter-clockwise.
    Rotate270,
    /// Mirrored top to bottom.
    FlipX,
    /// Mirrored left to right.
    FlipY,
    /// Transposed about the main diagonal.
    FlipPlus1,
    /// Transposed about the anti-diagonal.
    FlipMinus1,
}

impl Dihedral {
    /// All eight, in the order Meta's `pdqDihedralHash256esFromFloatLuma` returns them.
    pub const ALL: [Dihedral; 8] = [
        Dihedral::Original,
        Dihedral::Rotate90,
        Dihedral::Rotate180,
        Dihedral::Rotate270,
        Dihedral::FlipX,
        Dihedral::FlipY,
        Dihedral::FlipPlus1,
        Dihedral::FlipMinus1,
    ];

    /// Maps the DCT of an image to the DCT of its transform: a sign pattern and, for the four
    /// transposing cases, a transpose. No second DCT is needed; this is why PDQ's dihedral
    /// hashes are nearly free.
    pub fn apply(self, a: &[[f32; 16]; 16]) -> [[f32; 16]; 16] {
        let mut b = [[0f32; 16]; 16];
        for i in 0..16 {
            for j in 0..16 {
                let x = a[i][j];
                match self {
                    Dihedral::Original => b[i][j] = x,
                    Dihedral::Rotate90 => b[j][i] = if j & 1 == 1 { x } else { -x },
                    Dihedral::Rotate180 => b[i][j] = if (i + j) & 1 == 1 { -x } else { x },
                    Dihedral::Rotate270 => b[j][i] = if i & 1 == 1 { x } else { -x },
                    Dihedral::FlipX => b[i][j] = if i & 1 == 1 { x } else { -x },
                    Dihedral::FlipY => b[i][j] = if j & 1 == 1 { x } else { -x },
                    Dihedral::FlipPlus1 => b[j][i] = x,
                    Dihedral::FlipMinus1 => b[j][i] = if (i + j) & 1 == 1 { -x } else { x },
                }
            }
        }
        b
    }
}

#[cfg(test)]
mod inverse_tests {
    use super::*;

    #[test]
    fn the_sign_image_of_a_balanced_hash_hashes_back_to_it() {
        // PDQ hashes split at the median, so (ties aside) exactly 128 bits are set; such a
        // hash's ±1 image rehashes to itself: the reconstruction is consistent with the hash.
        let mut h = Hash256::ZERO;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut set = 0;
        while set < 128 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % 256) as usize;
            if !h.bit(k) {
                h.set_bit(k);
                set += 1;
            }
        }
        let img = idct16_to_64(&hash_signs(&h));
        assert_eq!(dct_to_hash(&dct64_to_16(&img)), h);
        // And the inverse is the transpose: DCT of the reconstruction gives the signs back.
        let back = dct64_to_16(&img);
        let signs = hash_signs(&h);
        for i in 0..16 {
            for j in 0..16 {
                assert!((back[i][j] - signs[i][j]).abs() < 1e-3);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torben_ends_on_huge_finite_values() {
        // 2e38 + 3e38 overflows f32: the search used to loop forever on such input (a remote
        // hang through S4's dct16 split).
        let mut v: Vec<f32> = (0..256)
            .map(|i| if i % 2 == 0 { 2e38 } else { 3e38 })
            .collect();
        assert_eq!(torben(&v), 2e38);
        v[0] = -f32::MAX;
        v[1] = f32::MAX;
        let m = torben(&v);
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(m, v[127]);
    }

    #[test]
    fn torben_is_the_lower_median() {
        let mut v: Vec<f32> = (0..256)
            .map(|i| ((i * 7919) % 256) as f32 - 100.5)
            .collect();
        let m = torben(&v);
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(m, v[127]);
    }

    #[test]
    fn dct_matches_naive_product() {
        let mut a = [[0f32; 64]; 64];
        for (i, row) in a.iter_mut().enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                *x = ((i * 31 + j * 17) % 251) as f32 * 0.37;
            }
        }
        let b = dct64_to_16(&a);
        let d = dct_matrix();
        for i in 0..16 {
            for j in 0..16 {
                let mut t = [0f32; 64];
                for (jj, tj) in t.iter_mut().enumerate() {
                    let mut s = 0f32;
                    for k in 0..64 {
                        s += d[i][k] * a[k][jj];
                    }
                    *tj = s;
                }
                let mut s = 0f32;
                for k in 0..64 {
                    s += t[k] * d[j][k];
                }
                assert_eq!(s.to_bits(), b[i][j].to_bits());
            }
        }
    }

    #[test]
    fn dihedral_rot180_twice_is_identity() {
        let mut a = [[0f32; 16]; 16];
        for (i, row) in a.iter_mut().enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                *x = (i * 16 + j) as f32 - 3.0;
            }
        }
        let r = Dihedral::Rotate180.apply(&Dihedral::Rotate180.apply(&a));
        assert_eq!(r, a);
        let r4 = Dihedral::Rotate90.apply(&Dihedral::Rotate90.apply(&a));
        assert_eq!(r4, Dihedral::Rotate180.apply(&a));
    }
}

/// `A ≈ Dᵀ · B · D`: back from 16×16 low-frequency coefficients to a 64×64 image (the
/// transpose of [`dct64_to_16`]; exact on the span of those 256 basis images). This is how a
/// provider turns what it received — the coefficients of a `dct16` split, or the ±1 sign
/// pattern of a hash ([`hash_signs`]) — into a picture.
pub fn idct16_to_64(b: &[[f32; 16]; 16]) -> Box<[[f32; 64]; 64]> {
    let d = dct_matrix();
    // T = B · D (16×64), then A = Dᵀ · T (64×64).
    let mut t = [[0f32; 64]; 16];
    for (i, trow) in t.iter_mut().enumerate() {
        for (k, drow) in d.iter().enumerate() {
            let c = b[i][k];
            for (t, &x) in trow.iter_mut().zip(drow) {
                *t += c * x;
            }
        }
    }
    let mut a = Box::new([[0f32; 64]; 64]);
    for (y, arow) in a.iter_mut().enumerate() {
        for (i, trow) in t.iter().enumerate() {
            let c = d[i][y];
            for (a, &x) in arow.iter_mut().zip(trow) {
                *a += c * x;
            }
        }
    }
    a
}

/// A hash as DCT coefficients: +1 where bit `16i + j` is set (above the median), −1 where not.
pub fn hash_signs(h: &Hash256) -> [[f32; 16]; 16] {
    let mut b = [[0f32; 16]; 16];
    for (i, row) in b.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = if h.bit(16 * i + j) { 1.0 } else { -1.0 };
        }
    }
    b
}
