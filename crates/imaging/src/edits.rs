//! Ordinary image edits, for measuring how easily a perceptual-hash scheme is evaded.
//!
//! Every edit is a pure function of the input pixels, a **strength** in `0.0..=1.0` and a
//! **seed**: the same three always give the same bytes, so every recall curve can be rebuilt by
//! anyone. Strength 0 is the identity for every kind (recall there must be 1), and 1 is a
//! heavy but still recognisable edit. Each kind documents how strength maps to its parameter.
//!
//! The seed matters only where an edit has a random element (noise, crop position when
//! `random`, watermark position); elsewhere it is ignored.

use image::{Rgb, RgbImage, imageops};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::str::FromStr;

/// The kinds of edit. See each variant for what strength means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EditKind {
    /// Downscale to `1 − 0.9·s` of each side (bilinear), as a messenger's upload resizing does.
    Resize,
    /// JPEG re-encode at quality `round(95 − 90·s)` (4:2:0), decoded again.
    Jpeg,
    /// Keep a centred window of `1 − 0.5·s` of each side.
    CropCenter,
    /// Keep a window of `1 − 0.5·s` of each side at a seeded random position.
    CropRandom,
    /// Rotate by `30·s` degrees about the centre, same canvas, black corners.
    Rotate,
    /// Mirror left–right (any `s > 0`).
    FlipHorizontal,
    /// Add a black border of `0.5·s` of each side in total.
    Pad,
    /// Stamp a caption whose height is `0.25·s` of the image across the lower part.
    Text,
    /// Blend a tiled semi-transparent watermark at opacity `0.5·s`.
    Watermark,
    /// Add `100·s` to every channel (clipped).
    Brightness,
    /// Scale contrast about mid-grey by `1 + 1.5·s`.
    Contrast,
    /// Scale saturation by `1 − s` (1 is grey).
    Saturation,
    /// Gaussian blur with σ = `8·s` pixels.
    Blur,
    /// Seeded Gaussian noise with σ = `40·s` levels.
    Noise,
    /// Convert to grey (any `s > 0`).
    Grayscale,
    /// A screenshot of the photo: scale by `1 − 0.5·s`, framed by a UI bar and border
    /// `0.3·s` of the height, then JPEG at quality `round(90 − 40·s)`.
    Screenshot,
}

impl EditKind {
    /// Every kind, in a stable order (the order of report columns).
    pub const ALL: [EditKind; 16] = [
        EditKind::Resize,
        EditKind::Jpeg,
        EditKind::CropCenter,
        EditKind::CropRandom,
        EditKind::Rotate,
        EditKind::FlipHorizontal,
        EditKind::Pad,
        EditKind::Text,
        EditKind::Watermark,
        EditKind::Brightness,
        EditKind::Contrast,
        EditKind::Saturation,
        EditKind::Blur,
        EditKind::Noise,
        EditKind::Grayscale,
        EditKind::Screenshot,
    ];

    /// The kebab-case name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            EditKind::Resize => "resize",
            EditKind::Jpeg => "jpeg",
            EditKind::CropCenter => "crop-center",
            EditKind::CropRandom => "crop-random",
            EditKind::Rotate => "rotate",
            EditKind::FlipHorizontal => "flip-horizontal",
            EditKind::Pad => "pad",
            EditKind::Text => "text",
            EditKind::Watermark => "watermark",
            EditKind::Brightness => "brightness",
            EditKind::Contrast => "contrast",
            EditKind::Saturation => "saturation",
            EditKind::Blur => "blur",
            EditKind::Noise => "noise",
            EditKind::Grayscale => "grayscale",
            EditKind::Screenshot => "screenshot",
        }
    }
}

/// One edit: a kind and a strength.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Edit {
    /// What to do.
    pub kind: EditKind,
    /// How much, `0.0..=1.0`.
    pub strength: f32,
}

/// Why an edit specification was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// Unknown kind name.
    #[error(
        "unknown edit {0:?}\n  known edits: resize, jpeg, crop-center, crop-random, rotate, flip-horizontal, pad, text, watermark, brightness, contrast, saturation, blur, noise, grayscale, screenshot"
    )]
    UnknownKind(String),
    /// Strength not a number in `0..=1`.
    #[error(
        "edit strength {0:?} is not a number from 0 to 1\n  write KIND:STRENGTH, e.g. jpeg:0.5"
    )]
    BadStrength(String),
    /// Re-encoding failed (should not happen for in-memory images).
    #[error("re-encoding failed: {0}")]
    Encode(String),
}

