//! PDQ beside the comparison hashes (pHash, dHash, aHash) on the same workload: recall under
//! every edit and false positives, each at its own usual radius, and the whole trade-off
//! across radii.
//!
//! This runs outside the messenger: no scheme decides anything here, only the hash function.
//! The "list" holds each function's hash of the original files; a copy counts as recalled
//! when its hash is within the radius of its original's. PDQ of an original is taken of the
//! file as decoded; the 64-bit hashes, whose own 8×8 or 9×8 thumbnails come from a resize in
//! any case, of the original scaled to [`crate::workload::SEND_MAX_SIDE`] before the send's
//! JPEG step (so a 24-megapixel file costs them milliseconds, not a second). The false-positive
//! rate at a radius is the share of pairs of distinct corpus originals within it, with its
//! Clopper–Pearson interval: the empirical rate only, because the lattice model of
//! [`crate::stats`] is PDQ's (128 bits set in every hash), which the 64-bit hashes do not
//! share.

use crate::stats::{clopper_pearson, wilson};
use crate::workload::Workload;
use rayon::prelude::*;
use scanlab_imaging::phash::{self, HashBits};

/// One hash function's figures.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct HashFigures {
    /// `pdq`, `phash`, `dhash`, `ahash`.
    pub hash: String,
    /// Bits.
    pub bits: u32,
    /// Its usual radius.
    pub radius: u32,
    /// Recall at that radius: `as sent` first, then every edit and strength.
    pub recall: Vec<Recall>,
    /// Recall over every edited copy at that radius.
    pub recall_edited: f64,
    /// Pairs of distinct corpus originals.
    pub pairs: u64,
    /// Of which within the radius.
    pub pairs_within: u64,
    /// `pairs_within / pairs`.
    pub fp_rate: f64,
    /// Clopper–Pearson 95% interval of it.
    pub fp_ci95: [f64; 2],
    /// The trade-off at every radius from 0 to half the bits.
    pub roc: Vec<RocPoint>,
}

/// Recall of one edit at one strength.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Recall {
    /// Edit (`as sent` for the image the messenger sends).
    pub edit: String,
    /// Strength (0 for `as sent`).
    pub strength: f32,
    /// Copies.
    pub copies: usize,
    /// Within the radius of their original.
    pub matched: usize,
    /// Wilson 95% interval of `matched / copies`.
    pub ci95: [f64; 2],
}

/// One radius of the trade-off.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct RocPoint {
    /// Radius, bits.
    pub radius: u32,
    /// Recall over every edited copy (as [`HashFigures::recall_edited`] at the usual radius).
    pub recall: f64,
    /// Share of unrelated pairs within the radius.
    pub fp_rate: f64,
}

/// The comparison of every hash in [`phash::all`].
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Comparison {
    /// Per hash, PDQ first.
    pub hashes: Vec<HashFigures>,
    /// Copies scored per hash (as-sent list images and edited copies).
    pub copies: usize,
    /// What these figures cannot show.
    pub limits: String,
    /// PDQ distance of each edited copy (as [`Workload::edited`] orders them) from its list
    /// image: what the distinguisher's distance question is scored on.
    #[serde(skip)]
    #[schemars(skip)]
    pub pdq_edited: Vec<u32>,
}

/// Every hash of [`phash::all`] of one image, in that order.
fn hash_all(img: &scanlab_imaging::RgbImage) -> Vec<HashBits> {
    phash::all().iter_mut().map(|h| h.hash(img)).collect()
}

