//! What a malicious provider can do to each scheme's users, run against the real clients.
//!
//! The provider is the adversary here: it deploys the scheme honestly, then lies in its
//! answers (a [`Tampering`] transport rewrites them) or uses what it holds. For every
//! registered scheme the same four attacks run, and a row records whether the attack got what
//! it wanted and which check, if any, caught it. Nothing here branches on a scheme's name: the
//! outcome is read from what the client did (its error, what it sent) and what reached the
//! provider's review queue.
//!
//! - **downgrade**: the provider announces another scheme (the next one in the registry);
//! - **changed parameters**: it changes the scheme's parameters (every hex key or
//!   measurement in them replaced, every list extended): a swapped escrow key, a rogue enclave
//!   on the allow-list, another list root;
//! - **forged disclose**: it answers every scan request with a bare "disclose" for a benign
//!   image;
//! - **ghost user** (S2b, the exceptional-access variant of Levy and Robinson, 2018): it gives
//!   Alice its own key package as "bob", unlogged or logged in the key-transparency log, and
//!   reads what she then sends. This one does not depend on the scheme and runs once.

use crate::EvalError;
use scanlab_messenger::client::{Client, ClientError, LocalTransport, Tamper, Tampering};
use scanlab_messenger::mls::{Incoming, MlsClient};
use scanlab_messenger::scan::ClientScheme;
use scanlab_messenger::{Limits, Provider, RecordKind, SqliteStore};
use scanlab_schemes::{Scheme, SimInputs};
use serde_json::{Value, json};
use std::sync::Arc;

/// One attack on one scheme's users.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct AttackRow {
    /// The scheme deployed (`-` for the scheme-independent ghost rows).
    pub scheme: String,
    /// The attack.
    pub attack: String,
    /// Whether it got what it wanted (the client followed, or the image reached review).
    pub succeeded: bool,
    /// The check that caught it, if any.
    pub detected_by: Option<String>,
}

/// The ghost user's outcome under each defence.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct GhostResults {
    /// Messages Alice sent after adding the ghost.
    pub sent: usize,
    /// Of those, what the ghost decrypted.
    pub read: usize,
    /// An unlogged ghost key (the directory lies, the log does not list it): refused at first
    /// contact.
    pub unlogged_refused: bool,
    /// A logged ghost key: accepted by Alice's client on first contact.
    pub logged_accepted: bool,
    /// The impersonated account's key-transparency monitoring finds the logged ghost.
    pub found_by_monitoring: bool,
    /// Comparing safety numbers shows it.
    pub found_by_safety_numbers: bool,
}

/// All rows.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Attacks {
    /// One row per scheme and attack.
    pub rows: Vec<AttackRow>,
    /// The ghost user, in detail.
    pub ghost: GhostResults,
}

type Malicious = Tampering<LocalTransport>;

/// One scheme deployed as it is by default, on a fresh provider in a temporary directory: what
/// every experiment with a handful of named users (and `scanlab demo`) starts from.
pub struct Deployed {
    /// The provider, with the scheme's provider half.
    pub provider: Arc<Provider>,
    /// Where the provider, the parties and the users keep their stores.
    pub dir: tempfile::TempDir,
    /// What the provider announces at `GET /v1/scheme`.
    pub info: Value,
    /// The deployment's other parties (enclave, matching organisations), each with its view.
    pub parties: Vec<scanlab_schemes::Party>,
    /// The secrets its parties hold.
    pub secrets: Vec<scanlab_schemes::Secret>,
}

/// Deploys `scheme` as it is deployed by default, over `list`, on a fresh provider.
pub fn deploy(
    scheme: &dyn Scheme,
    list: &scanlab_hashlist::HashList,
) -> Result<Deployed, EvalError> {
    let dir = tempfile::tempdir().map_err(|e| EvalError::Io(e.to_string()))?;
    let list_file = dir.path().join("list.csv");
    std::fs::write(&list_file, list.to_csv()).map_err(|e| EvalError::Io(e.to_string()))?;
    // The scheme as it is deployed by default: the attacks are on its design.
    let sim = scheme.simulate(&SimInputs {
        list,
        list_file: &list_file,
        dir: dir.path(),
        params: &serde_json::Map::new(),
        seed: 1,
    })?;
    let provider = Provider::with_scheme(
        Box::new(SqliteStore::open(&dir.path().join("provider"))?),
        Limits::default(),
        sim.provider,
    );
    let info =
        json!({ "name": scheme.name(), "params": provider.scheme().map(|s| s.public_params()) });
    Ok(Deployed {
        provider,
        dir,
        info,
        parties: sim.parties,
        secrets: sim.secrets,
    })
}

