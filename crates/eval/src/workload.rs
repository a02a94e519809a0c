//! The workload: which corpus images play which part, as the simulated users send them.
//!
//! Every corpus image is first brought to how a messenger sends photos: scaled so its longer
//! side is at most [`SEND_MAX_SIDE`] pixels and encoded as JPEG at quality [`SEND_QUALITY`]
//! (WhatsApp and Signal both recompress photos on send). A seeded shuffle then picks:
//! - the **list images** (`K` of them): the stand-in "known" list;
//! - the **leaked document**: never listed, forwarded in a cascade;
//! - the **protest poster**: benign, spread in a cascade, added to the list by the poisoning
//!   attack;
//! - the **background**: ordinary unlisted photos, sent once each.
//!
//! Edited copies of the list images (every [`EditKind`] at several strengths, seeded) are made
//! from the as-sent image and sent as JPEG at quality [`EDIT_QUALITY`].

use crate::EvalError;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use scanlab_imaging::{Edit, EditKind, RgbImage};
use scanlab_pdq::{Hash256, Hasher};
use std::path::PathBuf;

/// Longer side of an image as sent.
pub const SEND_MAX_SIDE: u32 = 640;
/// JPEG quality of an image as sent.
pub const SEND_QUALITY: i32 = 85;
/// JPEG quality of an edited copy as sent.
pub const EDIT_QUALITY: i32 = 92;

/// One corpus image, as sent.
pub struct Photo {
    /// Corpus file.
    pub path: PathBuf,
    /// PDQ of the original file: what the list holds, and what the false-positive analysis
    /// uses.
    pub original_hash: Hash256,
    /// Every hash of [`scanlab_imaging::phash::all`] of the original, in that order, for the
    /// comparison ([`crate::compare`]): PDQ of the file, the 64-bit hashes of it scaled to
    /// [`SEND_MAX_SIDE`].
    pub original_hashes: Vec<scanlab_imaging::phash::HashBits>,
    /// The JPEG bytes a user sends.
    pub sent: Vec<u8>,
    /// Its decoded pixels.
    pub rgb: RgbImage,
    /// PDQ of the sent bytes (what every scheme computes).
    pub hash: Hash256,
}

/// An edited copy of a list image.
pub struct Edited {
    /// Which list image (index into [`Workload::list`]).
    pub list_index: usize,
    /// The edit.
    pub edit: Edit,
    /// The JPEG bytes sent.
    pub bytes: Vec<u8>,
}

/// The parts, by index into [`Workload::photos`].
pub struct Workload {
    /// Every corpus image.
    pub photos: Vec<Photo>,
    /// The list images.
    pub list: Vec<usize>,
    /// The leaked document.
    pub leaked: usize,
    /// The protest poster.
    pub poster: usize,
    /// The background images.
    pub background: Vec<usize>,
    /// Edited copies of the list images.
    pub edited: Vec<Edited>,
    /// The edit strengths used.
    pub strengths: Vec<f32>,
}

/// How big a workload.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Size {
    /// List images.
    pub list: usize,
    /// Background images sent through the messenger.
    pub background: usize,
    /// Edit strengths.
    pub strengths: Vec<f32>,
}

fn prepare(path: &std::path::Path) -> Result<Photo, EvalError> {
    let img = scanlab_imaging::decode_file(path, &Default::default())
        .map_err(|e| EvalError::Corpus(e.to_string()))?;
    let mut h = Hasher::new();
    let original_hash = h.hash(&scanlab_imaging::pdq_image(&img)).hash;
    let (w, hgt) = img.dimensions();
    let scale = (SEND_MAX_SIDE as f64 / w.max(hgt) as f64).min(1.0);
    let small = if scale < 1.0 {
        image::imageops::resize(
            &img,
            ((w as f64 * scale).round() as u32).max(1),
            ((hgt as f64 * scale).round() as u32).max(1),
            image::imageops::FilterType::Triangle,
        )
    } else {
        img
    };
    let original_hashes = scanlab_imaging::phash::all()
        .iter_mut()
        .map(|f| {
            if f.name() == "pdq" {
                scanlab_imaging::phash::HashBits(original_hash.to_bytes().to_vec())
            } else {
                f.hash(&small)
            }
        })
        .collect();
    let sent = scanlab_imaging::edits::encode_jpeg(&small, SEND_QUALITY)
        .map_err(|e| EvalError::Corpus(e.to_string()))?;
    let rgb = scanlab_imaging::decode(&sent, &Default::default())
        .map_err(|e| EvalError::Corpus(e.to_string()))?;
    let hash = h.hash(&scanlab_imaging::pdq_image(&rgb)).hash;
    Ok(Photo {
        path: path.to_path_buf(),
        original_hash,
        original_hashes,
        sent,
        rgb,
        hash,
    })
}

impl Workload {
    /// Prepares the corpus and draws the parts with `seed`. `tick` is called once per image and
    /// once per edited copy.
    pub fn build(
        paths: &[PathBuf],
        size: &Size,
        seed: u64,
        tick: &(dyn Fn() + Sync),
    ) -> Result<Workload, EvalError> {
        if paths.len() < size.list + size.background + 2 {
            return Err(EvalError::Corpus(format!(
                "{} images is too few for a list of {} and {} background images",
                paths.len(),
                size.list,
                size.background
            )));
        }
        let photos: Vec<Photo> = paths
            .par_iter()
            .map(|p| {
                let r = prepare(p);
                tick();
                r
            })
            .collect::<Result<_, _>>()?;
        let mut order: Vec<usize> = (0..photos.len()).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let list = order[..size.list].to_vec();
        let leaked = order[size.list];
        let poster = order[size.list + 1];
        let background = order[size.list + 2..size.list + 2 + size.background].to_vec();
        let jobs: Vec<(usize, Edit)> = (0..list.len())
            .flat_map(|i| {
                EditKind::ALL.into_iter().flat_map(move |kind| {
                    size.strengths
                        .clone()
                        .into_iter()
                        .map(move |strength| (i, Edit { kind, strength }))
                })
            })
            .collect();
        let edited = jobs
            .par_iter()
            .map(|&(i, edit)| {
                let src = &photos[list[i]].rgb;
                let seed = seed ^ ((i as u64) << 32) ^ (edit.kind as u64) << 8;
                let out = edit
                    .apply(src, seed)
                    .and_then(|img| scanlab_imaging::edits::encode_jpeg(&img, EDIT_QUALITY))
                    .map_err(|e| EvalError::Corpus(format!("edit {edit}: {e}")));
                tick();
                out.map(|bytes| Edited {
                    list_index: i,
                    edit,
                    bytes,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Workload {
            photos,
            list,
            leaked,
            poster,
            background,
            edited,
            strengths: size.strengths.clone(),
        })
    }
}
