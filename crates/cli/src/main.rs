//! `scanlab`: a thin command line over the scanlab crates.
//!
//! Exit codes (tested in `tests/cli.rs`):
//! - 0: success;
//! - 1: a clean negative result (reserved for `match`/`verify`: no match, verification failed);
//! - 2: a usage error, or any input that could not be processed (the others still are).

mod attackcmd;
mod bench;
mod clientcmd;
mod democmd;
mod evalcmd;
mod files;
mod listcmd;
mod schemecmd;
mod vhashcmd;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use scanlab_imaging::{DecodeOptions, Edit, Limits, pdq_image};
use scanlab_pdq::Hasher;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_HELP: &str = "Exit codes: 0 success; 1 clean negative result (no match, verification failed); \
2 usage error or an input that failed (the rest are still processed).";

fn long_version() -> &'static str {
    let s = format!(
        "{}\npdq backend: {:?} (runtime-detected; portable fallback is bit-identical)",
        env!("CARGO_PKG_VERSION"),
        scanlab_pdq::Backend::detect()
    );
    Box::leak(s.into_boxed_str())
}

#[derive(Parser)]
#[command(name = "scanlab", version, long_version = long_version(), about, after_help = EXIT_HELP)]
struct Cli {
    /// No progress display and no informational notes on stderr; errors are still printed.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

const HASH_EXAMPLES: &str = "Examples:
  scanlab hash photo.jpg                      # hash,quality,path
  scanlab hash --format jsonl photos/ > h.jsonl
  find . -name '*.jpg' | scanlab hash --files-from -
  scanlab hash --dihedral bridge.jpg          # the 8 rotations and flips too";

const MATCH_EXAMPLES: &str = "Examples:
  scanlab match --list list.csv photos/       # one JSON line per image; exit 1 if none matched
  scanlab hash photos/ | scanlab match --list list.csv --hashes -
  scanlab match --list list.bin --radius 20 --hashes queries.txt";

const EVALUATE_EXAMPLES: &str = "Examples:
  scanlab evaluate --out evaluation           # the default run (about 4 minutes on 2 cores)
  scanlab evaluate --quick --out /tmp/e       # a smaller run (under a minute)
  scanlab evaluate --schemes e2ee,device-hash --seed 7 --out e7
  scanlab evaluate --schemes private-match --param threshold=5 --out t5   # one scheme, reconfigured
  scanlab evaluate --print-schema > results.schema.json";

const FP_EXAMPLES: &str = "Examples:
  scanlab hash my-photos/ > h.csv && scanlab fp --hashes h.csv
  scanlab fp --hashes h.csv --radius 24 --list-sizes 1000000 --daily 1e9";

#[derive(Subcommand)]
enum Cmd {
    /// The main job: every detection scheme measured on one simulated workload through the
    /// real messenger; writes results.json, report.html and CSVs to --out.
    #[command(after_help = EVALUATE_EXAMPLES)]
    Evaluate(evalcmd::EvalArgs),
    /// False positives of your own hash collection: the per-pair probability of two unrelated
    /// images within the radius (empirical, with its exact interval, and from the lattice
    /// model, with its bootstrap interval and check), projected to a daily volume. Prints JSON.
    #[command(after_help = FP_EXAMPLES)]
    Fp(evalcmd::FpArgs),
    /// PDQ-hash images (files or folders, recursively), printing one line per image.
    ///
    /// CSV lines are `hash,quality,path`, exactly as Meta's pdq-photo-hasher prints them; with
    /// --dihedral, the 8 dihedral hashes come first, as its --pdqdih-across does.
    #[command(after_help = HASH_EXAMPLES)]
    Hash(HashArgs),
    /// vPDQ hashes of videos (Meta's PDQ on sampled frames, decoded by FFmpeg), frame for frame
    /// identical with Meta's vpdq on the same FFmpeg.
    ///
    /// Text lines are `frameNumber,quality,pdqHex,timestamp`, as Meta's vpdq-hash-video writes
    /// them. A bad video is reported with its name and the others are still hashed (exit 2).
    #[command(after_help = vhashcmd::EXAMPLES)]
    Vhash(vhashcmd::VhashArgs),
    /// Write edited copies of images, for robustness experiments.
    Edit(EditArgs),
    /// A live web page: Alice and Bob chat under a scheme, and every other party's pane shows
    /// what its own code received, read by the evaluation's scheme-blind analyst.
    ///
    /// Serves on loopback by default and prints `listening on http://ADDR` once ready; open
    /// that address in a browser. Nothing on the page comes from another host.
    #[command(after_help = democmd::EXAMPLES)]
    Demo(democmd::DemoArgs),
    /// Attack PDQ: evading copies of images, or benign images made to collide with a target
    /// hash, written as PNG to --out with one JSON line per image (success, distance, PSNR,
    /// SSIM, L2, L∞, cost).
    #[command(after_help = attackcmd::EXAMPLES)]
    Attack {
        #[command(subcommand)]
        cmd: attackcmd::AttackCmd,
    },
    /// The dev corpus of benign photos from Debian packages.
    Corpus {
        #[command(subcommand)]
        cmd: CorpusCmd,
    },
    /// Build and convert hash lists.
    List {
        #[command(subcommand)]
        cmd: listcmd::ListCmd,
    },
    /// Match images (or hashes) against a list; prints one JSON line per query.
    ///
    /// Exit code 0 when any query matched, 1 when none did.
    #[command(after_help = MATCH_EXAMPLES)]
    Match(listcmd::MatchArgs),
    /// Run the messenger's provider: an HTTP service storing everything under --data.
    ///
    /// Prints `listening on http://ADDR` once ready (use port 0 for a free port).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8731")]
        listen: String,
        /// Data directory (SQLite database).
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        scheme: schemecmd::SchemeArgs,
    },
    /// Run the simulated enclave of scheme S5 as its own process (see `serve --enclave`).
    #[command(name = "enclave")]
    ///
    /// Prints `listening on http://ADDR`, `measurement HEX` and `caller token FILE` once ready;
    /// the provider passes FILE as `serve --enclave-token`.
    EnclaveProcess {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8732")]
        listen: String,
        /// The hash list the enclave matches against.
        #[arg(long)]
        list: PathBuf,
        /// Match radius in bits.
        #[arg(long, default_value_t = scanlab_schemes::DEFAULT_RADIUS)]
        radius: u32,
        /// The enclave's data directory, where its view (everything it receives and sends)
        /// is recorded.
        #[arg(long)]
        data: PathBuf,
    },
    /// Run the matching organisation of scheme S8 as its own process (see `serve --matcher`).
    ///
    /// Prints `listening on http://ADDR`, `key HEX` and `caller token FILE` once ready; the
    /// provider passes FILE as `serve --matcher-token`.
    Matcher {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8733")]
        listen: String,
        /// The hash list the organisation matches against.
        #[arg(long)]
        list: PathBuf,
        /// Match radius in bits.
        #[arg(long, default_value_t = scanlab_schemes::DEFAULT_RADIUS)]
        radius: u32,
        /// The organisation's data directory: its key (`matcher.key`) and its view.
        #[arg(long)]
        data: PathBuf,
        /// Be one of scheme third-party-multi's two organisations (point-function shares).
        #[arg(long)]
        multi: bool,
    },
    /// The escrow authority of scheme S2: make its keys, or read everything with them.
    Escrow {
        #[command(subcommand)]
        cmd: schemecmd::EscrowCmd,
    },
    /// The messenger client: register, chats, send, recv.
    Client(clientcmd::ClientArgs),
    /// Print any party's recorded view (provider, enclave, escrow authority): every body it
    /// received and sent, and what it derived and stored, from its data directory.
    View {
        /// The party's data directory.
        #[arg(long)]
        data: PathBuf,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the provider view (as `view`), or its review queue.
    ProviderView {
        /// The provider's data directory.
        #[arg(long)]
        data: PathBuf,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        /// The review queue instead: images disclosed to the provider's reviewers.
        #[arg(long)]
        reviews: bool,
    },
    /// Speed measurements printed as JSON, for scripts/bench-peer.sh.
    Bench {
        #[command(subcommand)]
        cmd: bench::BenchCmd,
    },
    /// Print a shell completion script, generated from this command line's definition.
    #[command(
        after_help = "Examples:\n  scanlab completions bash > ~/.local/share/bash-completion/completions/scanlab\n  scanlab completions zsh > ~/.zfunc/_scanlab"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (roff), one per command, generated from this command line's
    /// definition.
    #[command(
        after_help = "Examples:\n  scanlab man --out man/ && man -l man/scanlab-hash.1\n  scanlab man | man -l -"
    )]
    Man {
        /// A folder for `scanlab.1` and one page per subcommand; without it, `scanlab.1` goes
        /// to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Output formats, named as everywhere in scanlab: `csv`, and `jsonl` for JSON lines (`json`
/// is accepted for it, the name this option had first).
#[derive(Clone, Copy, ValueEnum)]
enum OutFormat {
    /// `hash,quality,path`, as Meta's pdq-photo-hasher prints.
    Csv,
    /// JSON lines: `{"path","pdq","quality"}`.
    #[value(alias = "json")]
    Jsonl,
    /// `pdq <hex>`, as ThreatExchange's `hash photo` prints (and its local-file
    /// collaboration loads); ThreatExchange leaves out hashes of quality below 50, and so
    /// does this format, with a note.
    #[value(alias = "te")]
    Threatexchange,
}

#[derive(clap::Args)]
pub(crate) struct DecodeArgs {
    /// Apply the EXIF Orientation tag before hashing (Meta's reference does not).
    #[arg(long)]
    exif_orient: bool,
    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = Limits::default().max_pixels)]
    max_pixels: u64,
    /// Refuse files larger than this many bytes.
    #[arg(long, default_value_t = Limits::default().max_bytes)]
    max_bytes: u64,
    /// Whose pixels to hash: the reference's (Pillow's convert('RGB'), as Meta's golden values)
    /// or ThreatExchange's, which hashes palette PNGs as their indices, 1-bit PNGs as 0/1 and
    /// CMYK JPEGs as if C, M, Y were R, G, B: a deviation from the reference, for comparing
    /// with hashes that tool made.
    #[arg(long, value_enum, default_value = "reference")]
    compat: CompatArg,
    /// Decode large JPEG and WebP images at reduced size (libjpeg-turbo's DCT scaling,
    /// libwebp's rescaler): several times faster, but NOT the reference's pixels, so hashes
    /// differ from Meta's by a few bits. Off by default; never for exactness.
    #[arg(long)]
    fast_decode: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompatArg {
    /// Pillow's convert('RGB'): Meta's reference.
    Reference,
    /// ThreatExchange 1.2.17's Python library.
    #[value(alias = "te")]
    Threatexchange,
}