/// Clients on `d`'s provider, one per `(name, seed)`, each with `scheme`'s client half built
/// with that seed and passed through `wrap` (given the name: a modified client wraps its half;
/// an honest one returns it).
pub fn users(
    scheme: &dyn Scheme,
    d: &Deployed,
    who: &[(&str, u64)],
    wrap: impl Fn(&str, Box<dyn ClientScheme>) -> Box<dyn ClientScheme>,
) -> Result<Vec<Client<LocalTransport>>, EvalError> {
    who.iter()
        .map(|&(name, seed)| {
            let mut c = Client::connect(
                &d.dir.path().join(name),
                name,
                LocalTransport::new(d.provider.clone()),
            )?;
            let half = scheme.client_seeded(&c.scheme_info()?["params"], seed)?;
            c.set_scheme(wrap(name, half))?;
            Ok(c)
        })
        .collect()
}

/// The chat [`pair`] puts Alice and Bob in.
pub const PAIR_CHAT: &str = "pair";

/// Alice and Bob, each with `scheme`'s honest client half (seeded 1 and 2), in chat
/// [`PAIR_CHAT`] on `d`'s provider.
pub fn pair(
    scheme: &dyn Scheme,
    d: &Deployed,
) -> Result<(Client<LocalTransport>, Client<LocalTransport>), EvalError> {
    let mut clients = users(scheme, d, &[("alice", 1), ("bob", 2)], |_, h| h)?;
    let (mut bob, alice) = (clients.pop().expect("two"), clients.pop().expect("two"));
    alice.create_chat(PAIR_CHAT, &["bob"])?;
    bob.recv()?;
    Ok((alice, bob))
}

fn user(d: &Deployed, name: &str) -> Result<(Client<Malicious>, Tamper), EvalError> {
    let (t, tamper) = Tampering::new(LocalTransport::new(d.provider.clone()));
    let c = Client::connect(&d.dir.path().join(name), name, t)?;
    Ok((c, tamper))
}

/// The name of the error a client check raised, or `None` when it followed the provider.
fn caught(e: &ClientError) -> String {
    match e {
        ClientError::SchemeChanged(_) => "scheme pin".into(),
        ClientError::Identity(_) => "identity check".into(),
        ClientError::Scheme(_) => "the scheme's client half".into(),
        e => format!("error: {e}"),
    }
}

/// Every hex string in `v` replaced by another of the same length, every array extended by a
/// copy of its first element changed so: what swapping a key, adding a measurement or
/// changing a list root looks like.
fn changed(v: &Value) -> Value {
    match v {
        Value::String(s) if s.len() >= 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Value::String(s.chars().rev().collect())
        }
        Value::Array(a) => {
            let mut out: Vec<Value> = a.iter().map(changed).collect();
            if let Some(first) = a.first() {
                out.push(changed(first));
            }
            Value::Array(out)
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), changed(v))).collect()),
        v => v.clone(),
    }
}

/// Runs the attacks on every scheme in `schemes`, with `list` deployed and `benign` (an image
/// on no list) as what Alice sends.
pub fn run(
    schemes: &[Arc<dyn Scheme>],
    list: &scanlab_hashlist::HashList,
    benign: &[u8],
) -> Result<Attacks, EvalError> {
    let mut rows = Vec::new();
    for (i, scheme) in schemes.iter().enumerate() {
        let next = &schemes[(i + 1) % schemes.len()];
        let row = |attack: &str, succeeded: bool, detected_by: Option<String>| AttackRow {
            scheme: scheme.code().to_string(),
            attack: attack.into(),
            succeeded,
            detected_by,
        };
        // Downgrade, and changed parameters: Alice has pinned the honest announcement.
        let d = deploy(&**scheme, list)?;
        let (alice, lies) = user(&d, "alice")?;
        alice.scheme_info()?;
        let other = deploy(&**next, list)?;
        let lied = [
            ("downgrade", other.info.clone()),
            (
                "changed parameters",
                json!({ "name": d.info["name"], "params": changed(&d.info["params"]) }),
            ),
        ];
        for (attack, announced) in lied {
            if announced == d.info {
                rows.push(row(attack, false, Some("nothing to change".into())));
                continue;
            }
            lies.answer("GET /v1/scheme", announced);
            rows.push(match alice.scheme_info() {
                Ok(_) => row(attack, true, None),
                Err(e) => row(attack, false, Some(caught(&e))),
            });
        }
        drop((alice, lies, other));
        // A forged "disclose" for a benign image.
        let d = deploy(&**scheme, list)?;
        let (mut alice, lies) = user(&d, "alice")?;
        let (mut bob, _) = user(&d, "bob")?;
        for c in [&mut alice, &mut bob] {
            let half = scheme.client(&c.scheme_info()?["params"])?;
            c.set_scheme(half)?;
        }
        alice.create_chat("pair", &["bob"])?;
        bob.recv()?;
        lies.answer(
            "POST /v1/scan",
            json!({"match": true, "disclose": true, "reason": "trust me"}),
        );
        let sent = alice.send("pair", Some("benign"), Some(benign));
        let reached = !d.provider.reviews()?.is_empty();
        let asked = lies.asked().iter().any(|a| a == "POST /v1/scan");
        rows.push(row(
            "forged disclose",
            reached,
            match (&sent, reached, asked) {
                (_, true, _) => None,
                (_, false, false) => Some("not applicable: no scan request to answer".into()),
                (Err(e), false, true) => Some(caught(e)),
                (Ok(_), false, true) => {
                    Some("ignored: the scheme never discloses on request".into())
                }
            },
        ));
    }
    let ghost = ghost(list)?;
    rows.push(AttackRow {
        scheme: "-".into(),
        attack: "ghost user, unlogged".into(),
        succeeded: !ghost.unlogged_refused,
        detected_by: ghost
            .unlogged_refused
            .then(|| "key-transparency proof".into()),
    });
    rows.push(AttackRow {
        scheme: "-".into(),
        attack: "ghost user, logged".into(),
        succeeded: ghost.logged_accepted && ghost.read > 0,
        detected_by: match (ghost.found_by_monitoring, ghost.found_by_safety_numbers) {
            (true, true) => Some("monitoring; safety numbers".into()),
            (true, false) => Some("monitoring".into()),
            (false, true) => Some("safety numbers".into()),
            (false, false) => None,
        },
    });
    Ok(Attacks { rows, ghost })
}

