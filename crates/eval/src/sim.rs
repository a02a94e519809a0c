//! One scheme, deployed for real: a provider with the scheme's provider half, a population of
//! messenger clients (real MLS, real attachments) with its client half, all talking over the
//! in-process transport, which runs the provider's actual router and recording layer.
//!
//! # The population
//! `users` users. Each belongs to two chats: one of a partition into chats of
//! [`GROUP_SIZE`], and one of a second partition shifted by half a group, so forwards can
//! cross chats. A message goes to every other member of the chat; everyone reads their queue
//! after each phase.
//!
//! # The traffic, in order
//! 1. each list image as is, each edited copy and each background image once, from a seeded
//!    user to one of their chats, all in one seeded random order;
//! 2. the leaked document: a seeded user sends it, and every holder forwards it, with
//!    probability [`FORWARD_P`], to their other chat, for [`CASCADE_HOPS`] hops; a forward is
//!    re-encoded (JPEG quality [`RECOMPRESS_QUALITY`]) with probability [`RECOMPRESS_P`], as a user's save-and-send
//!    does;
//! 3. the protest poster, in a cascade of its own.
//!
//! After the traffic, each recipient of a list image (as sent or edited: the stand-ins for abuse
//! imagery) reports it with probability [`REPORT_P`], through the scheme's report hook
//! (S9's franking); a scheme that has no reporting refuses the first report and none follows.
//! Each report's draw `u` is kept, so recall under a lower reporting rate `p` is read from
//! the same run: the reports with `u < p`. Nobody reports a background image: false reports
//! are not modelled.

use crate::EvalError;
use crate::workload::Workload;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use scanlab_messenger::client::{Client, LocalTransport};
use scanlab_messenger::mls::Media;
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Delivered, IncomingMessage, Outgoing, OutgoingMessage, ProviderScheme,
    ScanAction, ScanCtx, ScanError, ScanOutcome,
};
use scanlab_messenger::{Limits, Provider, Review, SqliteStore, ViewRecord};
use scanlab_schemes::{Scheme, Secret, SimInputs};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Members per chat.
pub const GROUP_SIZE: usize = 4;
/// Probability that a holder forwards the cascading image.
pub const FORWARD_P: f64 = 0.5;
/// Cascade depth.
pub const CASCADE_HOPS: usize = 3;
/// Probability that a forward is a re-encoded copy.
pub const RECOMPRESS_P: f64 = 0.3;
/// JPEG quality of a re-encoded forward.
pub const RECOMPRESS_QUALITY: i32 = 75;
/// Probability that a recipient reports a list image it received (an assumption: no
/// published reporting rate for abuse imagery exists that we could use).
pub const REPORT_P: f64 = 0.5;

/// One report a recipient made.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportMade {
    /// Index into [`Outcome::sends`].
    pub send: usize,
    /// The reporting recipient.
    pub by: usize,
    /// Its uniform draw (it reported because `u < REPORT_P`).
    pub u: f64,
    /// Whether the provider accepted (verified) it.
    pub accepted: bool,
}

/// What one image send was, for scoring.
#[derive(Clone, Debug, PartialEq)]
pub enum Tag {
    /// A list image; `None` is the image as listed, `Some` an edited copy (index into
    /// [`Workload::edited`]).
    Listed(usize, Option<usize>),
    /// A background image.
    Background(usize),
    /// The leaked document.
    Leaked {
        /// Cascade hop (0 = first send).
        hop: usize,
        /// Byte-identical to the first send (not re-encoded).
        exact: bool,
    },
    /// The poster.
    Poster {
        /// Cascade hop.
        hop: usize,
        /// Byte-identical to the first send.
        exact: bool,
    },
}

