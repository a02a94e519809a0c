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
//! | WebP (lossy, lossless, alpha, animated) | libwebp, as Pillow links it: see [`crate::webp`]'s notes |
//!
//! EXIF orientation is *not* applied unless asked for ([`DecodeOptions::exif_orient`]): Meta's
//! reference hashes the stored pixels.
//!
//! [`Compat::ThreatExchange`] reproduces instead the pixels ThreatExchange's Python library
//! hashes, which differ from the reference for palette, 1-bit and CMYK files.
//!
//! JPEG and WebP go through the libraries Pillow itself uses (libjpeg-turbo, libwebp); the other
//! decoders may differ from Pillow's by a level here and there; the golden tests report those
//! rows as Hamming distances.

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Pixel and byte limits.
    pub limits: Limits,
    /// Rotate/flip according to the EXIF Orientation tag, as a photo viewer would.
    pub exif_orient: bool,
    /// Whose pixels: the reference's (the default) or another tool's.
    pub compat: Compat,
    /// Decode large images at reduced size ([`FastDecode`]): **not** the reference's pixels,
    /// so never where exactness is claimed. `None` (exact) unless the process default was
    /// changed with [`set_fast_decode_default`].
    pub fast: Option<FastDecode>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            limits: Limits::default(),
            exif_orient: false,
            compat: Compat::default(),
            fast: fast_decode_default(),
        }
    }
}

/// The fast decoding path: an image far larger than PDQ's 64×64 working size is decoded at a
/// reduced size, the shortcut its format offers, so that it costs a fraction of a full decode.
///
/// - **JPEG**: libjpeg-turbo's scaled inverse DCT (1/2, 1/4 or 1/8 of each side: at 1/8 each
///   8×8 block becomes its DC average), with its fast chroma upsampling. The largest reduction
///   that keeps both sides at least [`FastDecode::min_side`] is taken.
/// - **WebP** (still): libwebp's own rescaler, which shrinks rows as they are decoded (the VP8
///   or VP8L bitstream is still decoded whole, so the gain is the colour conversion and memory),
///   without its deblocking filter and fancy upsampling.
/// - **PNG and the others**: no shortcut exists (every row must be inflated), so the exact
///   decode.
///
/// Hashes differ from the exact ones by a few bits (`scanlab bench fast-decode` measures the
/// distribution on a corpus); `scanlab evaluate --fast-decode` measures what it costs in recall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastDecode {
    /// The shortest side a reduced image may have.
    pub min_side: u32,
}

/// The default [`FastDecode::min_side`]: four times PDQ's 64-pixel working size.
pub const FAST_MIN_SIDE: u32 = 256;

impl Default for FastDecode {
    fn default() -> Self {
        FastDecode {
            min_side: FAST_MIN_SIDE,
        }
    }
}

impl FastDecode {
    /// The largest power-of-two reduction (1, 2, 4 or 8) of a `w`×`h` image whose sides both
    /// stay at least `min_side` (rounded up, as the decoders round).
    pub fn reduction(&self, w: u32, h: u32) -> u32 {
        [8, 4, 2]
            .into_iter()
            .find(|r| w.div_ceil(*r) >= self.min_side && h.div_ceil(*r) >= self.min_side)
            .unwrap_or(1)
    }
}

