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
    /// Times the exact Hamming index on a seeded synthetic list, writing the list and queries
    /// (32 raw bytes per hash) and the per-query hit counts to --dump for scripts/bench-index.sh.
    Index {
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
        /// Also time a linear scan (slow at 10M).
        #[arg(long)]
        linear: bool,
        /// Folder to write base.bin, queries.bin and scanlab.json into.
        #[arg(long)]
        dump: Option<PathBuf>,
    },
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
    /// File to hash (read, decode, hash) in the one-thread pass: the per-format ratios.
    file_to_hash_ms: f64,
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
    let (reps, paths) = match cmd {
        BenchCmd::Hash { reps, paths } => (reps, paths),
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
        BenchCmd::Index {
            n,
            shape,
            queries,
            radius,
            threads,
            seed,
            linear,
            dump,
        } => {
            return bench_index(n, &shape, queries, radius, threads, seed, linear, dump);
        }
    };
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
            file_to_hash_ms: 0.0,
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
    build_s: f64,
    query_s: f64,
    linear_query_s: Option<f64>,
    index_bytes_per_hash: f64,
    hits_per_query: Vec<usize>,
}

#[allow(clippy::too_many_arguments)]
fn bench_index(
    n: usize,
    shape: &str,
    nq: usize,
    radius: u32,
    threads: usize,
    seed: u64,
    linear: bool,
    dump: Option<PathBuf>,
) -> Result<ExitCode> {
    use scanlab_hashlist::{LinearIndex, MihIndex, synth};
    let shape = match shape {
        "uniform" => synth::Shape::Uniform,
        "clustered" => synth::Shape::Clustered,
        other => anyhow::bail!("unknown shape {other:?}: use uniform or clustered"),
    };
    let list = synth::list(n, shape, seed);
    let qs = synth::queries(&list, nq, seed);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let t = Instant::now();
    let index = pool.install(|| MihIndex::build(&list))?;
    let build_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let hits = pool.install(|| index.query_batch(&qs, radius))?;
    let query_s = t.elapsed().as_secs_f64();
    let linear_query_s = if linear {
        use rayon::prelude::*;
        let lin = LinearIndex::new(&list);
        let t = Instant::now();
        let lh: Vec<Vec<_>> =
            pool.install(|| qs.par_iter().map(|q| lin.query(q, radius)).collect());
        let dt = t.elapsed().as_secs_f64();
        anyhow::ensure!(lh == hits, "MIH and linear scan disagree");
        Some(dt)
    } else {
        None
    };
    let report = IndexReport {
        scanlab_version: env!("CARGO_PKG_VERSION"),
        n,
        shape,
        queries: nq,
        radius,
        threads,
        build_s,
        query_s,
        linear_query_s,
        index_bytes_per_hash: index.memory_bytes() as f64 / n as f64,
        hits_per_query: hits.iter().map(|h| h.len()).collect(),
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(dir) = dump {
        std::fs::create_dir_all(&dir)?;
        let raw =
            |hs: &[scanlab_pdq::Hash256]| hs.iter().flat_map(|h| h.to_bytes()).collect::<Vec<u8>>();
        std::fs::write(dir.join("base.bin"), raw(&list))?;
        std::fs::write(dir.join("queries.bin"), raw(&qs))?;
        std::fs::write(dir.join("scanlab.json"), &json)?;
    } else {
        crate::files::outln!("{json}")?;
    }
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
