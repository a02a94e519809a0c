//! A scheme defined here, in the test, registered with one line, and nothing else changed: it is
//! served over a real socket, used by real clients, run by `evaluate --quick`, and present in
//! `results.json` and the matrix. It also exercises every hook the coming schemes need:
//!
//! - durable state on both halves (a per-device secret and counters on the client, a voucher
//!   count at the provider), surviving restarts, the provider's recorded as `state` rows;
//! - a client half that decides on the device to disclose (it holds the list itself);
//! - scheme messages not tied to one image (a voucher after every send);
//! - scheme fields delivered to recipients, a receive hook, and a report hook;
//! - attachments typed by media.

use scanlab_messenger::client::{Client, ClientError, HttpTransport};
use scanlab_messenger::mls::Media;
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Delivered, Outgoing, ProviderScheme, ScanAction, ScanCtx, ScanError,
    ScanOutcome,
};
use scanlab_messenger::{Limits, Provider, RecordKind, SqliteStore};
use scanlab_pdq::Hash256;
use scanlab_schemes::{Scheme, SchemeError, SimInputs, Simulation};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The test-only scheme: the device holds the list and discloses matches itself.
struct Probe;

struct ProbeProvider {
    listed: Vec<Hash256>,
}

struct ProbeClient {
    listed: Vec<Hash256>,
    outbox: Vec<Value>,
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

impl Scheme for Probe {
    fn code(&self) -> &'static str {
        "T1"
    }
    fn name(&self) -> &'static str {
        "probe"
    }
    fn summary(&self) -> &'static str {
        "a test scheme: the list on the device, vouchers, franking-like digests"
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Config {
            list: PathBuf,
        }
        let c: Config = scanlab_schemes::config(self.name(), config)?;
        let list = scanlab_schemes::read_list(&c.list)?;
        Ok(Arc::new(ProbeProvider {
            listed: list.hashes(),
        }))
    }
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        let listed = serde_json::from_value(params["listed"].clone())
            .map_err(|e| SchemeError::Malformed(e.to_string()))?;
        Ok(Box::new(ProbeClient {
            listed,
            outbox: Vec::new(),
        }))
    }
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        Ok(Simulation::provider_only(Arc::new(ProbeProvider {
            listed: inputs.list.hashes(),
        })))
    }
}

fn state_u64(v: Option<Vec<u8>>) -> u64 {
    v.map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .unwrap_or(0)
}

impl ProbeClient {
    /// The device's secret: made once, then kept in the client's state.
    fn secret(ctx: &ClientCtx) -> Result<Vec<u8>, ClientError> {
        if let Some(s) = ctx.state("secret")? {
            return Ok(s);
        }
        let s: [u8; 32] = rand::random();
        ctx.set_state("secret", &s)?;
        Ok(s.to_vec())
    }
}

impl ClientScheme for ProbeClient {
    fn name(&self) -> &str {
        "probe"
    }
    fn on_attachment(&mut self, ctx: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        let n = state_u64(ctx.state("sent")?) + 1;
        ctx.set_state("sent", &n.to_le_bytes())?;
        let device = sha(&Self::secret(ctx)?)[..16].to_string();
        self.outbox
            .push(json!({ "device": device, "count": n, "media": a.media }));
        if a.media != Media::Image {
            return Ok(ScanAction::Nothing);
        }
        let h = scanlab_schemes::pdq_of(a.bytes)?.hash;
        Ok(match self.listed.iter().find(|l| l.distance(&h) <= 31) {
            Some(l) => ScanAction::Disclose(format!("on-device match with {l}")),
            None => ScanAction::Nothing,
        })
    }
    fn message_fields(
        &mut self,
        _: &ClientCtx,
        m: &scanlab_messenger::scan::OutgoingMessage,
    ) -> Result<Option<Value>, ClientError> {
        Ok(Some(json!({ "digest": sha(m.plaintext) })))
    }
    fn outbox(&mut self, _: &ClientCtx) -> Result<Vec<Value>, ClientError> {
        Ok(std::mem::take(&mut self.outbox))
    }
    fn on_receive(&mut self, ctx: &ClientCtx, m: &Delivered) -> Result<(), ClientError> {
        let f = m
            .fields
            .as_ref()
            .ok_or(ClientError::Scheme("no fields".into()))?;
        if f["digest"] != sha(&m.plaintext) {
            return Err(ClientError::Scheme("digest does not match".into()));
        }
        let n = state_u64(ctx.state("received")?) + 1;
        ctx.set_state("received", &n.to_le_bytes())
    }
    fn report(&mut self, _: &ClientCtx, m: &Delivered, reason: &str) -> Result<Value, ClientError> {
        Ok(json!({
            "message": String::from_utf8_lossy(&m.plaintext),
            "fields": m.fields,
            "reason": reason,
        }))
    }
}

