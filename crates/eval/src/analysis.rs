//! What the provider (or whoever holds a key) can compute from what it really received: every
//! figure here is read from a run's recorded provider view, review queue and blob store.

use crate::sim::{Outcome, Tag};
use crate::workload::Workload;
use scanlab_imaging::quality::{Gray, psnr, ssim};
use scanlab_messenger::mls::{AttachmentRef, open_attachment};
use scanlab_pdq::Hash256;
use scanlab_schemes::{SchemeId, Split};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// One point of a recall curve.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RecallPoint {
    /// Edit kind (`identity` for the image as listed).
    pub edit: String,
    /// Edit strength.
    pub strength: f32,
    /// Copies sent.
    pub sent: usize,
    /// Copies flagged (ended in the review queue).
    pub flagged: usize,
    /// `flagged / sent`.
    pub recall: f64,
    /// Wilson 95% interval of the recall.
    pub ci95: [f64; 2],
}

/// Fractions of a group of holders the provider identifies.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Linkage {
    /// Users who held the image (sent or received it).
    pub holders: usize,
    /// Identified by content (a hash or plaintext near the target).
    pub by_content: f64,
    /// Identified by blob size (exact copies only).
    pub by_size: f64,
    /// Identified either way.
    pub either: f64,
    /// Non-holders the content method points at.
    pub wrong_by_content: usize,
    /// Non-holders the size method points at (other images in the same size bucket).
    pub wrong_by_size: usize,
}

/// What a compromise of each party exposes, as fractions of the innocent images sent (the
/// background photos and the leaked document: on no list).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Exposure {
    /// Images whose full plaintext the provider's data yields.
    pub provider_plaintext: f64,
    /// Images of which the provider's data holds a thumbnail (64×64 luminance or its DCT).
    pub provider_thumbnail: f64,
    /// Images of which the provider's data holds a perceptual hash.
    pub provider_hash: f64,
    /// Images a stolen enclave key opens (S5), if any.
    pub enclave_key: Option<f64>,
    /// Images a stolen or compelled escrow key opens (S2), if any.
    pub escrow_key: Option<f64>,
}

/// The best reconstruction the provider can make of unmatched images, scored against the
/// original at 64×64.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Reconstruction {
    /// How it is made.
    pub method: String,
    /// Images scored.
    pub images: usize,
    /// Mean SSIM.
    pub ssim: f64,
    /// Mean PSNR, dB.
    pub psnr: f64,
}

/// Everything measured for one scheme (timings aside).
#[derive(Clone, Debug, serde::Serialize)]
pub struct SchemeMeasures {
    /// `S0`…`S5`.
    pub code: String,
    /// Name.
    pub name: String,
    /// Image sends in the run.
    pub images_sent: usize,
    /// Recall by edit and strength, identity first.
    pub recall: Vec<RecallPoint>,
    /// Recall of the list images as listed.
    pub recall_identity: f64,
    /// Mean recall over every edited copy.
    pub recall_edited: f64,
    /// Background (unlisted) images flagged: live false positives.
    pub background_flagged: usize,
    /// Background images sent.
    pub background_sent: usize,
    /// Bytes the provider received per image beyond S0's: scan requests, scheme fields and
    /// review uploads, averaged over all image sends.
    pub extra_bytes_per_image: f64,
    /// Of which review uploads (disclosed plaintext).
    pub disclosed_bytes_per_image: f64,
    /// Reconstruction of unmatched images, if the provider has anything to rebuild from.
    pub reconstruction: Option<Reconstruction>,
    /// Holders of the unlisted leaked document the provider identifies.
    pub linkage: Linkage,
    /// Whether the provider can find who holds an image of its choosing from its records,
    /// without any list entry or client-visible change.
    pub arbitrary_content: bool,
    /// Poster holders identified once the poster is on the list.
    pub poisoning: Linkage,
    /// What each party's compromise exposes.
    pub exposure: Exposure,
    /// Bytes of scheme state each device downloads and keeps (the provider's `GET /v1/scheme`
    /// parameters: radius, split, escrow key, attestation). A list held on the device would
    /// be counted here; none of S0–S5 puts one there.
    pub device_state_bytes: usize,
}

