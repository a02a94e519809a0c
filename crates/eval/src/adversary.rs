//! Adversaries against the hash itself (issue 17): evasion of the listed images, collisions
//! that frame a victim, and poisoning by collision.
//!
//! - **Evasion**: every list image, as sent, attacked white-box and black-box
//!   ([`scanlab_attack`]) until its PDQ is beyond the radius of its listed hash. The black-box
//!   oracle is the list itself: "does any entry lie within the radius", all the attacker can
//!   learn from a system that flags or not.
//! - **Collision**: a benign background photo per list image, changed until its PDQ is within
//!   the radius of that listed hash, and again until it equals it (distance 0: what a scheme
//!   that matches hashes exactly needs).
//! - **Framing** through the messenger, for every scheme: Mallory sends the colliding images to
//!   a victim, who finds them harmless and forwards them to a friend. Counted from the
//!   provider's review queue by blob id (so the same for every scheme): how many of the
//!   victim's forwards reach review, and how many of Mallory's own sends do. Run twice, with one
//!   colliding image and with all of them, so that a scheme that needs several matches per
//!   account (a threshold) shows whether it stops the attack; and both again with exact
//!   collisions.
//! - **Poisoning by collision**: the protest poster changed until it collides with a list entry
//!   that organisations vouched for a different image. The list does not change, so no audit of
//!   the list can catch it; per scheme, whether the poster copy reaches review when one user
//!   sends it to another.
//!
//! Every success is judged by re-hashing the image with scanlab's PDQ (which the attack crate's
//! tests check against PyPI `pdqhash`), and every image travels as PNG, so what a device hashes
//! is what the attack made.

use crate::EvalError;
use crate::stats::wilson;
use crate::workload::{SEND_QUALITY, Workload};
use rayon::prelude::*;
use scanlab_attack::{Budget, Outcome, blackbox, whitebox};
use scanlab_hashlist::HashList;
use scanlab_pdq::Hash256;
use scanlab_schemes::Scheme;
use std::collections::BTreeSet;
use std::sync::Arc;

/// One attack over every list image.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct AttackSummary {
    /// `evade-white`, `evade-black`, `collide` (within the radius) or `collide-exact`
    /// (distance 0).
    pub attack: String,
    /// `default` or `large`.
    pub budget: String,
    /// What the budget allows: hashes (white-box) or oracle queries (black-box).
    pub budget_units: u32,
    /// Images attacked.
    pub attempted: usize,
    /// Of those, successes (judged by re-hashing).
    pub succeeded: usize,
    /// Wilson 95% interval of the success rate.
    pub rate_ci: [f64; 2],
    /// Of the successes, how many still succeed after the image is re-encoded as JPEG at the
    /// send quality (an attacker who cannot choose the encoding).
    pub survive_jpeg: usize,
    /// Median over successes: PSNR (dB, RGB).
    pub median_psnr: Option<f64>,
    /// Median over successes: SSIM.
    pub median_ssim: Option<f64>,
    /// Median over successes: L2 (0..=1 scale).
    pub median_l2: Option<f64>,
    /// Median over successes: L∞ (0..=255).
    pub median_linf: Option<f64>,
    /// Median cost (hashes or queries) over all attempts.
    pub median_cost: f64,
    /// Slowest attempt, seconds on one core.
    pub max_seconds: f64,
}

/// Framing one victim under one scheme.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct FramingRow {
    /// The scheme's code.
    pub scheme: String,
    /// Colliding images Mallory sent.
    pub sent: usize,
    /// Of those, what the victim received and forwarded.
    pub forwarded: usize,
    /// The victim's forwards that reached the provider's review queue.
    pub victim_reviewed: usize,
    /// Mallory's own sends that reached it.
    pub attacker_reviewed: usize,
}

/// Recall under attack, under one scheme: every attacked copy (successful or not) sent.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct EvadedRow {
    /// The scheme's code.
    pub scheme: String,
    /// White-box copies sent.
    pub white_sent: usize,
    /// Of those, reaching review.
    pub white_reviewed: usize,
    /// Black-box copies sent.
    pub black_sent: usize,
    /// Of those, reaching review.
    pub black_reviewed: usize,
}

