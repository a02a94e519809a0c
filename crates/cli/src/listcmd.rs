//! `scanlab list ...` and `scanlab match ...`: building hash lists and matching against them.

use crate::files;
use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use scanlab_hashlist::{Entry, HashKind, HashList, MihIndex};
use scanlab_imaging::pdq_image;
use scanlab_pdq::{Hash256, Hasher};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum ListFormat {
    /// CSV with a header (pdq,id,label,vouched_by,added,quality).
    Csv,
    /// JSON lines, one entry per line.
    Jsonl,
    /// The compact binary form, for devices.
    Bin,
    /// `pdq <hex>` lines: what ThreatExchange's local-file collaboration loads (hashes only).
    #[value(alias = "te")]
    Threatexchange,
}

#[derive(Subcommand)]
pub enum ListCmd {
    /// Hash images into a new list. In scanlab a list is always built from benign stand-ins.
    Build {
        /// Where to write the list (`-` for stdout).
        #[arg(long)]
        out: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: ListFormat,
        /// Label for every entry (a stand-in category, e.g. `known` or `poster`).
        #[arg(long, default_value = "known")]
        label: String,
        /// Organisation vouching for every entry (repeatable).
        #[arg(long = "vouched-by")]
        vouched_by: Vec<String>,
        /// Leave out images whose PDQ quality is below this (0 keeps all): featureless images
        /// give hashes that match unrelated ones. 50 is ThreatExchange's and HMA's threshold.
        #[arg(long, default_value_t = scanlab_hashlist::list::MIN_QUALITY)]
        min_quality: u8,
        #[command(flatten)]
        decode: crate::DecodeArgs,
        #[command(flatten)]
        files_from: files::FilesFrom,
        /// Images or folders.
        #[arg(required_unless_present = "files_from")]
        paths: Vec<PathBuf>,
    },
    /// Append hashes to an auditable list log (created on first use), then publish and print
    /// a new signed tree head. Each entry needs vouchers from --k organisations in distinct
    /// jurisdictions (stand-in organisations, simulated in the log folder).
    Add {
        /// The log folder.
        #[arg(long)]
        log: PathBuf,
        /// Stand-in organisations for a new log, NAME:JURISDICTION (repeatable).
        #[arg(long = "org", default_values = ["standin-us:US", "standin-uk:UK", "standin-ca:CA"])]
        orgs: Vec<String>,
        /// Distinct jurisdictions each entry needs, for a new log.
        #[arg(long, default_value_t = 2)]
        k: usize,
        /// Organisations that vouch for these entries (default: all).
        #[arg(long = "vouch")]
        vouch: Vec<String>,
        /// Label of the entries.
        #[arg(long, default_value = "known")]
        label: String,
        #[command(flatten)]
        input: QueryInputs,
    },
    /// Prove that a hash (or an image's hash) is, or is not, in the current list version:
    /// prints a JSON proof bundle that `list verify` checks.
    Prove {
        /// The log folder.
        #[arg(long)]
        log: PathBuf,
        /// A hash in hex, instead of an image.
        #[arg(long)]
        hash: Option<String>,
        /// An image to hash.
        image: Option<PathBuf>,
    },
    /// Verify a proof bundle as a client that pins the operator's key and the policy. Exit 0
    /// when the proof holds (prints `listed` or `not listed`), 1 when it does not.
    Verify {
        /// The operator's Ed25519 public key, hex (`operator_key` in what `list add` prints).
        #[arg(long)]
        operator_key: String,
        /// The policy file (`policy.json` in the log folder).
        #[arg(long)]
        policy: PathBuf,
        /// The proof bundle from `list prove` (`-` for stdin).
        proof: PathBuf,
    },
    /// Convert a list (CSV, JSON lines or binary) to another format, reporting duplicates.
    Export {
        /// The list to read (`-` for stdin).
        list: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: ListFormat,
    },
}

fn read_list(path: &Path) -> Result<HashList> {
    let bytes = files::read_input(path).context("reading the list")?;
    let (list, report) =
        HashList::read(&bytes).with_context(|| format!("list {}", path.display()))?;
    for (line, first) in &report.duplicates {
        files::note!(
            "{}: line {line} repeats the hash of line {first}; merged",
            path.display()
        );
    }
    for (line, why) in &report.skipped {
        files::note!("{}: line {line} left out: {why}", path.display());
    }
    Ok(list)
}

fn write_list(list: &HashList, format: ListFormat, out: &mut dyn Write) -> Result<()> {
    match format {
        ListFormat::Csv => out.write_all(list.to_csv().as_bytes())?,
        ListFormat::Jsonl => out.write_all(list.to_jsonl().as_bytes())?,
        ListFormat::Bin => out.write_all(&list.to_binary([0; 32]))?,
        ListFormat::Threatexchange => out.write_all(list.to_threatexchange().as_bytes())?,
    }
    Ok(())
}