/// The body of every scan request the provider recorded, by blob id.
pub fn scan_bodies(o: &Outcome) -> BTreeMap<String, Value> {
    o.view
        .iter()
        .filter(|r| r.endpoint == "POST /v1/scan")
        .filter_map(|r| serde_json::from_slice::<Value>(r.body.as_ref()?).ok())
        .filter_map(|v| Some((v["blob"].as_str()?.to_string(), v)))
        .collect()
}

fn derived_hashes(o: &Outcome) -> Vec<(String, Hash256)> {
    o.view
        .iter()
        .filter(|r| r.endpoint == "DERIVED POST /v1/scan")
        .filter_map(|r| serde_json::from_str::<Value>(r.extra.as_ref()?).ok())
        .filter_map(|v| {
            Some((
                v["blob"].as_str()?.to_string(),
                v["hash"].as_str()?.parse().ok()?,
            ))
        })
        .collect()
}

/// Users the provider links to `blobs`: the uploader (by the digest of the stored blob, which
/// its upload record carries) and everyone who downloaded it.
fn users_of(o: &Outcome, blobs: &BTreeSet<String>) -> BTreeSet<String> {
    let digests: BTreeSet<String> = blobs
        .iter()
        .filter_map(|b| o.blobs.get(b))
        .map(|d| hex::encode(Sha256::digest(d)))
        .collect();
    let mut users = BTreeSet::new();
    for r in &o.view {
        let Some(who) = &r.who else { continue };
        if r.endpoint == "PUT /v1/blobs" && digests.contains(&r.sha256) {
            users.insert(who.clone());
        }
        if let Some(id) = r.endpoint.strip_prefix("GET /v1/blobs/")
            && blobs.contains(id)
        {
            users.insert(who.clone());
        }
    }
    users
}

fn linkage(
    o: &Outcome,
    holders: &BTreeSet<usize>,
    content: &BTreeSet<String>,
    size: &BTreeSet<String>,
) -> Linkage {
    let names: BTreeSet<String> = holders.iter().map(|&u| crate::sim::user_name(u)).collect();
    let frac = |found: &BTreeSet<String>| {
        if names.is_empty() {
            0.0
        } else {
            found.intersection(&names).count() as f64 / names.len() as f64
        }
    };
    let c = users_of(o, content);
    let s = users_of(o, size);
    let either: BTreeSet<String> = c.union(&s).cloned().collect();
    Linkage {
        holders: names.len(),
        by_content: frac(&c),
        by_size: frac(&s),
        either: frac(&either),
        wrong_by_content: c.difference(&names).count(),
        wrong_by_size: s.difference(&names).count(),
    }
}

fn gray64(rgb: &scanlab_imaging::RgbImage) -> Gray {
    Gray::from_rgb(rgb).resize_area(64, 64)
}

fn from_64(a: &[[f32; 64]; 64]) -> Gray {
    Gray {
        width: 64,
        height: 64,
        data: a.iter().flatten().copied().collect(),
    }
}

/// The provider's best reconstruction of one image from its scan record, if it has one.
pub fn rebuild(o: &Outcome, scan: &Value) -> Option<(Gray, &'static str)> {
    match o.scheme {
        SchemeId::ServerSide => {
            let a: AttachmentRef = serde_json::from_value(scan["attachment"].clone()).ok()?;
            let img = open_attachment(o.blobs.get(&a.blob)?, &a).ok()?;
            let rgb = scanlab_schemes::decode_image(&img).ok()?;
            Some((
                gray64(&rgb),
                "decrypts the attachment with the key it was given",
            ))
        }
        SchemeId::DeviceHash => {
            let h: Hash256 = scan["hash"].as_str()?.parse().ok()?;
            let img = scanlab_pdq::dct::idct16_to_64(&scanlab_pdq::dct::hash_signs(&h));
            Some((
                from_64(&img).normalized(),
                "inverse DCT of the hash's sign pattern",
            ))
        }
        SchemeId::PartialHash => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(scan["intermediate"].as_str()?)
                .ok()?;
            match o.split? {
                Split::Luma64 => {
                    let v = scanlab_schemes::partial_hash::from_bytes(&bytes, 4096).ok()?;
                    Some((
                        Gray {
                            width: 64,
                            height: 64,
                            data: v,
                        },
                        "the 64×64 luminance itself",
                    ))
                }
                Split::Dct16 => {
                    let v = scanlab_schemes::partial_hash::from_bytes(&bytes, 256).ok()?;
                    let mut d = [[0f32; 16]; 16];
                    for (row, c) in d.iter_mut().zip(v.chunks_exact(16)) {
                        row.copy_from_slice(c);
                    }
                    let img = scanlab_pdq::dct::idct16_to_64(&d);
                    Some((
                        from_64(&img).normalized(),
                        "inverse DCT of the 16×16 coefficients",
                    ))
                }
            }
        }
        _ => None,
    }
}