/// One image send.
#[derive(Clone, Debug)]
pub struct Send {
    /// What it was.
    pub tag: Tag,
    /// Sender.
    pub from: usize,
    /// The chat's other members.
    pub to: Vec<usize>,
    /// Blob id at the provider.
    pub blob: String,
    /// Bytes sent.
    pub len: usize,
    /// The message's id at the provider (what its recipients know it by).
    pub id: i64,
}

/// Wall time spent in a scheme's halves, in nanoseconds, and the images they handled.
///
/// Every hook of each half is timed (the client half's include each recipient's
/// [`ClientScheme::on_receive`]). Both totals are divided by the same count, the images that
/// went through the sender's client half ([`ClientScheme::on_attachment`]): a provider half that does its work in
/// [`ProviderScheme::on_message`] (S2 checks the escrow capsule there) and makes no scan
/// request is costed as well as one that scans.
#[derive(Default)]
pub struct Meter {
    client_ns: AtomicU64,
    images: AtomicU64,
    provider_ns: AtomicU64,
}

impl Meter {
    /// Mean client-half milliseconds per image.
    pub fn client_ms(&self) -> f64 {
        ms(&self.client_ns, &self.images)
    }
    /// Mean provider-half milliseconds per image, all its hooks together.
    pub fn provider_ms(&self) -> f64 {
        ms(&self.provider_ns, &self.images)
    }
}

fn ms(ns: &AtomicU64, n: &AtomicU64) -> f64 {
    let n = n.load(Ordering::Relaxed);
    if n == 0 {
        0.0
    } else {
        ns.load(Ordering::Relaxed) as f64 / n as f64 / 1e6
    }
}

/// Runs `f`, adding its wall time to `ns` and, when given, one call to `calls`.
fn timed<R>(ns: &AtomicU64, calls: Option<&AtomicU64>, f: impl FnOnce() -> R) -> R {
    let t = Instant::now();
    let r = f();
    ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    if let Some(c) = calls {
        c.fetch_add(1, Ordering::Relaxed);
    }
    r
}

struct TimedClient(Box<dyn ClientScheme>, Arc<Meter>);

type CResult<T> = Result<T, scanlab_messenger::client::ClientError>;

impl ClientScheme for TimedClient {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn on_attachment(&mut self, ctx: &ClientCtx, a: &Outgoing) -> CResult<ScanAction> {
        timed(&self.1.client_ns, Some(&self.1.images), || {
            self.0.on_attachment(ctx, a)
        })
    }
    fn on_scan_reply(
        &mut self,
        ctx: &ClientCtx,
        a: &Outgoing,
        r: &Value,
    ) -> CResult<Option<String>> {
        timed(&self.1.client_ns, None, || self.0.on_scan_reply(ctx, a, r))
    }
    fn inner_fields(&mut self, ctx: &ClientCtx, chat: &str) -> CResult<Option<Value>> {
        timed(&self.1.client_ns, None, || self.0.inner_fields(ctx, chat))
    }
    fn aad(&mut self, ctx: &ClientCtx, chat: &str, plaintext: &[u8]) -> CResult<Option<Vec<u8>>> {
        timed(&self.1.client_ns, None, || self.0.aad(ctx, chat, plaintext))
    }
    fn message_fields(&mut self, ctx: &ClientCtx, m: &OutgoingMessage) -> CResult<Option<Value>> {
        // Per message, not per image: counted into the image's cost since every image send
        // is one message here.
        timed(&self.1.client_ns, None, || self.0.message_fields(ctx, m))
    }
    fn outbox(&mut self, ctx: &ClientCtx) -> CResult<Vec<Value>> {
        timed(&self.1.client_ns, None, || self.0.outbox(ctx))
    }
    fn on_receive(&mut self, ctx: &ClientCtx, m: &Delivered) -> CResult<()> {
        timed(&self.1.client_ns, None, || self.0.on_receive(ctx, m))
    }
    fn report(&mut self, ctx: &ClientCtx, m: &Delivered, reason: &str) -> CResult<Value> {
        timed(&self.1.client_ns, None, || self.0.report(ctx, m, reason))
    }
}