/// The poster made to collide with a vouched entry, under one scheme.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct PoisonRow {
    /// The scheme's code.
    pub scheme: String,
    /// Whether the colliding poster reached review when sent.
    pub reached_review: bool,
}

/// Everything this module measures.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Adversary {
    /// Match radius attacked.
    pub radius: u32,
    /// White-box evasion, black-box evasion, collision, exact collision.
    pub attacks: Vec<AttackSummary>,
    /// Every evading copy sent through each scheme: what reaches review.
    pub evaded: Vec<EvadedRow>,
    /// One colliding image sent to the victim, per scheme.
    pub framing_one: Vec<FramingRow>,
    /// Every colliding image sent, per scheme.
    pub framing_all: Vec<FramingRow>,
    /// As `framing_one`, with an exact collision (distance 0): what a scheme matching hashes
    /// exactly sees.
    pub exact_one: Vec<FramingRow>,
    /// As `framing_all`, with exact collisions.
    pub exact_all: Vec<FramingRow>,
    /// The poster's collision with a list entry vouched for another image: its distance to
    /// that entry, PSNR, and whether it succeeded.
    pub poison_collision: Option<ImageResult>,
    /// Per scheme, whether the colliding poster reached review.
    pub poisoning: Vec<PoisonRow>,
    /// What these figures cannot show.
    pub limits: String,
    /// Per attacked list image (the first few), for the gallery and for inspection.
    #[serde(skip)]
    pub examples: Vec<Example>,
}

/// One attack's result on one image.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ImageResult {
    /// Success.
    pub success: bool,
    /// Distance from the reference hash.
    pub distance: u32,
    /// PSNR, dB.
    pub psnr: f64,
    /// SSIM.
    pub ssim: f64,
}

/// The images of one list image's attacks (not serialised: the CLI writes them as PNG).
#[derive(Clone, Debug)]
pub struct Example {
    /// The list image as sent.
    pub original: scanlab_imaging::RgbImage,
    /// White-box evasion.
    pub evade_white: Outcome,
    /// Black-box evasion.
    pub evade_black: Outcome,
    /// The benign photo collided with it.
    pub source: scanlab_imaging::RgbImage,
    /// The collision.
    pub collide: Outcome,
}

fn png(img: &scanlab_imaging::RgbImage) -> Result<Vec<u8>, EvalError> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(crate::io)?;
    Ok(out)
}

use image::ImageEncoder as _;

use crate::stats::median;

fn summarise(
    attack: &str,
    budget: Budget,
    units: u32,
    runs: &[(Outcome, f64)],
    survive_jpeg: usize,
) -> AttackSummary {
    let wins: Vec<&Outcome> = runs.iter().map(|(o, _)| o).filter(|o| o.success).collect();
    let m = |f: &dyn Fn(&Outcome) -> f64| median(wins.iter().map(|o| f(o)).collect());
    AttackSummary {
        attack: attack.into(),
        budget: budget.name().into(),
        budget_units: units,
        attempted: runs.len(),
        succeeded: wins.len(),
        rate_ci: wilson(wins.len(), runs.len()),
        survive_jpeg,
        median_psnr: m(&|o| o.change.psnr),
        median_ssim: m(&|o| o.change.ssim),
        median_l2: m(&|o| o.change.l2),
        median_linf: m(&|o| o.change.linf as f64),
        median_cost: median(runs.iter().map(|(o, _)| o.cost as f64).collect()).unwrap_or(0.0),
        max_seconds: runs.iter().map(|(_, s)| *s).fold(0.0, f64::max),
    }
}

fn timed(
    f: impl FnOnce() -> Result<Outcome, scanlab_attack::AttackError>,
) -> Result<(Outcome, f64), EvalError> {
    let t = std::time::Instant::now();
    let o = f().map_err(crate::io)?;
    Ok((o, t.elapsed().as_secs_f64()))
}

