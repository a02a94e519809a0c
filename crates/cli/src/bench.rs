//! `scanlab bench hash`: the Rust half of the side-by-side comparison in
//! `scripts/bench-peer.sh`, which runs the Python peer (Pillow + the PyPI `pdqhash` wheel, i.e.
//! Meta's C++ core) over the same files and prints the ratios.

use anyhow::{Context, Result};
use clap::Subcommand;
use scanlab_imaging::{DecodeOptions, decode_file, pdq_image};
use scanlab_pdq::Hasher;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Messenger provider throughput and latency on loopback: N clients each send small
    /// (64-byte) messages over HTTP as fast as the provider acknowledges them.
    Messenger {
        /// Concurrent clients.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Messages per client.
        #[arg(long, default_value_t = 500)]
        messages: usize,
    },
    /// Registers N accounts at a running provider and prints `name token` lines: the honest
    /// clients of `scripts/soak.sh`, whose load generator (wrk) needs tokens.
    Accounts {
        /// The provider's base URL.
        #[arg(long)]
        server: String,
        /// How many accounts.
        #[arg(long, default_value_t = 32)]
        n: usize,
        /// Where their client homes go.
        #[arg(long)]
        homes: PathBuf,
    },
    /// Times the exact Hamming index on a seeded synthetic list, one layout or several; with
    /// --dump, writes the list (a binary list), the queries and the per-query hit counts there
    /// for scripts/bench-index.sh.
    Index(IndexBench),
    /// Draws the index trade-off (bytes a hash against query time, one line per list size,
    /// with the 64-byte and 20×-FAISS-Flat goals) from the rows scripts/bench-index.sh writes.
    IndexPlot {
        /// `rows.jsonl` of scripts/bench-index.sh.
        rows: PathBuf,
        /// The SVG to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Times PDQ on files: pixels→hash per image (median of --reps, one thread) and
    /// file→hash over all files (decode included) on one thread and on all cores.
    Hash {
        /// Repetitions for the per-image pixels→hash median.
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// The fast decoding path's shortest side (`--fast-decode`), timed and compared with
        /// the exact hash in a pass of its own.
        #[arg(long, default_value_t = scanlab_imaging::FAST_MIN_SIDE)]
        fast_min_side: u32,
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
    /// File to hash (read, decode, hash) in the one-thread pass: the per-format ratios.
    file_to_hash_ms: f64,
    /// The same by the fast decoding path, in a pass of its own.
    fast_file_to_hash_ms: f64,
    /// The fast path's hash, and its distance from the exact one.
    fast_pdq: String,
    fast_distance: u32,
}

#[derive(serde::Serialize)]
struct Report {
    scanlab_version: &'static str,
    backend: String,
    threads_all_cores: usize,
    images: Vec<PerImage>,
    file_to_hash_one_thread_s: f64,
    file_to_hash_all_cores_s: f64,
    fast_min_side: u32,
    fast_file_to_hash_one_thread_s: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(cmd: BenchCmd) -> Result<ExitCode> {
    let (reps, fast_min_side, paths) = match cmd {
        BenchCmd::Hash {
            reps,
            fast_min_side,
            paths,
        } => (reps, fast_min_side, paths),
        BenchCmd::Messenger { clients, messages } => return bench_messenger(clients, messages),
        BenchCmd::Accounts { server, n, homes } => {
            use scanlab_messenger::client::{Client, HttpTransport};
            for i in 0..n {
                let name = format!("soak{i}");
                let c = Client::connect(&homes.join(&name), &name, HttpTransport::new(&server))?;
                crate::files::outln!("{name} {}", c.token())?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        BenchCmd::IndexPlot { rows, out } => {
            return index_plot(&rows, &out);
        }
        BenchCmd::Index(b) => {
            return bench_index(b);
        }
    };
    let files = if paths.is_empty() {
        crate::files::corpus()?.paths()
    } else {
        crate::files::expand(&paths)?
    };
    let opts = DecodeOptions {
        fast: None,
        ..DecodeOptions::default()
    };
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
            file_to_hash_ms: 0.0,
            fast_file_to_hash_ms: 0.0,
            fast_pdq: String::new(),
            fast_distance: 0,
        });
    }
    let t = Instant::now();
    for (p, im) in files.iter().zip(images.iter_mut()) {
        let t1 = Instant::now();
        let img = decode_file(p, &opts)?;
        std::hint::black_box(hasher.hash(&pdq_image(&img)));
        im.file_to_hash_ms = t1.elapsed().as_secs_f64() * 1e3;
    }
    let one = t.elapsed().as_secs_f64();
    let fast_opts = DecodeOptions {
        fast: Some(scanlab_imaging::FastDecode {
            min_side: fast_min_side,
        }),
        ..opts
    };
    let t = Instant::now();
    for (p, im) in files.iter().zip(images.iter_mut()) {
        let t1 = Instant::now();
        let img = decode_file(p, &fast_opts)?;
        let h = hasher.hash(&pdq_image(&img)).hash;
        im.fast_file_to_hash_ms = t1.elapsed().as_secs_f64() * 1e3;
        im.fast_pdq = h.to_hex();
        im.fast_distance = h.distance(&scanlab_pdq::Hash256::from_hex(&im.pdq)?);
    }
    let fast_one = t.elapsed().as_secs_f64();
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
        fast_min_side,
        fast_file_to_hash_one_thread_s: fast_one,
    };
    crate::files::outln!("{}", serde_json::to_string_pretty(&report)?)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct IndexReport {
    scanlab_version: &'static str,
    n: usize,
    shape: scanlab_hashlist::synth::Shape,
    queries: usize,
    radius: u32,
    threads: usize,
    /// The first layout's figures (the others are in `layouts`).
    layout: String,
    build_s: f64,
    query_s: f64,
    linear_query_s: Option<f64>,
    index_bytes_per_hash: f64,
    hits_per_query: Vec<usize>,
    layouts: Vec<LayoutRun>,
}

#[derive(serde::Serialize)]
struct LayoutRun {
    layout: String,
    chunks: usize,
    dir_bits: u32,
    entry_bits: u32,
    build_s: f64,
    query_s: f64,
    /// Hashes, entries and directories, per hash.
    bytes_per_hash: f64,
}

/// `scanlab bench index` arguments.
#[derive(clap::Args)]
pub struct IndexBench {
    /// List size.
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// `uniform` or `clustered`.
    #[arg(long, default_value = "uniform")]
    shape: String,
    /// Number of queries.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Match radius.
    #[arg(long, default_value_t = 31)]
    radius: u32,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seed of the synthetic list.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Layouts to time, each `CHUNKS[:DIR_BITS[:ENTRY_BITS]]` (repeatable); the first is
    /// the one whose hits are dumped. Default: the layout for the list's size.
    #[arg(long = "layout")]
    layouts: Vec<String>,
    /// Also time a linear scan (slow at 10M).
    #[arg(long)]
    linear: bool,
    /// Folder to write list.bin (a binary list), queries.bin and scanlab.json into; the layouts
    /// are then built from list.bin, mapped, as `scanlab list index` builds them.
    #[arg(long)]
    dump: Option<PathBuf>,
}

/// `CHUNKS[:DIR_BITS[:ENTRY_BITS]]` for a list of `n`, or `default`.
fn parse_layout(n: usize, spec: &str) -> Result<scanlab_hashlist::index::Layout> {
    if spec == "default" {
        return Ok(scanlab_hashlist::index::Layout::for_len(n)?);
    }
    let mut it = spec.split(':');
    let num = |s: Option<&str>| -> Result<Option<u32>> {
        s.map(|s| {
            s.parse::<u32>()
                .with_context(|| format!("layout {spec:?}: {s:?} is not a number"))
        })
        .transpose()
    };
    let chunks = num(it.next())?.context("a layout starts with its number of chunks")?;
    let dir = num(it.next())?;
    let entry = num(it.next())?.unwrap_or(32);
    Ok(scanlab_hashlist::index::Layout::new(
        n,
        chunks as usize,
        dir,
        entry,
    )?)
}

/// Times the index on a seeded list. With --dump the list is written as a binary list and each
/// layout is built from that file, mapped, as `scanlab list index` builds it (one copy of the
/// hashes in memory); without, from the hashes in memory.
fn bench_index(b: IndexBench) -> Result<ExitCode> {
    use scanlab_hashlist::index::Layout;
    use scanlab_hashlist::{LinearIndex, MihIndex, synth};
    let shape = match b.shape.as_str() {
        "uniform" => synth::Shape::Uniform,
        "clustered" => synth::Shape::Clustered,
        other => anyhow::bail!("unknown shape {other:?}: use uniform or clustered"),
    };
    let n = b.n;
    let mut list = synth::list(n, shape, b.seed);
    let qs = synth::queries(&list, b.queries, b.seed);
    let layouts = if b.layouts.is_empty() {
        vec![Layout::for_len(n)?]
    } else {
        b.layouts
            .iter()
            .map(|s| parse_layout(n, s))
            .collect::<Result<_>>()?
    };
    let lin_hits = if b.linear {
        Some(LinearIndex::new(&list))
    } else {
        None
    };
    let list_file = match &b.dump {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let path = dir.join("list.bin");
            let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
            // The binary list's header, then the hashes, without a second copy in memory.
            w.write_all(&scanlab_hashlist::list::binary_header(n as u64, [0; 32]))?;
            for h in &list {
                w.write_all(&h.to_bytes())?;
            }
            w.flush()?;
            let q: Vec<u8> = qs.iter().flat_map(|h| h.to_bytes()).collect();
            std::fs::write(dir.join("queries.bin"), q)?;
            list = Vec::new();
            Some(path)
        }
        None => None,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(b.threads)
        .build()?;
    let mut runs = Vec::new();
    let mut first_hits = None;
    let bar = crate::files::progress(layouts.len() as u64, "layouts");
    for layout in layouts {
        let t = Instant::now();
        let index = pool.install(|| match &list_file {
            Some(p) => MihIndex::build_from_list(p, Some(layout.clone())),
            None => MihIndex::build_with(&list, layout.clone()),
        })?;
        let build_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let hits = pool.install(|| index.query_batch(&qs, b.radius))?;
        let query_s = t.elapsed().as_secs_f64();
        match &first_hits {
            None => first_hits = Some(hits),
            Some(f) => anyhow::ensure!(
                *f == hits,
                "layout {} gives other hits than the first",
                layout.describe()
            ),
        }
        runs.push(LayoutRun {
            layout: layout.describe(),
            chunks: layout.chunks(),
            dir_bits: layout.dir_bits(),
            entry_bits: layout.entry_bits(),
            build_s,
            query_s,
            bytes_per_hash: index.memory_bytes() as f64 / n.max(1) as f64,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let hits = first_hits.expect("at least one layout");
    let linear_query_s = match lin_hits {
        Some(lin) => {
            use rayon::prelude::*;
            let t = Instant::now();
            let lh: Vec<Vec<_>> =
                pool.install(|| qs.par_iter().map(|q| lin.query(q, b.radius)).collect());
            let dt = t.elapsed().as_secs_f64();
            anyhow::ensure!(lh == hits, "MIH and linear scan disagree");
            Some(dt)
        }
        None => None,
    };
    let report = IndexReport {
        scanlab_version: env!("CARGO_PKG_VERSION"),
        n,
        shape,
        queries: b.queries,
        radius: b.radius,
        threads: b.threads,
        layout: runs[0].layout.clone(),
        build_s: runs[0].build_s,
        query_s: runs[0].query_s,
        linear_query_s,
        index_bytes_per_hash: runs[0].bytes_per_hash,
        hits_per_query: hits.iter().map(|h| h.len()).collect(),
        layouts: runs,
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(dir) = b.dump {
        std::fs::write(dir.join("scanlab.json"), &json)?;
    } else {
        crate::files::outln!("{json}")?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Deserialize)]
struct PlotRow {
    n: usize,
    shape: String,
    faiss_flat_s: f64,
    scanlab_version: String,
    layouts: Vec<PlotLayout>,
}

#[derive(serde::Deserialize)]
struct PlotLayout {
    layout: String,
    query_s: f64,
    bytes_per_hash: f64,
}

/// The trade-off plot of scripts/bench-index.sh (see `BenchCmd::IndexPlot`).
fn index_plot(rows: &std::path::Path, out: &std::path::Path) -> Result<ExitCode> {
    use plotters::prelude::*;
    let text =
        std::fs::read_to_string(rows).with_context(|| format!("reading {}", rows.display()))?;
    let rows: Vec<PlotRow> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not rows of scripts/bench-index.sh", rows.display()))?;
    let rows: Vec<&PlotRow> = rows.iter().filter(|r| r.layouts.len() > 1).collect();
    anyhow::ensure!(!rows.is_empty(), "no row with several layouts to plot");
    let pts = rows.iter().flat_map(|r| &r.layouts);
    let (mut xmax, mut ymin, mut ymax) = (64.0f64, f64::MAX, 0.0f64);
    for p in pts {
        xmax = xmax.max(p.bytes_per_hash);
        ymin = ymin.min(p.query_s * 1e3);
        ymax = ymax.max(p.query_s * 1e3);
    }
    for r in &rows {
        ymin = ymin.min(r.faiss_flat_s * 1e3 / 20.0);
        ymax = ymax.max(r.faiss_flat_s * 1e3 / 20.0);
    }
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing the plot: {e}");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Exact index at radius 31: memory against time for 1,000 queries on 2 threads (uniform lists; scanlab {})",
                    rows[0].scanlab_version
                ),
                ("sans-serif", 15),
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(60)
            .build_cartesian_2d(30.0..xmax * 1.08, (ymin * 0.7..ymax * 1.4).log_scale())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("bytes a hash, all counted (hash 32 B + tables + directories)")
            .y_desc("ms for 1,000 queries (log)")
            .draw()
            .map_err(|e| err(&e))?;
        // The memory goal.
        chart
            .draw_series(LineSeries::new(
                vec![(64.0, ymin * 0.7), (64.0, ymax * 1.4)],
                BLACK.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label("64 bytes a hash (goal)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(2)));
        for (k, r) in rows.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            // A layout timed twice (the default is also in the sweep) is drawn once.
            let mut seen = std::collections::HashSet::new();
            let layouts: Vec<&PlotLayout> = r
                .layouts
                .iter()
                .filter(|l| seen.insert(l.layout.as_str()))
                .collect();
            let pts: Vec<(f64, f64)> = layouts
                .iter()
                .map(|l| (l.bytes_per_hash, l.query_s * 1e3))
                .collect();
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(|e| err(&e))?
                .label(format!("{} hashes ({})", r.n, r.shape))
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
            for l in &layouts {
                let short = l
                    .layout
                    .replace(" chunks of ", "×")
                    .replace(" bits, directories of ", "b, dir ")
                    .replace(" bits, ", "b, ")
                    .replace("-bit entries", "b");
                chart
                    .draw_series(std::iter::once(Text::new(
                        short,
                        (l.bytes_per_hash + 0.3, l.query_s * 1e3 * 1.04),
                        ("sans-serif", 10).into_font().color(&color),
                    )))
                    .map_err(|e| err(&e))?;
            }
            // 20× FAISS Flat: the speed goal at this size.
            let goal = r.faiss_flat_s * 1e3 / 20.0;
            chart
                .draw_series(LineSeries::new(
                    vec![(30.0, goal), (xmax * 1.08, goal)],
                    color.stroke_width(1),
                ))
                .map_err(|e| err(&e))?
                .label(format!("20× FAISS Flat at {} (goal)", r.n))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    std::fs::write(out, svg).with_context(|| format!("writing {}", out.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn bench_messenger(clients: usize, messages: usize) -> Result<ExitCode> {
    use scanlab_messenger::{Limits, Provider, SqliteStore};
    let dir = std::env::temp_dir().join(format!("scanlab-bench-messenger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let provider = Provider::new(Box::new(SqliteStore::open(&dir)?), Limits::default());
    let rt = tokio::runtime::Runtime::new()?;
    let report = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(scanlab_messenger::serve(listener, provider, std::future::pending()));
        let http = reqwest::Client::new();
        // Accounts and tokens (signing with fixed test keys: this measures delivery, not auth).
        let mut tokens = Vec::new();
        for i in 0..clients {
            use ed25519_dalek::Signer;
            let key = ed25519_dalek::SigningKey::from_bytes(&[(i % 250) as u8 + 1; 32]);
            let name = format!("u{i}");
            let post = |path: &str, body: serde_json::Value| http.post(format!("{url}{path}")).json(&body).send();
            post("/v1/register", serde_json::json!({"name": name, "identity_key": hex::encode(key.verifying_key().as_bytes())})).await?;
            let c: serde_json::Value = post("/v1/auth/challenge", serde_json::json!({"name": name})).await?.json().await?;
            let nonce = hex::decode(c["nonce"].as_str().unwrap_or_default())?;
            let sig = key.sign(&scanlab_messenger::provider::auth_message(c["provider"].as_str().unwrap_or_default(), &name, &nonce));
            let t: serde_json::Value = post("/v1/auth/token", serde_json::json!({"name": name, "nonce": c["nonce"], "signature": hex::encode(sig.to_bytes())})).await?.json().await?;
            tokens.push(t["token"].as_str().unwrap_or_default().to_string());
        }
        let payload = "A".repeat(88); // 64 bytes, base64
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            let (http, url, token, payload) = (http.clone(), url.clone(), token.clone(), payload.clone());
            let to = format!("u{}", (i + 1) % clients);
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(messages);
                for _ in 0..messages {
                    let t = Instant::now();
                    let r = http
                        .post(format!("{url}/v1/messages"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({"group": "bench", "recipients": [to], "payload": payload}))
                        .send()
                        .await?;
                    anyhow::ensure!(r.status().is_success(), "send failed: {}", r.status());
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                Ok::<_, anyhow::Error>(lat)
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await??);
        }
        let secs = start.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        Ok::<_, anyhow::Error>(serde_json::json!({
            "scanlab_version": env!("CARGO_PKG_VERSION"),
            "clients": clients,
            "messages": lat.len(),
            "seconds": secs,
            "messages_per_second": lat.len() as f64 / secs,
            "latency_ms_p50": pct(0.50),
            "latency_ms_p99": pct(0.99),
            "durability": "each send committed to SQLite (WAL, synchronous=FULL) before the answer; commits are shared by concurrent requests (group commit)",
        }))
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    crate::files::outln!("{}", serde_json::to_string_pretty(&report)?)?;
    Ok(ExitCode::SUCCESS)
}
