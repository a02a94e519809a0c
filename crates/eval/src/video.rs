//! Video: a benign clip workload, its edits, and every scheme measured on it.
//!
//! # The workload (seeded; built with FFmpeg's encoder)
//! Clips are made from the image workload's photos as sent (list photos for listed clips,
//! background photos for background clips), six seconds at 10 fps, 320×240, H.264 (libx264 on
//! one thread, bit-exact flags, so the bytes are a function of the seed and the FFmpeg build).
//! Kinds, in turn: a **pan** across the photo, a **zoom** into it, and a **slideshow** of three
//! photos with half-second cross-fades; each encoded at a bitrate drawn from
//! [`BITRATES_KBPS`]. The list holds each listed clip's counted vPDQ frames (1 frame a second,
//! as every scheme hashes video: [`scanlab_schemes::fingerprint`]).
//!
//! Each listed clip is edited eight ways ([`EDITS`]): re-encoded at 100 kbit/s, scaled to half,
//! cropped to its central 80%, a logo box over a corner, letterboxed (scaled to 16:9 inside
//! black bars), sped up 1.25×, trimmed (the first two seconds cut) and a three-second clip
//! taken from its middle.
//!
//! Meta's sample videos (`vpdq-reference/videos`), when given, are matched at the hash only:
//! in each family of files named alike (`chair-…`, `pattern-…`) the original (the name holding
//! `orig`, else the first by name) is listed and the others, Meta's own edits, are queried; a
//! family of one is unrelated to every other.
//!
//! # What is measured
//! 1. **At the hash** (no messenger): per edit, the share of edited clips the vPDQ rule matches
//!    to their own listed clip, searched through [`scanlab_vpdq::VideoIndex`]; false positives,
//!    background clips matching any listed clip; the listed stills found in a clip's frames
//!    ([`scanlab_vpdq::frames_in_images`] against the image list).
//! 2. **Through every scheme**, over the real messenger: each listed clip as made, each edited
//!    copy and each background clip sent Alice → Bob; how many reached the review queue, and
//!    per video the scan requests, the bytes the provider received for scanning, the padded
//!    blob and the time the send took.

use crate::EvalError;
use crate::stats::{median, wilson};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use scanlab_hashlist::{Entry, HashList, MihIndex};
use scanlab_messenger::RecordKind;
use scanlab_messenger::mls::Media;
use scanlab_schemes::Scheme;
use scanlab_vpdq::{FrameHash, ListedVideo, VideoIndex};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Bitrates clips are made at, kbit/s.
pub const BITRATES_KBPS: [u32; 3] = [200, 400, 800];

/// Clip kinds, in turn.
pub const KINDS: [&str; 3] = ["pan", "zoom", "slideshow"];

/// An edit of a listed clip: FFmpeg options before its input and after it, and the bitrate
/// it is encoded at.
pub struct Edit {
    /// Its name in results.
    pub name: &'static str,
    /// Input options (a seek, a duration).
    pub input: &'static [&'static str],
    /// Output options (a filter, a frame rate).
    pub output: &'static [&'static str],
    /// Bitrate of the re-encoding.
    pub bitrate: &'static str,
}

const fn edit(
    name: &'static str,
    input: &'static [&'static str],
    output: &'static [&'static str],
) -> Edit {
    Edit {
        name,
        input,
        output,
        bitrate: "400k",
    }
}

/// The edits of a listed clip.
pub const EDITS: [Edit; 8] = [
    Edit {
        bitrate: "100k",
        ..edit("re-encode 100k", &[], &[])
    },
    edit("scale 50%", &[], &["-vf", "scale=160:120"]),
    edit("crop 80%", &[], &["-vf", "crop=256:192"]),
    edit(
        "logo",
        &[],
        &["-vf", "drawbox=x=208:y=12:w=96:h=36:color=white@0.8:t=fill"],
    ),
    edit(
        "letterbox",
        &[],
        &["-vf", "scale=320:180,pad=320:240:0:30:black"],
    ),
    edit("speed 1.25x", &[], &["-vf", "setpts=PTS/1.25", "-r", "10"]),
    edit("trim first 2 s", &["-ss", "2"], &[]),
    edit("middle 3 s", &["-ss", "1.5", "-t", "3"], &[]),
];

