//! What the provider (or whoever holds a key) can compute from what it really received: every
//! figure here is read from a run's recorded provider view, review queue and blob store, by
//! the scheme-blind [`crate::analyst`], the same way for every scheme.

use crate::analyst::{Analyst, Knowledge, PlainSource};
use crate::sim::{Outcome, Tag};
use crate::workload::Workload;
use scanlab_imaging::quality::{Gray, psnr, ssim};
use scanlab_messenger::RecordKind;
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
    /// Users in the simulation.
    pub users: usize,
    /// `holders / users`: the precision of naming users at random, the base rate any method
    /// must beat.
    pub base_rate: f64,
    /// Users the content method names (its anonymity set: holders hide among them).
    pub named_by_content: usize,
    /// Users the size method names.
    pub named_by_size: usize,
    /// Holders among those the content method names; `None` when it names no one.
    pub precision_by_content: Option<f64>,
    /// Holders among those the size method names; `None` when it names no one.
    pub precision_by_size: Option<f64>,
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
    /// For each secret key a party of the deployment holds (by its holder: `enclave`,
    /// `escrow authority`), the images whose plaintext the provider's data yields to whoever
    /// steals or compels that key.
    pub stolen_key: BTreeMap<String, f64>,
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

/// What the provider's data yields about each blob in the honest scenario (no stolen keys).
pub fn provider_knowledge(o: &Outcome) -> BTreeMap<String, Knowledge> {
    Analyst::new(&o.blobs, Vec::new()).read(&o.view, &o.reviews)
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
    for r in o.view.iter().filter(|r| r.kind == RecordKind::Received) {
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
    let precision = |found: &BTreeSet<String>| {
        (!found.is_empty()).then(|| found.intersection(&names).count() as f64 / found.len() as f64)
    };
    Linkage {
        users: o.users,
        base_rate: names.len() as f64 / o.users.max(1) as f64,
        named_by_content: c.len(),
        named_by_size: s.len(),
        precision_by_content: precision(&c),
        precision_by_size: precision(&s),
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

/// The best reconstruction of one image from what is known of it, if anything: the image
/// itself, a 64×64 luminance, the inverse DCT of 16×16 coefficients, or the inverse DCT of a
/// hash's sign pattern, in that order.
pub fn rebuild(k: &Knowledge) -> Option<(Gray, &'static str)> {
    if let Some((img, how)) = &k.plaintext
        && let Ok(rgb) = scanlab_schemes::decode_image(img)
    {
        return Some((
            gray64(&rgb),
            match how {
                PlainSource::AttachmentKey => "decrypts the attachment with the key it was given",
                PlainSource::Image => "the image itself",
            },
        ));
    }
    if let Some(v) = &k.luma64 {
        return Some((
            Gray {
                width: 64,
                height: 64,
                data: v.clone(),
            },
            "the 64×64 luminance itself",
        ));
    }
    if let Some(v) = &k.dct16 {
        let mut d = [[0f32; 16]; 16];
        for (row, c) in d.iter_mut().zip(v.chunks_exact(16)) {
            row.copy_from_slice(c);
        }
        let img = scanlab_pdq::dct::idct16_to_64(&d);
        return Some((
            from_64(&img).normalized(),
            "inverse DCT of the 16×16 coefficients",
        ));
    }
    let h = k.hashes.first()?;
    let img = scanlab_pdq::dct::idct16_to_64(&scanlab_pdq::dct::hash_signs(h));
    Some((
        from_64(&img).normalized(),
        "inverse DCT of the hash's sign pattern",
    ))
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
        match (r.kind, r.endpoint.as_str()) {
            (
                RecordKind::Received,
                "POST /v1/scan" | "POST /v1/scheme/message" | "POST /v1/report",
            ) => scan_bytes += r.len,
            (RecordKind::Received, "POST /v1/review") => review_bytes += r.len,
            // An image that reached the review queue from another party (an enclave's forward)
            // comes from outside; the provider's own move of an image it already holds does not.
            (RecordKind::Internal, "review") if r.who.as_deref() != Some("provider") => {
                review_bytes += r.len
            }
            (RecordKind::Received, "POST /v1/messages") => {
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

    // What the provider's records hold of each innocent image. A 256-bit value counts as that
    // image's hash only if it is within the radius of the image's PDQ hash: a scheme-blind
    // decoder reads any 32 bytes as a possible hash (a SHA-256 receipt too), and a value ~128
    // bits from the image tells nothing about it.
    let known = provider_knowledge(o);
    let truth = |s: &crate::sim::Send| match s.tag {
        Tag::Background(j) => Some(w.photos[w.background[j]].hash),
        Tag::Leaked { .. } => Some(w.photos[w.leaked].hash),
        _ => None,
    };
    let of_image = |s: &crate::sim::Send| -> Option<Knowledge> {
        let mut k = known.get(&s.blob)?.clone();
        if let Some(t) = truth(s) {
            k.hashes
                .retain(|h| h.distance(&t) <= scanlab_schemes::DEFAULT_RADIUS);
        }
        Some(k)
    };

    // Reconstruction of unmatched background images.
    let mut rec: Option<(&'static str, Vec<(f64, f64)>)> = None;
    for s in background.iter().filter(|s| !is_flagged(s)).take(8) {
        let Tag::Background(j) = s.tag else { continue };
        let Some((g, method)) = of_image(s).as_ref().and_then(rebuild) else {
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

    // Linkage of the leaked document, which no list holds: every blob whose decoded contents
    // give a perceptual hash within the radius of the document's.
    let target = w.photos[w.leaked].hash;
    let content: BTreeSet<String> = known
        .iter()
        .filter(|(_, k)| {
            k.perceptual_hashes()
                .iter()
                .any(|h| h.distance(&target) <= scanlab_schemes::DEFAULT_RADIUS)
        })
        .map(|(b, _)| b.clone())
        .collect();
    // The provider knows the padding rule: it links every blob in the copy's size bucket.
    let size_of_copy = scanlab_messenger::mls::padded_len(w.photos[w.leaked].sent.len())
        + scanlab_messenger::mls::BLOB_OVERHEAD;
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
    let count = |f: &dyn Fn(&crate::sim::Send) -> bool| innocent.iter().filter(|s| f(s)).count();
    let has =
        |s: &crate::sim::Send, f: &dyn Fn(&Knowledge) -> bool| of_image(s).is_some_and(|k| f(&k));
    let plaintext = count(&|s| has(s, &|k| k.plaintext.is_some()));
    let thumbnail = count(&|s| has(s, &|k| k.luma64.is_some() || k.dct16.is_some()));
    let hashed = count(&|s| has(s, &|k| !k.hashes.is_empty()));
    // Each secret a party holds, stolen: the same analyst, now holding that key.
    let stolen_key: BTreeMap<String, f64> = o
        .secrets
        .iter()
        .map(|secret| {
            let k = Analyst::new(&o.blobs, vec![secret]).read(&o.view, &o.reviews);
            let opened = count(&|s| k.get(&s.blob).is_some_and(|k| k.plaintext.is_some()));
            (secret.holder.clone(), frac(opened))
        })
        .collect();

    SchemeMeasures {
        code: o.code.clone(),
        name: o.name.clone(),
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
            stolen_key,
        },
        device_state_bytes: o.scheme_params_len,
    }
}
