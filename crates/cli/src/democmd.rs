//! `scanlab demo`: the live page of [`scanlab_demo`], served over the provider's own server
//! loop (header timeouts, a connection cap).

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

pub(crate) const EXAMPLES: &str = "Examples:
  scanlab demo                                   # http://127.0.0.1:8740, S3 device-hash first
  scanlab demo --scheme S5 --results out         # with out/matrix.csv from `scanlab evaluate --out out`
  scanlab demo --listen 127.0.0.1:0              # any free port (printed)";

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Address to listen on. Anything but loopback exposes the demo (and every photo sent in
    /// it) to the network: a warning is printed.
    #[arg(long, default_value = "127.0.0.1:8740")]
    listen: String,
    /// The scheme deployed first (name or id); the page switches between all of them.
    #[arg(long, default_value = "device-hash")]
    scheme: String,
    /// Corpus folder to draw the gallery from (default: the dev corpus, fetched on first use).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Seed of the gallery's draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// An evaluation's output directory: each scheme's column of its matrix.csv is shown.
    #[arg(long)]
    results: Option<PathBuf>,
}

pub(crate) fn run(a: DemoArgs) -> Result<ExitCode> {
    let addr: std::net::SocketAddr = a.listen.parse().with_context(|| {
        format!(
            "--listen {}: give an address such as 127.0.0.1:8740",
            a.listen
        )
    })?;
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: --listen {addr} is not loopback: anyone who can reach it can send photos \
             through the demo and read every party's records. The demo has no authentication."
        );
    }
    let corpus = match &a.corpus {
        Some(dir) => crate::files::expand(std::slice::from_ref(dir))?,
        None => crate::files::corpus()?.paths(),
    };
    let demo = scanlab_demo::start(&scanlab_demo::DemoConfig {
        scheme: a.scheme,
        corpus,
        seed: a.seed,
        results: a.results,
    })?;
    crate::serve_http(&a.listen, scanlab_demo::router(demo), &[])?;
    Ok(ExitCode::SUCCESS)
}
