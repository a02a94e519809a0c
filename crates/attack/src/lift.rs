//! PDQ's 16×16 DCT basis at full resolution: the image change that moves one coefficient.
//!
//! PDQ's coefficients are `D = C · A · Cᵀ`, where `A` is the 64×64 downsampled luminance and
//! `C` holds rows 1..=16 of the 64-point DCT-II basis, which are orthonormal. So the smallest
//! change of `A` (in L2) that changes the coefficients by `G` is `Cᵀ · G · C`, with the same
//! norm as `G`. At full resolution we use the same cosines evaluated at each pixel's position
//! in the 64-sample grid (pixel `y` of `H` sits at `(y + ½)·64/H − ½`). The box filter and
//! downsample then return nearly `G` again, attenuated a little at the higher frequencies; the
//! attacks re-hash after every step, so that attenuation is corrected rather than modelled.
//! The change is applied to luminance, that is equally to R, G and B (BT.601 weights sum to 1).

use image::RgbImage;

/// The basis, evaluated for one image size.
#[derive(Clone, Debug)]
pub struct Lift {
    width: usize,
    /// `rows[y][i]`: basis function `i` at row `y`.
    rows: Vec<[f32; 16]>,
    /// `cols[x][j]`: basis function `j` at column `x`.
    cols: Vec<[f32; 16]>,
}

fn basis(n: usize) -> Vec<[f32; 16]> {
    let scale = (2.0f64 / 64.0).sqrt();
    (0..n)
        .map(|p| {
            let u = (p as f64 + 0.5) * 64.0 / n as f64 - 0.5;
            let mut b = [0f32; 16];
            for (i, v) in b.iter_mut().enumerate() {
                let arg = std::f64::consts::PI / 128.0 * (i + 1) as f64 * (2.0 * u + 1.0);
                *v = (scale * arg.cos()) as f32;
            }
            b
        })
        .collect()
}

impl Lift {
    /// The basis for a `width × height` image.
    pub fn new(width: u32, height: u32) -> Lift {
        Lift {
            width: width as usize,
            rows: basis(height as usize),
            cols: basis(width as usize),
        }
    }

    /// The luminance change, per pixel (row-major), that moves the coefficients by `g`.
    pub fn field(&self, g: &[[f32; 16]; 16]) -> Vec<f32> {
        // T[i][x] = Σ_j G[i][j]·cols[x][j], then δ[y][x] = Σ_i rows[y][i]·T[i][x].
        let mut t = vec![[0f32; 16]; self.width];
        for (x, c) in self.cols.iter().enumerate() {
            for i in 0..16 {
                t[x][i] = (0..16).map(|j| g[i][j] * c[j]).sum();
            }
        }
        let mut out = Vec::with_capacity(self.rows.len() * self.width);
        for r in &self.rows {
            out.extend(
                t.iter()
                    .map(|tx| (0..16).map(|i| r[i] * tx[i]).sum::<f32>()),
            );
        }
        out
    }
}

/// `x0` with `scale · field` added to each pixel's R, G and B, rounded and clamped.
pub fn apply(x0: &RgbImage, field: &[f32], scale: f32) -> RgbImage {
    let mut out = x0.clone();
    for (px, &d) in out.pixels_mut().zip(field) {
        for c in px.0.iter_mut() {
            *c = (*c as f32 + scale * d).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_a_64_grid_the_lift_is_the_transposed_dct() {
        // At 64×64 every pixel sits on a grid point, so the field is exactly Cᵀ·G·C.
        let mut g = [[0f32; 16]; 16];
        g[2][5] = 3.0;
        g[0][0] = -1.0;
        let f = Lift::new(64, 64).field(&g);
        let want = scanlab_pdq::dct::idct16_to_64(&g);
        for y in 0..64 {
            for x in 0..64 {
                assert!((f[y * 64 + x] - want[y][x]).abs() < 1e-4, "({y},{x})");
            }
        }
    }

    #[test]
    fn a_lifted_coefficient_comes_back_through_pdq_nearly_alone() {
        // A 512×384 grey-gradient image: move coefficient (3,4) by 400 (about ±12 grey levels) and measure every
        // coefficient's change through scanlab's PDQ.
        let img = RgbImage::from_fn(512, 384, |x, y| {
            let v = (60 + (x + y) / 8) as u8;
            image::Rgb([v, v, v])
        });
        let mut hasher = scanlab_pdq::Hasher::new();
        let coeffs = |im: &RgbImage, h: &mut scanlab_pdq::Hasher| {
            scanlab_pdq::dct16(&h.luma64(&scanlab_imaging::pdq_image(im)).unwrap())
        };
        let before = coeffs(&img, &mut hasher);
        let mut g = [[0f32; 16]; 16];
        g[3][4] = 400.0;
        let lift = Lift::new(512, 384);
        let after = coeffs(&apply(&img, &lift.field(&g), 1.0), &mut hasher);
        let moved = after[3][4] - before[3][4];
        assert!((250.0..=410.0).contains(&moved), "{moved}");
        for i in 0..16 {
            for j in 0..16 {
                if (i, j) != (3, 4) {
                    let d = (after[i][j] - before[i][j]).abs();
                    assert!(d < 0.1 * moved, "({i},{j}) moved {d}");
                }
            }
        }
    }
}
