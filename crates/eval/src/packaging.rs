//! Packaging: the list image is not sent as an image. An honest client, running each scheme's
//! own half unchanged, sends every list image to Bob five ways:
//!
//! - **as an image** (the baseline);
//! - **as a generic file**: the same JPEG bytes, typed as a file;
//! - **inside a zip** archive (one stored entry), typed as a file;
//! - **pre-encrypted** with another tool before sending (ChaCha20-Poly1305 with a key Alice and
//!   Bob agreed elsewhere, as `age` or `gpg` would be used), typed as a file;
//! - **split** into three parts, each sent as a file in its own message.
//!
//! Per scheme and way: how many images went out whole (every part accepted by the sender's
//! client and the provider), how many of them Bob received whole, and how many distinct list
//! images reached the provider's review queue. A scheme either lets the file through unscanned
//! or refuses to send it; refusing a file because it cannot be scanned refuses every lawful
//! file too, which the same row shows.

use crate::EvalError;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use scanlab_hashlist::HashList;
use scanlab_messenger::mls::Media;
use scanlab_schemes::Scheme;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::Arc;

/// How an image is packaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// Sent as an image.
    Image,
    /// The same bytes, typed as a file.
    File,
    /// Inside a zip archive.
    Zip,
    /// Encrypted with another tool first.
    Encrypted,
    /// Three parts, three messages.
    Split,
}

impl Way {
    /// Every way, baseline first.
    pub const ALL: [Way; 5] = [Way::Image, Way::File, Way::Zip, Way::Encrypted, Way::Split];

    /// Its name in results.
    pub fn label(self) -> &'static str {
        match self {
            Way::Image => "as an image",
            Way::File => "as a generic file",
            Way::Zip => "inside a zip",
            Way::Encrypted => "pre-encrypted",
            Way::Split => "split in three",
        }
    }
}

/// The parts one image is sent as, and their media type.
fn pack(way: Way, jpeg: &[u8], key: &[u8; 32], index: u32) -> Result<Vec<Vec<u8>>, EvalError> {
    Ok(match way {
        Way::Image | Way::File => vec![jpeg.to_vec()],
        Way::Zip => {
            let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            z.start_file("photo.jpg", opts).map_err(crate::io)?;
            z.write_all(jpeg).map_err(crate::io)?;
            vec![z.finish().map_err(crate::io)?.into_inner()]
        }
        Way::Encrypted => {
            let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
            let mut nonce = [0u8; 12];
            nonce[..4].copy_from_slice(&index.to_be_bytes());
            let ct = cipher
                .encrypt(Nonce::from_slice(&nonce), jpeg)
                .map_err(|_| EvalError::Io("encrypting a packaged image".into()))?;
            vec![[nonce.as_slice(), &ct].concat()]
        }
        Way::Split => {
            let third = jpeg.len().div_ceil(3);
            jpeg.chunks(third).map(<[u8]>::to_vec).collect()
        }
    })
}

/// One scheme, one way.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct PackagingRow {
    /// The scheme's code.
    pub scheme: String,
    /// The way (`as an image`, `as a generic file`, `inside a zip`, `pre-encrypted`,
    /// `split in three`).
    pub way: String,
    /// List images Alice tried to send.
    pub images: usize,
    /// Of those, sent whole (every part accepted).
    pub sent: usize,
    /// Of those, received whole by Bob.
    pub received: usize,
    /// Attachments that reached the provider's review queue.
    pub reached_review: usize,
}

/// Every scheme, every way.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Packaging {
    /// One row per scheme and way.
    pub rows: Vec<PackagingRow>,
    /// What these rows cannot show.
    pub limits: String,
}

fn one(
    scheme: &dyn Scheme,
    list: &HashList,
    images: &[Vec<u8>],
    way: Way,
) -> Result<PackagingRow, EvalError> {
    let d = crate::attacks::deploy(scheme, list)?;
    let (mut alice, mut bob) = crate::attacks::pair(scheme, &d)?;
    let key = [7u8; 32];
    let media = if way == Way::Image {
        Media::Image
    } else {
        Media::File
    };
    let mut whole = Vec::new();
    for (i, img) in (0u32..).zip(images) {
        let parts = pack(way, img, &key, i)?;
        let ok = parts.iter().all(|p| {
            alice
                .send_file("pair", None, Some((p.as_slice(), media)))
                .is_ok()
        });
        if ok {
            whole.push(parts);
        }
    }
    let got: BTreeSet<Vec<u8>> = bob
        .recv()?
        .into_iter()
        .flatten()
        .filter_map(|m| m.image)
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    let received = whole
        .iter()
        .filter(|parts| parts.iter().all(|p| got.contains(p)))
        .count();
    let reached = d
        .provider
        .reviews()?
        .iter()
        .map(|r| r.blob.clone())
        .collect::<BTreeSet<_>>()
        .len();
    Ok(PackagingRow {
        scheme: scheme.code().into(),
        way: way.label().into(),
        images: images.len(),
        sent: whole.len(),
        received,
        reached_review: reached,
    })
}

/// Runs every scheme with `list` deployed, Alice sending `images` (list images, as sent) each
/// way.
pub fn run(
    schemes: &[Arc<dyn Scheme>],
    list: &HashList,
    images: &[Vec<u8>],
) -> Result<Packaging, EvalError> {
    let mut rows = Vec::new();
    for s in schemes {
        for way in Way::ALL {
            rows.push(one(&**s, list, images, way)?);
        }
    }
    Ok(Packaging {
        rows,
        limits: format!(
            "{} list images per way, each scheme's honest client half. A scheme that refuses an unscannable file refuses every lawful file as well; one that lets files through unscanned misses the image in every package. Neither opens an archive: a client that unpacked zips could scan their images, which none here does, and no client can open a package encrypted with a key it does not have. A split image is three files that are no image until rejoined.",
            images.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_package_holds_the_image_and_only_the_baseline_is_it() {
        let jpeg: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let key = [1u8; 32];
        let zipped = pack(Way::Zip, &jpeg, &key, 0).unwrap();
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(&zipped[0])).unwrap();
        let mut inner = Vec::new();
        std::io::Read::read_to_end(&mut z.by_index(0).unwrap(), &mut inner).unwrap();
        assert_eq!(inner, jpeg);
        let enc = &pack(Way::Encrypted, &jpeg, &key, 3).unwrap()[0];
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
        let plain = cipher
            .decrypt(Nonce::from_slice(&enc[..12]), &enc[12..])
            .unwrap();
        assert_eq!(plain, jpeg);
        let split = pack(Way::Split, &jpeg, &key, 0).unwrap();
        assert_eq!(split.len(), 3);
        assert_eq!(split.concat(), jpeg);
        assert!(split.iter().all(|p| p != &jpeg));
    }
}
