//! Meta's vPDQ video hash: PDQ on sampled frames of a video, decoded by FFmpeg.
//!
//! A vPDQ hash is a list of [`FrameHash`]es, one per hashed frame: the frame's number, its PDQ
//! hash and quality, and its timestamp. Two videos are compared by the share of frames of each
//! that have a close frame in the other ([`matching`]).
//!
//! # What is hashed, and why it equals Meta's output
//! This crate does what Meta's `vpdq` library (ThreatExchange `vpdq/cpp`, also the PyPI `vpdq`
//! package) does, step by step, so that on the same FFmpeg every frame hash is bit-identical
//! (`tests/reference.rs` checks it against the PyPI package, run here):
//! 1. open the file with libavformat and take the **first** video stream (not FFmpeg's "best");
//!    its frame size is the stream's coded parameters, and its frame rate is the stream's
//!    average frame rate, or its real base frame rate when that is unknown;
//! 2. decode with libavcodec, with slice threads where the codec has them (frame threads
//!    would change nothing in the pixels, only the latency);
//! 3. number frames as the decoder returns them, from 0, and keep frame `n` when
//!    `n % k == 0`, where `k = trunc(seconds_per_hash · fps)`, at least 1 (0 s: every frame);
//! 4. convert each kept frame to RGB24 with libswscale's area filter, resizing to the
//!    downscaled size if one is asked for;
//! 5. hash it with scanlab's PDQ core, with the luminance of Meta's C++ (`f32`), including
//!    Meta's case of a 64×64 frame, which is not blurred;
//! 6. stamp it `n / fps`, computed in `f32` as Meta does.
//!
//! Two behaviours of Meta's code are kept because they change the output, and documented
//! because they are surprising:
//! - Meta drains the decoder at the end of the file only when the video is stream 0: with an
//!   audio track first, the frames still inside the decoder are dropped (for H.264 with
//!   B-frames, the last few). [`Flush::AsMeta`] does the same; [`Flush::Always`] hashes them.
//! - a frame smaller than 5 pixels a side fails the whole video, not just that frame.
//!
//! Where Meta's code has undefined behaviour (a stream whose frame size or pixel format changes
//! mid-way, which it scales with the first frame's settings) this crate rebuilds its scaler for
//! the new frames instead.
//!
//! # Limits
//! A video is untrusted input: [`Limits`] bounds its bytes, the pixels of a frame, the frames
//! decoded and the duration, and every failure is a typed [`VpdqError`], never a panic. A file
//! whose container promises more frames than it holds is [`VpdqError::Truncated`].

mod decode;
pub mod format;
pub mod index;
pub mod matching;

pub use decode::{Video, Visitor, ffmpeg_versions, hash_bytes, hash_file, visit_bytes};
pub use index::{ListedVideo, VideoHit, VideoIndex, frames_in_images};
pub use scanlab_pdq::Hash256;

/// One hashed video frame, as vPDQ writes it (`frameNumber,quality,pdqHex,timestamp`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrameHash {
    /// Frame number in the video, counted from 0 in decoding order of output.
    pub frame: u32,
    /// PDQ quality, 0–100.
    pub quality: u8,
    /// The frame's PDQ hash.
    pub hash: Hash256,
    /// Seconds from the start: `frame / fps`, computed in `f32` as Meta does.
    pub timestamp: f64,
}

/// What to do with the frames still in the decoder when the file ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flush {
    /// As Meta's vpdq: drain it only when the video is stream 0 of its file.
    #[default]
    AsMeta,
    /// Always drain it, so that every decoded frame can be hashed.
    Always,
}