/// 0 for none, else the fast path's `min_side`.
static FAST_DEFAULT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Sets whether [`DecodeOptions::default`] takes the fast path, for the whole process: what
/// `scanlab evaluate --fast-decode` uses, so that every party that decodes an image (the list
/// builder, each scheme's device and provider halves) decodes it the same way. Off unless set.
pub fn set_fast_decode_default(fast: Option<FastDecode>) {
    FAST_DEFAULT.store(
        fast.map_or(0, |f| f.min_side.max(1)),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// The process default of [`DecodeOptions::fast`] (`None` unless [`set_fast_decode_default`]
/// changed it).
pub fn fast_decode_default() -> Option<FastDecode> {
    match FAST_DEFAULT.load(std::sync::atomic::Ordering::Relaxed) {
        0 => None,
        min_side => Some(FastDecode { min_side }),
    }
}

/// Whose conversion to RGB to reproduce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compat {
    /// Pillow's `convert('RGB')`, as the golden values and Meta's reference hash (module docs).
    #[default]
    Reference,
    /// ThreatExchange's Python library (1.2.17, `pdq_hasher.py`), which hands Pillow's raw
    /// array to PDQ, a **deviation from the reference** for three kinds of file:
    /// - palette images (mode `P`: palette PNGs, and GIFs, of which the first frame): the
    ///   palette *indices*, as grey;
    /// - 1-bit PNGs (mode `1`): 0 and 1, not 0 and 255, as grey;
    /// - CMYK JPEGs: C, M and Y taken as R, G and B.
    ///
    /// Every other file decodes as the reference does.
    ThreatExchange,
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
pub(crate) struct Reserved(u64);

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

/// Admits a decode of `w`×`h` pixels: within the pixel limit and not empty, with its
/// worst-case memory reserved from the decode budget until the returned guard drops.
pub(crate) fn admit(
    format: Format,
    w: u64,
    h: u64,
    limits: &Limits,
) -> Result<Reserved, ImageError> {
    check_pixels(w, h, limits)?;
    if w == 0 || h == 0 {
        return Err(ImageError::Corrupt {
            format,
            message: "zero-sized image".into(),
        });
    }
    Ok(reserve(worst_case(w, h)))
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

/// Decodes the image read from `reader` (a pipe, a socket), read only up to the byte limit so
/// a stream cannot exhaust memory; `name` names it in errors.
pub fn decode_reader(
    name: &Path,
    reader: impl std::io::Read,
    opts: &DecodeOptions,
) -> Result<RgbImage, FileError> {
    let wrap = |error: FileErrorKind| FileError {
        path: name.to_owned(),
        error,
    };
    let limit = opts.limits.max_bytes;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(reader, limit.saturating_add(1)),
        &mut bytes,
    )
    .map_err(|e| wrap(e.into()))?;
    if bytes.len() as u64 > limit {
        return Err(wrap(
            ImageError::TooManyBytes {
                bytes: bytes.len() as u64,
                limit,
            }
            .into(),
        ));
    }
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
    let te_png = match (format, opts.compat) {
        (Format::Png, Compat::ThreatExchange) => png_as_threatexchange(bytes, &opts.limits)?,
        (Format::Gif, Compat::ThreatExchange) => Some(gif_as_threatexchange(bytes, &opts.limits)?),
        _ => None,
    };
    let (rgb, orientation) = if let Some(rgb) = te_png {
        (rgb, None)
    } else if format == Format::Jpeg {
        let rgb = decode_jpeg(bytes, &opts.limits, opts.compat, opts.fast)?;
        let orientation = opts
            .exif_orient
            .then(|| orientation(image::codecs::jpeg::JpegDecoder::new(Cursor::new(bytes))))
            .flatten();
        (rgb, orientation)
    } else if format == Format::WebP {
        let rgb = crate::webp::decode_webp(bytes, &opts.limits, opts.fast)?;
        let orientation = opts
            .exif_orient
            .then(|| orientation(image::codecs::webp::WebPDecoder::new(Cursor::new(bytes))))
            .flatten();
        (rgb, orientation)
    } else {
        let mut reader = image::ImageReader::new(Cursor::new(bytes));
        reader.set_format(match format {
            Format::Png => image::ImageFormat::Png,
            Format::Gif => image::ImageFormat::Gif,
            Format::Bmp => image::ImageFormat::Bmp,
            Format::Tiff => image::ImageFormat::Tiff,
            Format::Pnm => image::ImageFormat::Pnm,
            Format::Jpeg | Format::WebP => unreachable!("handled above"),
        });
        let mut lim = image::Limits::default();
        // 16-bit RGBA is 8 bytes a pixel; leave room for the decoder's own buffers.
        lim.max_alloc = Some(opts.limits.max_pixels.saturating_mul(10));
        reader.limits(lim);
        let mut dec = reader.into_decoder().map_err(|e| corrupt(&e))?;
        let (w, h) = dec.dimensions();
        let _reserved = admit(format, w as u64, h as u64, &opts.limits)?;
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

/// The EXIF orientation `image`'s parser reads from a file whose pixels come from elsewhere
/// (libjpeg-turbo, libwebp).
fn orientation<D: ImageDecoder>(
    decoder: image::ImageResult<D>,
) -> Option<image::metadata::Orientation> {
    decoder.ok().and_then(|mut d| d.orientation().ok())
}

/// ThreatExchange's pixels of a palette or 1-bit PNG (see [`Compat::ThreatExchange`]): each
/// pixel's raw sample, the palette index or the bit, as grey. `None` for any other PNG.
fn png_as_threatexchange(bytes: &[u8], limits: &Limits) -> Result<Option<RgbImage>, ImageError> {
    let corrupt = |e: &dyn std::fmt::Display| ImageError::Corrupt {
        format: Format::Png,
        message: e.to_string(),
    };
    // The same allocation bound as the reference path (`image`'s `max_alloc`).
    let mut dec = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: usize::try_from(limits.max_pixels.saturating_mul(10)).unwrap_or(usize::MAX),
        },
    );
    dec.set_transformations(png::Transformations::IDENTITY);
    let mut reader = dec.read_info().map_err(|e| corrupt(&e))?;
    let (w, h, color, depth) = {
        let i = reader.info();
        (i.width, i.height, i.color_type, i.bit_depth as u8)
    };
    let one_bit_grey = color == png::ColorType::Grayscale && depth == 1;
    if color != png::ColorType::Indexed && !one_bit_grey {
        return Ok(None);
    }
    let _reserved = admit(Format::Png, w as u64, h as u64, limits)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| corrupt(&"image too large for this platform"))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(|e| corrupt(&e))?;
    let (line, bits) = (frame.line_size, depth as usize);
    let mask = ((1u16 << bits) - 1) as u8;
    let mut px = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h as usize {
        let row = &buf[y * line..(y + 1) * line];
        for x in 0..w as usize {
            let bit = x * bits;
            let v = (row[bit / 8] >> (8 - bits - bit % 8)) & mask;
            px.extend([v; 3]);
        }
    }
    Ok(Some(
        RgbImage::from_raw(w, h, px).expect("3 bytes per pixel"),
    ))
}

/// ThreatExchange's pixels of a GIF (Pillow opens its first frame as mode `P`): the first
/// frame's palette indices as grey, on a canvas of the logical screen filled with the frame's
/// transparent index, or 0.
fn gif_as_threatexchange(bytes: &[u8], limits: &Limits) -> Result<RgbImage, ImageError> {
    let corrupt = |e: &dyn std::fmt::Display| ImageError::Corrupt {
        format: Format::Gif,
        message: e.to_string(),
    };
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::Indexed);
    // A frame may claim more pixels than the screen: bound what it may allocate (one byte an
    // index) by the pixel limit, before it is read.
    opts.set_memory_limit(
        std::num::NonZeroU64::new(limits.max_pixels)
            .map_or(gif::MemoryLimit::Unlimited, gif::MemoryLimit::Bytes),
    );
    let mut dec = opts
        .read_info(Cursor::new(bytes))
        .map_err(|e| corrupt(&e))?;
    let (w, h) = (dec.width() as usize, dec.height() as usize);
    let _reserved = admit(Format::Gif, w as u64, h as u64, limits)?;
    let frame = dec
        .read_next_frame()
        .map_err(|e| corrupt(&e))?
        .ok_or_else(|| corrupt(&"no frame"))?;
    let mut canvas = vec![frame.transparent.unwrap_or(0); w * h];
    let (fw, fh) = (frame.width as usize, frame.height as usize);
    let (left, top) = (frame.left as usize, frame.top as usize);
    for y in 0..fh.min(h.saturating_sub(top)) {
        for x in 0..fw.min(w.saturating_sub(left)) {
            canvas[(top + y) * w + left + x] = frame.buffer[y * fw + x];
        }
    }
    let px: Vec<u8> = canvas.into_iter().flat_map(|v| [v; 3]).collect();
    Ok(RgbImage::from_raw(w as u32, h as u32, px).expect("3 bytes per pixel"))
}

