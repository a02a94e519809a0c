//! `scanlab bench hash`: the Rust half of the side-by-side comparison in
//! `scripts/bench-peer.sh`, which runs the Python peer (Pillow + the PyPI `pdqhash` wheel, i.e.
//! Meta's C++ core) over the same files and prints the ratios.

use anyhow::Result;
use clap::Subcommand;
use scanlab_imaging::{DecodeOptions, decode_file, pdq_image};
use scanlab_pdq::Hasher;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Times PDQ on files: pixels→hash per image (median of --reps, one thread) and
    /// file→hash over all files (decode included) on one thread and on all cores.
    Hash {
        /// Repetitions for the per-image pixels→hash median.
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Image files or folders; the dev corpus when none are given.
        paths: Vec<PathBuf>,
    },
}

#[derive(serde::Serialize)]
struct PerImage {
    path: String,
    width: u32,
    height: u32,
    pdq: String,
    pixels_to_hash_ms: f64,
}

#[derive(serde::Serialize)]
struct Report {
    scanlab_version: &'static str,
    backend: String,
    threads_all_cores: usize,
    images: Vec<PerImage>,
    file_to_hash_one_thread_s: f64,
    file_to_hash_all_cores_s: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(cmd: BenchCmd) -> Result<ExitCode> {
    let BenchCmd::Hash { reps, paths } = cmd;
    let files = if paths.is_empty() {
        crate::files::corpus()?.paths()
    } else {
        crate::files::expand(&paths)?
    };
    let opts = DecodeOptions::default();
    let mut hasher = Hasher::new();
    let mut images = Vec::new();
    for p in &files {
        let img = decode_file(p, &opts)?;
        let px = pdq_image(&img);
        let want = hasher.hash(&px);
        let times: Vec<f64> = (0..reps.max(1))
            .map(|_| {
                let t = Instant::now();
                let h = hasher.hash(&px);
                let dt = t.elapsed().as_secs_f64() * 1e3;
                assert_eq!(h, want);
                dt
            })
            .collect();
        images.push(PerImage {
            path: p.to_string_lossy().into(),
            width: img.width(),
            height: img.height(),
            pdq: want.hash.to_hex(),
            pixels_to_hash_ms: median(times),
        });
    }
    let t = Instant::now();
    for p in &files {
        let img = decode_file(p, &opts)?;
        std::hint::black_box(hasher.hash(&pdq_image(&img)));
    }
    let one = t.elapsed().as_secs_f64();
    let t = Instant::now();
    {
        use rayon::prelude::*;
        files
            .par_iter()
            .try_for_each_init(Hasher::new, |h, p| -> Result<()> {
                let img = decode_file(p, &opts)?;
                std::hint::black_box(h.hash(&pdq_image(&img)));
                Ok(())
            })?;
    }
    let all = t.elapsed().as_secs_f64();
    let report = Report {
        scanlab_version: env!("CARGO_PKG_VERSION"),
        backend: format!("{:?}", hasher.backend()),
        threads_all_cores: rayon::current_num_threads(),
        images,
        file_to_hash_one_thread_s: one,
        file_to_hash_all_cores_s: all,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