/// How to hash a video. Built with [`Options::new`] and the `with_` methods, which check their
/// argument, so that an invalid setting cannot be expressed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    seconds_per_hash: f64,
    size: Option<(u32, u32)>,
    decode_threads: usize,
    flush: Flush,
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl Options {
    /// Every frame, at its native size, with FFmpeg's automatic decoder thread count, drained
    /// as Meta does.
    pub fn new() -> Self {
        Options {
            seconds_per_hash: 0.0,
            size: None,
            decode_threads: 0,
            flush: Flush::AsMeta,
        }
    }

    /// One frame hashed every `seconds` (0: every frame). Meta's `vpdq-hash-video` uses 1.
    pub fn with_seconds_per_hash(mut self, seconds: f64) -> Result<Self, VpdqError> {
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(VpdqError::Option(format!(
                "seconds per hash must be a finite number ≥ 0, not {seconds}"
            )));
        }
        self.seconds_per_hash = seconds;
        Ok(self)
    }

    /// Frames are resized to `width`×`height` before hashing (Meta's downsample option; its
    /// published sample hashes use 128×128).
    pub fn with_size(mut self, width: u32, height: u32) -> Result<Self, VpdqError> {
        let min = scanlab_pdq::MIN_HASHABLE_DIM as u32;
        if width < min || height < min || width > 1 << 14 || height > 1 << 14 {
            return Err(VpdqError::Option(format!(
                "a frame size must be {min} to 16384 pixels a side, not {width}x{height}"
            )));
        }
        self.size = Some((width, height));
        Ok(self)
    }

    /// Decoder threads (0: FFmpeg chooses, as Meta's code lets it). Hashing itself runs on the
    /// calling thread.
    pub fn with_decode_threads(mut self, threads: usize) -> Self {
        self.decode_threads = threads;
        self
    }

    /// What to do with the frames left in the decoder at the end.
    pub fn with_flush(mut self, flush: Flush) -> Self {
        self.flush = flush;
        self
    }

    /// Seconds per hash.
    pub fn seconds_per_hash(&self) -> f64 {
        self.seconds_per_hash
    }

    /// The size frames are resized to, if any.
    pub fn size(&self) -> Option<(u32, u32)> {
        self.size
    }
}

/// Bounds on an untrusted video.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// Most pixels in one decoded frame.
    pub max_pixels: u64,
    /// Most frames decoded (hashed or not).
    pub max_frames: u64,
    /// Longest duration, in seconds, as the container states it and as the frames count it.
    pub max_seconds: f64,
}

impl Default for Limits {
    /// 1 GiB, 8192×8192 pixels a frame, a million frames, four hours.
    fn default() -> Self {
        Limits {
            max_bytes: 1 << 30,
            max_pixels: 8192 * 8192,
            max_frames: 1_000_000,
            max_seconds: 4.0 * 3600.0,
        }
    }
}

/// Why a video could not be hashed. Each says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VpdqError {
    /// The file could not be read.
    #[error("cannot read the video: {0}")]
    Io(#[from] std::io::Error),
    /// An option out of range.
    #[error("invalid option: {0}")]
    Option(String),
    /// Larger than [`Limits::max_bytes`].
    #[error(
        "video has {bytes} bytes, more than the limit of {limit}; raise the byte limit to hash it"
    )]
    TooManyBytes {
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// FFmpeg could not open it as a container it knows.
    #[error("not a video FFmpeg can open ({0}); is the file complete and a video?")]
    Open(String),
    /// No video stream.
    #[error("the file has no video stream")]
    NoVideo,
    /// The stream states a zero frame size or frame rate.
    #[error("the video stream states no usable {0}; the file is damaged or not a video")]
    Stream(&'static str),
    /// No decoder for its codec in this FFmpeg.
    #[error("this FFmpeg has no decoder for the video's codec ({0})")]
    Codec(String),
    /// A frame larger than [`Limits::max_pixels`].
    #[error(
        "video frames are {width}x{height}, more than the limit of {limit} pixels; raise the pixel limit to hash it"
    )]
    TooManyPixels {
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
        /// The limit.
        limit: u64,
    },
    /// More frames than [`Limits::max_frames`].
    #[error("video has more than {limit} frames; raise the frame limit to hash it")]
    TooManyFrames {
        /// The limit.
        limit: u64,
    },
    /// Longer than [`Limits::max_seconds`].
    #[error(
        "video lasts {seconds:.1} s, more than the limit of {limit} s; raise the duration limit to hash it"
    )]
    TooLong {
        /// Its duration, as far as known.
        seconds: f64,
        /// The limit.
        limit: f64,
    },
    /// FFmpeg failed to decode it.
    #[error("decoding failed after {frames} frames: {reason}")]
    Decode {
        /// Frames decoded before the failure.
        frames: u64,
        /// FFmpeg's message.
        reason: String,
    },
    /// The container indexes more frames than the file holds.
    #[error(
        "the video is truncated: its index lists {expected} frames but only {read} are in the file"
    )]
    Truncated {
        /// Video packets read.
        read: u64,
        /// Frames the container lists.
        expected: u64,
    },
    /// A frame too small for PDQ (Meta fails the whole video then).
    #[error("a frame of {width}x{height} is smaller than PDQ's 5 pixels a side")]
    FrameTooSmall {
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
    },
}
