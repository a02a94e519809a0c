//! `scanlab attack`: evading copies and colliding images, written as PNG for inspection.

use crate::DecodeArgs;
use crate::files::{self, outln};
use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use scanlab_attack::{Budget, Outcome, blackbox, pdq, whitebox};
use scanlab_pdq::Hash256;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

pub(crate) const EXAMPLES: &str = "Examples:
  scanlab attack evade --out ev photo.jpg                    # white-box, default budget
  scanlab attack evade --method black --budget large --seed 3 --out ev photos/
  scanlab attack collide --target-image listed.jpg --out col benign.jpg
  scanlab attack collide --target 58f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22 --out col benign.jpg";

#[derive(Subcommand)]
pub(crate) enum AttackCmd {
    /// Evading copies: each image changed until its PDQ is more than --radius bits from the
    /// original's.
    Evade {
        /// Images (files or folders).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// What the attacker knows: PDQ itself (white) or only a matched/not-matched oracle
        /// (black).
        #[arg(long, value_enum, default_value = "white")]
        method: Method,
        #[command(flatten)]
        common: Common,
    },
    /// Colliding images: each image changed until its PDQ is within --radius bits of a target
    /// hash.
    Collide {
        /// Benign images to change (files or folders).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The target hash (64 hex digits).
        #[arg(
            long,
            conflicts_with = "target_image",
            required_unless_present = "target_image"
        )]
        target: Option<String>,
        /// An image whose PDQ is the target.
        #[arg(long)]
        target_image: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Method {
    /// Steer PDQ's DCT coefficients across the median.
    White,
    /// Random smooth noise against an oracle, with a query budget.
    Black,
}

#[derive(clap::Args)]
pub(crate) struct Common {
    /// Folder for the attacked images (`NAME.evade.png` or `NAME.collide.png`).
    #[arg(long)]
    out: PathBuf,
    /// Match radius in bits.
    #[arg(long, default_value_t = 31)]
    radius: u32,
    /// default (about a second per image) or large (ten times as much work).
    #[arg(long, default_value = "default")]
    budget: Budget,
    /// Seed of the black-box search.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    decode: DecodeArgs,
}

/// One JSON line per image.
#[derive(serde::Serialize)]
struct Line<'a> {
    path: &'a str,
    attack: &'a str,
    budget: &'a str,
    success: bool,
    /// Distance from the original's hash (evade) or the target (collide).
    distance: u32,
    pdq: String,
    /// Hashes computed or oracle queries.
    cost: u32,
    psnr: f64,
    ssim: f64,
    l2: f64,
    linf: u8,
    seconds: f64,
    out: String,
}

pub(crate) fn run(cmd: AttackCmd) -> Result<ExitCode> {
    let (paths, common, kind, target) = match cmd {
        AttackCmd::Evade {
            paths,
            method,
            common,
        } => (paths, common, Kind::Evade(method), None),
        AttackCmd::Collide {
            paths,
            target,
            target_image,
            common,
        } => {
            let t = match (target, target_image) {
                (Some(hex), _) => Hash256::from_hex(hex.trim())
                    .with_context(|| format!("--target {hex}: not a PDQ hash"))?,
                (None, Some(p)) => pdq(&files::decode_path(&p, &common.decode.options())?),
                (None, None) => bail!("give --target or --target-image"),
            };
            (paths, common, Kind::Collide, Some(t))
        }
    };
    let inputs = files::expand(&paths)?;
    std::fs::create_dir_all(&common.out)
        .with_context(|| format!("creating {}", common.out.display()))?;
    let opts = common.decode.options();
    let bar = files::progress(inputs.len() as u64, "attacking");
    let mut failed = 0usize;
    for p in &inputs {
        let r = attack_one(p, &common, kind, target.as_ref(), &opts);
        bar.inc(1);
        match r {
            Ok(line) => outln!("{}", serde_json::to_string(&line)?)?,
            Err(e) => {
                failed += 1;
                bar.suspend(|| eprintln!("scanlab: error: {}: {e:#}", p.display()));
            }
        }
    }
    bar.finish_and_clear();
    Ok(if failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Evade(Method),
    Collide,
}

fn attack_one<'a>(
    p: &'a Path,
    c: &Common,
    kind: Kind,
    target: Option<&Hash256>,
    opts: &scanlab_imaging::DecodeOptions,
) -> Result<Line<'a>> {
    let x0 = files::decode_path(p, opts)?;
    let started = Instant::now();
    let (name, o): (&str, Outcome) = match kind {
        Kind::Evade(Method::White) => {
            let h0 = pdq(&x0);
            (
                "evade-white",
                whitebox::evade(&x0, &h0, c.radius, c.budget)?,
            )
        }
        Kind::Evade(Method::Black) => {
            let h0 = pdq(&x0);
            let mut oracle = |img: &scanlab_imaging::RgbImage| pdq(img).distance(&h0) <= c.radius;
            let o = blackbox::evade(&x0, &h0, &mut oracle, c.budget, c.seed)?;
            ("evade-black", o)
        }
        Kind::Collide => {
            let t = target.expect("collide has a target");
            ("collide", whitebox::collide(&x0, t, c.radius, c.budget)?)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stdin".into());
    let suffix = if matches!(kind, Kind::Collide) {
        "collide"
    } else {
        "evade"
    };
    let out = c.out.join(format!("{stem}.{suffix}.png"));
    o.save_png(&out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(Line {
        path: p.to_str().unwrap_or("?"),
        attack: name,
        budget: c.budget.name(),
        success: o.success,
        distance: o.distance,
        pdq: o.hash.to_hex(),
        cost: o.cost,
        psnr: o.change.psnr,
        ssim: o.change.ssim,
        l2: o.change.l2,
        linf: o.change.linf,
        seconds,
        out: out.display().to_string(),
    })
}