/// Sends `images` from Mallory to a victim who forwards what arrives, under `scheme`.
fn framing(
    scheme: &dyn Scheme,
    list: &HashList,
    images: &[Vec<u8>],
) -> Result<FramingRow, EvalError> {
    let d = crate::attacks::deploy(scheme, list)?;
    // Each client its own randomness: two clients seeded alike would send identical vouchers
    // for one image, which a provider rightly refuses as a replay.
    let who = [("mallory", 1), ("victim", 2), ("friend", 3)];
    let mut clients = crate::attacks::users(scheme, &d, &who, |_, h| h)?;
    let [mallory, victim, friend] = &mut clients[..] else {
        return Err(EvalError::Io("three clients".into()));
    };
    mallory.create_chat("to-victim", &["victim"])?;
    victim.recv()?;
    victim.create_chat("to-friend", &["friend"])?;
    friend.recv()?;
    let mut theirs = BTreeSet::new();
    let mut sent = 0;
    for img in images {
        if let Ok(s) = mallory.send_detailed("to-victim", None, Some(img)) {
            sent += 1;
            theirs.extend(s.blob);
        }
    }
    let mut mine = BTreeSet::new();
    let mut forwarded = 0;
    for m in victim.recv()?.into_iter().flatten() {
        let Some(path) = m.image else { continue };
        let bytes = std::fs::read(&path).map_err(crate::io)?;
        if let Ok(s) = victim.send_detailed("to-friend", None, Some(&bytes)) {
            forwarded += 1;
            mine.extend(s.blob);
        }
    }
    friend.recv()?;
    let reviewed: BTreeSet<String> = d.provider.reviews()?.into_iter().map(|r| r.blob).collect();
    Ok(FramingRow {
        scheme: scheme.code().into(),
        sent,
        forwarded,
        victim_reviewed: mine.intersection(&reviewed).count(),
        attacker_reviewed: theirs.intersection(&reviewed).count(),
    })
}

