//! Input expansion and progress display shared by the subcommands.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Extensions taken when walking a folder; files named explicitly are always taken.
const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "ppm", "pgm", "pbm", "pnm", "pam",
];

/// Set once by `--quiet`: no progress display and no informational notes on stderr (errors
/// are still printed, and the exit status still says what happened).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Turns quiet mode on for the rest of the process.
pub fn set_quiet() {
    QUIET.store(true, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// An informational line on stderr (`scanlab: ...`), unless `--quiet`.
macro_rules! note {
    ($($t:tt)*) => {
        if !$crate::files::quiet() {
            eprintln!("scanlab: {}", format_args!($($t)*));
        }
    };
}
pub(crate) use note;

/// A line on stdout that returns an error instead of panicking when stdout is closed (a
/// pipe into `head`), so `main` can end quietly with status 0, as ripgrep does.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*)
    }};
}
pub(crate) use outln;

/// Whether a path argument is `-`: stdin or stdout.
pub fn is_dash(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// The bytes of a file, or of stdin for `-`.
pub fn read_input(p: &Path) -> Result<Vec<u8>> {
    if is_dash(p) {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut b)
            .context("reading stdin")?;
        Ok(b)
    } else {
        std::fs::read(p).with_context(|| format!("reading {}", p.display()))
    }
}

/// Writes `bytes` to stdout for `-`; otherwise beside `p` first and renamed over it once
/// complete and synced, so a failure leaves any earlier file as it was.
pub fn write_output(p: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if is_dash(p) {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()?;
        return Ok(());
    }
    let tmp = p.with_extension("partial");
    {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, p).with_context(|| format!("writing {}", p.display()))
}

/// Decodes an image file, or the image on stdin for `-`.
pub fn decode_path(
    p: &Path,
    opts: &scanlab_imaging::DecodeOptions,
) -> std::result::Result<scanlab_imaging::RgbImage, scanlab_imaging::FileError> {
    if is_dash(p) {
        scanlab_imaging::decode_reader(Path::new("<stdin>"), std::io::stdin().lock(), opts)
    } else {
        scanlab_imaging::decode_file(p, opts)
    }
}

/// Where a command's inputs come from: paths on the command line, and `--files-from`.
#[derive(clap::Args, Clone, Default)]
pub struct FilesFrom {
    /// Also read input paths from FILE, one per line (`-` for stdin), as Meta's
    /// pdq-photo-hasher's `-i` does. Empty lines are skipped.
    #[arg(long, value_name = "FILE")]
    pub files_from: Option<PathBuf>,
}

impl FilesFrom {
    /// The paths named in `--files-from`, if given.
    pub fn paths(&self) -> Result<Vec<PathBuf>> {
        let Some(f) = &self.files_from else {
            return Ok(Vec::new());
        };
        let bytes = read_input(f)?;
        let text = String::from_utf8(bytes)
            .with_context(|| format!("--files-from {}: not UTF-8 text", f.display()))?;
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(PathBuf::from)
            .collect())
    }
}

/// One line of a hash file: its number (from 1), the text that named the hash, and the hash
/// with the image's PDQ quality when the line gives it, or why the line is not one.
pub type HashLine = (
    usize,
    String,
    std::result::Result<(scanlab_pdq::Hash256, Option<u8>), String>,
);