impl fmt::Display for Edit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.name(), self.strength)
    }
}

impl FromStr for Edit {
    type Err = EditError;
    /// `KIND:STRENGTH`, e.g. `jpeg:0.5`; a bare `KIND` means strength 1.
    fn from_str(s: &str) -> Result<Self, EditError> {
        let (k, st) = s.split_once(':').unwrap_or((s, "1"));
        let kind = EditKind::ALL
            .into_iter()
            .find(|e| e.name() == k)
            .ok_or_else(|| EditError::UnknownKind(k.into()))?;
        let strength: f32 = st.parse().map_err(|_| EditError::BadStrength(st.into()))?;
        if !(0.0..=1.0).contains(&strength) {
            return Err(EditError::BadStrength(st.into()));
        }
        Ok(Edit { kind, strength })
    }
}

impl Edit {
    /// Applies the edit. Deterministic in `(img, self, seed)`.
    pub fn apply(&self, img: &RgbImage, seed: u64) -> Result<RgbImage, EditError> {
        let s = self.strength.clamp(0.0, 1.0);
        if s == 0.0 {
            return Ok(img.clone());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(
            seed ^ (self.kind as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let (w, h) = img.dimensions();
        Ok(match self.kind {
            EditKind::Resize => {
                let f = 1.0 - 0.9 * s;
                let (nw, nh) = (
                    ((w as f32 * f).round() as u32).max(1),
                    ((h as f32 * f).round() as u32).max(1),
                );
                imageops::resize(img, nw, nh, imageops::FilterType::Triangle)
            }
            EditKind::Jpeg => jpeg(img, (95.0 - 90.0 * s).round() as i32)?,
            EditKind::CropCenter | EditKind::CropRandom => {
                let f = 1.0 - 0.5 * s;
                let (cw, ch) = (
                    ((w as f32 * f).round() as u32).max(1),
                    ((h as f32 * f).round() as u32).max(1),
                );
                let (x, y) = if self.kind == EditKind::CropCenter {
                    ((w - cw) / 2, (h - ch) / 2)
                } else {
                    (rng.random_range(0..=w - cw), rng.random_range(0..=h - ch))
                };
                imageops::crop_imm(img, x, y, cw, ch).to_image()
            }
            EditKind::Rotate => rotate(img, 30.0 * s),
            EditKind::FlipHorizontal => imageops::flip_horizontal(img),
            EditKind::Pad => {
                let (bx, by) = (
                    ((w as f32 * 0.25 * s).round() as u32),
                    ((h as f32 * 0.25 * s).round() as u32),
                );
                let mut out = RgbImage::new(w + 2 * bx, h + 2 * by);
                imageops::replace(&mut out, img, bx as i64, by as i64);
                out
            }
            EditKind::Text => {
                let mut out = img.clone();
                let scale = ((h as f32 * 0.25 * s) / 8.0).max(1.0) as u32;
                let y = h.saturating_sub(10 * scale);
                draw_text(
                    &mut out,
                    "SCANLAB 2026",
                    4,
                    y,
                    scale,
                    Rgb([255, 255, 0]),
                    1.0,
                );
                out
            }
            EditKind::Watermark => {
                let mut out = img.clone();
                let scale = (h / 40).max(1);
                let (ox, oy) = (
                    rng.random_range(0..16 * scale),
                    rng.random_range(0..16 * scale),
                );
                let mut y = oy;
                while y < h {
                    draw_text(
                        &mut out,
                        "(c) stock",
                        ox,
                        y,
                        scale,
                        Rgb([255, 255, 255]),
                        0.5 * s,
                    );
                    y += 14 * scale;
                }
                out
            }
            EditKind::Brightness => map(img, |v| v + 100.0 * s),
            EditKind::Contrast => map(img, |v| (v - 128.0) * (1.0 + 1.5 * s) + 128.0),
            EditKind::Saturation => {
                let mut out = img.clone();
                for p in out.pixels_mut() {
                    let [r, g, b] = p.0.map(|c| c as f32);
                    let l = 0.299 * r + 0.587 * g + 0.114 * b;
                    p.0 = [r, g, b]
                        .map(|c| (l + (c - l) * (1.0 - s)).round().clamp(0.0, 255.0) as u8);
                }
                out
            }
            EditKind::Blur => imageops::blur(img, 8.0 * s),
            EditKind::Noise => {
                let mut out = img.clone();
                for p in out.pixels_mut() {
                    for c in p.0.iter_mut() {
                        // Box–Muller: one standard normal from two uniforms.
                        let (u1, u2): (f32, f32) = (rng.random::<f32>().max(1e-9), rng.random());
                        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos();
                        *c = (*c as f32 + 40.0 * s * z).round().clamp(0.0, 255.0) as u8;
                    }
                }
                out
            }
            EditKind::Grayscale => {
                let g = imageops::grayscale(img);
                RgbImage::from_fn(w, h, |x, y| {
                    let v = g.get_pixel(x, y).0[0];
                    Rgb([v, v, v])
                })
            }
            EditKind::Screenshot => {
                let f = 1.0 - 0.5 * s;
                let (nw, nh) = (
                    ((w as f32 * f).round() as u32).max(1),
                    ((h as f32 * f).round() as u32).max(1),
                );
                let small = imageops::resize(img, nw, nh, imageops::FilterType::Triangle);
                let bar = (nh as f32 * 0.2 * s).round() as u32;
                let border = (nh as f32 * 0.05 * s).round() as u32;
                let mut out = RgbImage::from_pixel(
                    nw + 2 * border,
                    nh + bar + 2 * border,
                    Rgb([240, 240, 240]),
                );
                for y in 0..bar {
                    for x in 0..out.width() {
                        out.put_pixel(x, y, Rgb([32, 40, 56]));
                    }
                }
                draw_text(
                    &mut out,
                    "12:34  Chat",
                    2,
                    bar / 4,
                    (bar / 16).max(1),
                    Rgb([255, 255, 255]),
                    1.0,
                );
                imageops::replace(&mut out, &small, border as i64, (bar + border) as i64);
                jpeg(&out, (90.0 - 40.0 * s).round() as i32)?
            }
        })
    }
}

fn map(img: &RgbImage, f: impl Fn(f32) -> f32) -> RgbImage {
    let mut out = img.clone();
    for c in out.iter_mut() {
        *c = f(*c as f32).round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// Re-encodes through libjpeg-turbo (the encoder most of the world uses) and decodes again.
pub fn jpeg(img: &RgbImage, quality: i32) -> Result<RgbImage, EditError> {
    let bytes = encode_jpeg(img, quality)?;
    crate::decode::decode(&bytes, &Default::default()).map_err(|e| EditError::Encode(e.to_string()))
}

/// Encodes as JPEG through libjpeg-turbo at `quality` (1–100), 4:2:0: how an image travels
/// as a file, e.g. when a simulated user sends an edited copy.
pub fn encode_jpeg(img: &RgbImage, quality: i32) -> Result<Vec<u8>, EditError> {
    let enc = |e: &dyn fmt::Display| EditError::Encode(e.to_string());
    let mut c = turbojpeg::Compressor::new().map_err(|e| enc(&e))?;
    c.set_quality(quality.clamp(1, 100)).map_err(|e| enc(&e))?;
    c.set_subsamp(turbojpeg::Subsamp::Sub2x2)
        .map_err(|e| enc(&e))?;
    let src = turbojpeg::Image {
        pixels: img.as_raw().as_slice(),
        width: img.width() as usize,
        pitch: img.width() as usize * 3,
        height: img.height() as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    c.compress_to_vec(src).map_err(|e| enc(&e))
}

/// Rotation about the centre by `deg` degrees, bilinear, same canvas size, black outside.
fn rotate(img: &RgbImage, deg: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (c, s) = (deg.to_radians().cos(), deg.to_radians().sin());
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    RgbImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
        let sx = c * dx + s * dy + cx - 0.5;
        let sy = -s * dx + c * dy + cy - 0.5;
        if sx < 0.0 || sy < 0.0 || sx > (w - 1) as f32 || sy > (h - 1) as f32 {
            return Rgb([0, 0, 0]);
        }
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let px = |x, y| img.get_pixel(x, y).0.map(|v| v as f32);
        let (a, b, cc, d) = (px(x0, y0), px(x1, y0), px(x0, y1), px(x1, y1));
        Rgb(std::array::from_fn(|k| {
            let top = a[k] + (b[k] - a[k]) * fx;
            let bot = cc[k] + (d[k] - cc[k]) * fx;
            (top + (bot - top) * fy).round().clamp(0.0, 255.0) as u8
        }))
    })
}

/// Draws `text` with the public-domain 8×8 bitmap font, each font pixel a `scale`² block,
/// blended at `alpha`.
fn draw_text(
    img: &mut RgbImage,
    text: &str,
    x0: u32,
    y0: u32,
    scale: u32,
    color: Rgb<u8>,
    alpha: f32,
) {
    use font8x8::UnicodeFonts;
    let (w, h) = img.dimensions();
    for (i, ch) in text.chars().enumerate() {
        let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else {
            continue;
        };
        for (gy, row) in glyph.iter().enumerate() {
            for gx in 0..8 {
                if row & (1 << gx) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let x = x0 + (i as u32 * 8 + gx) * scale + dx;
                        let y = y0 + gy as u32 * scale + dy;
                        if x < w && y < h {
                            let p = img.get_pixel_mut(x, y);
                            for k in 0..3 {
                                p.0[k] = (p.0[k] as f32 * (1.0 - alpha) + color.0[k] as f32 * alpha)
                                    .round() as u8;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo() -> RgbImage {
        RgbImage::from_fn(96, 64, |x, y| {
            Rgb([(x * 2) as u8, (y * 3) as u8, ((x * y) % 251) as u8])
        })
    }

    #[test]
    fn every_edit_is_deterministic_and_zero_is_identity() {
        let img = photo();
        for kind in EditKind::ALL {
            let e = Edit {
                kind,
                strength: 0.7,
            };
            let a = e.apply(&img, 9).unwrap();
            let b = e.apply(&img, 9).unwrap();
            assert_eq!(a, b, "{kind:?} is deterministic");
            assert_ne!(a, img, "{kind:?} at 0.7 changes the image");
            assert_eq!(
                Edit {
                    kind,
                    strength: 0.0
                }
                .apply(&img, 9)
                .unwrap(),
                img
            );
        }
    }

    #[test]
    fn the_seed_changes_random_edits_only() {
        let img = photo();
        let n = Edit {
            kind: EditKind::Noise,
            strength: 0.5,
        };
        assert_ne!(n.apply(&img, 1).unwrap(), n.apply(&img, 2).unwrap());
        let b = Edit {
            kind: EditKind::Blur,
            strength: 0.5,
        };
        assert_eq!(b.apply(&img, 1).unwrap(), b.apply(&img, 2).unwrap());
    }

    #[test]
    fn specs_parse_and_bad_specs_explain_themselves() {
        assert_eq!(
            "jpeg:0.5".parse::<Edit>().unwrap(),
            Edit {
                kind: EditKind::Jpeg,
                strength: 0.5
            }
        );
        assert_eq!("flip-horizontal".parse::<Edit>().unwrap().strength, 1.0);
        assert!(matches!(
            "sepia:0.5".parse::<Edit>(),
            Err(EditError::UnknownKind(_))
        ));
        assert!(matches!(
            "blur:2".parse::<Edit>(),
            Err(EditError::BadStrength(_))
        ));
        for k in EditKind::ALL {
            let e = Edit {
                kind: k,
                strength: 0.25,
            };
            assert_eq!(e.to_string().parse::<Edit>().unwrap(), e);
        }
    }

    #[test]
    fn geometry_of_resize_crop_pad() {
        let img = photo();
        let r = Edit {
            kind: EditKind::Resize,
            strength: 0.5,
        }
        .apply(&img, 0)
        .unwrap();
        assert_eq!(r.dimensions(), (53, 35));
        let c = Edit {
            kind: EditKind::CropCenter,
            strength: 1.0,
        }
        .apply(&img, 0)
        .unwrap();
        assert_eq!(c.dimensions(), (48, 32));
        let p = Edit {
            kind: EditKind::Pad,
            strength: 1.0,
        }
        .apply(&img, 0)
        .unwrap();
        assert_eq!(p.dimensions(), (144, 96));
    }
}
