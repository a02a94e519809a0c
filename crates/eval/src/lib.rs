//! `scanlab evaluate`: every detection scheme measured on one workload, through the real code.
//!
//! The Commission's 2020 paper scored its options by opinion and never defined privacy. This
//! crate measures them instead:
//!
//! - [`workload`]: the corpus images as users send them, the stand-in list, edited copies, a
//!   leaked document and a protest poster, all drawn with one seed;
//! - [`sim`]: each scheme deployed for real (messenger clients and provider, in process);
//! - [`analysis`]: what each provider received and can compute from it, read from its records;
//! - [`stats`]: false positives and their projection to 4.5 billion photos a day;
//! - [`compare`]: PDQ beside pHash, dHash and aHash, recall and false positives across radii;
//! - [`tee`]: what the enclave scheme rests on (its allow-list, the vendor key), exercised;
//! - [`audit`]: whether the auditable list catches a poisoned list;
//! - [`report`]: `results.json`, CSVs and `report.html`.
//!
//! The same seed gives the same `results.json`, except the `timings` section.
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod adversary;
pub mod analysis;
pub mod analyst;
pub mod attacks;
pub mod audit;
pub mod compare;
pub mod distinguish;
pub mod noncompliant;
pub mod packaging;
pub mod report;
pub mod sim;
pub mod stats;
pub mod tee;
pub mod video;
pub mod workload;

use rayon::prelude::*;
use scanlab_hashlist::{Entry, HashList};
use scanlab_schemes::Scheme;
use std::path::PathBuf;
use std::sync::Arc;

/// The `results.json` schema version.
pub const SCHEMA: &str = "scanlab-evaluate/1";

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The corpus is missing or unreadable.
    #[error("corpus: {0}")]
    Corpus(String),
    /// Writing outputs or temporary state failed.
    #[error("i/o: {0}")]
    Io(String),
    /// The messenger failed.
    #[error("messenger: {0}")]
    Client(#[from] scanlab_messenger::client::ClientError),
    /// The provider's storage failed.
    #[error("provider storage: {0}")]
    Store(#[from] scanlab_messenger::StoreError),
    /// A scheme could not be deployed.
    #[error("scheme: {0}")]
    Scheme(#[from] scanlab_schemes::SchemeError),
    /// A `--param` names a field a scheme of the run does not take in an evaluation.
    #[error(
        "--param {param}: {scheme} takes no such parameter in an evaluation (it takes: {takes}); run it with --schemes naming only schemes that do"
    )]
    Param {
        /// The parameter.
        param: String,
        /// The scheme.
        scheme: String,
        /// What it takes.
        takes: String,
    },
}

/// An I/O or output failure, as an [`EvalError::Io`].
pub(crate) fn io(e: impl std::fmt::Display) -> EvalError {
    EvalError::Io(e.to_string())
}

/// What to run.
#[derive(Clone)]
pub struct Config {
    /// Corpus image files.
    pub corpus: Vec<PathBuf>,
    /// Schemes to deploy, in order (usually from [`scanlab_schemes::registry`]).
    pub schemes: Vec<Arc<dyn Scheme>>,
    /// The seed of every random choice.
    pub seed: u64,
    /// The small, fast workload (CI).
    pub quick: bool,
    /// Scheme configuration for this run (`--param KEY=VALUE`), given to every scheme run;
    /// each must name the field in its [`Scheme::sim_params`].
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The command line that started this, for the report.
    pub command: String,
    /// How much work each attack on the hash may do ([`adversary`]).
    pub budget: scanlab_attack::Budget,
    /// Meta's sample videos (`vpdq-reference/videos`), matched at the hash ([`video`]); none
    /// when `None`.
    pub reference_videos: Option<PathBuf>,
}

/// Progress callbacks, so the library stays free of any UI.
pub trait Progress: Sync {
    /// A phase starts with `total` steps.
    fn phase(&self, name: &str, total: u64);
    /// One step done.
    fn tick(&self);
}

