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
    /// Build the exact Hamming index of a binary list and save it beside the list
    /// (`LIST.mih`), so that `scanlab match` opens it memory-mapped instead of building it.
    /// Prints the layout, the build time and the memory per hash as JSON.
    Index {
        /// The binary list (`list build --format bin`, or `list export --format bin`).
        list: PathBuf,
        /// Where to write the index (default: the list's path with `.mih` appended).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Chunks (tables), 8 to 32. Default by the list's size: 16 chunks up to 2^21 hashes,
        /// then 8 (multi-index hashing's chunks of about log2 n bits).
        #[arg(long)]
        chunks: Option<usize>,
        /// Directory bits of each table. Default: p - 4 with 16 chunks, p - 5 with 8, where p is
        /// the bits of a position (ceil(log2 n)).
        #[arg(long)]
        dir_bits: Option<u32>,
        /// Bits of each packed table entry: the position, then as many bits of the chunk as
        /// fit. Default: 32 with 16 chunks, p + 6 (at most 32) with 8; 32 when other options
        /// are given.
        #[arg(long)]
        entry_bits: Option<u32>,
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
        ListCmd::Index {
            list,
            out,
            chunks,
            dir_bits,
            entry_bits,
        } => {
            use scanlab_hashlist::index::Layout;
            let out = out.unwrap_or_else(|| index_path(&list));
            if let (Ok(o), Ok(l)) = (std::fs::canonicalize(&out), std::fs::canonicalize(&list))
                && o == l
            {
                bail!(
                    "--out {} is the list itself: name another file",
                    out.display()
                );
            }
            let n = binary_len(&list)?.with_context(|| {
                format!(
                    "{} is not a binary list: convert it with `scanlab list export --format bin`",
                    list.display()
                )
            })?;
            if n == 0 {
                bail!(scanlab_hashlist::ListError::Empty);
            }
            let default = Layout::for_len(n)?;
            let layout = match (chunks, dir_bits, entry_bits) {
                (None, None, None) => default,
                (c, d, e) => Layout::new(n, c.unwrap_or(default.chunks()), d, e.unwrap_or(32))?,
            };
            let t = std::time::Instant::now();
            let index = MihIndex::build_from_list(&list, Some(layout))?;
            let build_s = t.elapsed().as_secs_f64();
            index.save(&out)?;
            files::outln!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "list": list,
                    "index": out,
                    "hashes": n,
                    "layout": index.layout().describe(),
                    "build_s": build_s,
                    "bytes_per_hash": index.memory_bytes() as f64 / n.max(1) as f64,
                    "index_file_bytes": std::fs::metadata(&out)?.len(),
                }))?
            )?;
            Ok(ExitCode::SUCCESS)
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
    /// A binary list's saved index (`scanlab list index`). By default `LIST.mih` is used when
    /// it exists and fits the list; otherwise the index is built in memory.
    #[arg(long)]
    index: Option<PathBuf>,
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

/// The default path of a list's saved index: the list's own with `.mih` appended.
pub fn index_path(list: &Path) -> PathBuf {
    let mut p = list.as_os_str().to_owned();
    p.push(".mih");
    PathBuf::from(p)
}

/// The number of hashes of a binary list file, or `None` when the file is not one (stdin is
/// never one: it is read, not mapped).
fn binary_len(path: &Path) -> Result<Option<usize>> {
    if files::is_dash(path) {
        return Ok(None);
    }
    let mut head = [0u8; 64];
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    if std::io::Read::read_exact(&mut f, &mut head).is_err()
        || !scanlab_hashlist::list::is_binary(&head)
    {
        return Ok(None);
    }
    let len = f.metadata()?.len();
    Ok(Some((len.saturating_sub(64) / 32) as usize))
}

/// What a match is looked up in: a text list read into entries (ids, qualities) with its
/// index built; or a binary list, mapped, whose ids are positions, with its saved index
/// opened (mapped too) when there is one, so a one-off batch pays neither a build nor a copy.
struct Matchable {
    index: MihIndex,
    /// Entries of a text list; `None` for a binary list (ids are positions).
    entries: Option<Vec<Entry>>,
}

impl Matchable {
    fn open(a: &MatchArgs) -> Result<Matchable> {
        if binary_len(&a.list)?.is_some() {
            let saved = a.index.clone().unwrap_or_else(|| index_path(&a.list));
            let opened = if saved.exists() {
                match MihIndex::open(&saved, &a.list) {
                    Ok(index) => Some(index),
                    Err(e) if a.index.is_some() => {
                        return Err(e).with_context(|| format!("index {}", saved.display()));
                    }
                    Err(e) => {
                        files::note!(
                            "{}: not used, so the index is built in memory ({e})",
                            saved.display()
                        );
                        None
                    }
                }
            } else if a.index.is_some() {
                bail!(
                    "no index at {}: build it with `scanlab list index`",
                    saved.display()
                );
            } else {
                None
            };
            let index = match opened {
                Some(index) => index,
                None => MihIndex::build_from_list(&a.list, None)
                    .with_context(|| format!("list {}", a.list.display()))?,
            };
            if index.is_empty() {
                bail!(scanlab_hashlist::ListError::Empty);
            }
            return Ok(Matchable {
                index,
                entries: None,
            });
        }
        if let Some(index) = &a.index {
            bail!(
                "--index {} is for a binary list; {} is not one (convert it with `scanlab list export --format bin`)",
                index.display(),
                a.list.display()
            );
        }
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
        Ok(Matchable {
            index: MihIndex::build(&list.hashes())?,
            entries: Some(list.entries),
        })
    }

    fn hit(&self, position: u32, distance: u32) -> MatchOut {
        match &self.entries {
            Some(entries) => {
                let e = &entries[position as usize];
                MatchOut {
                    id: e.id,
                    hash: e.hash,
                    distance,
                }
            }
            None => MatchOut {
                id: position as u64,
                hash: self.index.hash(position),
                distance,
            },
        }
    }
}

/// Exit 0 when anything matched, 1 when nothing did (like grep), 2 on errors.
pub fn run_match(a: MatchArgs) -> Result<ExitCode> {
    if a.radius > scanlab_hashlist::index::MAX_RADIUS {
        bail!(scanlab_hashlist::IndexError::Radius(a.radius));
    }
    let list = Matchable::open(&a)?;
    let queries = queries(&a.input)?;
    // Every hash to look up, queried on all cores at once; answers are printed in order.
    let lookups: Vec<Hash256> = queries
        .iter()
        .filter_map(|(_, h)| match h {
            Ok((h, q)) if q.is_none_or(|q| q >= a.min_quality) => Some(*h),
            _ => None,
        })
        .collect();
    let mut answers = list.index.query_batch(&lookups, a.radius)?.into_iter();
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
            Ok((_, quality)) => {
                let hits = answers.next().expect("one answer per lookup");
                any |= !hits.is_empty();
                let matches = hits
                    .iter()
                    .map(|hit| list.hit(hit.position, hit.distance))
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