impl ProviderScheme for ProbeProvider {
    fn name(&self) -> &str {
        "probe"
    }
    fn public_params(&self) -> Value {
        json!({ "listed": self.listed })
    }
    fn on_message(
        &self,
        _: &ScanCtx,
        m: &scanlab_messenger::scan::IncomingMessage,
    ) -> Result<Option<Value>, ScanError> {
        // Handshakes (commits, welcomes) carry no fields; application messages a digest.
        let Some(f) = m.fields else { return Ok(None) };
        match f["digest"].as_str() {
            Some(d) => Ok(Some(json!({ "digest_seen": d }))),
            None => Err(ScanError::Refused(
                "an application message carries a digest".into(),
            )),
        }
    }
    fn on_scheme_message(&self, ctx: &ScanCtx, body: &Value) -> Result<ScanOutcome, ScanError> {
        let key = format!("vouchers {}", body["device"].as_str().unwrap_or("?"));
        let n = state_u64(ctx.state(&key)?) + 1;
        ctx.set_state(&key, n.to_le_bytes().to_vec())?;
        Ok(ScanOutcome {
            reply: json!({ "vouchers": n }),
            derived: None,
        })
    }
    fn on_report(&self, _: &ScanCtx, r: &Value) -> Result<ScanOutcome, ScanError> {
        let message = r["message"].as_str().unwrap_or_default();
        if r["fields"]["digest"] != sha(message.as_bytes()) {
            return Err(ScanError::Refused(
                "the report does not match its digest".into(),
            ));
        }
        Ok(ScanOutcome {
            reply: json!({ "verified": true }),
            derived: Some(json!({ "reported": message })),
        })
    }
}

fn corpus() -> Vec<PathBuf> {
    let c = scanlab_corpus::ensure(&scanlab_corpus::default_cache_dir(), &mut |_| {}).unwrap();
    c.paths()
}

fn registry() -> scanlab_schemes::Registry {
    scanlab_schemes::registry().with(Arc::new(Probe))
}

fn provider(data: &Path, list: &Path) -> (Arc<Provider>, String) {
    let half = registry()
        .get("probe")
        .unwrap()
        .provider(&json!({ "list": list }))
        .unwrap();
    let p = Provider::with_scheme(
        Box::new(SqliteStore::open(data).unwrap()),
        Limits::default(),
        half,
    );
    let url = scanlab_messenger::spawn_loopback(scanlab_messenger::router(p.clone())).unwrap();
    (p, url)
}

fn client(home: &Path, name: &str, url: &str) -> Client<HttpTransport> {
    let mut c = Client::connect(home, name, HttpTransport::new(url)).unwrap();
    let half = registry().client_half(&c.scheme_info().unwrap()).unwrap();
    c.set_scheme(half).unwrap();
    c
}

