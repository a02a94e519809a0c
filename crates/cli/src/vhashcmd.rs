//! `scanlab vhash`: vPDQ hashes of videos, in Meta's text format, ThreatExchange's JSON form or
//! JSON lines; a bad video is reported with its name and the batch goes on (exit status 2).

use crate::files;
use anyhow::{Context, Result, bail};
use scanlab_vpdq::{Flush, Limits, Options, format};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const EXAMPLES: &str = "Examples:
  scanlab vhash clip.mp4                        # frameNumber,quality,pdqHex,timestamp (1 s per hash)
  scanlab vhash --seconds-per-hash 0 --size 128 clip.mp4   # every frame, at 128x128, as Meta's samples
  scanlab vhash --out hashes videos/            # one NAME.txt per video, as vpdq-hash-video -o
  scanlab vhash --format jsonl videos/ > v.jsonl";

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum VFormat {
    /// Meta's `frameNumber,quality,pdqHex,timestamp` lines (one video, or with --out).
    Text,
    /// ThreatExchange's JSON array of "pdqHex,quality,timestamp" (one video, or with --out).
    TeJson,
    /// One JSON line per video: path, fps, size, frames decoded and the hashed frames.
    Jsonl,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum VFlush {
    /// Drain the decoder at the end only when the video is stream 0, as Meta's vpdq does.
    Meta,
    /// Always drain it, hashing every frame.
    Always,
}

#[derive(clap::Args)]
pub struct VhashArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: VFormat,
    /// Seconds between hashed frames; 0 hashes every frame.
    #[arg(long, default_value_t = 1.0)]
    seconds_per_hash: f64,
    /// Resize frames before hashing: S (S×S, as Meta's samples use 128) or WxH.
    #[arg(long, value_name = "S|WxH")]
    size: Option<String>,
    /// Frames left in the decoder at the end of the file.
    #[arg(long, value_enum, default_value = "meta")]
    flush: VFlush,
    /// Write NAME.txt (or NAME.json) per video into this folder instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Videos hashed at once (default: all cores); each is decoded and hashed on one thread.
    #[arg(long)]
    threads: Option<usize>,
    /// Refuse files larger than this many bytes.
    #[arg(long, default_value_t = Limits::default().max_bytes)]
    max_bytes: u64,
    /// Refuse videos whose frames have more pixels than this.
    #[arg(long, default_value_t = Limits::default().max_pixels)]
    max_pixels: u64,
    /// Refuse videos with more frames than this.
    #[arg(long, default_value_t = Limits::default().max_frames)]
    max_frames: u64,
    /// Refuse videos longer than this, in seconds.
    #[arg(long, default_value_t = Limits::default().max_seconds)]
    max_seconds: f64,
    #[command(flatten)]
    files_from: files::FilesFrom,
    /// Video files or folders.
    #[arg(required_unless_present = "files_from")]
    paths: Vec<PathBuf>,
}

fn parse_size(s: &str) -> Result<(u32, u32)> {
    let (w, h) = match s.split_once(['x', 'X']) {
        Some((w, h)) => (w, h),
        None => (s, s),
    };
    Ok((
        w.trim()
            .parse()
            .with_context(|| format!("--size {s}: not S or WxH"))?,
        h.trim()
            .parse()
            .with_context(|| format!("--size {s}: not S or WxH"))?,
    ))
}

#[derive(serde::Serialize)]
struct VideoLine<'a> {
    path: &'a str,
    fps: f64,
    width: u32,
    height: u32,
    decoded: u64,
    frames: Vec<FrameLine>,
}

#[derive(serde::Serialize)]
struct FrameLine {
    frame: u32,
    quality: u8,
    pdq: String,
    timestamp: f64,
}

pub fn run(a: VhashArgs) -> Result<ExitCode> {
    use rayon::prelude::*;
    let mut inputs = files::expand_with(&a.paths, files::VIDEO_EXTENSIONS)?;
    inputs.extend(files::expand_with(
        &a.files_from.paths()?,
        files::VIDEO_EXTENSIONS,
    )?);
    if inputs.len() > 1 && a.out.is_none() && a.format != VFormat::Jsonl {
        bail!(
            "{} videos: Meta's text and ThreatExchange's JSON hold one video each; use --out DIR \
             or --format jsonl",
            inputs.len()
        );
    }
    let mut opts = Options::new()
        .with_seconds_per_hash(a.seconds_per_hash)?
        .with_decode_threads(1)
        .with_flush(match a.flush {
            VFlush::Meta => Flush::AsMeta,
            VFlush::Always => Flush::Always,
        });
    if let Some(s) = &a.size {
        let (w, h) = parse_size(s)?;
        opts = opts.with_size(w, h)?;
    }
    let limits = Limits {
        max_bytes: a.max_bytes,
        max_pixels: a.max_pixels,
        max_frames: a.max_frames,
        max_seconds: a.max_seconds,
    };
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let pool = files::pool(a.threads)?;
    let bar = files::progress(inputs.len() as u64, "hashing videos");
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    for chunk in inputs.chunks(64) {
        let results: Vec<_> = pool.install(|| {
            chunk
                .par_iter()
                .map(|p| {
                    let r = scanlab_vpdq::hash_file(p, &opts, &limits);
                    bar.inc(1);
                    r
                })
                .collect()
        });
        for (p, r) in chunk.iter().zip(results) {
            let v = match r {
                Ok(v) => v,
                Err(e) => {
                    failed += 1;
                    bar.suspend(|| eprintln!("scanlab: error: {}: {e}", p.display()));
                    continue;
                }
            };
            let path = p.to_string_lossy();
            let body = match a.format {
                VFormat::Text => format::to_text(&v.frames),
                VFormat::TeJson => format::to_json(&v.frames) + "\n",
                VFormat::Jsonl => {
                    let line = VideoLine {
                        path: &path,
                        fps: v.fps,
                        width: v.width,
                        height: v.height,
                        decoded: v.decoded,
                        frames: v
                            .frames
                            .iter()
                            .map(|f| FrameLine {
                                frame: f.frame,
                                quality: f.quality,
                                pdq: f.hash.to_hex(),
                                timestamp: f.timestamp,
                            })
                            .collect(),
                    };
                    serde_json::to_string(&line)? + "\n"
                }
            };
            match &a.out {
                Some(dir) => {
                    let ext = match a.format {
                        VFormat::Text => "txt",
                        VFormat::TeJson => "json",
                        VFormat::Jsonl => "jsonl",
                    };
                    let dst = dir.join(format!("{}.{ext}", stem(p)));
                    std::fs::write(&dst, body)
                        .with_context(|| format!("writing {}", dst.display()))?;
                }
                None => out.write_all(body.as_bytes())?,
            }
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok(files::batch_status(failed, inputs.len(), "videos"))
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "video".into())
}