struct TimedProvider(Arc<dyn ProviderScheme>, Arc<Meter>);

type PResult<T> = Result<T, ScanError>;

impl ProviderScheme for TimedProvider {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn public_params(&self) -> Value {
        self.0.public_params()
    }
    fn scan(&self, ctx: &ScanCtx, request: &Value) -> PResult<ScanOutcome> {
        timed(&self.1.provider_ns, None, || self.0.scan(ctx, request))
    }
    fn on_message(&self, ctx: &ScanCtx, m: &IncomingMessage) -> PResult<Option<Value>> {
        timed(&self.1.provider_ns, None, || self.0.on_message(ctx, m))
    }
    fn on_review(&self, ctx: &ScanCtx, reason: &str, image: &[u8]) -> PResult<()> {
        timed(&self.1.provider_ns, None, || {
            self.0.on_review(ctx, reason, image)
        })
    }
    fn receipt(&self, ctx: &ScanCtx, blob: &str) -> PResult<Option<Value>> {
        timed(&self.1.provider_ns, None, || self.0.receipt(ctx, blob))
    }
    fn on_scheme_message(&self, ctx: &ScanCtx, body: &Value) -> PResult<ScanOutcome> {
        timed(&self.1.provider_ns, None, || {
            self.0.on_scheme_message(ctx, body)
        })
    }
    fn on_report(&self, ctx: &ScanCtx, body: &Value) -> PResult<ScanOutcome> {
        timed(&self.1.provider_ns, None, || self.0.on_report(ctx, body))
    }
    fn stamp(&self, ctx: &ScanCtx, m: &IncomingMessage, at: u64) -> PResult<Option<Value>> {
        timed(&self.1.provider_ns, None, || self.0.stamp(ctx, m, at))
    }
}

/// Everything a finished run leaves behind for the analysis.
pub struct Outcome {
    /// The scheme's id (`S0` …).
    pub code: String,
    /// The scheme's name.
    pub name: String,
    /// Every image send, in order.
    pub sends: Vec<Send>,
    /// The recipients' reports, in order.
    pub reports: Vec<ReportMade>,
    /// The provider view.
    pub view: Vec<ViewRecord>,
    /// The review queue.
    pub reviews: Vec<Review>,
    /// Blob id → ciphertext, as the provider stores it.
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// Users in the simulation.
    pub users: usize,
    /// Users who held the leaked document (sent or received it).
    pub leaked_holders: BTreeSet<usize>,
    /// Users who held the poster.
    pub poster_holders: BTreeSet<usize>,
    /// The secrets the deployment's parties hold, for the compromise analysis.
    pub secrets: Vec<Secret>,
    /// The other parties' views, by role.
    pub parties: Vec<(String, Vec<ViewRecord>)>,
    /// Time spent in the scheme halves.
    pub meter: Arc<Meter>,
    /// Wall time of the whole run, seconds.
    pub seconds: f64,
    /// Data directory (kept alive for the analysis).
    pub data: tempfile::TempDir,
    /// Bytes of the scheme parameters clients download (`GET /v1/scheme`).
    pub scheme_params_len: usize,
    /// Those parameters: what every device holds, for the analyst to read as a user would.
    pub scheme_params: Value,
    /// Bytes of the parameters of the same scheme deployed on a list [`GROWTH_ENTRIES`]
    /// synthetic hashes longer: what the device state grows by as the list does.
    pub scheme_params_len_grown: usize,
    /// What a device decides alone, offline ([`Client::probe`]), for each list image and each
    /// background image as sent: what a user learns of the list by themselves.
    pub probes: Vec<Probe>,
}

/// Synthetic entries added to the list to measure how the device state grows with it.
pub const GROWTH_ENTRIES: usize = 1000;