fn device_of(p: &Provider) -> Vec<String> {
    p.view()
        .unwrap()
        .iter()
        .filter(|r| r.kind == RecordKind::Received && r.endpoint == "POST /v1/scheme/message")
        .map(|r| r.json().unwrap()["device"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_scheme_defined_in_a_test_is_served_used_and_keeps_its_state() {
    let photos = corpus();
    let (listed, benign) = (
        std::fs::read(&photos[0]).unwrap(),
        std::fs::read(&photos[1]).unwrap(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let list = scanlab_hashlist::HashList {
        entries: vec![scanlab_hashlist::Entry {
            id: 1,
            kind: Default::default(),
            hash: scanlab_schemes::pdq_of(&listed).unwrap().hash,
            label: "stand-in".into(),
            vouched_by: vec![],
            added: 0,
            quality: None,
        }],
    };
    let list_file = tmp.path().join("list.csv");
    std::fs::write(&list_file, list.to_csv()).unwrap();
    let data = tmp.path().join("provider");
    let (p, url) = provider(&data, &list_file);
    let mut alice = client(&tmp.path().join("alice"), "alice", &url);
    let mut bob = client(&tmp.path().join("bob"), "bob", &url);
    alice.create_chat("pair", &["bob"]).unwrap();
    bob.recv().unwrap();
    alice
        .send("pair", Some("listed one"), Some(&listed))
        .unwrap();
    alice
        .send("pair", Some("benign one"), Some(&benign))
        .unwrap();
    alice
        .send_file(
            "pair",
            Some("a clip"),
            Some((b"not really a video", Media::Video)),
        )
        .unwrap();

    // The device decided, alone, to disclose the listed image, and only it.
    let reviews = p.reviews().unwrap();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].image, listed);
    assert_eq!(reviews[0].submitter, "alice");
    assert!(reviews[0].reason.starts_with("on-device match"));
    let view = p.view().unwrap();
    assert!(
        !view.iter().any(|r| r.endpoint == "POST /v1/scan"),
        "no scan request"
    );
    // One voucher per attachment, typed by media, counted in the provider's durable state,
    // every write of which is in its view.
    let vouchers: Vec<Value> = view
        .iter()
        .filter(|r| r.kind == RecordKind::Received && r.endpoint == "POST /v1/scheme/message")
        .map(|r| r.json().unwrap())
        .collect();
    assert_eq!(vouchers.len(), 3);
    assert_eq!(vouchers[2]["media"], "video");
    let states: Vec<_> = view
        .iter()
        .filter(|r| r.kind == RecordKind::State)
        .collect();
    assert_eq!(states.len(), 3);
    assert!(
        states
            .iter()
            .all(|r| r.endpoint.starts_with("probe vouchers "))
    );
    // The receive hook sees the fields, after decryption, and checks them.
    let got = bob.recv().unwrap();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|m| m.is_ok()), "{got:?}");
    // A report goes through the hook, and the provider verifies it.
    let first = got[0].as_ref().unwrap().id;
    let answer = bob.report(first, "abuse").unwrap();
    assert_eq!(answer["verified"], true);
    let reported = p
        .view()
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == RecordKind::Derived && r.endpoint == "POST /v1/report")
        .count();
    assert_eq!(reported, 1);
    // A forged report is refused with a typed error (422).
    use scanlab_messenger::client::Transport;
    let e = bob
        .transport()
        .post(
            "/v1/report",
            Some(bob.token()),
            &json!({"message": "never sent", "fields": {"digest": "00"}}),
        )
        .unwrap_err();
    assert!(e.to_string().contains("422"), "{e}");

    // Restarts: the provider's counts and the device's secret survive.
    let before = device_of(&p);
    drop(alice);
    drop(p);
    let (p2, url2) = provider(&data, &list_file);
    let mut alice = client(&tmp.path().join("alice"), "alice", &url2);
    alice.send("pair", Some("again"), Some(&benign)).unwrap();
    let after = device_of(&p2);
    assert_eq!(after.len(), 4);
    assert!(
        after.iter().all(|d| *d == before[0]),
        "the device secret persisted"
    );
    let last = p2
        .view()
        .unwrap()
        .into_iter()
        .rfind(|r| r.kind == RecordKind::Sent && r.endpoint == "POST /v1/scheme/message")
        .unwrap();
    assert_eq!(
        last.json().unwrap()["vouchers"],
        4,
        "the provider's count persisted"
    );
}

struct Quiet;
impl scanlab_eval::Progress for Quiet {
    fn phase(&self, _: &str, _: u64) {}
    fn tick(&self) {}
}

#[test]
fn a_scheme_defined_in_a_test_runs_in_evaluate_quick_and_reaches_the_matrix() {
    let r = registry();
    let cfg = scanlab_eval::Config {
        corpus: corpus().into_iter().take(80).collect(),
        schemes: vec![r.get("e2ee").unwrap(), r.get("probe").unwrap()],
        seed: 3,
        quick: true,
        params: Default::default(),
        command: "test".into(),
        budget: scanlab_attack::Budget::Default,
        reference_videos: None,
    };
    let results = scanlab_eval::run(&cfg, &Quiet).unwrap();
    let out = tempfile::tempdir().unwrap();
    scanlab_eval::report::write(&results, out.path()).unwrap();
    let json: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("results.json")).unwrap()).unwrap();
    let probe = json["schemes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "probe")
        .expect("the test scheme is in results.json");
    assert_eq!(probe["code"], "T1");
    // The device held the list of originals and disclosed the copies as sent itself.
    assert!(probe["recall_as_sent"].as_f64().unwrap() >= 0.85);
    // The analyst found the list the device downloads: its bytes are counted.
    assert!(probe["device_state_bytes"].as_u64().unwrap() > 8 * 64);
    let matrix = std::fs::read_to_string(out.path().join("matrix.csv")).unwrap();
    assert!(matrix.lines().next().unwrap().contains("T1 probe"));
}