fn decode_jpeg(
    bytes: &[u8],
    limits: &Limits,
    compat: Compat,
    fast: Option<FastDecode>,
) -> Result<RgbImage, ImageError> {
    let corrupt = |e: &dyn std::fmt::Display| ImageError::Corrupt {
        format: Format::Jpeg,
        message: e.to_string(),
    };
    let mut d = turbojpeg::Decompressor::new().map_err(|e| corrupt(&e))?;
    let header = d.read_header(bytes).map_err(|e| corrupt(&e))?;
    let _reserved = admit(
        Format::Jpeg,
        header.width as u64,
        header.height as u64,
        limits,
    )?;
    // The fast path: scaled in the DCT domain, fast chroma upsampling (FastDecode's docs).
    let reduce = fast.map_or(1, |f| {
        f.reduction(header.width as u32, header.height as u32)
    });
    let (w, h) = if reduce > 1 && !header.is_lossless {
        let factor = turbojpeg::ScalingFactor::new(1, reduce as usize);
        d.set_scaling_factor(factor).map_err(|e| corrupt(&e))?;
        d.set_fast_upsample(true).map_err(|e| corrupt(&e))?;
        let scaled = header.scaled(factor);
        (scaled.width, scaled.height)
    } else {
        (header.width, header.height)
    };
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
    // At 1/8 a block is its DC coefficient alone, so a progressive file's AC scans can be
    // left unread: the same pixels for a fraction of the entropy decoding.
    let dc_only = (reduce == 8).then(|| dc_scans_only(bytes)).flatten();
    d.decompress(dc_only.as_deref().unwrap_or(bytes), image)
        .map_err(|e| corrupt(&e))?;
    let rgb = if cmyk && compat == Compat::ThreatExchange {
        // Pillow's CMYK array (Adobe-inverted), its first three channels taken as RGB.
        pixels
            .chunks_exact(4)
            .flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2]])
            .collect()
    } else if cmyk {
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

/// A progressive JPEG with most of its AC scans left out (every other segment kept, in order,
/// and an end marker after the last): `None` when the file is not progressive, has no AC scan
/// to leave out, or is not laid out as expected (then it is decoded whole).
///
/// Decoded at 1/8 scale, where libjpeg-turbo's 1×1 inverse DCT reads the DC coefficient alone,
/// this gives the whole file's pixels. Kept: every segment but AC scans, and the AC scans of a
/// component that libjpeg-turbo decodes at 1/8 as 2×2 blocks rather than upsample it (4:2:0
/// chroma), since its 2×2 inverse DCT reads coefficients of every band. One change: each
/// quantization table's (0, 2) entry is set to 0, which turns off libjpeg-turbo's block
/// smoothing (it estimates the AC coefficients a file has not supplied, and for a component
/// with none it smooths the DC too; a zero among the quantizers it divides by turns it off),
/// and which no 1×1 or 2×2 inverse DCT reads. A file with a component of another size is
/// decoded whole. The test
/// `dc_scans_give_the_same_eighth_scale_pixels` checks it on a file, and the ignored test
/// `dc_scans_on_the_dev_corpus` on every progressive photo of the dev corpus.
fn dc_scans_only(b: &[u8]) -> Option<Vec<u8>> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4);
    out.extend_from_slice(&b[..2]);
    let (mut i, mut progressive, mut dropped) = (2, false, false);
    // (component id, inverse-DCT size at 1/8); where the quantization tables are in `out`.
    let mut sizes: Vec<(u8, u8)> = Vec::new();
    let mut dqt: Vec<(usize, usize)> = Vec::new();
    loop {
        if *b.get(i)? != 0xFF {
            return None;
        }
        while *b.get(i)? == 0xFF {
            i += 1;
        }
        let (start, marker) = (i - 1, b[i]);
        i += 1;
        match marker {
            0xD9 => break,
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&[0xFF, marker]);
                continue;
            }
            _ => {}
        }
        let len = u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as usize;
        let seg = b.get(i..i + len)?;
        let mut end = i + len;
        match marker {
            0xC2 => {
                progressive = true;
                // Each component's inverse-DCT size at 1/8, as libjpeg-turbo chooses it
                // (jdmaster.c): a subsampled component is scaled up by its IDCT rather than by
                // upsampling, so a 4:2:0 file's chroma is read as 2×2 blocks, AC included.
                let nf = *seg.get(7)? as usize;
                let hv: Vec<(u8, u8, u8)> = (0..nf)
                    .map(|k| {
                        let f = *seg.get(9 + 3 * k)?;
                        Some((*seg.get(8 + 3 * k)?, f >> 4, f & 15))
                    })
                    .collect::<Option<_>>()?;
                let (mh, mv) = hv.iter().fold((1, 1), |(a, b), c| (a.max(c.1), b.max(c.2)));
                for &(id, h, v) in &hv {
                    if h == 0 || v == 0 {
                        return None;
                    }
                    let mut k = 1u8;
                    while k < 8 && mh % (h * k * 2) == 0 && mv % (v * k * 2) == 0 {
                        k *= 2;
                    }
                    if k > 2 {
                        return None;
                    }
                    sizes.push((id, k));
                }
            }
            0xC0 | 0xC1 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xDA => {
                if !progressive {
                    return None;
                }
                // Entropy-coded data runs to the next marker that is not a stuffed byte or a
                // restart marker.
                while b.get(end)? != &0xFF || matches!(b.get(end + 1)?, 0x00 | 0xD0..=0xD7) {
                    end += 1;
                }
                let ns = *seg.get(2)? as usize;
                let comps: Vec<u8> = (0..ns)
                    .map(|k| seg.get(3 + 2 * k).copied())
                    .collect::<Option<_>>()?;
                let se = *seg.get(4 + 2 * ns)?;
                if se > 0 {
                    // An AC scan has one component: a 1×1 block reads none of its
                    // coefficients, a 2×2 block reads some of every band.
                    let c = *comps.first()?;
                    if sizes.iter().find(|s| s.0 == c)?.1 == 1 {
                        dropped = true;
                        i = end;
                        continue;
                    }
                }
            }
            0xDB => dqt.push((out.len() + 4, len - 2)),
            _ => {}
        }
        out.extend_from_slice(b.get(start..end)?);
        i = end;
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    // Block smoothing is turned off by a zero quantizer at (row 0, column 2), one of those it
    // divides by: a coefficient neither a 1×1 nor libjpeg's 2×2 inverse DCT (which skips
    // columns 2, 4 and 6) reads. Tables are in zigzag order, where (0, 2) is the sixth.
    for (mut at, len) in dqt {
        let stop = at + len;
        while at < stop {
            let wide = *out.get(at)? >> 4 == 1;
            let size = if wide { 128 } else { 64 };
            let q = at + 1 + if wide { 10 } else { 5 };
            out.get_mut(q..q + 1 + usize::from(wide))?.fill(0);
            at += 1 + size;
        }
    }
    (progressive && dropped && !sizes.is_empty()).then_some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(w: u32, h: u32) -> Vec<u8> {
        // A smooth but detailed seeded picture, so DC and AC both carry information.
        (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| {
                    let (fx, fy) = (x as f32, y as f32);
                    let v = |k: f32| {
                        (128.0 + 90.0 * ((fx * k / 37.0).sin() * (fy / (23.0 + k)).cos())) as u8
                    };
                    [v(1.0), v(2.0), v(3.0)]
                })
            })
            .collect()
    }

    fn jpeg(w: u32, h: u32, progressive: bool) -> Vec<u8> {
        jpeg_sub(w, h, progressive, turbojpeg::Subsamp::Sub2x2)
    }

    fn jpeg_sub(w: u32, h: u32, progressive: bool, sub: turbojpeg::Subsamp) -> Vec<u8> {
        let px = photo(w, h);
        let img = turbojpeg::Image {
            pixels: px.as_slice(),
            width: w as usize,
            pitch: 3 * w as usize,
            height: h as usize,
            format: turbojpeg::PixelFormat::RGB,
        };
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_quality(85).unwrap();
        c.set_progressive(progressive).unwrap();
        c.set_subsamp(sub).unwrap();
        c.compress_to_vec(img).unwrap()
    }

    #[test]
    fn dc_scans_give_the_same_eighth_scale_pixels() {
        use turbojpeg::Subsamp::*;
        for sub in [Sub2x2, None, Sub2x1, Sub1x2, Gray] {
            same_eighth_scale_pixels(sub);
        }
    }

    fn same_eighth_scale_pixels(sub: turbojpeg::Subsamp) {
        let (w, h) = (2400, 2100);
        let prog = jpeg_sub(w, h, true, sub);
        let dc = dc_scans_only(&prog).expect("a progressive file has AC scans to leave out");
        assert!(dc.len() < prog.len(), "{} of {}", dc.len(), prog.len());
        let fast = Some(FastDecode::default());
        assert_eq!(FastDecode::default().reduction(w, h), 8);
        let limits = Limits::default();
        let whole = {
            // The same decode with every scan read.
            let mut d = turbojpeg::Decompressor::new().unwrap();
            let f = turbojpeg::ScalingFactor::new(1, 8);
            d.set_scaling_factor(f).unwrap();
            d.set_fast_upsample(true).unwrap();
            let hd = d.read_header(&prog).unwrap().scaled(f);
            let mut px = vec![0u8; hd.width * hd.height * 3];
            d.decompress(
                &prog,
                turbojpeg::Image {
                    pixels: px.as_mut_slice(),
                    width: hd.width,
                    pitch: 3 * hd.width,
                    height: hd.height,
                    format: turbojpeg::PixelFormat::RGB,
                },
            )
            .unwrap();
            px
        };
        let ours = decode_jpeg(&prog, &limits, Compat::Reference, fast).unwrap();
        assert_eq!((ours.width(), ours.height()), (300, 263));
        assert!(
            ours.as_raw() == &whole,
            "{sub:?}: DC scans alone give the 1/8 pixels"
        );
        // Canary: without the AC scans a full-size decode does differ.
        let full_dc = decode_jpeg(&dc, &limits, Compat::Reference, None).unwrap();
        let full = decode_jpeg(&prog, &limits, Compat::Reference, None).unwrap();
        assert!(full_dc != full);
        // Baseline files, and damaged ones, are left whole.
        assert!(dc_scans_only(&jpeg(64, 64, false)).is_none());
        assert!(dc_scans_only(&prog[..prog.len() / 3]).is_none());
        assert!(dc_scans_only(b"\xFF\xD8\xFF").is_none());
    }

    /// `cargo test -p scanlab-imaging --lib --release -- --ignored dc_scans_on_the_dev_corpus`
    /// (the corpus fetched by `scanlab corpus list`, in `$SCANLAB_CACHE` or ~/.cache/scanlab).
    #[test]
    #[ignore = "needs the dev corpus"]
    fn dc_scans_on_the_dev_corpus() {
        let dir = std::env::var_os("SCANLAB_CACHE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/scanlab")
            });
        let mut stack = vec![dir];
        let (mut checked, mut files) = (0, 0);
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let Ok(b) = std::fs::read(&p) else { continue };
                files += 1;
                if dc_scans_only(&b).is_none() {
                    continue;
                }
                let mut d = turbojpeg::Decompressor::new().unwrap();
                let hd = d.read_header(&b).unwrap();
                let fast = FastDecode::default();
                if fast.reduction(hd.width as u32, hd.height as u32) != 8 {
                    continue;
                }
                let f = turbojpeg::ScalingFactor::new(1, 8);
                d.set_scaling_factor(f).unwrap();
                d.set_fast_upsample(true).unwrap();
                let sh = hd.scaled(f);
                let mut px = vec![0u8; sh.width * sh.height * 3];
                let img = turbojpeg::Image {
                    pixels: px.as_mut_slice(),
                    width: sh.width,
                    pitch: 3 * sh.width,
                    height: sh.height,
                    format: turbojpeg::PixelFormat::RGB,
                };
                if hd.colorspace == turbojpeg::Colorspace::CMYK {
                    continue;
                }
                d.decompress(&b, img).unwrap();
                let ours =
                    decode_jpeg(&b, &Limits::default(), Compat::Reference, Some(fast)).unwrap();
                assert!(ours.as_raw() == &px, "{}", p.display());
                checked += 1;
            }
        }
        eprintln!(
            "{checked} progressive JPEGs decoded at 1/8 from their DC scans, identical; {files} files looked at"
        );
        assert!(checked > 0);
    }
}