pub fn run(cmd: ListCmd) -> Result<ExitCode> {
    match cmd {
        ListCmd::Build {
            out,
            format,
            label,
            vouched_by,
            min_quality,
            decode,
            files_from,
            paths,
        } => {
            let mut inputs = files::expand(&paths)?;
            inputs.extend(files::expand(&files_from.paths()?)?);
            let mut list = HashList::default();
            let mut seen = HashMap::new();
            let mut hasher = Hasher::new();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let (mut failed, mut low) = (0, 0);
            for p in &inputs {
                match files::decode_path(p, &decode.options()) {
                    Ok(img) => {
                        let pdq = hasher.hash(&pdq_image(&img));
                        if pdq.quality < min_quality {
                            low += 1;
                            files::note!(
                                "{}: quality {} is below --min-quality {min_quality}; not listed",
                                p.display(),
                                pdq.quality
                            );
                            continue;
                        }
                        let hash = pdq.hash;
                        let e = Entry {
                            id: list.entries.len() as u64,
                            kind: HashKind::Pdq,
                            hash,
                            label: label.clone(),
                            vouched_by: vouched_by.clone(),
                            added: now,
                            quality: Some(pdq.quality),
                        };
                        if !list.add(e, &mut seen).1 {
                            files::note!("{}: same hash as an earlier image; merged", p.display());
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("scanlab: error: {e}");
                    }
                }
            }
            if list.entries.is_empty() {
                // Leave any existing --out as it was: an empty list matches nothing.
                anyhow::bail!(
                    "no image could be hashed at quality {min_quality} or more, so no list was \
                     written ({} left as it was)",
                    out.display()
                );
            }
            // Written beside --out and renamed over it only once complete (or to stdout).
            let mut bytes = Vec::new();
            write_list(&list, format, &mut bytes)?;
            files::write_output(&out, &bytes)?;
            files::note!(
                "wrote {} entries to {}{}",
                list.entries.len(),
                if files::is_dash(&out) {
                    "stdout".into()
                } else {
                    out.display().to_string()
                },
                if low > 0 {
                    format!("; {low} images below quality {min_quality} left out")
                } else {
                    String::new()
                }
            );
            Ok(if failed > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        ListCmd::Add {
            log,
            orgs,
            k,
            vouch,
            label,
            input,
        } => {
            use scanlab_hashlist::store::LogDir;
            let mut dir = if log.join("policy.json").exists() {
                LogDir::open(&log)?
            } else {
                let orgs: Vec<(String, String)> = orgs
                    .iter()
                    .map(|o| {
                        o.split_once(':')
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                    })
                    .collect::<Option<_>>()
                    .context("--org takes NAME:JURISDICTION")?;
                LogDir::create(&log, &orgs, k)?
            };
            let vouch = if vouch.is_empty() {
                LogDir::read_policy(&log.join("policy.json"))?
                    .orgs
                    .iter()
                    .map(|o| o.name.clone())
                    .collect()
            } else {
                vouch
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut failed = 0;
            for (query, h) in queries(&input)? {
                match h {
                    Ok((h, _)) => {
                        if let Err(e) = dir.append(h, &label, &vouch, now) {
                            failed += 1;
                            eprintln!("scanlab: {query}: {e}");
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("scanlab: error: {e}");
                    }
                }
            }
            let head = dir.publish(now)?;
            files::outln!(
                "{}",
                serde_json::to_string(
                    &serde_json::json!({"operator_key": dir.operator_key_hex(), "head": head})
                )?
            )?;
            Ok(if failed > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        ListCmd::Prove { log, hash, image } => {
            let dir = scanlab_hashlist::store::LogDir::open(&log)?;
            let h = match (hash, image) {
                (Some(h), None) => Hash256::from_hex(&h)?,
                (None, Some(p)) => {
                    Hasher::new()
                        .hash(&pdq_image(&files::decode_path(&p, &Default::default())?))
                        .hash
                }
                _ => bail!("give either --hash HEX or one IMAGE"),
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            files::outln!("{}", serde_json::to_string_pretty(&dir.prove(&h, now)?)?)?;
            Ok(ExitCode::SUCCESS)
        }
        ListCmd::Verify {
            operator_key,
            policy,
            proof,
        } => {
            let policy = scanlab_hashlist::store::LogDir::read_policy(&policy)?;
            let text = files::read_input(&proof)?;
            let bundle: scanlab_hashlist::store::ProofBundle = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not a proof bundle", proof.display()))?;
            match scanlab_hashlist::store::verify_bundle(&operator_key, policy, &bundle) {
                Ok(listed) => {
                    files::outln!(
                        "{} {} (list size {})",
                        bundle.hash,
                        if listed { "listed" } else { "not listed" },
                        bundle.head.size
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("scanlab: verification failed: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        ListCmd::Export { list, format } => {
            let l = read_list(&list)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            write_list(&l, format, &mut out)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(clap::Args)]
pub struct MatchArgs {
    /// The list: CSV (a plain file of PDQ hex is one), JSON lines or binary (`-` for stdin).
    #[arg(long)]
    list: PathBuf,
    /// Match when the Hamming distance is at most this (PDQ's recommendation: 31).
    #[arg(long, default_value_t = 31)]
    radius: u32,
    /// Images (and list entries) whose PDQ quality is known and below this are not matched
    /// (0 matches all); each skipped query says so. 50 is ThreatExchange's and HMA's threshold.
    #[arg(long, default_value_t = scanlab_hashlist::list::MIN_QUALITY)]
    min_quality: u8,
    #[command(flatten)]
    input: QueryInputs,
}

/// Images to hash, or files of hex hashes.
#[derive(clap::Args)]
pub struct QueryInputs {
    /// Inputs are files of hex hashes, one per line (`-` for stdin), not images.
    #[arg(long)]
    hashes: bool,
    #[command(flatten)]
    decode: crate::DecodeArgs,
    #[command(flatten)]
    files_from: files::FilesFrom,
    /// Images or folders (or, with --hashes, hash files).
    #[arg(required_unless_present = "files_from")]
    inputs: Vec<PathBuf>,
}

#[derive(serde::Serialize)]
struct MatchLine {
    query: String,
    /// The query image's PDQ quality, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    quality: Option<u8>,
    /// Why the query was not matched (quality below `--min-quality`).
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
    matches: Vec<MatchOut>,
}

#[derive(serde::Serialize)]
struct MatchOut {
    id: u64,
    hash: Hash256,
    distance: u32,
}

/// Exit 0 when anything matched, 1 when nothing did (like grep), 2 on errors.
pub fn run_match(a: MatchArgs) -> Result<ExitCode> {
    let mut list = read_list(&a.list)?;
    let before = list.entries.len();
    list.entries
        .retain(|e| e.quality.is_none_or(|q| q >= a.min_quality));
    if list.entries.len() < before {
        files::note!(
            "{} of {before} list entries have quality below --min-quality {} and are left out",
            before - list.entries.len(),
            a.min_quality
        );
    }
    let index = MihIndex::build(&list.hashes())?;
    if a.radius > scanlab_hashlist::index::MAX_RADIUS {
        bail!(scanlab_hashlist::IndexError::Radius(a.radius));
    }
    let queries = queries(&a.input)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut any, mut failed) = (false, 0);
    for (query, h) in queries {
        match h {
            Ok((_, Some(q))) if q < a.min_quality => {
                let skipped = Some(format!(
                    "quality {q} is below --min-quality {}: not matched",
                    a.min_quality
                ));
                let line = MatchLine {
                    query,
                    quality: Some(q),
                    skipped,
                    matches: vec![],
                };
                writeln!(out, "{}", serde_json::to_string(&line)?)?;
            }
            Ok((h, quality)) => {
                let hits = index.query(&h, a.radius)?;
                any |= !hits.is_empty();
                let matches = hits
                    .iter()
                    .map(|hit| {
                        let e = &list.entries[hit.position as usize];
                        MatchOut {
                            id: e.id,
                            hash: e.hash,
                            distance: hit.distance,
                        }
                    })
                    .collect();
                let line = MatchLine {
                    query,
                    quality,
                    skipped: None,
                    matches,
                };
                writeln!(out, "{}", serde_json::to_string(&line)?)?;
            }
            Err(e) => {
                failed += 1;
                eprintln!("scanlab: error: {e}");
            }
        }
    }
    out.flush()?;
    Ok(if failed > 0 {
        ExitCode::from(2)
    } else if any {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One query: its label, and its hash with the image's quality (known for images, and for
/// hash files that give it), or why it has none.
type Query = (String, Result<(Hash256, Option<u8>), String>);

/// The queries named on a command line: images (hashed) or, with `hashes`, files of hex hashes
/// (`-` is stdin), in order.
fn queries(q: &QueryInputs) -> Result<Vec<Query>> {
    let mut queries = Vec::new();
    let mut inputs = q.inputs.clone();
    inputs.extend(q.files_from.paths()?);
    if q.hashes {
        for p in &inputs {
            for (_, named, h) in files::hash_lines(p)? {
                queries.push((named, h));
            }
        }
    } else {
        let mut hasher = Hasher::new();
        for p in files::expand(&inputs)? {
            let r = files::decode_path(&p, &q.decode.options())
                .map(|img| {
                    let h = hasher.hash(&pdq_image(&img));
                    (h.hash, Some(h.quality))
                })
                .map_err(|e| e.to_string());
            queries.push((p.to_string_lossy().into(), r));
        }
    }
    Ok(queries)
}