/// Runs FFmpeg with `args`; its error output on failure.
fn ffmpeg(args: &[String]) -> Result<(), EvalError> {
    let out = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-nostdin"])
        .args(args)
        .output()
        .map_err(|e| {
            EvalError::Io(format!(
                "running ffmpeg: {e}; install it (scripts/setup.sh does)"
            ))
        })?;
    if !out.status.success() {
        return Err(EvalError::Io(format!(
            "ffmpeg {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The encoder settings of every clip and edit.
fn encode(kbps: &str, out: &Path) -> Vec<String> {
    [
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-threads",
        "1",
        "-b:v",
        kbps,
        "-pix_fmt",
        "yuv420p",
        "-g",
        "30",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Makes one clip of `kind` from `photos` (one, or three for a slideshow).
fn make_clip(kind: &str, photos: &[PathBuf], kbps: u32, out: &Path) -> Result<(), EvalError> {
    let fill = "scale=640:480:force_original_aspect_ratio=increase,crop=640:480,setsar=1";
    let p = |i: usize| photos[i % photos.len()].display().to_string();
    let mut args = Vec::new();
    match kind {
        "pan" => {
            args.extend(s(&["-loop", "1", "-framerate", "10", "-t", "6", "-i"]));
            args.push(p(0));
            args.extend(s(&[
                "-vf",
                &format!("{fill},crop=320:240:x='320*t/6':y=120,fps=10"),
            ]));
        }
        "zoom" => {
            args.extend(s(&["-loop", "1", "-framerate", "10", "-i"]));
            args.push(p(0));
            args.extend(s(&["-vf", &format!("{fill},zoompan=z='1+0.01*on':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=60:s=320x240:fps=10"), "-frames:v", "60"]));
        }
        _ => {
            for i in 0..3 {
                args.extend(s(&["-loop", "1", "-framerate", "10", "-t", "2.5", "-i"]));
                args.push(p(i));
            }
            let one = "scale=320:240:force_original_aspect_ratio=increase,crop=320:240,setsar=1,fps=10,format=yuv420p";
            args.extend(s(&[
                "-filter_complex",
                &format!("[0]{one}[a];[1]{one}[b];[2]{one}[c];[a][b]xfade=transition=fade:duration=0.5:offset=2[ab];[ab][c]xfade=transition=fade:duration=0.5:offset=4[v]"),
                "-map",
                "[v]",
            ]));
        }
    }
    args.extend(encode(&format!("{kbps}k"), out));
    ffmpeg(&args)
}

/// One clip of the workload.
pub struct Clip {
    /// Its name in results (`pan-3`, `zoom-4 / crop 80%`).
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// The encoded file.
    pub bytes: Vec<u8>,
    /// Its vPDQ frames, as schemes hash them.
    pub frames: Vec<FrameHash>,
}

fn clip(name: String, kind: &str, path: &Path) -> Result<Clip, EvalError> {
    let bytes = std::fs::read(path).map_err(crate::io)?;
    let frames = scanlab_schemes::video_frames(&bytes)?
        .frames
        .iter()
        .map(|f| f.hash.clone())
        .collect();
    Ok(Clip {
        name,
        kind: kind.into(),
        bytes,
        frames,
    })
}

/// The clips, made.
pub struct VideoWorkload {
    /// Listed clips.
    pub listed: Vec<Clip>,
    /// Edited copies: (which listed clip, which edit, the copy).
    pub edited: Vec<(usize, usize, Clip)>,
    /// Background clips.
    pub background: Vec<Clip>,
    /// Bitrate of each listed clip then each background clip, kbit/s.
    pub bitrates: Vec<u32>,
}

impl VideoWorkload {
    /// Makes `n` listed and `n` background clips from the photos at `listed` and
    /// `background` (the image workload's, as sent), and the edits of each listed clip.
    pub fn build(
        listed: &[&[u8]],
        background: &[&[u8]],
        n: usize,
        seed: u64,
        tick: &dyn Fn(),
    ) -> Result<VideoWorkload, EvalError> {
        let dir = tempfile::tempdir().map_err(crate::io)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x7669_6465_6f00);
        let write = |tag: &str, photos: &[&[u8]]| -> Result<Vec<PathBuf>, EvalError> {
            photos
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let p = dir.path().join(format!("{tag}-{i}.jpg"));
                    std::fs::write(&p, b).map_err(crate::io)?;
                    Ok(p)
                })
                .collect()
        };
        let (lp, bp) = (write("l", listed)?, write("b", background)?);
        if lp.len() < 3 || bp.len() < 3 {
            return Err(EvalError::Corpus(
                "the video workload needs at least three list and three background photos".into(),
            ));
        }
        let mut bitrates = Vec::new();
        let mut make = |photos: &[PathBuf], tag: &str| -> Result<Vec<Clip>, EvalError> {
            let mut order: Vec<usize> = (0..photos.len()).collect();
            order.shuffle(&mut rng);
            let mut out = Vec::new();
            for i in 0..n {
                let kind = KINDS[i % KINDS.len()];
                let kbps = BITRATES_KBPS[rng.random_range(0..BITRATES_KBPS.len())];
                let chosen: Vec<PathBuf> = (0..3)
                    .map(|k| photos[order[(i + k * n) % order.len()]].clone())
                    .collect();
                let path = dir.path().join(format!("{tag}-{i}.mp4"));
                make_clip(kind, &chosen, kbps, &path)?;
                bitrates.push(kbps);
                out.push(clip(format!("{tag} {kind}-{i}"), kind, &path)?);
                tick();
            }
            Ok(out)
        };
        let listed_clips = make(&lp, "listed")?;
        let background = make(&bp, "background")?;
        let mut edited = Vec::new();
        for (c, l) in listed_clips.iter().enumerate() {
            let src = dir.path().join(format!("listed-{c}.mp4"));
            for (e, edit) in EDITS.iter().enumerate() {
                let out = dir.path().join(format!("edit-{c}-{e}.mp4"));
                let mut args = s(edit.input);
                args.extend(["-i".to_string(), src.display().to_string()]);
                args.extend(s(edit.output));
                args.extend(encode(edit.bitrate, &out));
                ffmpeg(&args)?;
                edited.push((
                    c,
                    e,
                    clip(format!("{} / {}", l.name, edit.name), &l.kind, &out)?,
                ));
                tick();
            }
        }
        Ok(VideoWorkload {
            listed: listed_clips,
            edited,
            background,
            bitrates,
        })
    }

    /// The list entries of the listed clips: their counted frames (ids from `first_id`).
    pub fn entries(&self, first_id: u64) -> Vec<Entry> {
        let rule = scanlab_schemes::fingerprint::video_rule();
        let mut out = Vec::new();
        for c in &self.listed {
            for f in rule.filter(&c.frames) {
                out.push(Entry::new(
                    first_id + out.len() as u64,
                    f.hash,
                    "stand-in video",
                ));
            }
        }
        out
    }
}

/// One edit's recall at the hash.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct EditRecall {
    /// The edit (`as made` for the listed clips themselves).
    pub edit: String,
    /// Clips queried.
    pub clips: usize,
    /// Of those, matched to their own listed clip by the rule.
    pub matched: usize,
    /// matched / clips.
    pub recall: f64,
    /// Wilson 95% interval.
    pub ci95: [f64; 2],
    /// Median share of the query's counted frames found in its listed clip, percent.
    pub median_query_percent: f64,
    /// Matched to another listed clip as well or instead (a false match).
    pub wrong_matches: usize,
}

/// False positives at the hash.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct VideoFalsePositives {
    /// Background clips queried against every listed clip.
    pub clips: usize,
    /// Of those, matching any listed clip.
    pub matched: usize,
    /// Wilson 95% interval of matched / clips.
    pub ci95: [f64; 2],
    /// Pairs compared (background × listed).
    pub pairs: usize,
    /// The largest query share any background clip had in any listed clip, percent.
    pub max_query_percent: f64,
}

/// One of Meta's sample videos, matched at the hash.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ReferenceRow {
    /// File name.
    pub video: String,
    /// `listed` (its family's original), `edit` (another of its family) or `unrelated`.
    pub role: String,
    /// The listed video of its family, if any.
    pub family_listed: Option<String>,
    /// Counted frames.
    pub counted_frames: usize,
    /// Share of its counted frames in its family's listed video, percent (0 if none).
    pub query_percent: f64,
    /// Matched its family's listed video under the rule.
    pub matched_own: bool,
    /// Listed videos of other families it matched (false matches).
    pub matched_other: Vec<String>,
}

/// One scheme on the video workload.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct VideoSchemeRow {
    /// Code.
    pub scheme: String,
    /// Name.
    pub name: String,
    /// Listed clips sent as made; of those, reached review.
    pub listed_sent: usize,
    /// Listed clips that reached review.
    pub listed_reached: usize,
    /// Per edit: (edit, sent, reached review).
    pub edited: Vec<(String, usize, usize)>,
    /// Background clips sent.
    pub background_sent: usize,
    /// Background clips that reached review (false positives).
    pub background_reached: usize,
    /// Videos the sender's client refused to send (an error in its scheme half).
    pub send_errors: usize,
    /// Requests to the provider's scanning endpoints per video (`/v1/scan`,
    /// `/v1/scheme/message`).
    pub requests_per_video: f64,
    /// Bytes the provider received on those endpoints per video.
    pub scan_bytes_per_video: f64,
    /// Bytes of the padded, encrypted blob per video.
    pub blob_bytes_per_video: f64,
    /// Wall-clock ms per send (sender, provider and parties in one process; not reproducible).
    pub ms_per_video: f64,
}

