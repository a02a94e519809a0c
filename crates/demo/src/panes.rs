//! What a party's pane shows: each record it holds, and what the evaluation's scheme-blind
//! analyst ([`scanlab_eval::analyst`]) reads in it.
//!
//! Nothing here knows a scheme. A record is decoded by the same decoders the evaluation uses
//! (hashes, thumbnails, PDQ intermediates, images, attachment keys, capsules under the keys
//! the party holds), and what it found is shown as the evaluation scores it: the best
//! reconstruction ([`scanlab_eval::analysis::rebuild`]), and the nearest list entry of any
//! perceptual hash the party has or can compute. Who a party can name as holding a listed
//! image is read the same way: the accounts of every record that names a blob whose contents
//! match the list.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use scanlab_eval::analyst::{Analyst, Knowledge, PlainSource};
use scanlab_hashlist::HashList;
use scanlab_messenger::{Review, ViewRecord};
use scanlab_schemes::Secret;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What the analyst read in one record.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Finding {
    /// `plaintext`, `thumbnail`, `hash` or `nothing`: the most the record gives.
    pub what: &'static str,
    /// One line for a reader: what it is, and how it was read.
    pub text: String,
    /// The best reconstruction, as a `data:` URL (PNG or JPEG), if anything was read.
    pub image: Option<String>,
    /// The nearest list entry to a perceptual hash read in it, if within the radius:
    /// `(entry label, distance)`.
    pub matches: Option<(String, u32)>,
}

/// One record of a party's view, as its pane shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RecordRow {
    /// Sequence number in the party's store.
    pub seq: i64,
    /// `received`, `sent`, `derived`, `internal` or `state`.
    pub kind: &'static str,
    /// The authenticated account, if any.
    pub who: Option<String>,
    /// `METHOD /path`.
    pub endpoint: String,
    /// Bytes.
    pub len: i64,
    /// What the analyst read.
    pub finding: Finding,
}

/// An account a party can name as holding a listed image.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Named {
    /// The list entry's label.
    pub entry: String,
    /// The accounts of the records naming the matching blob.
    pub accounts: Vec<String>,
}

/// Reads records for one party holding `keys`, over the blob store `blobs`, against `list`.
///
/// A scheme-blind decoder reads any 32 bytes as a possible hash (a token, a key, a SHA-256
/// digest too), so, as in the evaluation's exposure measure, a 256-bit value counts as a
/// photo's hash only if it lies within the radius of the PDQ of a photo sent in this run
/// (`sent`: the ground truth, used for scoring only).
pub struct Reader<'a> {
    analyst: Analyst<'a>,
    list: &'a HashList,
    sent: &'a [scanlab_pdq::Hash256],
    radius: u32,
}

