//! WebP through libwebp, as Pillow decodes it.
//!
//! Pillow's `WebPImagePlugin` reads every WebP file with libwebp's animation decoder
//! (`WebPAnimDecoderNew` with default options: non-premultiplied RGBA, no threads), takes the
//! first frame's canvas, and `convert('RGB')` then drops the alpha byte without compositing.
//! For a still image the first canvas is exactly what `WebPDecode` writes in RGBA mode, whose
//! colour bytes are what it writes in RGB mode, so a still goes through `WebPDecodeRGBInto`
//! (one buffer, no alpha); an animation goes through the animation decoder, as Pillow's does.
//! The pure-Rust decoder behind `image` is several times slower on lossy files and does not
//! promise libwebp's pixels; `crates/imaging/tests/webp_pillow.rs` checks ours against Pillow's,
//! byte for byte, on lossy, lossless, alpha and animated files.
//!
//! libwebp is built from the source vendored in the `libwebp-sys` crate (static, no system
//! library). Every call is bounded: the size is read from the header first and admitted
//! against the pixel limit and the decoding budget before any pixel buffer is allocated.

use crate::decode::{FastDecode, Format, ImageError, Limits, admit};
use image::RgbImage;
use libwebp_sys as w;

fn corrupt(message: impl Into<String>) -> ImageError {
    ImageError::Corrupt {
        format: Format::WebP,
        message: message.into(),
    }
}

/// Decodes a WebP file to RGB, as Pillow's `Image.open(f).convert('RGB')` gives it.
pub(crate) fn decode_webp(
    bytes: &[u8],
    limits: &Limits,
    fast: Option<FastDecode>,
) -> Result<RgbImage, ImageError> {
    let mut features = std::mem::MaybeUninit::<w::WebPBitstreamFeatures>::zeroed();
    // SAFETY: libwebp reads at most `bytes.len()` bytes and fills the features struct.
    let status = unsafe { w::WebPGetFeatures(bytes.as_ptr(), bytes.len(), features.as_mut_ptr()) };
    if status != w::VP8StatusCode::VP8_STATUS_OK {
        return Err(corrupt(format!("libwebp: {status:?}")));
    }
    // SAFETY: initialised by the successful call above.
    let features = unsafe { features.assume_init() };
    if features.has_animation != 0 {
        return first_frame(bytes, limits);
    }
    let (width, height) = (features.width, features.height);
    if width <= 0 || height <= 0 {
        return Err(corrupt("zero-sized image"));
    }
    let (wu, hu) = (width as u32, height as u32);
    let _reserved = admit(Format::WebP, wu as u64, hu as u64, limits)?;
    let reduce = fast.map_or(1, |f| f.reduction(wu, hu));
    if reduce > 1 {
        return scaled(bytes, wu.div_ceil(reduce), hu.div_ceil(reduce));
    }
    let stride = wu as usize * 3;
    let mut out = vec![0u8; stride * hu as usize];
    // SAFETY: `out` holds `height` rows of `stride` bytes, as the call is told; libwebp writes
    // within it or returns null.
    let p = unsafe {
        w::WebPDecodeRGBInto(
            bytes.as_ptr(),
            bytes.len(),
            out.as_mut_ptr(),
            out.len(),
            stride as i32,
        )
    };
    if p.is_null() {
        return Err(corrupt("libwebp could not decode the image data"));
    }
    RgbImage::from_raw(wu, hu, out).ok_or_else(|| corrupt("buffer size"))
}

