//! Everything between an image file and the pixels scanlab hashes.
//!
//! - [`decode`]: files to RGB exactly as Pillow's `convert('RGB')` gives them (so the golden
//!   PDQ values apply), with pixel and byte limits and errors that name the file; and, off by
//!   default, a fast path that decodes large JPEG and WebP images at reduced size
//!   ([`FastDecode`]).
//! - [`edits`]: deterministic, seeded image edits with a strength parameter, for the
//!   robustness (evasion) experiments.
//! - [`phash`]: PDQ and the comparison hashes (pHash, dHash, aHash) behind one trait.
//! - [`quality`]: SSIM and PSNR, to score what a provider can rebuild of an image.
//!
//! # What this crate does not do
//! No matching or indexing (see the hash-list crate) and no network I/O.
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod decode;
pub mod edits;
pub mod phash;
pub mod quality;
mod webp;

pub use decode::{
    Compat, DEFAULT_DECODE_BUDGET, DecodeOptions, FAST_MIN_SIDE, FastDecode, FileError, Format,
    ImageError, Limits, decode, decode_budget_peak, decode_file, decode_reader,
    fast_decode_default, set_decode_budget, set_fast_decode_default,
};
pub use edits::{Edit, EditKind};
pub use image::RgbImage;

/// Borrows an RGB image as PDQ input.
pub fn pdq_image(img: &RgbImage) -> scanlab_pdq::Image<'_> {
    scanlab_pdq::Image::new(
        img.as_raw(),
        img.width() as usize,
        img.height() as usize,
        scanlab_pdq::Layout::Rgb8,
    )
    .expect("an RgbImage is a valid, non-empty RGB buffer")
}