/// One offline probe of the list by a user's own device.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// The image is on the list (a list image as sent), or not (a background image).
    pub listed: bool,
    /// What the device decided without the provider.
    pub decision: Decision,
}

/// A device's own decision on an image, with the network cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing would leave the device.
    Nothing,
    /// A request would go to the provider: the device alone cannot tell.
    Asks,
    /// The device alone decided to disclose: it knows the image is listed.
    Discloses,
    /// The client half failed offline (it needed the network).
    Failed,
}

/// Users' names.
pub fn user_name(i: usize) -> String {
    format!("u{i:03}")
}

/// The two chats of every user: `(chat name, members)`.
pub fn chats(users: usize) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for (p, shift) in [(0, 0), (1, GROUP_SIZE / 2)] {
        let mut start = 0;
        while start < users {
            let members: Vec<usize> = (start..(start + GROUP_SIZE).min(users))
                .map(|i| (i + shift) % users)
                .collect();
            if members.len() >= 2 {
                out.push((format!("c{p}-{start}"), members));
            }
            start += GROUP_SIZE;
        }
    }
    out
}

/// Runs the whole traffic of `w` through `scheme` with `users` users.
pub fn run(
    scheme: &dyn Scheme,
    w: &Workload,
    list: scanlab_hashlist::HashList,
    users: usize,
    params: &serde_json::Map<String, Value>,
    seed: u64,
    tick: &(dyn Fn() + Sync),
) -> Result<Outcome, EvalError> {
    let started = Instant::now();
    let data = tempfile::tempdir().map_err(|e| EvalError::Io(e.to_string()))?;
    let list_file = data.path().join("list.csv");
    std::fs::write(&list_file, list.to_csv()).map_err(|e| EvalError::Io(e.to_string()))?;
    let sim = scheme.simulate(&SimInputs {
        list: &list,
        list_file: &list_file,
        dir: data.path(),
        params,
        seed,
    })?;
    let half = sim.provider;
    let meter = Arc::new(Meter::default());
    let scheme_params = half.public_params();
    let scheme_params_len = scheme_params.to_string().len();
    let scheme_params_len_grown = grown_params_len(scheme, &list, data.path(), params, seed)?;
    let provider = Provider::with_scheme(
        Box::new(SqliteStore::open(&data.path().join("provider"))?),
        Limits::default(),
        Arc::new(TimedProvider(half, meter.clone())),
    );
    let mut clients = Vec::with_capacity(users);
    for i in 0..users {
        let home = data.path().join("users").join(user_name(i));
        let mut c = Client::connect(&home, &user_name(i), LocalTransport::new(provider.clone()))?;
        let info = c.scheme_info()?;
        if info["name"].as_str() != Some(scheme.name()) {
            return Err(EvalError::Scheme(scanlab_schemes::SchemeError::Config(
                format!(
                    "the provider announces {}, not {}",
                    info["name"],
                    scheme.name()
                ),
            )));
        }
        let half =
            scheme.client_seeded(&info["params"], seed ^ (i as u64).wrapping_mul(0x9E37_79B9))?;
        c.set_scheme(Box::new(TimedClient(half, meter.clone())))?;
        clients.push(c);
    }
    let chats = chats(users);
    let mut chats_of: Vec<Vec<usize>> = vec![Vec::new(); users];
    for (ci, (name, members)) in chats.iter().enumerate() {
        let peers: Vec<String> = members[1..].iter().map(|&m| user_name(m)).collect();
        let peers: Vec<&str> = peers.iter().map(String::as_str).collect();
        clients[members[0]].create_chat(name, &peers)?;
        for &m in members {
            chats_of[m].push(ci);
        }
    }
    let drain = |clients: &mut Vec<Client<LocalTransport>>| -> Result<(), EvalError> {
        for c in clients.iter_mut() {
            for m in c.recv()? {
                m?;
            }
        }
        Ok(())
    };
    drain(&mut clients)?;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x005E_ED0F_7EAF);
    let mut sends = Vec::new();
    let mut send = |clients: &mut Vec<Client<LocalTransport>>,
                    from: usize,
                    chat: usize,
                    bytes: &[u8],
                    tag: Tag|
     -> Result<Vec<usize>, EvalError> {
        let (name, members) = &chats[chat];
        let sent = clients[from].send_detailed(name, None, Some(bytes))?;
        let to: Vec<usize> = members.iter().copied().filter(|&m| m != from).collect();
        sends.push(Send {
            tag,
            from,
            to: to.clone(),
            blob: sent.blob.unwrap_or_default(),
            len: bytes.len(),
            id: sent.id,
        });
        tick();
        Ok(to)
    };

    // 1. List images, their edited copies and the background, each to a seeded user's
    // chat (drawn in that order, so every send keeps its sender), sent in a seeded random
    // order: sent list-first, anything that grows with an account's traffic (a count of its
    // opened vouchers) would tell listed sends from background ones by time alone.
    let pick = |rng: &mut rand_chacha::ChaCha8Rng| {
        let u = rng.random_range(0..users);
        (u, chats_of[u][rng.random_range(0..chats_of[u].len())])
    };
    let mut plan: Vec<(usize, usize, &[u8], Tag)> = Vec::new();
    for (i, &p) in w.list.iter().enumerate() {
        let (u, c) = pick(&mut rng);
        plan.push((u, c, &w.photos[p].sent, Tag::Listed(i, None)));
    }
    for (e, ed) in w.edited.iter().enumerate() {
        let (u, c) = pick(&mut rng);
        plan.push((u, c, &ed.bytes, Tag::Listed(ed.list_index, Some(e))));
    }
    for (j, &p) in w.background.iter().enumerate() {
        let (u, c) = pick(&mut rng);
        plan.push((u, c, &w.photos[p].sent, Tag::Background(j)));
    }
    plan.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
        seed ^ 0x006f_7264_6572,
    ));
    for (k, (u, c, bytes, tag)) in plan.into_iter().enumerate() {
        send(&mut clients, u, c, bytes, tag)?;
        if k % 64 == 63 {
            drain(&mut clients)?;
        }
    }
    drain(&mut clients)?;
    // 2 and 3. The cascades.
    let mut holders = Vec::new();
    for (which, photo) in [(0, w.leaked), (1, w.poster)] {
        let original = w.photos[photo].sent.clone();
        let recompressed =
            scanlab_imaging::edits::encode_jpeg(&w.photos[photo].rgb, RECOMPRESS_QUALITY)
                .map_err(|e| EvalError::Corpus(e.to_string()))?;
        let mut held: BTreeSet<usize> = BTreeSet::new();
        let (u, c) = pick(&mut rng);
        let tag = |hop, exact| {
            if which == 0 {
                Tag::Leaked { hop, exact }
            } else {
                Tag::Poster { hop, exact }
            }
        };
        held.insert(u);
        let mut frontier = vec![(u, c)];
        for hop in 0..=CASCADE_HOPS {
            let mut next = Vec::new();
            for (from, chat) in frontier {
                let exact = hop == 0 || rng.random_bool(1.0 - RECOMPRESS_P);
                let bytes = if exact { &original } else { &recompressed };
                for r in send(&mut clients, from, chat, bytes, tag(hop, exact))? {
                    if held.insert(r) && rng.random_bool(FORWARD_P) {
                        let other = chats_of[r]
                            .iter()
                            .copied()
                            .find(|&x| x != chat)
                            .unwrap_or(chat);
                        next.push((r, other));
                    }
                }
            }
            drain(&mut clients)?;
            frontier = next;
            if frontier.is_empty() {
                break;
            }
        }
        holders.push(held);
    }

    // Reports, from a stream of draws of their own (the traffic's stays as it was).
    let mut reports = Vec::new();
    let mut draws = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x7265_706f_7274);
    'reporting: for (k, s) in sends.iter().enumerate() {
        if !matches!(s.tag, Tag::Listed(..)) {
            continue;
        }
        for &r in &s.to {
            let u: f64 = draws.random();
            if u >= REPORT_P {
                continue;
            }
            let accepted = match clients[r].report(s.id, "reported by a recipient") {
                Ok(_) => true,
                // The client half has no reporting: nothing was sent, and none will be.
                Err(scanlab_messenger::client::ClientError::Scheme(_)) if reports.is_empty() => {
                    break 'reporting;
                }
                Err(_) => false,
            };
            reports.push(ReportMade {
                send: k,
                by: r,
                u,
                accepted,
            });
        }
    }
    // What user 0's device decides alone about every list image and background image.
    let mut probes = Vec::new();
    for (listed, photos) in [(true, &w.list), (false, &w.background)] {
        for &p in photos {
            let decision = match clients[0].probe(&w.photos[p].sent, Media::Image) {
                Ok(None | Some(ScanAction::Nothing)) => Decision::Nothing,
                Ok(Some(ScanAction::Request(_) | ScanAction::Requests(_))) => Decision::Asks,
                Ok(Some(ScanAction::Disclose(_))) => Decision::Discloses,
                Err(_) => Decision::Failed,
            };
            probes.push(Probe { listed, decision });
        }
    }

    let view = provider.view()?;
    let reviews = provider.reviews()?;
    let mut blobs = BTreeMap::new();
    for s in &sends {
        let id = s.blob.clone();
        if let Some(b) = provider.blob(&id)? {
            blobs.insert(s.blob.clone(), b);
        }
    }
    let poster_holders = holders.pop().unwrap_or_default();
    let leaked_holders = holders.pop().unwrap_or_default();
    let mut parties = Vec::new();
    for p in &sim.parties {
        let (mut store, _) = SqliteStore::open_existing(&p.data)?;
        parties.push((p.name.clone(), scanlab_messenger::Store::view(&mut store)?));
    }
    Ok(Outcome {
        users,
        code: scheme.code().into(),
        name: scheme.name().into(),
        sends,
        reports,
        view,
        reviews,
        blobs,
        leaked_holders,
        poster_holders,
        secrets: sim.secrets,
        parties,
        meter,
        seconds: started.elapsed().as_secs_f64(),
        data,
        scheme_params_len,
        scheme_params,
        scheme_params_len_grown,
        probes,
    })
}