/// Everything the video part measured.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct VideoResults {
    /// Listed clips.
    pub listed_clips: usize,
    /// Background clips.
    pub background_clips: usize,
    /// Edited copies.
    pub edited_clips: usize,
    /// Clip kinds.
    pub kinds: Vec<String>,
    /// Edits.
    pub edits: Vec<String>,
    /// Bitrates, kbit/s.
    pub bitrates_kbps: Vec<u32>,
    /// Clip length, frame rate and size.
    pub clip_format: String,
    /// How schemes sample video and the rule they match it by.
    pub rule: String,
    /// Mean counted frames per clip as made.
    pub counted_frames_per_clip: f64,
    /// The FFmpeg libraries the hashes come from.
    pub ffmpeg: String,
    /// Per edit, at the hash.
    pub hash_recall: Vec<EditRecall>,
    /// Background clips at the hash.
    pub false_positives: VideoFalsePositives,
    /// Listed clips with a frame within the radius of their source photo's image-list entry
    /// (a still found in a video), of listed clips.
    pub stills_found: (usize, usize),
    /// Meta's sample videos (empty when none were given).
    pub reference: Vec<ReferenceRow>,
    /// Per scheme.
    pub schemes: Vec<VideoSchemeRow>,
    /// What these figures cannot show.
    pub limits: String,
}

