//! How close a reconstruction is to an original: SSIM and PSNR on grayscale.
//!
//! The privacy metrics need one number for "how much of the picture does the provider have".
//! SSIM (Wang, Bovik, Sheikh, Simoncelli, *Image quality assessment: from error visibility to
//! structural similarity*, IEEE TIP 2004) is the standard; we compute it as scikit-image's
//! `structural_similarity` does by default: a 7×7 uniform window, sample covariances,
//! `K1 = 0.01`, `K2 = 0.03`, data range 255, averaged over the windows that fit.

/// A grayscale image of `f32` samples in 0..=255, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Gray {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width × height` samples.
    pub data: Vec<f32>,
}

impl Gray {
    /// ITU-R BT.601 luma of an RGB image (the weights PDQ uses).
    pub fn from_rgb(img: &image::RgbImage) -> Gray {
        let data = img
            .pixels()
            .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
            .collect();
        Gray {
            width: img.width() as usize,
            height: img.height() as usize,
            data,
        }
    }

    /// Area-average resize (each output pixel is the mean of the input area it covers, with
    /// fractional edge weights): the fair way to bring an original down to a thumbnail's size.
    pub fn resize_area(&self, w: usize, h: usize) -> Gray {
        let mut data = vec![0f32; w * h];
        let (sx, sy) = (self.width as f64 / w as f64, self.height as f64 / h as f64);
        for oy in 0..h {
            let (y0, y1) = (oy as f64 * sy, (oy + 1) as f64 * sy);
            for ox in 0..w {
                let (x0, x1) = (ox as f64 * sx, (ox + 1) as f64 * sx);
                let (mut acc, mut wsum) = (0f64, 0f64);
                let mut y = y0.floor() as usize;
                while (y as f64) < y1 && y < self.height {
                    let wy = (y1.min(y as f64 + 1.0) - y0.max(y as f64)).max(0.0);
                    let mut x = x0.floor() as usize;
                    while (x as f64) < x1 && x < self.width {
                        let wx = (x1.min(x as f64 + 1.0) - x0.max(x as f64)).max(0.0);
                        acc += self.data[y * self.width + x] as f64 * wx * wy;
                        wsum += wx * wy;
                        x += 1;
                    }
                    y += 1;
                }
                data[oy * w + ox] = if wsum > 0.0 { (acc / wsum) as f32 } else { 0.0 };
            }
        }
        Gray {
            width: w,
            height: h,
            data,
        }
    }

    /// Rescales linearly so the samples span 0..=255 (a reconstruction from signs or DCT
    /// coefficients has arbitrary scale; SSIM against the original needs the same range).
    pub fn normalized(&self) -> Gray {
        let (lo, hi) = self
            .data
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        let span = hi - lo;
        let data = self
            .data
            .iter()
            .map(|&v| {
                if span > 0.0 {
                    (v - lo) * 255.0 / span
                } else {
                    128.0
                }
            })
            .collect();
        Gray { data, ..*self }
    }

    /// As an 8-bit grayscale image (for galleries).
    pub fn to_luma8(&self) -> image::GrayImage {
        image::GrayImage::from_fn(self.width as u32, self.height as u32, |x, y| {
            image::Luma([self.data[y as usize * self.width + x as usize]
                .round()
                .clamp(0.0, 255.0) as u8])
        })
    }
}

/// Why two images cannot be compared.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("sizes differ or are below 7×7: {0}×{1} against {2}×{3}")]
pub struct SizeMismatch(pub usize, pub usize, pub usize, pub usize);

fn check(a: &Gray, b: &Gray) -> Result<(), SizeMismatch> {
    if a.width != b.width || a.height != b.height || a.width < 7 || a.height < 7 {
        return Err(SizeMismatch(a.width, a.height, b.width, b.height));
    }
    Ok(())
}

/// Mean SSIM of `a` and `b` (1 = identical, about 0 = unrelated).
pub fn ssim(a: &Gray, b: &Gray) -> Result<f64, SizeMismatch> {
    check(a, b)?;
    const WIN: usize = 7;
    let n = (WIN * WIN) as f64;
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (w, h) = (a.width, a.height);
    let mut total = 0f64;
    let mut count = 0usize;
    for y in 0..=h - WIN {
        for x in 0..=w - WIN {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0f64, 0f64, 0f64, 0f64, 0f64);
            for dy in 0..WIN {
                let row = (y + dy) * w + x;
                for i in row..row + WIN {
                    let (p, q) = (a.data[i] as f64, b.data[i] as f64);
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let (ma, mb) = (sa / n, sb / n);
            let cov = n / (n - 1.0);
            let va = (saa / n - ma * ma) * cov;
            let vb = (sbb / n - mb * mb) * cov;
            let vab = (sab / n - ma * mb) * cov;
            total += ((2.0 * ma * mb + c1) * (2.0 * vab + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            count += 1;
        }
    }
    Ok(total / count as f64)
}

/// PSNR in dB for 8-bit range (infinite for identical images).
pub fn psnr(a: &Gray, b: &Gray) -> Result<f64, SizeMismatch> {
    check(a, b)?;
    let mse = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&p, &q)| ((p - q) as f64).powi(2))
        .sum::<f64>()
        / a.data.len() as f64;
    Ok(10.0 * (255.0f64 * 255.0 / mse).log10())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Gray {
        Gray {
            width: w,
            height: h,
            data: (0..w * h).map(|i| f(i % w, i / w)).collect(),
        }
    }

    #[test]
    fn ssim_is_one_for_identical_and_drops_with_noise_and_for_unrelated() {
        let a = pattern(64, 64, |x, y| ((x * 4) ^ (y * 3)) as f32 % 256.0);
        assert!((ssim(&a, &a).unwrap() - 1.0).abs() < 1e-9);
        assert!(psnr(&a, &a).unwrap().is_infinite());
        let mut noisy = a.clone();
        for (i, v) in noisy.data.iter_mut().enumerate() {
            *v = (*v + if i % 2 == 0 { 20.0 } else { -20.0 }).clamp(0.0, 255.0);
        }
        let s = ssim(&a, &noisy).unwrap();
        assert!(s < 0.95 && s > 0.2, "{s}");
        let other = pattern(64, 64, |x, y| ((x * 37 + y * 91) % 256) as f32);
        assert!(ssim(&a, &other).unwrap() < 0.3);
        assert!(psnr(&a, &noisy).unwrap() > psnr(&a, &other).unwrap());
    }

    #[test]
    fn area_resize_preserves_the_mean_and_sizes_must_match() {
        let a = pattern(200, 120, |x, y| (x + y) as f32 % 256.0);
        let r = a.resize_area(64, 64);
        let mean = |g: &Gray| g.data.iter().map(|&v| v as f64).sum::<f64>() / g.data.len() as f64;
        assert!((mean(&a) - mean(&r)).abs() < 1.0);
        assert_eq!(ssim(&a, &r), Err(SizeMismatch(200, 120, 64, 64)));
    }
}
