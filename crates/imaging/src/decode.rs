//! Files and bytes to RGB pixels, as Pillow's `Image.open(f).convert('RGB')` gives them.
//!
//! The golden PDQ values were computed on Pillow's pixels, and real deployments (HMA,
//! ThreatExchange's Python) hash Pillow's pixels, so we reproduce them:
//!
//! | input | what Pillow does, and so what we do |
//! |---|---|
//! | JPEG (YCbCr, gray) | libjpeg-turbo, integer IDCT, fancy upsampling: we link the same library |
//! | JPEG, CMYK / YCCK | read as inverted (Adobe) CMYK, then `cmyk2rgb`: `R = clip(nk − nk·C/255)`, `nk = 255 − K` |
//! | gray (`L`, `1`) | R = G = B = L; 1-bit pixels are 0 or 255 |
//! | gray + alpha (`LA`) | alpha dropped |
//! | RGBA, palette with transparency | alpha dropped, **not** composited on a background |
//! | palette (`P`) | palette lookup |
//! | 16-bit gray (`I;16`) | clipped: values above 255 become 255 (not scaled) |
//! | 16-bit RGB(A) / LA | the high byte of each sample |
//! | float samples (TIFF) | clamped to 0..=1, scaled to 0..=255, rounded (an approximation) |
//! | GIF | the first frame |
//!
//! EXIF orientation is *not* applied unless asked for ([`DecodeOptions::exif_orient`]): Meta's
//! reference hashes the stored pixels.
//!
//! Decoders other than libjpeg-turbo may differ from Pillow's by a level here and there (WebP
//! lossy in particular); the golden tests report those rows as Hamming distances.

use image::{DynamicImage, ImageDecoder, RgbImage};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Resource limits: a hostile or broken file must fail cleanly instead of exhausting memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest `width × height` accepted. Default 100 MP: larger than any phone camera, small
    /// enough that the RGB buffer (300 MB) fits comfortably.
    pub max_pixels: u64,
    /// Largest encoded file accepted, in bytes. Default 256 MiB.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 100_000_000,
            max_bytes: 256 << 20,
        }
    }
}

/// How to decode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Pixel and byte limits.
    pub limits: Limits,
    /// Rotate/flip according to the EXIF Orientation tag, as a photo viewer would.
    pub exif_orient: bool,
}

/// Encoded formats we recognise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Format {
    /// JPEG, decoded by libjpeg-turbo.
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossy and lossless).
    WebP,
    /// GIF (first frame).
    Gif,
    /// Windows bitmap.
    Bmp,
    /// TIFF.
    Tiff,
    /// Netpbm (PPM, PGM, PBM, PAM).
    Pnm,
}

/// Why bytes did not become pixels.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file is larger than [`Limits::max_bytes`].
    #[error(
        "file is {bytes} bytes, over the limit of {limit}\n  raise the byte limit if this file is trusted"
    )]
    TooManyBytes {
        /// Size of the input.
        bytes: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The image has more pixels than [`Limits::max_pixels`].
    #[error(
        "image is {width}x{height}, over the limit of {limit} pixels\n  raise --max-pixels if this image is trusted"
    )]
    TooManyPixels {
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The first bytes match no supported format.
    #[error("not a supported image (JPEG, PNG, WebP, GIF, BMP, TIFF or PNM)")]
    UnknownFormat,
    /// The decoder rejected the data: corrupt, truncated, or an unsupported variant.
    #[error("corrupt or unsupported {format:?} data: {message}")]
    Corrupt {
        /// The format the data claimed to be.
        format: Format,
        /// The decoder's own words.
        message: String,
    },
}

/// An [`ImageError`] with the file it concerns, so a batch can say which file was bad.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong, or `None` for an I/O error (see `source`).
    #[source]
    pub error: FileErrorKind,
}

/// The two ways a file can fail.
#[derive(Debug, thiserror::Error)]
pub enum FileErrorKind {
    /// It could not be read.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// It was read but is not an acceptable image.
    #[error("{0}")]
    Image(#[from] ImageError),
}

/// Detects the format from the first bytes.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Format::Jpeg);
    }
    match image::guess_format(bytes).ok()? {
        image::ImageFormat::Png => Some(Format::Png),
        image::ImageFormat::WebP => Some(Format::WebP),
        image::ImageFormat::Gif => Some(Format::Gif),
        image::ImageFormat::Bmp => Some(Format::Bmp),
        image::ImageFormat::Tiff => Some(Format::Tiff),
        image::ImageFormat::Pnm => Some(Format::Pnm),
        _ => None,
    }
}