/// The ghost user under plain E2EE (the first scheme's transport does not matter: the attack
/// is on the messenger's identities).
fn ghost(list: &scanlab_hashlist::HashList) -> Result<GhostResults, EvalError> {
    let e2ee = scanlab_schemes::registry().get("e2ee")?;
    let d = deploy(&*e2ee, list)?;
    let (mut alice, lies) = user(&d, "alice")?;
    let (bob, _) = user(&d, "bob")?;
    let ghost_key = ed25519_dalek::SigningKey::from_bytes(&[0x66; 32]);
    let mls = |e: scanlab_messenger::mls::MlsError| EvalError::Client(e.into());
    let ghost = MlsClient::open(&d.dir.path().join("ghost"), "bob", &ghost_key).map_err(mls)?;
    let package = ghost.key_package().map_err(mls)?;
    let serve = |kt: Value| {
        use base64::Engine;
        lies.answer(
            "GET /v1/keypackages/bob",
            json!({ "package": base64::engine::general_purpose::STANDARD.encode(&package) }),
        );
        lies.answer(
            "GET /v1/identity/bob",
            json!({"name": "bob", "identity_key": hex::encode(ghost_key.verifying_key().as_bytes()), "kt": kt}),
        );
    };
    // Unlogged: the directory lies, with Bob's real entry's proof.
    serve(json!(d.provider.kt_lookup(1)?));
    // Refused for the reason under test: the key is not in the log (any other error would
    // not show the log doing its work).
    let unlogged_refused = alice
        .create_chat("c1", &["bob"])
        .is_err_and(|e| e.to_string().contains("key-transparency log"));
    // Without any check run, nothing notices: neither client has raised anything yet.
    bob.monitor()?;
    // Logged.
    d.provider
        .dangerous_log_identity("bob", *ghost_key.verifying_key().as_bytes())?;
    serve(json!(d.provider.kt_lookup(2)?));
    let logged_accepted = alice.create_chat("c2", &["bob"]).is_ok();
    // The provider routes by the chat's random group id.
    let gid = alice.chat_id("c2").unwrap_or_default();
    // The ghost takes the welcome from what the provider received, and reads what follows.
    let bodies = |d: &Deployed| -> Result<Vec<Value>, EvalError> {
        let gid = gid.clone();
        Ok(d.provider
            .view()?
            .into_iter()
            .filter(|r| r.kind == RecordKind::Received && r.endpoint == "POST /v1/messages")
            .filter_map(|r| r.json())
            .filter(move |b| b["group"] == gid.as_str())
            .collect())
    };
    let payload = |b: &Value| -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(b["payload"].as_str().unwrap_or_default())
            .unwrap_or_default()
    };
    let any = |_: &scanlab_messenger::identity::Identity| -> Result<(), scanlab_messenger::mls::MlsError> { Ok(()) };
    if let Some(w) = bodies(&d)?
        .iter()
        .map(payload)
        .find(|p| p.first() == Some(&1))
    {
        ghost.join(&w[1..], &any).map_err(mls)?;
    }
    let sent = 5;
    for i in 0..sent {
        alice.send("c2", Some(&format!("message {i}")), None)?;
    }
    let read = bodies(&d)?
        .iter()
        .map(payload)
        .filter(|p| p.first() == Some(&0))
        .filter(|p| {
            matches!(
                ghost.process(&gid, &p[1..], &any),
                Ok(Incoming::Application { .. })
            )
        })
        .count();
    let found_by_monitoring = bob.monitor().is_err();
    bob.trust(&alice.identity())?;
    let found_by_safety_numbers = alice.safety_number("bob")? != bob.safety_number("alice")?;
    Ok(GhostResults {
        sent,
        read,
        unlogged_refused,
        logged_accepted,
        found_by_monitoring,
        found_by_safety_numbers,
    })
}