fn index_of(clips: &[(String, Vec<FrameHash>)]) -> Result<VideoIndex, EvalError> {
    let listed = clips
        .iter()
        .enumerate()
        .map(|(i, (_, frames))| ListedVideo {
            id: i as u64,
            label: "stand-in video".into(),
            frames: frames.clone(),
        })
        .collect();
    VideoIndex::build(listed, scanlab_schemes::fingerprint::video_rule())
        .map_err(|e| EvalError::Io(e.to_string()))
}

/// Recall per edit and false positives, at the hash.
fn at_the_hash(w: &VideoWorkload) -> Result<(Vec<EditRecall>, VideoFalsePositives), EvalError> {
    let index = index_of(
        &w.listed
            .iter()
            .map(|c| (c.name.clone(), c.frames.clone()))
            .collect::<Vec<_>>(),
    )?;
    let recall = |edit: &str, queries: Vec<(usize, &Clip)>| {
        let mut matched = 0;
        let mut wrong = 0;
        let mut shares = Vec::new();
        for (own, q) in &queries {
            let hits = index.query(&q.frames);
            let mine = hits.iter().find(|h| h.position == *own);
            shares.push(mine.map_or(0.0, |h| h.comparison.query_percent));
            matched += usize::from(mine.is_some_and(|h| h.is_match));
            wrong += usize::from(hits.iter().any(|h| h.is_match && h.position != *own));
        }
        EditRecall {
            edit: edit.into(),
            clips: queries.len(),
            matched,
            recall: matched as f64 / queries.len().max(1) as f64,
            ci95: wilson(matched, queries.len()),
            median_query_percent: median(shares).unwrap_or(0.0),
            wrong_matches: wrong,
        }
    };
    let mut rows = vec![recall("as made", w.listed.iter().enumerate().collect())];
    for (e, edit) in EDITS.iter().enumerate() {
        rows.push(recall(
            edit.name,
            w.edited
                .iter()
                .filter(|(_, k, _)| *k == e)
                .map(|(c, _, clip)| (*c, clip))
                .collect(),
        ));
    }
    let mut matched = 0;
    let mut max_share: f64 = 0.0;
    for b in &w.background {
        let hits = index.query(&b.frames);
        matched += usize::from(hits.iter().any(|h| h.is_match));
        for h in &hits {
            max_share = max_share.max(h.comparison.query_percent);
        }
    }
    let fp = VideoFalsePositives {
        clips: w.background.len(),
        matched,
        ci95: wilson(matched, w.background.len()),
        pairs: w.background.len() * w.listed.len(),
        max_query_percent: max_share,
    };
    Ok((rows, fp))
}