/// The workload's size, as run.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct WorkloadSummary {
    /// Corpus images.
    pub corpus_images: usize,
    /// List images (plus the poster in the poisoned list).
    pub list_images: usize,
    /// Background images.
    pub background_images: usize,
    /// Edited copies sent per scheme.
    pub edited_copies: usize,
    /// Edit kinds.
    pub edit_kinds: Vec<String>,
    /// Edit strengths.
    pub strengths: Vec<f32>,
    /// Users per scheme.
    pub users: usize,
    /// Members per chat.
    pub chat_size: usize,
    /// Longer side and JPEG quality of a photo as sent.
    pub send_max_side: u32,
    /// JPEG quality as sent.
    pub send_quality: i32,
    /// JPEG quality of an edited copy as sent.
    pub edit_quality: i32,
    /// What the list holds: the PDQ hashes of the original corpus files.
    pub list_holds: String,
    /// Chats each user belongs to.
    pub chats_per_user: usize,
    /// Probability that a holder forwards a cascading image.
    pub forward_p: f64,
    /// Cascade depth (hops after the first send).
    pub cascade_hops: usize,
    /// Probability that a forward is re-encoded.
    pub recompress_p: f64,
    /// JPEG quality of a re-encoded forward.
    pub recompress_quality: i32,
    /// Match radius.
    pub radius: u32,
    /// Leaked-document holders (same in every scheme: the cascade is seeded).
    pub leaked_holders: usize,
    /// Poster holders.
    pub poster_holders: usize,
}

/// One line of the sanity table.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Sanity {
    /// What.
    pub quantity: String,
    /// Our figure.
    pub measured: String,
    /// The published one, with its source.
    pub published: String,
}

/// Wall-clock figures of one scheme (not reproducible; excluded from determinism).
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Timing {
    /// Scheme name.
    pub scheme: String,
    /// Client-half ms per image sent: every hook, the sender's and each recipient's.
    pub client_ms: f64,
    /// Provider-half ms per image sent: every hook.
    pub provider_ms: f64,
    /// Whole run, seconds.
    pub run_seconds: f64,
}

/// All timings.
#[derive(Clone, Debug, Default, serde::Serialize, schemars::JsonSchema)]
pub struct Timings {
    /// Per scheme.
    pub schemes: Vec<Timing>,
    /// The whole evaluation, seconds.
    pub total_seconds: f64,
}

/// One gallery tile.
#[derive(Clone, Debug)]
pub struct Tile {
    /// Heading.
    pub title: String,
    /// What it shows.
    pub caption: String,
    /// 128×128 PNG, base64.
    pub png_base64: String,
}

/// Everything an evaluation produces.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Results {
    /// [`SCHEMA`].
    pub schema: String,
    /// scanlab's version.
    pub version: String,
    /// The command that produced this.
    pub command: String,
    /// The seed.
    pub seed: u64,
    /// Scheme configuration set for this run (`--param`), empty for the defaults. The
    /// provider-attack rows deploy each scheme with its defaults whatever this holds.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Quick run?
    pub quick: bool,
    /// The workload.
    pub workload: WorkloadSummary,
    /// Per-scheme measures.
    pub schemes: Vec<analysis::SchemeMeasures>,
    /// False positives.
    pub false_positives: stats::FalsePositives,
    /// PDQ beside pHash, dHash and aHash.
    pub comparison: compare::Comparison,
    /// The poisoning audit.
    pub audit: audit::AuditResults,
    /// A malicious provider against each scheme's clients.
    pub provider_attacks: attacks::Attacks,
    /// The enclave scheme's allow-list and vendor key exercised (when it is run).
    pub enclave_trust: Option<tee::EnclaveTrust>,
    /// Each scheme against a sender whose client skips the scan or scans a decoy.
    pub noncompliant: noncompliant::Noncompliant,
    /// Attacks on the hash: evasion, collision, framing and poisoning by collision.
    pub adversary: adversary::Adversary,
    /// The list images sent packaged: as a file, zipped, pre-encrypted, split.
    pub packaging: packaging::Packaging,
    /// Video: clips made from the photos, their edits, and every scheme on them.
    pub video: video::VideoResults,
    /// Ours against published figures.
    pub sanity: Vec<Sanity>,
    /// Metric definitions.
    pub definitions: Vec<(String, String)>,
    /// Wall-clock figures.
    pub timings: Timings,
    /// The gallery (in the HTML only).
    #[serde(skip)]
    pub gallery: Vec<Tile>,
}

