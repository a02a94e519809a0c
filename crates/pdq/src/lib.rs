//! Meta's PDQ perceptual hash, bit-exact with the reference and about an order of magnitude
//! faster.
//!
//! PDQ turns an image into 256 bits that survive resizing, recompression and mild edits: luma,
//! a two-pass tent (Jarosz) blur, a 64×64 decimation, the 16×16 low-frequency corner of a DCT,
//! and one bit per coefficient saying whether it exceeds the median. Two hashes within Hamming
//! distance 31 are, by Meta's recommendation, "the same image".
//!
//! Every scheme scanlab measures hashes every image sent, and the evaluation hashes hundreds of
//! thousands of edited copies, so this crate is the hot path. Our figures must also transfer to
//! real deployments, so the hash must be *exactly* Meta's: every float operation here happens in
//! the same order as in Meta's C++ (`pdq/cpp/hashing/pdqhashing.cpp`,
//! `pdq/cpp/downscaling/downscaling.cpp`), and the tests check all ten outputs (hash, quality,
//! 8 dihedral hashes) against values Meta's code computed.
//!
//! # Overview
//! - [`Hasher`] owns scratch memory and hashes [`Image`]s: [`Hasher::hash`] gives a [`Pdq`]
//!   (hash and quality), [`Hasher::hash_dihedral`] all eight rotations and flips at once.
//! - [`Hash256`] is the hash, with Meta's hex form and [`Hash256::distance`].
//! - [`Hasher::downsample`], [`hash_from_downsample`] and [`dct::dct64_to_16`] expose the split
//!   points that the "partial hashing" scheme sends to the provider.
//!
//! ```
//! use scanlab_pdq::{Hasher, Image, Layout};
//! // A 100×80 RGB gradient.
//! let (w, h) = (100, 80);
//! let px: Vec<u8> = (0..w * h).flat_map(|i| {
//!     let (x, y) = (i % w, i / w);
//!     [(x * 2) as u8, (y * 3) as u8, ((x + y) % 256) as u8]
//! }).collect();
//! let mut hasher = Hasher::new();
//! let pdq = hasher.hash(&Image::new(&px, w, h, Layout::Rgb8)?);
//! assert_eq!(pdq.hash.to_hex().len(), 64);
//! assert!(pdq.quality <= 100);
//! # Ok::<(), scanlab_pdq::PdqError>(())
//! ```
//!
//! # Two references, two luma roundings
//! Meta's C++ computes luma in `float` (`0.299f·R + 0.587f·G + 0.114f·B`). The PyPI `pdqhash`
//! wheel, which ThreatExchange's Python tools and HMA use, computes it with NumPy in `double`
//! and rounds to `float` once. The two can differ in the last bit of a pixel, and, rarely, in a
//! hash bit. [`LumaMode::NumpyF64`] (the default) reproduces the wheel, on which the golden
//! corpus values were computed; [`LumaMode::CppF32`] reproduces `pdq-photo-hasher`'s core.
//!
//! # What this crate does not do
//! It does not decode files, resize, or apply EXIF orientation: it hashes the pixels it is
//! given at full resolution, as ThreatExchange's Python does. Decoding lives in
//! `scanlab-imaging`. It has no index; matching lives in the hash-list crate.
//!
//! # Speed
//! Instead of blurring the whole image in two full-size float buffers, the four box-filter
//! passes stream over strips of eight rows with eight SIMD lanes (the design is written out at
//! the top of `src/kernel.rs`). AVX2 is used when the CPU has it, detected at run time; a portable
//! twin gives identical bits everywhere else.
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod dct;
mod hash;
mod kernel;
mod luma;
pub mod reference;
mod simd;

pub use dct::Dihedral;
pub use hash::{Hash256, ParseHashError};

/// Meta's reference returns an all-zero hash and quality 0 for images narrower or shorter than
/// this (`MIN_HASHABLE_DIM`); so do we.
pub const MIN_HASHABLE_DIM: usize = 5;

/// How the bytes of an [`Image`] are laid out, per pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// One byte per pixel. Hashed as if converted to RGB with R = G = B, as Pillow's
    /// `convert('RGB')` does, so gray and RGB copies of an image hash alike.
    Gray8,
    /// Three bytes per pixel, R, G, B.
    Rgb8,
    /// Four bytes per pixel; alpha is ignored, as `convert('RGB')` drops it.
    Rgba8,
}

impl Layout {
    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            Layout::Gray8 => 1,
            Layout::Rgb8 => 3,
            Layout::Rgba8 => 4,
        }
    }
}

