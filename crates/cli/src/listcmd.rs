//! `scanlab list ...` and `scanlab match ...`: building hash lists and matching against them.

use crate::files;
use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use scanlab_hashlist::{Entry, HashKind, HashList, MihIndex};
use scanlab_imaging::{decode_file, pdq_image};
use scanlab_pdq::{Hash256, Hasher};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Csv,
    Jsonl,
    Bin,
}

#[derive(Subcommand)]
pub enum ListCmd {
    /// Hash images into a new list. In scanlab a list is always built from benign stand-ins.
    Build {
        /// Where to write the list.
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
        #[command(flatten)]
        decode: crate::DecodeArgs,
        /// Images or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Convert a list (CSV, JSON lines or binary) to another format, reporting duplicates.
    Export {
        /// The list to read.
        list: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: ListFormat,
    },
}

fn read_list(path: &Path) -> Result<HashList> {
    let bytes = std::fs::read(path).with_context(|| format!("reading list {}", path.display()))?;
    let (list, report) =
        HashList::read(&bytes).with_context(|| format!("list {}", path.display()))?;
    for (line, first) in &report.duplicates {
        eprintln!(
            "scanlab: {}: line {line} repeats the hash of line {first}; merged",
            path.display()
        );
    }
    Ok(list)
}

fn write_list(list: &HashList, format: ListFormat, out: &mut dyn Write) -> Result<()> {
    match format {
        ListFormat::Csv => out.write_all(list.to_csv().as_bytes())?,
        ListFormat::Jsonl => out.write_all(list.to_jsonl().as_bytes())?,
        ListFormat::Bin => out.write_all(&list.to_binary([0; 32]))?,
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
            decode,
            paths,
        } => {
            let inputs = files::expand(&paths)?;
            let mut list = HashList::default();
            let mut seen = HashMap::new();
            let mut hasher = Hasher::new();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let mut failed = 0;
            for p in &inputs {
                match decode_file(p, &decode.options()) {
                    Ok(img) => {
                        let hash = hasher.hash(&pdq_image(&img)).hash;
                        let e = Entry {
                            id: list.entries.len() as u64,
                            kind: HashKind::Pdq,
                            hash,
                            label: label.clone(),
                            vouched_by: vouched_by.clone(),
                            added: now,
                        };
                        if !list.add(e, &mut seen).1 {
                            eprintln!(
                                "scanlab: {}: same hash as an earlier image; merged",
                                p.display()
                            );
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("scanlab: error: {e}");
                    }
                }
            }
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(&out)
                    .with_context(|| format!("creating {}", out.display()))?,
            );
            write_list(&list, format, &mut f)?;
            f.flush()?;
            eprintln!(
                "scanlab: wrote {} entries to {}",
                list.entries.len(),
                out.display()
            );
            Ok(if failed > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
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
    /// The list: CSV (a plain file of PDQ hex is one), JSON lines or binary.
    #[arg(long)]
    list: PathBuf,
    /// Match when the Hamming distance is at most this (PDQ's recommendation: 31).
    #[arg(long, default_value_t = 31)]
    radius: u32,
    /// Inputs are files of hex hashes, one per line (`-` for stdin), not images.
    #[arg(long)]
    hashes: bool,
    #[command(flatten)]
    decode: crate::DecodeArgs,
    /// Images or folders (or, with --hashes, hash files).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

#[derive(serde::Serialize)]
struct MatchLine {
    query: String,
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
    let list = read_list(&a.list)?;
    let index = MihIndex::build(&list.hashes())?;
    if a.radius > scanlab_hashlist::index::MAX_RADIUS {
        bail!(scanlab_hashlist::IndexError::Radius(a.radius));
    }
    // (query label, hash) pairs, or an error to report.
    let mut queries: Vec<(String, Result<Hash256, String>)> = Vec::new();
    if a.hashes {
        for p in &a.inputs {
            let reader: Box<dyn BufRead> = if p.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
                ))
            };
            for (i, line) in reader.lines().enumerate() {
                let line = line?;
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                let hex = t.split(',').next().unwrap_or(t);
                queries.push((
                    hex.to_string(),
                    Hash256::from_hex(hex).map_err(|e| format!("{}:{}: {e}", p.display(), i + 1)),
                ));
            }
        }
    } else {
        let mut hasher = Hasher::new();
        for p in files::expand(&a.inputs)? {
            let r = decode_file(&p, &a.decode.options())
                .map(|img| hasher.hash(&pdq_image(&img)).hash)
                .map_err(|e| e.to_string());
            queries.push((p.to_string_lossy().into(), r));
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut any, mut failed) = (false, 0);
    for (query, h) in queries {
        match h {
            Ok(h) => {
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
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&MatchLine { query, matches })?
                )?;
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