/// Reads the hashes of a hash file (`-` for stdin), one per line, in every form scanlab and
/// ThreatExchange write: bare hex; CSV whose first field is the hex (`scanlab hash`, Meta's
/// `pdq-photo-hasher`); `pdq <hex>` (ThreatExchange's `hash` and `dataset` commands); JSON
/// lines with a `pdq` or `hash` field. Empty lines, `#` comments, a byte-order mark and a CSV
/// header line are skipped. The quality is a JSON line's `quality`, a `quality` column, or
/// the field after the hash in `hash,quality,path` lines. A line that holds no hash is
/// returned with its error, so the caller decides whether one bad line stops the batch.
pub fn hash_lines(path: &Path) -> Result<Vec<HashLine>> {
    let bytes = read_input(path)?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let at = |line: usize, m: &str| format!("{}:{line}: {m}", path.display());
    let hash = |line: usize, named: &str| {
        scanlab_pdq::Hash256::from_hex(named)
            .map_err(|e| at(line, &format!("not a PDQ hash ({e}): {named:?}")))
    };
    let mut out = Vec::new();
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    if first.is_some_and(|l| l.starts_with('{')) {
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let v: serde_json::Value = match serde_json::from_str(t) {
                Ok(v) => v,
                Err(e) => {
                    out.push((
                        i + 1,
                        t.to_string(),
                        Err(at(i + 1, &format!("not a JSON line: {e}"))),
                    ));
                    continue;
                }
            };
            let quality = v["quality"]
                .as_u64()
                .and_then(|q| u8::try_from(q).ok())
                .filter(|&q| q <= 100);
            match v["pdq"].as_str().or(v["hash"].as_str()) {
                Some(h) => out.push((i + 1, h.to_string(), hash(i + 1, h).map(|h| (h, quality)))),
                None => out.push((
                    i + 1,
                    t.to_string(),
                    Err(at(i + 1, "no \"pdq\" (or \"hash\") field")),
                )),
            }
        }
        return Ok(out);
    }
    // CSV (a quoted path may hold a comma or a line break), read by the csv crate.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut lines = scanlab_hashlist::list::CsvLines::new(text);
    let mut record = csv::StringRecord::new();
    // The hash's column, and the signal type's (ThreatExchange's CSV export), from a header.
    let (mut col, mut type_col, mut first) = (0, None, true);
    // Without a header, the field after the hash is the quality (`hash,quality,path`).
    let mut quality_col = Some(1);
    loop {
        let here = lines.at(reader.position().byte());
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(here, |p| lines.at(p.byte()));
                out.push((line, String::new(), Err(at(line, &e.to_string()))));
                break;
            }
        }
        let line = record.position().map_or(here, |p| lines.at(p.byte()));
        if std::mem::take(&mut first)
            && scanlab_pdq::Hash256::from_hex(record.get(0).unwrap_or("")).is_err()
        {
            let find = |names: &[&str]| {
                record
                    .iter()
                    .position(|c| names.contains(&c.to_ascii_lowercase().as_str()))
            };
            if let Some(c) = find(&scanlab_hashlist::list::HASH_COLUMNS) {
                (col, type_col, quality_col) = (c, find(&["signal_type"]), find(&["quality"]));
                continue;
            }
        }
        if type_col
            .and_then(|c| record.get(c))
            .is_some_and(|t| !t.eq_ignore_ascii_case("pdq"))
        {
            continue;
        }
        let Some(field) = record.get(col).filter(|f| !f.is_empty()) else {
            continue;
        };
        let named = scanlab_hashlist::list::signal_hex(field);
        let quality = quality_col
            .and_then(|c| record.get(c))
            .and_then(|q| q.parse::<u8>().ok())
            .filter(|&q| q <= 100);
        out.push((
            line,
            named.to_string(),
            hash(line, named).map(|h| (h, quality)),
        ));
    }
    Ok(out)
}

/// A pool of `threads` workers (default: all cores).
pub fn pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        b = b.num_threads(n.max(1));
    }
    b.build().context("starting worker threads")
}

/// The exit status of a batch that went on past bad inputs: 2, with a count on stderr, when
/// any of `total` failed.
pub fn batch_status(failed: usize, total: usize, what: &str) -> std::process::ExitCode {
    if failed > 0 {
        eprintln!("scanlab: {failed} of {total} {what} failed");
        return std::process::ExitCode::from(2);
    }
    std::process::ExitCode::SUCCESS
}

/// Files as given, folders walked recursively in sorted order (so output is reproducible).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    expand_with(paths, IMAGE_EXTENSIONS)
}

/// Videos FFmpeg commonly reads, by extension, for folders given to `scanlab vhash`.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "3gp", "flv", "ogv", "wmv",
];

/// Files as given, and folders walked (sorted, recursively) for files with one of `exts`.
pub fn expand_with(paths: &[PathBuf], exts: &[&str]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, exts, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, exts, out)?;
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// A progress bar on stderr, shown only when stderr is a terminal and the work is long enough
/// to be worth watching.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    if quiet() || !std::io::stderr().is_terminal() || len < 50 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed_precise}, eta {eta}]")
            .expect("valid template"),
    );
    bar.set_message(what.to_string());
    bar
}

/// The dev corpus, fetched on first use, with status lines on stderr.
pub fn corpus() -> Result<scanlab_corpus::Corpus> {
    let spinner = if !quiet() && std::io::stderr().is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    let dir = scanlab_corpus::default_cache_dir();
    let c = scanlab_corpus::ensure(&dir, &mut |m| {
        spinner.set_message(format!("corpus: {m}"));
        spinner.tick();
    })?;
    spinner.finish_and_clear();
    Ok(c)
}