/// Meta's sample videos in `dir`, matched family by family.
fn reference(dir: &Path) -> Result<Vec<ReferenceRow>, EvalError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| EvalError::Io(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
        .collect();
    files.sort();
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let family = |n: &str| n.split('-').next().unwrap_or_default().to_string();
    let mut hashed = Vec::new();
    for p in &files {
        let v = scanlab_vpdq::hash_file(
            p,
            &scanlab_schemes::fingerprint::video_options(),
            &scanlab_schemes::fingerprint::video_limits(),
        )
        .map_err(|e| EvalError::Io(format!("{}: {e}", p.display())))?;
        hashed.push((name(p), v.frames));
    }
    // Each family of two or more: its original is listed.
    let mut listed: Vec<usize> = Vec::new();
    let families: BTreeSet<String> = hashed.iter().map(|(n, _)| family(n)).collect();
    for f in &families {
        let members: Vec<usize> = (0..hashed.len())
            .filter(|&i| family(&hashed[i].0) == *f)
            .collect();
        if members.len() > 1 {
            let orig = members
                .iter()
                .copied()
                .find(|&i| hashed[i].0.contains("orig"))
                .unwrap_or(members[0]);
            listed.push(orig);
        }
    }
    let index = index_of(
        &listed
            .iter()
            .map(|&i| hashed[i].clone())
            .collect::<Vec<_>>(),
    )?;
    let rule = scanlab_schemes::fingerprint::video_rule();
    Ok(hashed
        .iter()
        .enumerate()
        .map(|(i, (n, frames))| {
            let own = listed
                .iter()
                .position(|&l| family(&hashed[l].0) == family(n));
            let hits = index.query(frames);
            let mine = own.and_then(|o| hits.iter().find(|h| h.position == o));
            ReferenceRow {
                video: n.clone(),
                role: match own {
                    Some(o) if listed[o] == i => "listed",
                    Some(_) => "edit",
                    None => "unrelated",
                }
                .into(),
                family_listed: own.map(|o| hashed[listed[o]].0.clone()),
                counted_frames: rule.filter(frames).len(),
                query_percent: mine.map_or(0.0, |h| h.comparison.query_percent),
                matched_own: mine.is_some_and(|h| h.is_match),
                matched_other: hits
                    .iter()
                    .filter(|h| h.is_match && Some(h.position) != own)
                    .map(|h| hashed[listed[h.position]].0.clone())
                    .collect(),
            }
        })
        .collect())
}

/// One scheme: every clip sent Alice → Bob over the real messenger.
fn one_scheme(
    scheme: &dyn Scheme,
    list: &HashList,
    w: &VideoWorkload,
    tick: &dyn Fn(),
) -> Result<VideoSchemeRow, EvalError> {
    let d = crate::attacks::deploy(scheme, list)?;
    let (mut alice, _bob) = crate::attacks::pair(scheme, &d)?;
    let mut blobs: Vec<Option<String>> = Vec::new();
    let mut errors = 0;
    let started = std::time::Instant::now();
    let all: Vec<&Clip> = w
        .listed
        .iter()
        .chain(w.edited.iter().map(|(_, _, c)| c))
        .chain(&w.background)
        .collect();
    for c in &all {
        match alice.send_file("pair", None, Some((&c.bytes, Media::Video))) {
            Ok(sent) => blobs.push(sent.blob),
            Err(_) => {
                errors += 1;
                blobs.push(None);
            }
        }
        tick();
    }
    let ms = started.elapsed().as_secs_f64() * 1e3 / all.len().max(1) as f64;
    let reviewed: BTreeSet<String> = d.provider.reviews()?.into_iter().map(|r| r.blob).collect();
    // Whether the i-th clip sent reached review, and how many of a range did.
    let reviewed_at = |i: usize| blobs[i].as_ref().is_some_and(|b| reviewed.contains(b));
    let reached = |range: std::ops::Range<usize>| range.filter(|&i| reviewed_at(i)).count();
    let n_listed = w.listed.len();
    let n_edited = w.edited.len();
    let edited = EDITS
        .iter()
        .enumerate()
        .map(|(e, edit)| {
            let at: Vec<usize> = (0..n_edited).filter(|&i| w.edited[i].1 == e).collect();
            let got = at.iter().filter(|&&i| reviewed_at(n_listed + i)).count();
            (edit.name.to_string(), at.len(), got)
        })
        .collect();
    let view = d.provider.view()?;
    let (mut requests, mut scan_bytes, mut blob_bytes) = (0usize, 0i64, 0i64);
    for r in view.iter().filter(|r| r.kind == RecordKind::Received) {
        match r.endpoint.as_str() {
            "POST /v1/scan" | "POST /v1/scheme/message" => {
                requests += 1;
                scan_bytes += r.len;
            }
            "PUT /v1/blobs" => blob_bytes += r.len,
            _ => {}
        }
    }
    let per = |x: f64| x / all.len().max(1) as f64;
    Ok(VideoSchemeRow {
        scheme: scheme.code().into(),
        name: scheme.name().into(),
        listed_sent: n_listed,
        listed_reached: reached(0..n_listed),
        edited,
        background_sent: w.background.len(),
        background_reached: reached(n_listed + n_edited..all.len()),
        send_errors: errors,
        requests_per_video: per(requests as f64),
        scan_bytes_per_video: per(scan_bytes as f64),
        blob_bytes_per_video: per(blob_bytes as f64),
        ms_per_video: ms,
    })
}

