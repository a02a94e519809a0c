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
    #[arg(long)]
    out: PathBuf,
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
}

struct Bar(Mutex<ProgressBar>);

impl Progress for Bar {
    fn phase(&self, name: &str, total: u64) {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        b.finish_and_clear();
        if !std::io::stderr().is_terminal() {
            eprintln!("scanlab: {name} ({total} steps)");
        }
        *b = crate::files::progress(total, name);
        b.set_message(name.to_string());
    }
    fn tick(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).inc(1);
    }
}

pub fn run(a: EvalArgs) -> Result<ExitCode> {
    let corpus = match &a.corpus {
        Some(dir) => crate::files::expand(std::slice::from_ref(dir))?,
        None => crate::files::corpus()?.paths(),
    };
    let command = std::env::args()
        .map(|s| if s.contains(' ') { format!("{s:?}") } else { s })
        .collect::<Vec<_>>()
        .join(" ");
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
        command,
    };
    let bar = Bar(Mutex::new(ProgressBar::hidden()));
    let results = scanlab_eval::run(&cfg, &bar)?;
    bar.0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .finish_and_clear();
    scanlab_eval::report::write(&results, &a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "scanlab: evaluated {} schemes in {:.0} s; report: {}",
        results.schemes.len(),
        results.timings.total_seconds,
        a.out.join("report.html").display()
    );
    Ok(ExitCode::SUCCESS)
}
