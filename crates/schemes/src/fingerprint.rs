//! What a scheme computes from an attachment, by media type: one PDQ hash for an image, a
//! sequence of frame hashes for a video (Meta's vPDQ: PDQ on sampled frames). The matcher takes
//! either, so a scheme that fingerprints images handles video through the same path.

use crate::SchemeError;
use scanlab_messenger::mls::Media;
use scanlab_pdq::Hash256;

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

/// The fingerprint of an attachment of type `media`. Images get PDQ; video and other files are
/// refused with [`SchemeError::Media`] until a fingerprint for them exists (vPDQ is its own
/// issue), so a scheme never silently lets them through as "no match".
pub fn fingerprint(media: Media, bytes: &[u8]) -> Result<Fingerprint, SchemeError> {
    match media {
        Media::Image => {
            let p = crate::pdq_of(bytes)?;
            Ok(Fingerprint::Image {
                hash: p.hash,
                quality: p.quality,
            })
        }
        m => Err(SchemeError::Media(m)),
    }
}