/// The process-wide decoding budget: bytes that all decodes in flight may hold together.
///
/// The per-image pixel limit bounds one decode, not many: a 777 KB PNG within 100 MP costs
/// about 1 GB to decode, and eight in parallel (a provider scanning client-chosen blobs, or
/// `scanlab hash` on eight threads) cost eight. Each decode reserves its worst case from this
/// budget once it knows the image's size and before it allocates, and waits while the budget
/// is spent; an image larger than the whole budget waits until it can have all of it.
struct Budget {
    used: std::sync::Mutex<(u64, u64)>,
    cap: std::sync::atomic::AtomicU64,
    freed: std::sync::Condvar,
}

static BUDGET: Budget = Budget {
    used: std::sync::Mutex::new((0, 0)),
    cap: std::sync::atomic::AtomicU64::new(DEFAULT_DECODE_BUDGET),
    freed: std::sync::Condvar::new(),
};

/// The default decoding budget: 1 GiB for all decodes in flight together.
pub const DEFAULT_DECODE_BUDGET: u64 = 1 << 30;

/// Sets the process-wide decoding budget, in bytes (see [`DEFAULT_DECODE_BUDGET`]).
pub fn set_decode_budget(bytes: u64) {
    BUDGET
        .cap
        .store(bytes.max(1), std::sync::atomic::Ordering::Relaxed);
    BUDGET.freed.notify_all();
}

/// The most bytes decodes have held at once since the last call (and resets it): for tests and
/// benchmarks that check the budget holds.
pub fn decode_budget_peak() -> u64 {
    let mut g = BUDGET.used.lock().unwrap_or_else(|e| e.into_inner());
    let now = g.0;
    std::mem::replace(&mut g.1, now)
}

/// A reservation from the budget, returned on drop.
struct Reserved(u64);

impl Drop for Reserved {
    fn drop(&mut self) {
        let mut g = BUDGET.used.lock().unwrap_or_else(|e| e.into_inner());
        g.0 -= self.0;
        BUDGET.freed.notify_all();
    }
}

/// Reserves a decode's worst case of `bytes`, waiting while the budget is spent.
fn reserve(bytes: u64) -> Reserved {
    let cap = BUDGET.cap.load(std::sync::atomic::Ordering::Relaxed);
    let want = bytes.clamp(1, cap);
    let mut g = BUDGET.used.lock().unwrap_or_else(|e| e.into_inner());
    while g.0 > 0 && g.0 + want > cap {
        g = BUDGET.freed.wait(g).unwrap_or_else(|e| e.into_inner());
    }
    g.0 += want;
    g.1 = g.1.max(g.0);
    Reserved(want)
}

/// Worst-case bytes a decode of a `w`×`h` image holds: up to 16-bit RGBA (8 bytes a pixel)
/// in the decoder, plus the 3-byte RGB result.
fn worst_case(w: u64, h: u64) -> u64 {
    w.saturating_mul(h).saturating_mul(11)
}

fn check_pixels(w: u64, h: u64, limits: &Limits) -> Result<(), ImageError> {
    if w.saturating_mul(h) > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width: w,
            height: h,
            limit: limits.max_pixels,
        });
    }
    Ok(())
}