/// The JSON Schema of `results.json`, generated from these types and their doc comments. The
/// repository keeps it as `schema/results.schema.json` (a test checks the two agree and that a
/// run's output validates against the file).
pub fn results_schema() -> serde_json::Value {
    let mut s = serde_json::to_value(schemars::schema_for!(Results)).unwrap_or_default();
    if let Some(o) = s.as_object_mut() {
        o.insert(
            "$id".into(),
            "https://scanlab.invalid/schema/results.schema.json".into(),
        );
        o.insert("title".into(), format!("{SCHEMA} results.json").into());
    }
    s
}

/// Every metric's definition, printed in the report and stored in `results.json`.
pub const DEFINITIONS: &[(&str, &str)] = &[
    (
        "recall",
        "copies of list images that reached the provider's review queue, divided by copies sent; per edit kind and strength. The list holds the PDQ hashes of the original files; \"as sent\" is the image after the messenger's own resize and recompression, and every edit is made to that and sent again",
    ),
    ("evasion", "1 − recall, over all edited copies"),
    (
        "false positives (live)",
        "background (unlisted) images sent in the run that reached the review queue",
    ),
    (
        "false positives (pairs)",
        "pairs of distinct corpus originals within the radius: the empirical rate with its Clopper–Pearson interval, and a lattice model of the even distances (the random-hash null tilted to the observed mean and spread) with a bootstrap interval over images and a check of its lower tail; projection N·(1 − (1 − p)^L)",
    ),
    (
        "extra bytes per image",
        "bytes of /v1/scan and /v1/review requests plus scheme fields of /v1/messages, as recorded in the provider view, divided by image sends",
    ),
    (
        "reconstruction",
        "the provider's best image from what it recorded for every unmatched background photo, SSIM (7×7 window, Wang et al. 2004) and PSNR against the 64×64 luminance of the image as sent, with bootstrap intervals; beside two nulls that know nothing of the image (the mean of the other photos, another photo's reconstruction), and the per-image margin over the better null",
    ),
    (
        "linkage",
        "fraction of the leaked document's holders (senders and recipients) who uploaded or downloaded a blob the provider links to the document by content (recorded hash within the radius, or recovered plaintext) or by exact encrypted size",
    ),
    (
        "chosen images",
        "each unlisted image of the run in turn (every background photo and the leaked document) is a target the provider chooses, searched for by its original's PDQ hash: the targets with a holder named from the provider's records alone (Wilson interval), the mean share of holders named, and the mean precision of those named",
    ),
    (
        "poisoning",
        "fraction of the poster's holders linked to flagged poster blobs once the poster is on the list",
    ),
    (
        "exposure",
        "fraction of image sends whose plaintext, 64×64 thumbnail or hash the provider's data yields; and that a stolen enclave or escrow key opens",
    ),
    (
        "cost",
        "wall-clock time inside each scheme's client half and provider half (every hook of each), per image sent",
    ),
];

fn sizes(quick: bool) -> (workload::Size, usize) {
    if quick {
        (
            workload::Size {
                list: 8,
                background: 24,
                strengths: vec![0.25, 0.5, 0.75],
            },
            32,
        )
    } else {
        (
            workload::Size {
                list: 24,
                background: 96,
                strengths: vec![0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0],
            },
            96,
        )
    }
}

fn tile(title: &str, caption: &str, g: &image::GrayImage) -> Tile {
    use base64::Engine;
    let big = image::imageops::resize(g, 128, 128, image::imageops::FilterType::Nearest);
    let mut png = Vec::new();
    let _ = big.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png);
    Tile {
        title: title.into(),
        caption: caption.into(),
        png_base64: base64::engine::general_purpose::STANDARD.encode(png),
    }
}