/// The whole video part: `w` at the hash and through every scheme (the list is `list` with
/// the listed clips' frames added), `images` the image list's hashes (for stills in video),
/// `reference_dir` Meta's sample videos if given.
pub fn run(
    schemes: &[Arc<dyn Scheme>],
    list: &HashList,
    w: &VideoWorkload,
    source_photos: &[scanlab_pdq::Hash256],
    reference_dir: Option<&Path>,
    tick: &(dyn Fn() + Sync),
) -> Result<VideoResults, EvalError> {
    use rayon::prelude::*;
    let (hash_recall, false_positives) = at_the_hash(w)?;
    let images = MihIndex::build(source_photos).map_err(|e| EvalError::Io(e.to_string()))?;
    let rule = scanlab_schemes::fingerprint::video_rule();
    let mut stills = 0;
    for c in &w.listed {
        let hits = scanlab_vpdq::frames_in_images(&images, &c.frames, rule.distance, rule.quality)
            .map_err(|e| EvalError::Io(e.to_string()))?;
        stills += usize::from(!hits.is_empty());
    }
    let reference = match reference_dir {
        Some(d) => reference(d)?,
        None => Vec::new(),
    };
    let mut with_video = list.clone();
    let first = list.entries.iter().map(|e| e.id).max().unwrap_or(0) + 1;
    with_video.entries.extend(w.entries(first));
    let rows: Vec<VideoSchemeRow> = schemes
        .par_iter()
        .map(|s| one_scheme(&**s, &with_video, w, tick))
        .collect::<Result<_, _>>()?;
    let counted: Vec<f64> = w
        .listed
        .iter()
        .chain(&w.background)
        .map(|c| rule.filter(&c.frames).len() as f64)
        .collect();
    Ok(VideoResults {
        listed_clips: w.listed.len(),
        background_clips: w.background.len(),
        edited_clips: w.edited.len(),
        kinds: KINDS.iter().map(|k| k.to_string()).collect(),
        edits: EDITS.iter().map(|e| e.name.to_string()).collect(),
        bitrates_kbps: w.bitrates.clone(),
        clip_format: "6 s (a slideshow 6.5 s), 10 fps, 320×240, H.264 (libx264, one thread)".into(),
        rule: format!(
            "vPDQ at one frame a second; a video matches when at least {}% of its counted frames (quality ≥ {}, repeats dropped) are within {} bits of a list entry",
            rule.query_percent, rule.quality, rule.distance
        ),
        counted_frames_per_clip: counted.iter().sum::<f64>() / counted.len().max(1) as f64,
        ffmpeg: scanlab_vpdq::ffmpeg_versions(),
        hash_recall,
        false_positives,
        stills_found: (stills, w.listed.len()),
        reference,
        schemes: rows,
        limits: format!(
            "{} listed and {} background clips, all short, small and made from still photos (no camera motion, no people moving, no sound); recall per edit is over {} clips, so its interval is wide. Real video is longer, and a long video has more counted frames: each is a request (S3, S4, S8, S8m) or a voucher (S7), so what the provider sees grows with length. Under S7 every counted frame counts toward the threshold, so one listed clip can cross it alone. Meta's sample videos are matched at the hash only, not sent.",
            w.listed.len(),
            w.background.len(),
            w.listed.len()
        ),
    })
}