/// Reads and decodes a file; errors name the file.
pub fn decode_file(path: &Path, opts: &DecodeOptions) -> Result<RgbImage, FileError> {
    let wrap = |error: FileErrorKind| FileError {
        path: path.to_owned(),
        error,
    };
    let len = std::fs::metadata(path).map_err(|e| wrap(e.into()))?.len();
    if len > opts.limits.max_bytes {
        return Err(wrap(
            ImageError::TooManyBytes {
                bytes: len,
                limit: opts.limits.max_bytes,
            }
            .into(),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| wrap(e.into()))?;
    decode(&bytes, opts).map_err(|e| wrap(e.into()))
}

/// Decodes an encoded image to Pillow-compatible RGB.
pub fn decode(bytes: &[u8], opts: &DecodeOptions) -> Result<RgbImage, ImageError> {
    if bytes.len() as u64 > opts.limits.max_bytes {
        return Err(ImageError::TooManyBytes {
            bytes: bytes.len() as u64,
            limit: opts.limits.max_bytes,
        });
    }
    let format = sniff(bytes).ok_or(ImageError::UnknownFormat)?;
    let corrupt = |e: &dyn std::fmt::Display| ImageError::Corrupt {
        format,
        message: e.to_string(),
    };
    let (rgb, orientation) = if format == Format::Jpeg {
        let rgb = decode_jpeg(bytes, &opts.limits)?;
        let orientation = if opts.exif_orient {
            image::codecs::jpeg::JpegDecoder::new(Cursor::new(bytes))
                .ok()
                .and_then(|mut d| d.orientation().ok())
        } else {
            None
        };
        (rgb, orientation)
    } else {
        let mut reader = image::ImageReader::new(Cursor::new(bytes));
        reader.set_format(match format {
            Format::Png => image::ImageFormat::Png,
            Format::WebP => image::ImageFormat::WebP,
            Format::Gif => image::ImageFormat::Gif,
            Format::Bmp => image::ImageFormat::Bmp,
            Format::Tiff => image::ImageFormat::Tiff,
            Format::Pnm => image::ImageFormat::Pnm,
            Format::Jpeg => unreachable!("handled above"),
        });
        let mut lim = image::Limits::default();
        // 16-bit RGBA is 8 bytes a pixel; leave room for the decoder's own buffers.
        lim.max_alloc = Some(opts.limits.max_pixels.saturating_mul(10));
        reader.limits(lim);
        let mut dec = reader.into_decoder().map_err(|e| corrupt(&e))?;
        let (w, h) = dec.dimensions();
        check_pixels(w as u64, h as u64, &opts.limits)?;
        if w == 0 || h == 0 {
            return Err(corrupt(&"zero-sized image"));
        }
        let _reserved = reserve(worst_case(w as u64, h as u64));
        let orientation = if opts.exif_orient {
            dec.orientation().ok()
        } else {
            None
        };
        let img = DynamicImage::from_decoder(dec).map_err(|e| corrupt(&e))?;
        (to_rgb_like_pillow(img), orientation)
    };
    let rgb = match orientation {
        Some(o) => {
            let mut d = DynamicImage::ImageRgb8(rgb);
            d.apply_orientation(o);
            d.into_rgb8()
        }
        None => rgb,
    };
    // Every image handed out has pixels, so nothing downstream meets an empty buffer.
    if rgb.width() == 0 || rgb.height() == 0 {
        return Err(ImageError::Corrupt {
            format,
            message: "zero-sized image".into(),
        });
    }
    Ok(rgb)
}

fn decode_jpeg(bytes: &[u8], limits: &Limits) -> Result<RgbImage, ImageError> {
    let corrupt = |e: &dyn std::fmt::Display| ImageError::Corrupt {
        format: Format::Jpeg,
        message: e.to_string(),
    };
    let mut d = turbojpeg::Decompressor::new().map_err(|e| corrupt(&e))?;
    let header = d.read_header(bytes).map_err(|e| corrupt(&e))?;
    let (w, h) = (header.width, header.height);
    check_pixels(w as u64, h as u64, limits)?;
    if w == 0 || h == 0 {
        return Err(corrupt(&"zero-sized image"));
    }
    let _reserved = reserve(worst_case(w as u64, h as u64));
    let cmyk = matches!(
        header.colorspace,
        turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK
    );
    let format = if cmyk {
        turbojpeg::PixelFormat::CMYK
    } else {
        turbojpeg::PixelFormat::RGB
    };
    let ch = format.size();
    let mut pixels = vec![0u8; w * h * ch];
    let image = turbojpeg::Image {
        pixels: pixels.as_mut_slice(),
        width: w,
        pitch: w * ch,
        height: h,
        format,
    };
    d.decompress(bytes, image).map_err(|e| corrupt(&e))?;
    let rgb = if cmyk {
        // Pillow reads 4-channel JPEGs as Adobe-inverted CMYK ("CMYK;I"), then `cmyk2rgb`.
        pixels
            .chunks_exact(4)
            .flat_map(|p| {
                let [c, m, y, k] = [255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3]];
                let nk = 255 - k as i32;
                [c, m, y].map(|v| (nk - muldiv255(v as i32, nk)).clamp(0, 255) as u8)
            })
            .collect()
    } else {
        pixels
    };
    Ok(RgbImage::from_raw(w as u32, h as u32, rgb).expect("buffer sized from header"))
}

/// Pillow's `MULDIV255`: `a·b/255` rounded, with integer arithmetic.
fn muldiv255(a: i32, b: i32) -> i32 {
    let t = a * b + 128;
    ((t >> 8) + t) >> 8
}

/// Converts any decoded image to RGB the way Pillow's `convert('RGB')` does (see module docs).
pub fn to_rgb_like_pillow(img: DynamicImage) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let px: Vec<u8> = match img {
        DynamicImage::ImageRgb8(i) => return i,
        DynamicImage::ImageLuma8(i) => i.into_raw().into_iter().flat_map(|v| [v, v, v]).collect(),
        DynamicImage::ImageLumaA8(i) => i
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| [p[0]; 3])
            .collect(),
        DynamicImage::ImageRgba8(i) => i
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        DynamicImage::ImageLuma16(i) => i
            .into_raw()
            .into_iter()
            .flat_map(|v| [v.min(255) as u8; 3])
            .collect(),
        DynamicImage::ImageLumaA16(i) => i
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| [(p[0] >> 8) as u8; 3])
            .collect(),
        DynamicImage::ImageRgb16(i) => i.into_raw().into_iter().map(|v| (v >> 8) as u8).collect(),
        DynamicImage::ImageRgba16(i) => i
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| [(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
            .collect(),
        other => return other.into_rgb8(),
    };
    RgbImage::from_raw(w, h, px).expect("3 bytes per pixel")
}