impl<'a> Reader<'a> {
    /// A reader for a party that holds `keys`.
    pub fn new(
        blobs: &'a BTreeMap<String, Vec<u8>>,
        keys: Vec<&'a Secret>,
        list: &'a HashList,
        sent: &'a [scanlab_pdq::Hash256],
        radius: u32,
    ) -> Reader<'a> {
        Reader {
            analyst: Analyst::new(blobs, keys),
            list,
            sent,
            radius,
        }
    }

    fn knowledge(&self, r: &ViewRecord) -> Knowledge {
        let mut k = Knowledge::default();
        for v in [
            r.json(),
            r.extra.as_ref().and_then(|e| serde_json::from_str(e).ok()),
        ]
        .into_iter()
        .flatten()
        {
            k.merge(self.analyst.decode(&v));
        }
        k.hashes
            .retain(|h| self.sent.iter().any(|t| t.distance(h) <= self.radius));
        k
    }

    /// The nearest list entry within the radius of any perceptual hash of `k`.
    fn nearest(&self, k: &Knowledge) -> Option<(String, u32)> {
        let hashes = k.perceptual_hashes();
        self.list
            .entries
            .iter()
            .flat_map(|e| hashes.iter().map(move |h| (e, h.distance(&e.hash))))
            .filter(|&(_, d)| d <= self.radius)
            .min_by_key(|&(_, d)| d)
            .map(|(e, d)| (e.label.clone(), d))
    }

    /// What a record gives.
    pub fn finding(&self, r: &ViewRecord) -> Finding {
        self.describe(&self.knowledge(r))
    }

    fn describe(&self, k: &Knowledge) -> Finding {
        let matches = self.nearest(k);
        let suffix = match &matches {
            Some((label, d)) => {
                format!("; within {d} bits of the list entry \u{201c}{label}\u{201d}")
            }
            None if k.any() => "; no list entry within the radius".into(),
            None => String::new(),
        };
        if let Some((img, how)) = &k.plaintext {
            let how = match how {
                PlainSource::AttachmentKey => {
                    "the photo, decrypted with an attachment key it holds"
                }
                PlainSource::Image => "the photo itself",
            };
            return Finding {
                what: "plaintext",
                text: format!("{how} ({} bytes){suffix}", img.len()),
                image: photo_url(img),
                matches,
            };
        }
        let rebuilt = scanlab_eval::analysis::rebuild(k);
        let image = rebuilt.as_ref().and_then(|(g, _, _)| gray_url(g));
        if k.luma64.is_some() || k.dct16.is_some() {
            let how = rebuilt.map_or("", |(_, how, _)| how);
            return Finding {
                what: "thumbnail",
                text: format!("a thumbnail, rebuilt from {how}{suffix}"),
                image,
                matches,
            };
        }
        if let Some(h) = k.hashes.first() {
            let more = match k.hashes.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            return Finding {
                what: "hash",
                text: format!(
                    "the perceptual hash of a photo sent, {}\u{2026}{more} (pictured: the inverse DCT of its signs){suffix}",
                    &h.to_string()[..16]
                ),
                image,
                matches,
            };
        }
        Finding {
            what: "nothing",
            text: "nothing readable about any photo".into(),
            image: None,
            matches: None,
        }
    }

    /// Every record of `view`, newest first, at most `cap`.
    pub fn rows(&self, view: &[ViewRecord], cap: usize) -> Vec<RecordRow> {
        view.iter()
            .rev()
            .take(cap)
            .map(|r| RecordRow {
                seq: r.seq,
                kind: r.kind.as_str(),
                who: r.who.clone(),
                endpoint: r.endpoint.clone(),
                len: r.len,
                finding: self.finding(r),
            })
            .collect()
    }

    /// A review-queue item, as the reviewer sees it.
    pub fn review(&self, rv: &Review) -> Finding {
        let mut k = Knowledge::default();
        if !rv.image.is_empty() {
            k.plaintext = Some((rv.image.clone(), PlainSource::Image));
        }
        self.describe(&k)
    }

    /// The accounts the party can name as holding each listed image: for every blob whose
    /// contents (read from any record or review) match a list entry, the accounts of every
    /// record that names that blob.
    pub fn named(&self, view: &[ViewRecord], reviews: &[Review]) -> Vec<Named> {
        let by_blob = self.analyst.read(view, reviews);
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (blob, k) in &by_blob {
            let Some((label, _)) = self.nearest(k) else {
                continue;
            };
            let accounts = out.entry(label).or_default();
            for r in view.iter().filter(|r| names_blob(r, blob)) {
                if let Some(w) = &r.who {
                    accounts.insert(w.clone());
                }
            }
            for rv in reviews.iter().filter(|rv| &rv.blob == blob) {
                accounts.insert(rv.submitter.clone());
            }
        }
        out.into_iter()
            .map(|(entry, a)| Named {
                entry,
                accounts: a.into_iter().collect(),
            })
            .collect()
    }
}

/// Whether a record names `blob`: in its endpoint, its body or its metadata.
fn names_blob(r: &ViewRecord, blob: &str) -> bool {
    r.endpoint.split(['/', ' ']).any(|p| p == blob)
        || r.body
            .as_deref()
            .is_some_and(|b| contains(b, blob.as_bytes()))
        || r.extra.as_deref().is_some_and(|e| e.contains(blob))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A photo as a small JPEG `data:` URL (at most 240 pixels on its longer side).
pub fn photo_url(bytes: &[u8]) -> Option<String> {
    let rgb = scanlab_schemes::decode_image(bytes).ok()?;
    let (w, h) = rgb.dimensions();
    let s = (240.0 / w.max(h) as f64).min(1.0);
    let small = image::imageops::resize(
        &rgb,
        ((w as f64 * s).round() as u32).max(1),
        ((h as f64 * s).round() as u32).max(1),
        image::imageops::FilterType::Triangle,
    );
    let jpeg = scanlab_imaging::edits::encode_jpeg(&small, 80).ok()?;
    Some(format!("data:image/jpeg;base64,{}", B64.encode(jpeg)))
}

/// A grey reconstruction as a PNG `data:` URL.
fn gray_url(g: &scanlab_imaging::quality::Gray) -> Option<String> {
    let px: Vec<u8> = g
        .data
        .iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    let img = image::GrayImage::from_raw(g.width as u32, g.height as u32, px)?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).ok()?;
    Some(format!(
        "data:image/png;base64,{}",
        B64.encode(out.into_inner())
    ))
}