/// Which of Meta's two references to reproduce bit-exactly (see the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LumaMode {
    /// `float((R·0.299 + G·0.587) + B·0.114)` in `f64`: the PyPI `pdqhash` wheel.
    #[default]
    NumpyF64,
    /// `(0.299f·R + 0.587f·G) + 0.114f·B` in `f32`: Meta's C++ `fillFloatLumaFromRGB`.
    CppF32,
}

/// Why pixels could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PdqError {
    /// An image needs at least one pixel.
    #[error("image has no pixels ({width}x{height})")]
    Empty {
        /// Width given.
        width: usize,
        /// Height given.
        height: usize,
    },
    /// The buffer is shorter than its dimensions and stride require.
    #[error("pixel buffer holds {got} bytes but {width}x{height} needs {need}")]
    BufferTooSmall {
        /// Width given.
        width: usize,
        /// Height given.
        height: usize,
        /// Bytes required.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// A row stride shorter than one row of pixels.
    #[error("row stride {stride} is shorter than a row ({row} bytes)")]
    BadStride {
        /// Stride given.
        stride: usize,
        /// Bytes in one row.
        row: usize,
    },
}

/// A borrowed, validated pixel buffer.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    stride: usize,
    layout: Layout,
}

impl<'a> Image<'a> {
    /// Tightly packed rows.
    pub fn new(
        data: &'a [u8],
        width: usize,
        height: usize,
        layout: Layout,
    ) -> Result<Self, PdqError> {
        Self::with_stride(data, width, height, width * layout.channels(), layout)
    }

    /// Rows `stride` bytes apart (for views into larger buffers).
    pub fn with_stride(
        data: &'a [u8],
        width: usize,
        height: usize,
        stride: usize,
        layout: Layout,
    ) -> Result<Self, PdqError> {
        if width == 0 || height == 0 {
            return Err(PdqError::Empty { width, height });
        }
        let row = width * layout.channels();
        if stride < row {
            return Err(PdqError::BadStride { stride, row });
        }
        let need = stride * (height - 1) + row;
        if data.len() < need {
            return Err(PdqError::BufferTooSmall {
                width,
                height,
                need,
                got: data.len(),
            });
        }
        Ok(Image {
            data,
            width,
            height,
            stride,
            layout,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixel layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Row `y`, exactly `width · channels` bytes.
    pub fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width * self.layout.channels()]
    }
}

/// A PDQ hash with Meta's quality score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Pdq {
    /// The 256-bit hash.
    pub hash: Hash256,
    /// Meta's gradient-based quality, 0..=100. Meta advises discarding hashes below 50: such
    /// images are too flat for their hash to mean much.
    pub quality: u8,
}

/// All eight dihedral hashes (in [`Dihedral::ALL`] order) and the quality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PdqDihedral {
    /// `hashes[i]` is the hash of the image under `Dihedral::ALL[i]`.
    pub hashes: [Hash256; 8],
    /// As in [`Pdq::quality`].
    pub quality: u8,
}

/// The vector backend a [`Hasher`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// AVX2, chosen when the CPU reports it.
    Avx2,
    /// Plain Rust; bit-identical, slower.
    Portable,
}

impl Backend {
    /// The best backend this CPU supports, detected once.
    pub fn detect() -> Backend {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                return Backend::Avx2;
            }
        }
        Backend::Portable
    }
}