/// The fast path ([`FastDecode`]): a still decoded through libwebp's rescaler straight to
/// `sw`×`sh` RGB, without the deblocking filter or fancy upsampling.
fn scaled(bytes: &[u8], sw: u32, sh: u32) -> Result<RgbImage, ImageError> {
    let mut config = std::mem::MaybeUninit::<w::WebPDecoderConfig>::zeroed();
    // SAFETY: initialises the struct it is given (and checks libwebp's ABI version).
    if !unsafe { w::WebPInitDecoderConfig(config.as_mut_ptr()) } {
        return Err(corrupt("libwebp: decoder ABI mismatch"));
    }
    // SAFETY: initialised by the successful call above.
    let mut config = unsafe { config.assume_init() };
    let stride = sw as usize * 3;
    let mut out = vec![0u8; stride * sh as usize];
    config.options.use_scaling = 1;
    config.options.scaled_width = sw as i32;
    config.options.scaled_height = sh as i32;
    config.options.bypass_filtering = 1;
    config.options.no_fancy_upsampling = 1;
    config.output.colorspace = w::WEBP_CSP_MODE::MODE_RGB;
    config.output.is_external_memory = 1;
    config.output.u.RGBA = w::WebPRGBABuffer {
        rgba: out.as_mut_ptr(),
        stride: stride as i32,
        size: out.len(),
    };
    // SAFETY: libwebp reads at most `bytes.len()` bytes and writes `sh` rows of `stride`
    // bytes into `out`, as the external buffer it was given says.
    let status = unsafe { w::WebPDecode(bytes.as_ptr(), bytes.len(), &mut config) };
    // SAFETY: frees nothing of ours (external memory); releases any private buffer.
    unsafe { w::WebPFreeDecBuffer(&mut config.output) };
    if status != w::VP8StatusCode::VP8_STATUS_OK {
        return Err(corrupt(format!("libwebp: {status:?}")));
    }
    RgbImage::from_raw(sw, sh, out).ok_or_else(|| corrupt("buffer size"))
}

/// Frees the animation decoder however the decode ends.
struct AnimDecoder(*mut w::WebPAnimDecoder);

impl Drop for AnimDecoder {
    fn drop(&mut self) {
        // SAFETY: created by `WebPAnimDecoderNew`, deleted once.
        unsafe { w::WebPAnimDecoderDelete(self.0) }
    }
}

/// The first frame of an animation, composited on its canvas as libwebp's animation decoder
/// (and so Pillow) does.
fn first_frame(bytes: &[u8], limits: &Limits) -> Result<RgbImage, ImageError> {
    let data = w::WebPData {
        bytes: bytes.as_ptr(),
        size: bytes.len(),
    };
    // SAFETY: `data` borrows `bytes`, which outlives the decoder (dropped at the end of this
    // function); null options are libwebp's defaults (RGBA, no threads), as Pillow passes.
    let dec = unsafe { w::WebPAnimDecoderNew(&data, std::ptr::null()) };
    if dec.is_null() {
        return Err(corrupt("libwebp could not read the animation"));
    }
    let dec = AnimDecoder(dec);
    let mut info = w::WebPAnimInfo::default();
    // SAFETY: a live decoder and a struct to fill.
    if unsafe { w::WebPAnimDecoderGetInfo(dec.0, &mut info) } == 0 {
        return Err(corrupt("libwebp could not read the animation's canvas"));
    }
    let (wu, hu) = (info.canvas_width, info.canvas_height);
    let _reserved = admit(Format::WebP, wu as u64, hu as u64, limits)?;
    // The decoder has already allocated its canvases (two RGBA buffers) by now: libwebp caps
    // a canvas at 16383 × 16383, and the admission above refuses what exceeds our limits
    // before any frame is decoded.
    let mut buf: *mut u8 = std::ptr::null_mut();
    let mut timestamp = 0;
    // SAFETY: a live decoder; `buf` receives a pointer into its canvas.
    if unsafe { w::WebPAnimDecoderGetNext(dec.0, &mut buf, &mut timestamp) } == 0 || buf.is_null() {
        return Err(corrupt("libwebp could not decode the first frame"));
    }
    let n = wu as usize * hu as usize;
    // SAFETY: the canvas is `canvas_width × canvas_height` RGBA pixels, alive until the
    // decoder is deleted or asked for the next frame (neither happens before the copy).
    let rgba = unsafe { std::slice::from_raw_parts(buf, n * 4) };
    let mut out = Vec::with_capacity(n * 3);
    for px in rgba.chunks_exact(4) {
        out.extend_from_slice(&px[..3]);
    }
    RgbImage::from_raw(wu, hu, out).ok_or_else(|| corrupt("buffer size"))
}