/// Measures one run.
pub fn measure(o: &Outcome, w: &Workload) -> SchemeMeasures {
    let flagged: BTreeSet<&str> = o.reviews.iter().map(|r| r.blob.as_str()).collect();
    let is_flagged = |s: &crate::sim::Send| flagged.contains(s.blob.as_str());

    // Recall, by edit and strength.
    let mut by: BTreeMap<(usize, u32), (usize, usize)> = BTreeMap::new();
    let mut identity = (0, 0);
    for s in &o.sends {
        if let Tag::Listed(_, e) = s.tag {
            let slot = match e {
                None => &mut identity,
                Some(e) => {
                    let ed = &w.edited[e];
                    by.entry((ed.edit.kind as usize, ed.edit.strength.to_bits()))
                        .or_default()
                }
            };
            slot.0 += 1;
            slot.1 += is_flagged(s) as usize;
        }
    }
    let point = |edit: &str, strength: f32, (sent, f): (usize, usize)| RecallPoint {
        edit: edit.to_string(),
        strength,
        sent,
        flagged: f,
        recall: if sent == 0 {
            0.0
        } else {
            f as f64 / sent as f64
        },
        ci95: crate::stats::wilson(f, sent),
    };
    let mut recall = vec![point("identity", 0.0, identity)];
    for kind in scanlab_imaging::EditKind::ALL {
        for &st in &w.strengths {
            if let Some(&c) = by.get(&(kind as usize, st.to_bits())) {
                recall.push(point(kind.name(), st, c));
            }
        }
    }
    let (es, ef) = by.values().fold((0, 0), |(a, b), &(s, f)| (a + s, b + f));

    let background: Vec<_> = o
        .sends
        .iter()
        .filter(|s| matches!(s.tag, Tag::Background(_)))
        .collect();

    // Extra bytes.
    let n = o.sends.len().max(1) as f64;
    let mut scan_bytes = 0i64;
    let mut review_bytes = 0i64;
    let mut field_bytes = 0i64;
    for r in &o.view {
        match r.endpoint.as_str() {
            "POST /v1/scan" => scan_bytes += r.len,
            "POST /v1/review" => review_bytes += r.len,
            // An enclave's forward reaches the provider from outside; S1's own move of an
            // image it already decrypted does not.
            "INTERNAL review" if r.who.as_deref() != Some("provider") => review_bytes += r.len,
            "POST /v1/messages" => {
                if let Some(f) = r
                    .body
                    .as_ref()
                    .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                    .and_then(|v| v.get("scheme").cloned())
                {
                    field_bytes += f.to_string().len() as i64;
                }
            }
            _ => {}
        }
    }

    // Reconstruction of unmatched background images.
    let scans = scan_bodies(o);
    let mut rec: Option<(&'static str, Vec<(f64, f64)>)> = None;
    for s in background.iter().filter(|s| !is_flagged(s)).take(8) {
        let Tag::Background(j) = s.tag else { continue };
        let Some(scan) = scans.get(&s.blob) else {
            continue;
        };
        let Some((g, method)) = rebuild(o, scan) else {
            continue;
        };
        let orig = gray64(&w.photos[w.background[j]].rgb);
        if let (Ok(a), Ok(b)) = (ssim(&g, &orig), psnr(&g, &orig)) {
            rec.get_or_insert((method, Vec::new())).1.push((a, b));
        }
    }
    let reconstruction = rec.map(|(method, v)| Reconstruction {
        method: method.to_string(),
        images: v.len(),
        ssim: v.iter().map(|x| x.0).sum::<f64>() / v.len() as f64,
        psnr: v.iter().map(|x| x.1.min(99.0)).sum::<f64>() / v.len() as f64,
    });

    // Linkage of the leaked document, which no list holds.
    let target = w.photos[w.leaked].hash;
    let content: BTreeSet<String> = match o.scheme {
        SchemeId::ServerSide | SchemeId::DeviceHash | SchemeId::PartialHash => derived_hashes(o)
            .into_iter()
            .filter(|(_, h)| h.distance(&target) <= scanlab_schemes::DEFAULT_RADIUS)
            .map(|(b, _)| b)
            .collect(),
        _ => BTreeSet::new(),
    };
    // The provider knows the padding rule: it links every blob in the copy's size bucket.
    let size_of_copy = scanlab_messenger::mls::padded_len(w.photos[w.leaked].sent.len()) + 16;
    let size: BTreeSet<String> = o
        .blobs
        .iter()
        .filter(|(_, d)| d.len() == size_of_copy)
        .map(|(b, _)| b.clone())
        .collect();
    let leak = linkage(o, &o.leaked_holders, &content, &size);

    // Poisoning: the poster is on the list; who does the provider learn holds it?
    let poster_flagged: BTreeSet<String> = o
        .sends
        .iter()
        .filter(|s| matches!(s.tag, Tag::Poster { .. }) && is_flagged(s))
        .map(|s| s.blob.clone())
        .collect();
    let poisoning = linkage(o, &o.poster_holders, &poster_flagged, &BTreeSet::new());

    // Exposure of innocent images: the background photos and the leaked document, which are
    // on no list.
    let innocent: Vec<&crate::sim::Send> = o
        .sends
        .iter()
        .filter(|s| matches!(s.tag, Tag::Background(_) | Tag::Leaked { .. }))
        .collect();
    let frac = |k: usize| k as f64 / innocent.len().max(1) as f64;
    let hashes: BTreeSet<String> = derived_hashes(o).into_iter().map(|(b, _)| b).collect();
    let count = |f: &dyn Fn(&crate::sim::Send) -> bool| innocent.iter().filter(|s| f(s)).count();
    let plaintext = count(&|s| {
        is_flagged(s)
            || (o.scheme == SchemeId::ServerSide
                && scans.get(&s.blob).and_then(|v| rebuild(o, v)).is_some())
    });
    let thumbnail = count(&|s| o.scheme == SchemeId::PartialHash && scans.contains_key(&s.blob));
    let hashed = count(&|s| hashes.contains(&s.blob));
    let enclave_key = o.enclave.as_ref().map(|e| {
        use base64::Engine;
        frac(count(&|s| {
            scans
                .get(&s.blob)
                .and_then(|v| v["sealed"].as_str())
                .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
                .is_some_and(|c| e.open_for_audit(&s.blob, &c).is_ok())
        }))
    });
    let escrow_key = o.escrow.as_ref().map(|k| {
        // The authority decrypts everything it can; count the background photos (which the
        // run sends byte for byte) among the images it read.
        let read: BTreeSet<Vec<u8>> =
            scanlab_schemes::exceptional_access::recover(&o.data.path().join("provider"), k)
                .map(|r| r.into_iter().filter_map(|m| m.image).collect())
                .unwrap_or_default();
        let background: Vec<&[u8]> = w
            .background
            .iter()
            .map(|&p| w.photos[p].sent.as_slice())
            .collect();
        let opened = background.iter().filter(|b| read.contains(**b)).count();
        opened as f64 / background.len().max(1) as f64
    });

    SchemeMeasures {
        code: o.scheme.code().into(),
        name: o.scheme.name().into(),
        images_sent: o.sends.len(),
        recall_identity: recall[0].recall,
        recall,
        recall_edited: if es == 0 { 0.0 } else { ef as f64 / es as f64 },
        background_flagged: background.iter().filter(|s| is_flagged(s)).count(),
        background_sent: background.len(),
        extra_bytes_per_image: (scan_bytes + review_bytes + field_bytes) as f64 / n,
        disclosed_bytes_per_image: review_bytes as f64 / n,
        reconstruction,
        arbitrary_content: leak.by_content > 0.0,
        linkage: leak,
        poisoning,
        exposure: Exposure {
            provider_plaintext: frac(plaintext),
            provider_thumbnail: frac(thumbnail),
            provider_hash: frac(hashed),
            enclave_key,
            escrow_key,
        },
        device_state_bytes: o.scheme_params_len,
    }
}