/// Hashes images, reusing its scratch memory between calls. One per thread.
pub struct Hasher {
    scratch: kernel::Scratch,
    mode: LumaMode,
    backend: Backend,
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Hasher {
    /// A hasher reproducing the PyPI `pdqhash` wheel, on the fastest backend available.
    pub fn new() -> Self {
        Hasher {
            scratch: kernel::Scratch::default(),
            mode: LumaMode::default(),
            backend: Backend::detect(),
        }
    }

    /// Chooses which reference's luma rounding to reproduce.
    pub fn with_luma_mode(mut self, mode: LumaMode) -> Self {
        self.mode = mode;
        self
    }

    /// Forces a backend, e.g. to compare them. Falls back to [`Backend::Portable`] when the
    /// CPU lacks the one asked for.
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = if backend == Backend::Avx2 && Backend::detect() != Backend::Avx2 {
            Backend::Portable
        } else {
            backend
        };
        self
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The blurred 64×64 luma PDQ hashes, or `None` when the image is below
    /// [`MIN_HASHABLE_DIM`]. This is the `luma64` split point of the partial-hashing scheme.
    pub fn downsample(&mut self, img: &Image<'_>) -> Option<Box<[[f32; 64]; 64]>> {
        if img.width < MIN_HASHABLE_DIM || img.height < MIN_HASHABLE_DIM {
            return None;
        }
        let mut out = Box::new([[0f32; 64]; 64]);
        self.run(img, &mut out);
        Some(out)
    }

    fn run(&mut self, img: &Image<'_>, out: &mut [[f32; 64]; 64]) {
        match self.backend {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => {
                // SAFETY: `backend` is only `Avx2` when `Backend::detect` saw AVX2.
                unsafe { run_avx2(img, self.mode, &mut self.scratch, out) }
            }
            _ => kernel::downsample::<simd::P8>(img, self.mode, &mut self.scratch, out),
        }
    }

    /// The 64×64 input of the DCT as [`Hasher::hash`] uses it: a 64×64 image is taken as is
    /// (Meta's special case for pre-scaled video frames), anything else is blurred and decimated.
    fn buffer64(&mut self, img: &Image<'_>) -> Box<[[f32; 64]; 64]> {
        if img.width == 64 && img.height == 64 {
            let mut out = Box::new([[0f32; 64]; 64]);
            for (y, row) in out.iter_mut().enumerate() {
                luma::row_scalar(img.row(y), img.layout, self.mode, row);
            }
            out
        } else {
            let mut out = Box::new([[0f32; 64]; 64]);
            self.run(img, &mut out);
            out
        }
    }

    /// The 64×64 luminance [`Hasher::hash`] finishes from, or `None` when the image is below
    /// [`MIN_HASHABLE_DIM`]. Unlike [`Hasher::downsample`] it keeps Meta's 64×64 special case,
    /// so [`hash_from_downsample`] of it equals [`Hasher::hash`] bit for bit for every image:
    /// the `luma64` split point of the partial-hashing scheme.
    pub fn luma64(&mut self, img: &Image<'_>) -> Option<Box<[[f32; 64]; 64]>> {
        if img.width < MIN_HASHABLE_DIM || img.height < MIN_HASHABLE_DIM {
            return None;
        }
        Some(self.buffer64(img))
    }

    /// PDQ hash and quality of `img`, at full resolution.
    pub fn hash(&mut self, img: &Image<'_>) -> Pdq {
        if img.width < MIN_HASHABLE_DIM || img.height < MIN_HASHABLE_DIM {
            return Pdq {
                hash: Hash256::ZERO,
                quality: 0,
            };
        }
        let buf = self.buffer64(img);
        hash_from_downsample(&buf)
    }

    /// The eight dihedral hashes from one DCT.
    ///
    /// Like Meta's `pdqDihedralHash256esFromFloatLuma`, this always blurs, even a 64×64 image,
    /// so for that one size `hashes[0]` can differ slightly from [`Hasher::hash`].
    pub fn hash_dihedral(&mut self, img: &Image<'_>) -> PdqDihedral {
        if img.width < MIN_HASHABLE_DIM || img.height < MIN_HASHABLE_DIM {
            return PdqDihedral {
                hashes: [Hash256::ZERO; 8],
                quality: 0,
            };
        }
        let mut buf = Box::new([[0f32; 64]; 64]);
        self.run(img, &mut buf);
        let quality = dct::quality(&buf);
        let d = dct::dct64_to_16(&buf);
        PdqDihedral {
            hashes: Dihedral::ALL.map(|t| dct::dct_to_hash(&t.apply(&d))),
            quality,
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_avx2(
    img: &Image<'_>,
    mode: LumaMode,
    s: &mut kernel::Scratch,
    out: &mut [[f32; 64]; 64],
) {
    kernel::downsample::<simd::A8>(img, mode, s, out)
}

/// Finishes a hash from the 64×64 downsample: quality, DCT, median threshold. This is what the
/// provider runs in the partial-hashing scheme after receiving `luma64`.
pub fn hash_from_downsample(buf: &[[f32; 64]; 64]) -> Pdq {
    Pdq {
        hash: dct::dct_to_hash(&dct::dct64_to_16(buf)),
        quality: dct::quality(buf),
    }
}

/// The 16×16 DCT coefficients of a 64×64 luminance: the `dct16` split point of the
/// partial-hashing scheme. [`hash_from_dct16`] finishes the hash from them.
pub fn dct16(buf: &[[f32; 64]; 64]) -> [[f32; 16]; 16] {
    dct::dct64_to_16(buf)
}

/// Finishes a hash from 16×16 DCT coefficients (median threshold). Equals the hash of
/// [`hash_from_downsample`] for the buffer they came from.
pub fn hash_from_dct16(d: &[[f32; 16]; 16]) -> Hash256 {
    dct::dct_to_hash(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn image(w: usize, h: usize, layout: Layout, seed: u64) -> Vec<u8> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        // Smooth structure plus noise, so the hash is not degenerate.
        (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                let base = ((x * 255 / w.max(1)) ^ (y * 255 / h.max(1))) as i32;
                (0..layout.channels())
                    .map(|c| (base + rng.random_range(-20..20) + 40 * c as i32).clamp(0, 255) as u8)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn check_against_reference(w: usize, h: usize, layout: Layout, mode: LumaMode, seed: u64) {
        let px = image(w, h, layout, seed);
        let img = Image::new(&px, w, h, layout).unwrap();
        let want = reference::downsample(&reference::luma(&img, mode), w, h);
        for backend in [Backend::Avx2, Backend::Portable] {
            let mut hasher = Hasher::new().with_luma_mode(mode).with_backend(backend);
            let got = hasher.downsample(&img).unwrap();
            for y in 0..64 {
                for x in 0..64 {
                    assert_eq!(
                        got[y][x].to_bits(),
                        want[y][x].to_bits(),
                        "{w}x{h} {layout:?} {backend:?} at ({x},{y}): {} vs {}",
                        got[y][x],
                        want[y][x]
                    );
                }
            }
        }
    }

    #[test]
    fn streaming_kernel_equals_reference_on_awkward_sizes() {
        for &(w, h) in &[
            (5, 5),
            (7, 300),
            (300, 7),
            (64, 64),
            (65, 63),
            (127, 129),
            (128, 128),
            (257, 511),
            (1000, 9),
        ] {
            check_against_reference(
                w,
                h,
                Layout::Rgb8,
                LumaMode::NumpyF64,
                (w * 1000 + h) as u64,
            );
        }
        check_against_reference(333, 222, Layout::Gray8, LumaMode::CppF32, 1);
        check_against_reference(222, 333, Layout::Rgba8, LumaMode::NumpyF64, 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn streaming_kernel_equals_reference(w in 5usize..700, h in 5usize..700, seed in any::<u64>(), cpp in any::<bool>()) {
            let mode = if cpp { LumaMode::CppF32 } else { LumaMode::NumpyF64 };
            check_against_reference(w, h, Layout::Rgb8, mode, seed);
        }
    }

    #[test]
    fn a_reused_hasher_gives_the_same_results_as_a_fresh_one() {
        // Scratch buffers are not cleared between images; stale data must never leak.
        let mut reused = Hasher::new();
        for (i, &(w, h)) in [
            (900, 700),
            (37, 501),
            (640, 480),
            (5, 5),
            (1000, 64),
            (64, 64),
        ]
        .iter()
        .enumerate()
        {
            let px = image(w, h, Layout::Rgb8, i as u64);
            let img = Image::new(&px, w, h, Layout::Rgb8).unwrap();
            assert_eq!(reused.hash(&img), Hasher::new().hash(&img), "{w}x{h}");
            assert_eq!(
                reused.hash_dihedral(&img),
                Hasher::new().hash_dihedral(&img),
                "{w}x{h}"
            );
        }
    }

    #[test]
    fn tiny_images_hash_to_zero_like_the_reference() {
        let px = vec![200u8; 4 * 9 * 3];
        let img = Image::new(&px, 4, 9, Layout::Rgb8).unwrap();
        assert_eq!(
            Hasher::new().hash(&img),
            Pdq {
                hash: Hash256::ZERO,
                quality: 0
            }
        );
    }

    #[test]
    fn bad_buffers_are_errors() {
        assert!(matches!(
            Image::new(&[0; 10], 0, 5, Layout::Rgb8),
            Err(PdqError::Empty { .. })
        ));
        assert!(matches!(
            Image::new(&[0; 10], 5, 5, Layout::Rgb8),
            Err(PdqError::BufferTooSmall { .. })
        ));
        assert!(matches!(
            Image::with_stride(&[0; 100], 5, 5, 4, Layout::Gray8),
            Err(PdqError::BadStride { .. })
        ));
    }

    #[test]
    fn gray_and_rgb_copies_hash_alike() {
        let (w, h) = (120, 90);
        let g = image(w, h, Layout::Gray8, 7);
        let rgb: Vec<u8> = g.iter().flat_map(|&v| [v, v, v]).collect();
        let mut hs = Hasher::new();
        let a = hs.hash(&Image::new(&g, w, h, Layout::Gray8).unwrap());
        let b = hs.hash(&Image::new(&rgb, w, h, Layout::Rgb8).unwrap());
        assert_eq!(a, b);
    }
}