/// Runs the evaluation.
pub fn run(cfg: &Config, progress: &dyn Progress) -> Result<Results, EvalError> {
    let started = std::time::Instant::now();
    for s in &cfg.schemes {
        if let Some(p) = cfg
            .params
            .keys()
            .find(|p| !s.sim_params().contains(&p.as_str()))
        {
            return Err(EvalError::Param {
                param: p.clone(),
                scheme: s.name().into(),
                takes: match s.sim_params() {
                    [] => "none".into(),
                    t => t.join(", "),
                },
            });
        }
    }
    let (size, users) = sizes(cfg.quick);
    let per_image = size.strengths.len() * scanlab_imaging::EditKind::ALL.len();
    progress.phase(
        "preparing images",
        (cfg.corpus.len() + size.list * per_image) as u64,
    );
    let w = workload::Workload::build(&cfg.corpus, &size, cfg.seed, &|| progress.tick())?;

    // A real list holds the hashes of the originals, not of what a messenger made of them: the
    // send path (resize, recompression) is part of the measured chain.
    let entry = |id: u64, p: usize, label: &str| Entry::new(id, w.photos[p].original_hash, label);
    let mut list = HashList {
        entries: w
            .list
            .iter()
            .enumerate()
            .map(|(i, &p)| entry(i as u64 + 1, p, "stand-in"))
            .collect(),
    };
    list.entries.push(entry(
        w.list.len() as u64 + 1,
        w.poster,
        "poster (poisoned)",
    ));

    let sends_per_scheme = (size.list + w.edited.len() + size.background + 40) as u64;
    progress.phase(
        "running the schemes through the messenger",
        sends_per_scheme * cfg.schemes.len() as u64,
    );
    let outcomes: Vec<sim::Outcome> = cfg
        .schemes
        .par_iter()
        .map(|s| {
            sim::run(
                &**s,
                &w,
                list.clone(),
                users,
                &cfg.params,
                cfg.seed,
                &|| progress.tick(),
            )
        })
        .collect::<Result<_, _>>()?;

    progress.phase("comparing hashes", (w.list.len() + w.edited.len()) as u64);
    let comparison = compare::run(&w, &|| progress.tick())?;
    progress.phase("analysing", outcomes.len() as u64 + 1);
    let schemes: Vec<analysis::SchemeMeasures> = outcomes
        .par_iter()
        .map(|o| {
            let m = analysis::measure(o, &w, &comparison.pdq_edited, cfg.seed);
            progress.tick();
            m
        })
        .collect();
    let originals: Vec<_> = w.photos.iter().map(|p| p.original_hash).collect();
    let fp = stats::false_positives(
        &originals,
        scanlab_schemes::DEFAULT_RADIUS,
        &[list.entries.len() as u64, 1_000_000, 3_500_000],
        stats::PHOTOS_PER_DAY,
        cfg.seed,
    );
    let audit = audit::run(
        &w.list
            .iter()
            .map(|&p| w.photos[p].original_hash)
            .collect::<Vec<_>>(),
        w.photos[w.poster].original_hash,
    );
    let provider_attacks = attacks::run(&cfg.schemes, &list, &w.photos[w.background[0]].sent)?;
    // Every list image, as sent: enough for S7's threshold of 3 to be reached.
    let listed_sent: Vec<Vec<u8>> = w.list.iter().map(|&p| w.photos[p].sent.clone()).collect();
    let noncompliant = noncompliant::run(
        &cfg.schemes,
        &list,
        &listed_sent,
        &w.photos[w.background[0]].sent,
    )?;
    let packaging = packaging::run(&cfg.schemes, &list, &listed_sent)?;

    let clips = if cfg.quick { 4 } else { 12 };
    progress.phase(
        "making video clips",
        (2 * clips + clips * video::EDITS.len()) as u64,
    );
    let photos_of =
        |set: &[usize]| -> Vec<&[u8]> { set.iter().map(|&p| &w.photos[p].sent[..]).collect() };
    let vw = video::VideoWorkload::build(
        &photos_of(&w.list),
        &photos_of(&w.background),
        clips,
        cfg.seed,
        &|| progress.tick(),
    )?;
    progress.phase(
        "sending video through the schemes",
        ((vw.listed.len() + vw.edited.len() + vw.background.len()) * cfg.schemes.len()) as u64,
    );
    let list_hashes: Vec<_> = list.entries.iter().map(|e| e.hash).collect();
    let video = video::run(
        &cfg.schemes,
        &list,
        &vw,
        &list_hashes,
        cfg.reference_videos.as_deref(),
        &|| progress.tick(),
    )?;
    progress.phase(
        "attacking the hash",
        (w.list.len() + cfg.schemes.len()) as u64,
    );
    let adversary = adversary::run(&cfg.schemes, &w, &list, cfg.budget, cfg.seed, &|| {
        progress.tick()
    })?;
    let trust_images: Vec<Vec<u8>> = w
        .background
        .iter()
        .take(if cfg.quick { 4 } else { 12 })
        .map(|&p| w.photos[p].sent.clone())
        .collect();
    let enclave_trust = match cfg
        .schemes
        .iter()
        .find(|s| s.name() == scanlab_schemes::enclave::EnclaveScheme.name())
    {
        Some(s) => Some(tee::run(s.code(), &list, &trust_images)?),
        None => None,
    };
    progress.tick();

    // The gallery: the first unmatched background image, and each provider's rebuild.
    let mut gallery = Vec::new();
    if let Some(first) = outcomes.first() {
        let bg = first
            .sends
            .iter()
            .find(|s| matches!(s.tag, sim::Tag::Background(0)));
        if bg.is_some() {
            let orig = &w.photos[w.background[0]].rgb;
            gallery.push(tile(
                "original",
                "what the sender sent (64×64 luminance)",
                &scanlab_imaging::quality::Gray::from_rgb(orig)
                    .resize_area(64, 64)
                    .to_luma8(),
            ));
        }
        for o in &outcomes {
            let Some(send) = o
                .sends
                .iter()
                .find(|s| matches!(s.tag, sim::Tag::Background(0)))
            else {
                continue;
            };
            let title = format!("{} {}", o.code, o.name);
            let known = analysis::provider_knowledge(o);
            match known.get(&send.blob).and_then(analysis::rebuild) {
                Some((g, how, _)) => gallery.push(tile(&title, how, &g.to_luma8())),
                None => gallery.push(tile(
                    &title,
                    "nothing readable in its records",
                    &image::GrayImage::from_pixel(64, 64, image::Luma([128])),
                )),
            }
        }
    }

    // The first scheme that flagged anything carries the hash's recall.
    let matching = schemes.iter().find(|s| s.recall_as_sent > 0.0);
    let mean_of = |kind: &str| {
        matching
            .map(|s| {
                let v: Vec<f64> = s
                    .recall
                    .iter()
                    .filter(|p| p.edit == kind)
                    .map(|p| p.recall)
                    .collect();
                format!(
                    "{:.1}% (mean over strengths {:?})",
                    100.0 * v.iter().sum::<f64>() / v.len().max(1) as f64,
                    w.strengths
                )
            })
            .unwrap_or_else(|| "no scheme that flags images was run".into())
    };
    let sanity = vec![
        Sanity {
            quantity: "mean PDQ distance between unrelated photos".into(),
            measured: format!("{:.1} bits (sd {:.1})", fp.mean, fp.sd),
            published: "about 128 bits (\"unrelated images average 128\", PDQ documentation as quoted at pkg.go.dev/github.com/go-perceptual/pdq)".into(),
        },
        Sanity {
            quantity: "recall under resizing".into(),
            measured: mean_of("resize"),
            published: "PDQ is designed to survive resizing and recompression (Meta, hashing.pdf); PhotoDNA is said to recognise about 98% of derived images (Farid, as quoted in the press, not a primary source; docs/sources.md)".into(),
        },
        Sanity {
            quantity: "recall under JPEG recompression".into(),
            measured: mean_of("jpeg"),
            published: "as above".into(),
        },
    ];

    let timings = Timings {
        schemes: outcomes
            .iter()
            .map(|o| Timing {
                scheme: o.name.clone(),
                client_ms: o.meter.client_ms(),
                provider_ms: o.meter.provider_ms(),
                run_seconds: o.seconds,
            })
            .collect(),
        total_seconds: started.elapsed().as_secs_f64(),
    };
    let first = outcomes.first();
    Ok(Results {
        schema: SCHEMA.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        command: cfg.command.clone(),
        seed: cfg.seed,
        params: cfg.params.clone(),
        quick: cfg.quick,
        workload: WorkloadSummary {
            corpus_images: w.photos.len(),
            list_images: w.list.len(),
            background_images: w.background.len(),
            edited_copies: w.edited.len(),
            edit_kinds: scanlab_imaging::EditKind::ALL
                .iter()
                .map(|k| k.name().to_string())
                .collect(),
            strengths: w.strengths.clone(),
            users,
            chat_size: sim::GROUP_SIZE,
            send_max_side: workload::SEND_MAX_SIDE,
            send_quality: workload::SEND_QUALITY,
            edit_quality: workload::EDIT_QUALITY,
            list_holds:
                "PDQ of each original corpus file (before the messenger's resize and recompression)"
                    .into(),
            // Read off the chats the simulation builds, not restated.
            chats_per_user: sim::chats(users)
                .iter()
                .filter(|(_, members)| members.contains(&0))
                .count(),
            forward_p: sim::FORWARD_P,
            cascade_hops: sim::CASCADE_HOPS,
            recompress_p: sim::RECOMPRESS_P,
            recompress_quality: sim::RECOMPRESS_QUALITY,
            radius: scanlab_schemes::DEFAULT_RADIUS,
            leaked_holders: first.map_or(0, |o| o.leaked_holders.len()),
            poster_holders: first.map_or(0, |o| o.poster_holders.len()),
        },
        schemes,
        false_positives: fp,
        comparison,
        audit,
        provider_attacks,
        enclave_trust,
        noncompliant,
        adversary,
        packaging,
        video,
        sanity,
        definitions: DEFINITIONS
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        timings,
        gallery,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;
    impl Progress for Quiet {
        fn phase(&self, _: &str, _: u64) {}
        fn tick(&self) {}
    }

    #[test]
    fn a_param_a_scheme_does_not_take_is_refused_before_anything_runs() {
        let r = scanlab_schemes::registry();
        let cfg = |names: &[&str], key: &str| Config {
            corpus: Vec::new(),
            schemes: names.iter().map(|n| r.get(n).unwrap()).collect(),
            seed: 1,
            quick: true,
            params: [(key.to_string(), serde_json::Value::from(5))]
                .into_iter()
                .collect(),
            command: "test".into(),
            budget: scanlab_attack::Budget::Default,
            reference_videos: None,
        };
        // S0 takes no parameter; S7 takes a threshold but not S7f's bucket count.
        for (names, key, scheme) in [
            (&["e2ee"][..], "threshold", "e2ee"),
            (&["private-match"][..], "tables", "private-match"),
            (
                &["private-match-fuzzy", "device-hash"][..],
                "threshold",
                "device-hash",
            ),
        ] {
            match run(&cfg(names, key), &Quiet) {
                Err(EvalError::Param {
                    param, scheme: s, ..
                }) => {
                    assert_eq!((param.as_str(), s.as_str()), (key, scheme))
                }
                other => panic!("{names:?} {key}: {:?}", other.map(|_| ())),
            }
        }
        // A parameter every scheme takes passes the check (and then fails on the empty corpus).
        assert!(matches!(
            run(
                &cfg(&["private-match", "private-match-fuzzy"], "threshold"),
                &Quiet
            ),
            Err(EvalError::Corpus(_))
        ));
    }
}