/// Runs every attack at `budget` against the list images of `w` (listed in `list`), then the
/// framing and poisoning scenarios for every scheme.
pub fn run(
    schemes: &[Arc<dyn Scheme>],
    w: &Workload,
    list: &HashList,
    budget: Budget,
    seed: u64,
    tick: &(dyn Fn() + Sync),
) -> Result<Adversary, EvalError> {
    let radius = scanlab_schemes::DEFAULT_RADIUS;
    let listed: Vec<Hash256> = list.entries.iter().map(|e| e.hash).collect();
    let matched = |h: &Hash256| listed.iter().any(|l| l.distance(h) <= radius);
    let per_image: Vec<_> = w
        .list
        .par_iter()
        .enumerate()
        .map(|(i, &p)| {
            let photo = &w.photos[p];
            let reference = photo.original_hash;
            let white = timed(|| whitebox::evade(&photo.rgb, &reference, radius, budget))?;
            let mut oracle = |img: &scanlab_imaging::RgbImage| matched(&scanlab_attack::pdq(img));
            let black = timed(|| {
                blackbox::evade(
                    &photo.rgb,
                    &reference,
                    &mut oracle,
                    budget,
                    seed ^ (i as u64) << 8,
                )
            })?;
            let source = &w.photos[w.background[i % w.background.len()]].rgb;
            let col = timed(|| whitebox::collide(source, &reference, radius, budget))?;
            let exact = timed(|| whitebox::collide(source, &reference, 0, budget))?;
            tick();
            Ok((photo.rgb.clone(), white, black, source.clone(), col, exact))
        })
        .collect::<Result<_, EvalError>>()?;
    let column = |k: usize| -> Vec<(Outcome, f64)> {
        per_image
            .iter()
            .map(|r| match k {
                0 => r.1.clone(),
                1 => r.2.clone(),
                2 => r.4.clone(),
                _ => r.5.clone(),
            })
            .collect()
    };
    let refs: Vec<Hash256> = w.list.iter().map(|&p| w.photos[p].original_hash).collect();
    let mut attacks = Vec::new();
    for (k, name, units) in [
        (0, "evade-white", budget.iterations()),
        (1, "evade-black", budget.queries()),
        (2, "collide", budget.iterations()),
        (3, "collide-exact", budget.iterations()),
    ] {
        let runs = column(k);
        // Each success re-encoded, judged against its own reference.
        let mut survive = 0;
        for ((o, _), r) in runs.iter().zip(&refs) {
            if !o.success {
                continue;
            }
            let bytes =
                scanlab_imaging::edits::encode_jpeg(&o.image, SEND_QUALITY).map_err(crate::io)?;
            let back = scanlab_imaging::decode(&bytes, &Default::default()).map_err(crate::io)?;
            let d = scanlab_attack::pdq(&back).distance(r);
            let within = if k == 3 { 0 } else { radius };
            if (k < 2 && d > radius) || (k >= 2 && d <= within) {
                survive += 1;
            }
        }
        attacks.push(summarise(name, budget, units, &runs, survive));
    }

    let successes = |k: usize| -> Result<Vec<Vec<u8>>, EvalError> {
        column(k)
            .iter()
            .filter(|(o, _)| o.success)
            .map(|(o, _)| png(&o.image))
            .collect()
    };
    let (collisions, exact) = (successes(2)?, successes(3)?);
    let (mut framing_one, mut framing_all) = (Vec::new(), Vec::new());
    let (mut exact_one, mut exact_all) = (Vec::new(), Vec::new());
    // The poster, collided with the first list entry (vouched for another image).
    let poster = &w.photos[w.poster];
    let poison = whitebox::collide(&poster.rgb, &refs[0], radius, budget).map_err(crate::io)?;
    let poison_bytes = png(&poison.image)?;
    let mut poisoning = Vec::new();
    let copies = |k: usize| -> Result<Vec<Vec<u8>>, EvalError> {
        column(k).iter().map(|(o, _)| png(&o.image)).collect()
    };
    let (white_copies, black_copies) = (copies(0)?, copies(1)?);
    let mut evaded = Vec::new();
    for s in schemes {
        let (white, black) = (
            framing(&**s, list, &white_copies)?,
            framing(&**s, list, &black_copies)?,
        );
        evaded.push(EvadedRow {
            scheme: s.code().into(),
            white_sent: white.sent,
            white_reviewed: white.attacker_reviewed,
            black_sent: black.sent,
            black_reviewed: black.attacker_reviewed,
        });
        if !collisions.is_empty() {
            framing_one.push(framing(&**s, list, &collisions[..1])?);
            framing_all.push(framing(&**s, list, &collisions)?);
        }
        if !exact.is_empty() {
            exact_one.push(framing(&**s, list, &exact[..1])?);
            exact_all.push(framing(&**s, list, &exact)?);
        }
        let row = framing(&**s, list, std::slice::from_ref(&poison_bytes))?;
        poisoning.push(PoisonRow {
            scheme: s.code().into(),
            reached_review: row.attacker_reviewed > 0,
        });
        tick();
    }
    let examples = per_image
        .into_iter()
        .take(4)
        .map(|(original, white, black, source, col, _)| Example {
            original,
            evade_white: white.0,
            evade_black: black.0,
            source,
            collide: col.0,
        })
        .collect();
    Ok(Adversary {
        radius,
        poison_collision: Some(ImageResult {
            success: poison.success,
            distance: poison.distance,
            psnr: poison.change.psnr,
            ssim: poison.change.ssim,
        }),
        attacks,
        evaded,
        framing_one,
        framing_all,
        exact_one,
        exact_all,
        poisoning,
        limits: format!(
            "{} list images, each attacked once per attack at the {} budget, at their size as sent (longer side ≤ {} px); images travel as PNG. Success is judged by scanlab's PDQ against the listed hash (evasion) or the target (collision); no human judged whether content was kept, so read PSNR and SSIM beside each rate. The black-box attack is a plain random search, a floor for what an oracle gives; the published attacks differ in method and data (ImageNet). Framing counts reviews only: a human reviewer would see a benign-looking image, and what follows a review is not modelled.",
            w.list.len(),
            budget.name(),
            crate::workload::SEND_MAX_SIDE
        ),
        examples,
    })
}