/// Runs the comparison on `w`; `tick` is called once per copy.
pub fn run(w: &Workload, tick: &(dyn Fn() + Sync)) -> Result<Comparison, crate::EvalError> {
    let fns = phash::all();
    // (edit name, strength, list index, hashes) of every copy, `as sent` first.
    let mut copies: Vec<(String, f32, usize, Vec<HashBits>)> = w
        .list
        .par_iter()
        .enumerate()
        .map(|(i, &p)| {
            tick();
            ("as sent".to_string(), 0.0, i, hash_all(&w.photos[p].rgb))
        })
        .collect();
    let edited: Vec<_> = w
        .edited
        .par_iter()
        .map(|e| {
            let img = scanlab_imaging::decode(&e.bytes, &Default::default()).map_err(|err| {
                crate::EvalError::Corpus(format!("edited copy {}: {err}", e.edit))
            })?;
            tick();
            Ok((
                e.edit.kind.name().to_string(),
                e.edit.strength,
                e.list_index,
                hash_all(&img),
            ))
        })
        .collect::<Result<_, crate::EvalError>>()?;
    copies.extend(edited);

    let originals: Vec<&Vec<HashBits>> = w.photos.iter().map(|p| &p.original_hashes).collect();
    let n = originals.len();
    let pairs = (n * n.saturating_sub(1) / 2) as u64;
    let mut hashes = Vec::new();
    let mut pdq_edited = Vec::new();
    for (f, hf) in fns.iter().enumerate() {
        let bits = hf.bits();
        let radius = hf.default_radius();
        let max = bits / 2;
        // Distance of every copy to its original, and of every unrelated pair.
        let copy_d: Vec<u32> = copies
            .iter()
            .map(|(_, _, i, h)| h[f].distance(&originals[w.list[*i]][f]))
            .collect();
        if hf.name() == "pdq" {
            pdq_edited = copy_d[w.list.len()..].to_vec();
        }
        let mut pair_hist = vec![0u64; bits as usize + 1];
        for a in 0..n {
            for b in a + 1..n {
                pair_hist[originals[a][f].distance(&originals[b][f]) as usize] += 1;
            }
        }
        let within = |r: u32| pair_hist[..=r as usize].iter().sum::<u64>();
        let mut recall: Vec<Recall> = Vec::new();
        for ((edit, strength, _, _), &d) in copies.iter().zip(&copy_d) {
            let slot = match recall
                .iter_mut()
                .position(|x| &x.edit == edit && x.strength == *strength)
            {
                Some(k) => k,
                None => {
                    recall.push(Recall {
                        edit: edit.clone(),
                        strength: *strength,
                        copies: 0,
                        matched: 0,
                        ci95: [0.0, 1.0],
                    });
                    recall.len() - 1
                }
            };
            recall[slot].copies += 1;
            recall[slot].matched += (d <= radius) as usize;
        }
        for x in &mut recall {
            x.ci95 = wilson(x.matched, x.copies);
        }
        let edited: Vec<u32> = copies
            .iter()
            .zip(&copy_d)
            .filter(|((e, ..), _)| e != "as sent")
            .map(|(_, &d)| d)
            .collect();
        let share = |v: &[u32], r: u32| {
            v.iter().filter(|&&d| d <= r).count() as f64 / v.len().max(1) as f64
        };
        let pw = within(radius);
        hashes.push(HashFigures {
            hash: hf.name().into(),
            bits,
            radius,
            recall,
            recall_edited: share(&edited, radius),
            pairs,
            pairs_within: pw,
            fp_rate: pw as f64 / pairs.max(1) as f64,
            fp_ci95: clopper_pearson(pw, pairs),
            roc: (0..=max)
                .map(|r| RocPoint {
                    radius: r,
                    recall: share(&edited, r),
                    fp_rate: within(r) as f64 / pairs.max(1) as f64,
                })
                .collect(),
        });
    }
    Ok(Comparison {
        copies: copies.len(),
        limits: format!(
            "Recall rests on {} list images per edit and strength. PDQ's list hash is of each original file as decoded; the 64-bit hashes' of the original scaled to {} pixels before the send's JPEG step, so their \"as sent\" row measures the JPEG step only, PDQ's the resize too (both shrink to a thumbnail of 64 pixels or fewer, where the difference is small). The false-positive rates on {pairs} pairs of {n} corpus originals, so a rate of 0 means only \"below about {:.0e}\" (the Clopper–Pearson bound), and a rate measured here holds only for photos like these. Each hash is scored against its own list of originals; nothing here says how a deployment would choose its radius.",
            w.list.len(),
            crate::workload::SEND_MAX_SIDE,
            clopper_pearson(0, pairs)[1]
        ),
        hashes,
        pdq_edited,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hash_of_an_image_has_its_length() {
        let img = scanlab_imaging::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8])
        });
        let h = hash_all(&img);
        assert_eq!(h.len(), phash::all().len());
        for (f, b) in phash::all().iter().zip(&h) {
            assert_eq!(8 * b.0.len() as u32, f.bits(), "{}", f.name());
        }
    }
}