/// The size of `scheme`'s parameters when deployed on `list` plus [`GROWTH_ENTRIES`] seeded
/// random hashes, in a directory of its own under `dir`.
fn grown_params_len(
    scheme: &dyn Scheme,
    list: &scanlab_hashlist::HashList,
    dir: &std::path::Path,
    params: &serde_json::Map<String, Value>,
    seed: u64,
) -> Result<usize, EvalError> {
    let mut grown = list.clone();
    let next = list.entries.iter().map(|e| e.id + 1).max().unwrap_or(0);
    let extra = scanlab_hashlist::synth::list(
        GROWTH_ENTRIES,
        scanlab_hashlist::synth::Shape::Uniform,
        seed ^ 0x6120_7774,
    );
    for (i, h) in extra.into_iter().enumerate() {
        grown
            .entries
            .push(scanlab_hashlist::Entry::new(next + i as u64, h, "growth"));
    }
    let dir = dir.join("grown");
    std::fs::create_dir_all(&dir).map_err(|e| EvalError::Io(e.to_string()))?;
    let file = dir.join("list.csv");
    std::fs::write(&file, grown.to_csv()).map_err(|e| EvalError::Io(e.to_string()))?;
    let sim = scheme.simulate(&SimInputs {
        list: &grown,
        list_file: &file,
        dir: &dir,
        params,
        seed,
    })?;
    Ok(sim.provider.public_params().to_string().len())
}