impl DecodeArgs {
    pub(crate) fn options(&self) -> DecodeOptions {
        DecodeOptions {
            limits: Limits {
                max_pixels: self.max_pixels,
                max_bytes: self.max_bytes,
            },
            exif_orient: self.exif_orient,
            compat: match self.compat {
                CompatArg::Reference => scanlab_imaging::Compat::Reference,
                CompatArg::Threatexchange => scanlab_imaging::Compat::ThreatExchange,
            },
            fast: self.fast_decode.then(scanlab_imaging::FastDecode::default),
        }
    }
}

#[derive(clap::Args)]
struct HashArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    format: OutFormat,
    /// Also print the 8 dihedral hashes (rotations and flips), from one DCT.
    #[arg(long)]
    dihedral: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    decode: DecodeArgs,
    /// Hash the dev corpus (fetched, verified and cached on first use).
    #[arg(long)]
    corpus: bool,
    #[command(flatten)]
    files_from: files::FilesFrom,
    /// Image files or folders.
    #[arg(required_unless_present_any = ["corpus", "files_from"])]
    paths: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct EditArgs {
    /// KIND:STRENGTH (strength 0..1), repeatable: each edit writes its own copy.
    #[arg(long = "edit", required = true)]
    edits: Vec<Edit>,
    /// Seed for edits with a random element.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder; copies are named `<stem>.<kind>-<strength>.png`.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    decode: DecodeArgs,
    /// Image files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum CorpusCmd {
    /// Download, verify and cache the corpus; prints the images folder.
    Fetch,
    /// List the corpus as JSON lines (package, path, licence, cached file).
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.quiet {
        files::set_quiet();
    }
    let r = match cli.cmd {
        Cmd::Evaluate(a) => evalcmd::run(a),
        Cmd::Fp(a) => evalcmd::fp(a),
        Cmd::Hash(a) => cmd_hash(a),
        Cmd::Vhash(a) => vhashcmd::run(a),
        Cmd::Edit(a) => cmd_edit(a),
        Cmd::Demo(a) => democmd::run(a),
        Cmd::Attack { cmd } => attackcmd::run(cmd),
        Cmd::Corpus { cmd } => cmd_corpus(cmd),
        Cmd::List { cmd } => listcmd::run(cmd),
        Cmd::Match(a) => listcmd::run_match(a),
        Cmd::Bench { cmd } => bench::run(cmd),
        Cmd::Serve {
            listen,
            data,
            scheme,
        } => cmd_serve(&listen, &data, &scheme),
        Cmd::EnclaveProcess {
            listen,
            list,
            radius,
            data,
        } => schemecmd::cmd_enclave(&listen, &list, radius, &data),
        Cmd::Matcher {
            listen,
            list,
            radius,
            data,
            multi,
        } => schemecmd::cmd_matcher(&listen, &list, radius, &data, multi),
        Cmd::Escrow { cmd } => schemecmd::cmd_escrow(cmd),
        Cmd::View { data, json } => cmd_view(&data, json, false),
        Cmd::ProviderView {
            data,
            json,
            reviews,
        } => cmd_view(&data, json, reviews),
        Cmd::Client(a) => clientcmd::run(a),
        Cmd::Completions { shell } => cmd_completions(shell),
        Cmd::Man { out } => cmd_man(out.as_deref()),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("scanlab: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[derive(serde::Serialize)]
struct HashLine<'a> {
    path: &'a str,
    pdq: String,
    quality: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    dihedral: Option<Vec<String>>,
}

fn cmd_hash(a: HashArgs) -> Result<ExitCode> {
    use rayon::prelude::*;
    let mut inputs = files::expand(&a.paths)?;
    inputs.extend(files::expand(&a.files_from.paths()?)?);
    if a.corpus {
        inputs.extend(files::corpus()?.paths());
    }
    let opts = a.decode.options();
    let pool = files::pool(a.threads)?;
    let bar = files::progress(inputs.len() as u64, "hashing");
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // CSV through the csv crate: byte-identical to Meta's hasher for ordinary paths, and a path
    // holding a comma, a quote or a line break is quoted instead of breaking the row.
    let csv_row = |row: &[String]| -> Result<Vec<u8>> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(row)?;
        Ok(w.into_inner().map_err(|e| e.into_error())?)
    };
    let mut failed = 0usize;
    // Chunks keep output in input order while all threads work.
    for chunk in inputs.chunks(256) {
        let results: Vec<_> = pool.install(|| {
            chunk
                .par_iter()
                .map_init(Hasher::new, |h, p| {
                    let r = files::decode_path(p, &opts).map(|img| {
                        let px = pdq_image(&img);
                        if a.dihedral {
                            let d = h.hash_dihedral(&px);
                            (d.hashes[0], d.quality, Some(d.hashes))
                        } else {
                            let p = h.hash(&px);
                            (p.hash, p.quality, None)
                        }
                    });
                    bar.inc(1);
                    r
                })
                .collect()
        });
        for (p, r) in chunk.iter().zip(results) {
            match r {
                Ok((hash, quality, dih)) => {
                    let path = p.to_string_lossy();
                    match a.format {
                        OutFormat::Csv => {
                            let mut row: Vec<String> = match dih {
                                Some(d) => d.iter().map(|h| h.to_hex()).collect(),
                                None => vec![hash.to_hex()],
                            };
                            row.push(quality.to_string());
                            row.push(path.to_string());
                            out.write_all(&csv_row(&row)?)?;
                        }
                        OutFormat::Threatexchange => {
                            if quality < scanlab_hashlist::list::MIN_QUALITY {
                                files::note!(
                                    "{path}: quality {quality} is below {}; left out, as \
                                     ThreatExchange does",
                                    scanlab_hashlist::list::MIN_QUALITY
                                );
                            } else {
                                writeln!(out, "pdq {hash}")?
                            }
                        }
                        OutFormat::Jsonl => {
                            let line = HashLine {
                                path: &path,
                                pdq: hash.to_hex(),
                                quality,
                                dihedral: dih.map(|d| d.iter().map(|h| h.to_hex()).collect()),
                            };
                            writeln!(out, "{}", serde_json::to_string(&line)?)?
                        }
                    }
                }
                Err(e) => {
                    failed += 1;
                    bar.suspend(|| eprintln!("scanlab: error: {e}"));
                }
            }
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok(files::batch_status(failed, inputs.len(), "inputs"))
}

fn cmd_edit(a: EditArgs) -> Result<ExitCode> {
    let inputs = files::expand(&a.paths)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let opts = a.decode.options();
    let bar = files::progress((inputs.len() * a.edits.len()) as u64, "editing");
    let mut failed = 0;
    for p in &inputs {
        let img = match files::decode_path(p, &opts) {
            Ok(i) => i,
            Err(e) => {
                failed += 1;
                bar.suspend(|| eprintln!("scanlab: error: {e}"));
                continue;
            }
        };
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "image".into());
        for e in &a.edits {
            let edited = e
                .apply(&img, a.seed)
                .with_context(|| format!("{}: {e}", p.display()))?;
            let dst = a
                .out
                .join(format!("{stem}.{}-{}.png", e.kind.name(), e.strength));
            edited
                .save(&dst)
                .with_context(|| format!("writing {}", dst.display()))?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(if failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn cmd_completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "scanlab", &mut out);
    std::io::stdout().lock().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The manual pages, in roff (for `man -l`).
fn cmd_man(out: Option<&std::path::Path>) -> Result<ExitCode> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    match out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            std::io::stdout().lock().write_all(&page)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing manual pages to {}", dir.display()))?;
            files::note!("wrote manual pages to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_corpus(c: CorpusCmd) -> Result<ExitCode> {
    let corpus = files::corpus()?;
    match c {
        CorpusCmd::Fetch => files::outln!("{}", corpus.images_dir.display())?,
        CorpusCmd::List => {
            for (e, p) in corpus.entries.iter().zip(corpus.paths()) {
                #[derive(serde::Serialize)]
                struct Row<'a> {
                    #[serde(flatten)]
                    entry: &'a scanlab_corpus::Entry,
                    file: PathBuf,
                }
                files::outln!("{}", serde_json::to_string(&Row { entry: e, file: p })?)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_serve(
    listen: &str,
    data: &std::path::Path,
    scheme: &schemecmd::SchemeArgs,
) -> Result<ExitCode> {
    use scanlab_messenger::{Limits, Provider, SqliteStore};
    let half = scheme.provider_half()?;
    let store = SqliteStore::open(data).with_context(|| format!("opening {}", data.display()))?;
    let provider = Provider::with_scheme(Box::new(store), Limits::default(), half);
    files::note!("scheme {}", provider.scheme_name());
    serve_http(listen, scanlab_messenger::router(provider), &[])?;
    Ok(ExitCode::SUCCESS)
}

/// Serves `router` on `listen` until Ctrl-C. Once bound it prints `listening on http://ADDR`
/// and then `ready` on stdout (scripts and tests wait for these lines).
pub(crate) fn serve_http(listen: &str, router: axum::Router, ready: &[String]) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        files::outln!("listening on http://{}", listener.local_addr()?)?;
        for line in ready {
            files::outln!("{line}")?;
        }
        std::io::stdout().flush()?;
        scanlab_messenger::serve_router(
            listener,
            router,
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            scanlab_messenger::ServeOptions::default(),
        )
        .await?;
        Ok(())
    })
}

/// One view record as a table line. Never panics: the digest is shown as far as it goes.
fn view_line(r: &scanlab_messenger::ViewRecord) -> String {
    format!(
        "{:>6} {:>14} {:<8} {:<10} {:<28} {:>9} B  sha256 {}",
        r.seq,
        r.at_ms,
        r.kind,
        r.who.as_deref().unwrap_or("-"),
        r.endpoint,
        r.len,
        r.sha256.get(..16).unwrap_or(&r.sha256)
    )
}

fn cmd_view(data: &std::path::Path, json: bool, reviews: bool) -> Result<ExitCode> {
    use scanlab_messenger::{SqliteStore, Store};
    use sha2::Digest;
    // Opening for reading must not create an empty store where there was none.
    let (mut store, party) = SqliteStore::open_existing(data)
        .with_context(|| format!("reading a view in {}", data.display()))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if reviews {
        for r in store.reviews()? {
            let line = serde_json::json!({
                "id": r.id, "at_ms": r.at_ms, "submitter": r.submitter, "blob": r.blob,
                "reason": r.reason, "image_len": r.image.len(),
                "image_sha256": hex::encode(sha2::Sha256::digest(&r.image)),
            });
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    if !json {
        writeln!(out, "# the {party}'s view")?;
    }
    for r in store.view()? {
        if json {
            writeln!(out, "{}", serde_json::to_string(&r)?)?;
        } else {
            writeln!(out, "{}", view_line(&r))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
