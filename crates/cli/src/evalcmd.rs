//! `scanlab evaluate`: the main job.

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use scanlab_eval::{Config, Progress};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

/// `scanlab evaluate` arguments.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// Output folder: results.json, report.html and CSVs.
    #[arg(long, required_unless_present = "print_schema")]
    out: Option<PathBuf>,
    /// Corpus folder of images (default: the dev corpus, fetched and verified on first use).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Schemes to run, by name or id, comma-separated (default: every registered scheme).
    #[arg(long, value_delimiter = ',')]
    schemes: Option<Vec<String>>,
    /// Seed of every random choice; the same seed gives the same results.json (timings aside).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The small workload (about 2 minutes on 2 cores), for CI.
    #[arg(long)]
    quick: bool,
    /// Work each attack on the hash may do: default (about a second per image) or large (ten
    /// times as much, for success rates comparable with published ones).
    #[arg(long, default_value = "default")]
    budget: scanlab_attack::Budget,
    /// Scheme configuration for this run, repeatable: the field as `scanlab serve --param`
    /// names it (`--param threshold=5`). Every scheme run must take it in an evaluation, so
    /// name them with --schemes.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Meta's sample videos, matched at the hash in the video part (default:
    /// $SCANLAB_VPDQ_REFERENCE/videos, or ../shared/vpdq-reference/videos where it exists;
    /// none otherwise, which the report says).
    #[arg(long)]
    reference_videos: Option<PathBuf>,
    /// Every party decodes images by the fast path (JPEG and WebP at reduced size; see
    /// `scanlab hash --fast-decode`), to measure what it costs in recall and false positives
    /// beside an exact run of the same seed. Off by default: the exact run is the reference.
    #[arg(long)]
    fast_decode: bool,
    /// Print the JSON Schema of results.json (the file in the repository's schema/ folder) and
    /// exit.
    #[arg(long)]
    print_schema: bool,
}

struct Bar(Mutex<ProgressBar>);

impl Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        b.finish_and_clear();
        if !std::io::stderr().is_terminal() {
            crate::files::note!("{name} ({total} steps)");
        }
        *b = crate::files::progress(total, name);
        b.set_message(name.to_string());
    }
    fn tick(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).inc(1);
    }
}

pub fn run(a: EvalArgs) -> Result<ExitCode> {
    let Some(out) = a.out.clone().filter(|_| !a.print_schema) else {
        crate::files::outln!(
            "{}",
            serde_json::to_string_pretty(&scanlab_eval::results_schema())?
        )?;
        return Ok(ExitCode::SUCCESS);
    };
    let corpus = match &a.corpus {
        Some(dir) => crate::files::expand(std::slice::from_ref(dir))?,
        None => crate::files::corpus()?.paths(),
    };
    let command = std::env::args()
        .map(|s| if s.contains(' ') { format!("{s:?}") } else { s })
        .collect::<Vec<_>>()
        .join(" ");
    if a.fast_decode {
        // Process-wide, so the list builder and every scheme's halves decode alike.
        scanlab_imaging::set_fast_decode_default(Some(scanlab_imaging::FastDecode::default()));
    }
    let registry = scanlab_schemes::registry();
    let cfg = Config {
        corpus,
        schemes: match a.schemes {
            None => registry.all().to_vec(),
            Some(names) => names
                .iter()
                .map(|n| registry.get(n))
                .collect::<Result<_, _>>()?,
        },
        seed: a.seed,
        quick: a.quick,
        params: crate::schemecmd::parse_params(&a.params)?,
        command,
        budget: a.budget,
        reference_videos: a.reference_videos.clone().or_else(|| {
            std::env::var_os("SCANLAB_VPDQ_REFERENCE")
                .map(PathBuf::from)
                .or_else(|| Some(PathBuf::from("../shared/vpdq-reference")))
                .map(|d| d.join("videos"))
                .filter(|d| d.is_dir())
        }),
    };
    let bar = Bar(Mutex::new(ProgressBar::hidden()));
    let results = scanlab_eval::run(&cfg, &bar)?;
    bar.0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .finish_and_clear();
    scanlab_eval::report::write(&results, &out)
        .with_context(|| format!("writing {}", out.display()))?;
    crate::files::note!(
        "evaluated {} schemes in {:.0} s; report: {}",
        results.schemes.len(),
        results.timings.total_seconds,
        out.join("report.html").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `scanlab fp` arguments.
#[derive(clap::Args)]
pub struct FpArgs {
    /// Hashes, one image per line, as `scanlab hash` writes them: CSV (`hash,quality,path`) or
    /// JSON lines (a `pdq` field); `-` is stdin. The images should be unrelated: every pair
    /// counts as an innocent pair.
    #[arg(long)]
    hashes: PathBuf,
    /// Match radius (bits).
    #[arg(long, default_value_t = 31)]
    radius: u32,
    /// List sizes to project to, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000000,3500000")]
    list_sizes: Vec<u64>,
    /// Images scanned a day.
    #[arg(long, default_value_t = scanlab_eval::stats::PHOTOS_PER_DAY)]
    daily: f64,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Reads one hash per line ([`crate::files::hash_lines`]); the first bad line is an error
/// naming its line number.
fn read_hashes(path: &std::path::Path) -> Result<Vec<scanlab_pdq::Hash256>> {
    crate::files::hash_lines(path)?
        .into_iter()
        .map(|(_, _, h)| h.map(|(h, _)| h).map_err(anyhow::Error::msg))
        .collect()
}

/// Runs `scanlab fp`.
pub fn fp(a: FpArgs) -> Result<ExitCode> {
    let hashes = read_hashes(&a.hashes)?;
    if hashes.len() < 3 {
        anyhow::bail!(
            "{} holds {} hashes; the analysis needs at least 3 images (and thousands to say much)",
            a.hashes.display(),
            hashes.len()
        );
    }
    let r = scanlab_eval::stats::false_positives(&hashes, a.radius, &a.list_sizes, a.daily, a.seed);
    let mut v = serde_json::to_value(&r)?;
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "command".into(),
            std::env::args().collect::<Vec<_>>().join(" ").into(),
        );
        o.insert("scanlab_version".into(), env!("CARGO_PKG_VERSION").into());
    }
    crate::files::outln!("{}", serde_json::to_string_pretty(&v)?)?;
    Ok(ExitCode::SUCCESS)
}
