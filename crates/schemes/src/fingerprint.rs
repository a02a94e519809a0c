//! What a scheme computes from an attachment, by media type: one PDQ hash for an image, a
//! sequence of frame hashes for a video (Meta's vPDQ: PDQ on sampled frames).
//!
//! # Video, in every scheme
//! A video attachment is hashed with vPDQ at one frame a second ([`video_options`]), within
//! [`video_limits`]. Its *counted* frames are those the vPDQ rule counts (quality at least
//! 50, a hash repeating an earlier frame's dropped: [`video_rule`]). Each counted frame then goes
//! through the scheme exactly as an image's hash does: its own request to the provider (S3, S4,
//! S8, S8m: [`scanlab_messenger::scan::ScanAction::Requests`]), its own check on the device
//! (S6), its own voucher (S7); a provider or enclave that sees the whole video (S1, S5) hashes
//! it itself. The video is matched by the vPDQ rule over the list: at least
//! [`scanlab_vpdq::matching::MatchRule::query_percent`] (80%) of its counted frames within the
//! radius of a list entry ([`video_verdict`]). The list is one pool of hashes (a listed video
//! is its counted frames as entries, beside image hashes), so the share is of frames near *any*
//! entry, where [`scanlab_vpdq::VideoIndex`] counts frames near *one* listed video: a montage
//! of two listed videos, half each, matches here and not there. Under S7 nobody can apply that rule (the device
//! does not learn which vouchers match, the provider only counts them), so there every counted
//! frame counts toward the threshold as an image would.
//!
//! What this shows each party beyond an image: the number of counted frames (one request or
//! voucher each), which grows with the video's length and how much its scenes change.

use crate::SchemeError;
use scanlab_messenger::mls::Media;
use scanlab_pdq::Hash256;
use scanlab_vpdq::matching::MatchRule;
use scanlab_vpdq::{Limits, Options};
use std::cell::RefCell;
use std::sync::Arc;

pub use scanlab_vpdq::FrameHash;

/// A perceptual fingerprint of one attachment.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Fingerprint {
    /// An image's PDQ hash and quality.
    Image {
        /// The hash.
        hash: Hash256,
        /// Its quality.
        quality: u8,
    },
    /// A video's frame hashes, in order.
    Video {
        /// The hashed frames.
        frames: Vec<FrameHash>,
    },
}

impl Fingerprint {
    /// Every hash in it (one for an image; one per frame for a video).
    pub fn hashes(&self) -> Vec<Hash256> {
        match self {
            Fingerprint::Image { hash, .. } => vec![*hash],
            Fingerprint::Video { frames } => frames.iter().map(|f| f.hash).collect(),
        }
    }
}

/// The fingerprint of an attachment of type `media`: PDQ for an image, vPDQ's frames (every
/// frame hashed, as [`video_options`] samples them) for a video. Other files are refused with
/// [`SchemeError::Media`], so a scheme never silently lets them through as "no match".
pub fn fingerprint(media: Media, bytes: &[u8]) -> Result<Fingerprint, SchemeError> {
    match media {
        Media::Image => {
            let p = crate::pdq_of(bytes)?;
            Ok(Fingerprint::Image {
                hash: p.hash,
                quality: p.quality,
            })
        }
        Media::Video => Ok(Fingerprint::Video {
            frames: video_frames(bytes)?
                .frames
                .iter()
                .map(|f| f.hash.clone())
                .collect(),
        }),
        m => Err(SchemeError::Media(m)),
    }
}

/// How schemes sample a video attachment: one frame a second, at its own size (Meta's
/// defaults for `vpdq-hash-video`).
pub fn video_options() -> Options {
    Options::new()
        .with_seconds_per_hash(1.0)
        .expect("1 s is a valid setting")
}

/// The bounds on a video attachment: the messenger's attachment size, ten minutes, 4K frames.
pub fn video_limits() -> Limits {
    Limits {
        max_bytes: scanlab_messenger::mls::MAX_ATTACHMENT as u64,
        max_pixels: 3840 * 2160,
        max_frames: 600 * 240,
        max_seconds: 600.0,
    }
}

/// The rule a video is matched by: the vPDQ rule's defaults (distance 31, quality 50,
/// duplicates dropped, 80% of the video's counted frames).
pub fn video_rule() -> MatchRule {
    MatchRule::default()
}

/// One frame of a video attachment that the rule counts, with what schemes send for it.
#[derive(Clone, Debug)]
pub struct CountedFrame {
    /// The frame's vPDQ hash.
    pub hash: FrameHash,
    /// The 64×64 luminance its hash is finished from (S4's `luma64` split point).
    pub luma64: Box<[[f32; 64]; 64]>,
    /// A 64×64 grey thumbnail, by area averaging (S7's visual derivative).
    pub thumbnail: Vec<f32>,
}

/// A video attachment as schemes scan it.
#[derive(Clone, Debug)]
pub struct VideoScan {
    /// Every hashed frame (one a second), counted or not.
    pub frames: Vec<CountedFrame>,
    /// The positions in `frames` of the counted frames, in order.
    pub counted: Vec<usize>,
}

impl VideoScan {
    /// The counted frames.
    pub fn counted(&self) -> impl Iterator<Item = &CountedFrame> {
        self.counted.iter().map(|&i| &self.frames[i])
    }
}

thread_local! {
    /// The last video this thread scanned, by SHA-256 of its bytes: a client half looks at the
    /// same video on sending and again on the provider's reply, and decoding it twice would
    /// double the cost. Per thread, so that parallel runs do not evict each other's.
    static LAST_VIDEO: RefCell<Option<([u8; 32], Arc<VideoScan>)>> = const { RefCell::new(None) };
}

/// The frames of the video in `bytes` ([`video_options`], [`video_limits`]), and which of
/// them the rule counts, remembered for the next call on this thread: for a client half, which
/// looks at the video it sends on sending and on the provider's reply.
pub fn video_frames(bytes: &[u8]) -> Result<Arc<VideoScan>, SchemeError> {
    use sha2::Digest;
    let key: [u8; 32] = sha2::Sha256::digest(bytes).into();
    if let Some((k, v)) = LAST_VIDEO.with_borrow(Clone::clone)
        && k == key
    {
        return Ok(v);
    }
    let scan = Arc::new(scan_video(bytes)?);
    LAST_VIDEO.set(Some((key, scan.clone())));
    Ok(scan)
}

/// As [`video_frames`], remembering nothing: for a provider or an enclave, where a remembered
/// scan would outlive the request (plaintext-derived pixels kept in memory) and a repeated
/// video would answer faster (a timing oracle for a guessed video).
pub fn scan_video(bytes: &[u8]) -> Result<VideoScan, SchemeError> {
    let mut extra = Vec::new();
    let mut hasher = scanlab_pdq::Hasher::new().with_luma_mode(scanlab_pdq::LumaMode::CppF32);
    let mut visit = |_: &FrameHash, img: &scanlab_pdq::Image<'_>| {
        extra.push((hasher.luma64(img), thumbnail(img)));
    };
    let video = scanlab_vpdq::visit_bytes(bytes, &video_options(), &video_limits(), &mut visit)
        .map_err(|e| SchemeError::Video(e.to_string()))?;
    // FFmpeg's probe finds a JPEG or PNG anywhere in a file (a stored zip entry, say) and reads
    // it as a one-frame video: that is not a video, and a scheme must not scan inside files
    // it cannot read by pretending it is.
    if video.is_still_image() {
        return Err(SchemeError::Video(format!(
            "not a video: FFmpeg reads it as a still image ({})",
            video.container
        )));
    }
    let mut frames = Vec::with_capacity(video.frames.len());
    for (hash, (luma, thumbnail)) in video.frames.into_iter().zip(extra) {
        let luma64 = luma.ok_or(SchemeError::TooSmall)?;
        frames.push(CountedFrame {
            hash,
            luma64,
            thumbnail,
        });
    }
    let hashes: Vec<FrameHash> = frames.iter().map(|f| f.hash.clone()).collect();
    let counted = video_rule().counted(&hashes);
    Ok(VideoScan { frames, counted })
}

/// A 64×64 grey thumbnail of an RGB24 frame, by area averaging.
fn thumbnail(img: &scanlab_pdq::Image<'_>) -> Vec<f32> {
    let (w, h) = (img.width(), img.height());
    let mut raw = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        raw.extend_from_slice(img.row(y));
    }
    match scanlab_imaging::RgbImage::from_raw(w as u32, h as u32, raw) {
        Some(rgb) => gray64(&rgb),
        None => vec![0.0; 64 * 64],
    }
}

/// The 64×64 grey thumbnail, by area averaging, that S7's visual derivative is made of.
pub(crate) fn gray64(rgb: &scanlab_imaging::RgbImage) -> Vec<f32> {
    scanlab_imaging::quality::Gray::from_rgb(rgb)
        .resize_area(64, 64)
        .data
}

/// Whether a video matches, from what was decided for each counted frame (`Some(reason)`: a
/// list entry within the radius): the vPDQ rule's share of counted frames, and the first
/// frame's reason. A video with no counted frames never matches.
pub fn video_verdict(per_frame: &[Option<String>]) -> Option<String> {
    let hits: Vec<&String> = per_frame.iter().flatten().collect();
    if per_frame.is_empty() || hits.is_empty() {
        return None;
    }
    let share = hits.len() as f64 * 100.0 / per_frame.len() as f64;
    let rule = video_rule();
    (share >= rule.query_percent).then(|| {
        format!(
            "{} of {} counted video frames match ({share:.1}%, the rule asks {}%); first: {}",
            hits.len(),
            per_frame.len(),
            rule.query_percent,
            hits[0]
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_needs_80_percent_of_counted_frames_and_at_least_one() {
        let hit = |n: usize, of: usize| -> Vec<Option<String>> {
            (0..of)
                .map(|i| (i < n).then(|| format!("entry {i}")))
                .collect()
        };
        assert!(video_verdict(&hit(4, 5)).is_some(), "80% exactly");
        assert!(video_verdict(&hit(3, 5)).is_none(), "60%");
        assert!(video_verdict(&hit(79, 100)).is_none(), "79%");
        assert!(
            video_verdict(&hit(5, 5))
                .unwrap()
                .contains("first: entry 0")
        );
        assert!(video_verdict(&[]).is_none(), "no counted frames");
        assert!(video_verdict(&hit(0, 3)).is_none());
    }
}
