//! A provider that lies, in the one place it can: its answers. Each test puts a malicious
//! provider between a client and the real one (every answer passes through it and may be
//! replaced) and checks what the client detects:
//!
//! - the ghost user: the provider serves its own key package as "bob";
//! - a false directory entry on first contact: refused unless the ghost key is in the
//!   key-transparency log, where the account's own monitoring finds it, and caught by
//!   comparing safety numbers;
//! - a message re-attributed to another sender;
//! - a peer's blob id that climbs out of the blob endpoint;
//! - a silent change of scheme (a downgrade from E2EE to server-side scanning).

use scanlab_messenger::client::{Client, ClientError, LocalTransport, Tamper, Tampering};
use scanlab_messenger::identity::Identity;
use scanlab_messenger::mls::MlsClient;
use scanlab_messenger::scan::Envelope;
use scanlab_messenger::{Limits, Provider, SqliteStore};
use serde_json::{Value, json};
use std::sync::Arc;

type Malicious = Tampering<LocalTransport>;

struct World {
    provider: Arc<Provider>,
    root: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let root = tempfile::tempdir().unwrap();
        let provider = Provider::new(
            Box::new(SqliteStore::open(&root.path().join("provider")).unwrap()),
            Limits::default(),
        );
        World { provider, root }
    }

    fn client(&self, name: &str) -> (Client<Malicious>, Tamper) {
        let (t, tamper) = Tampering::new(LocalTransport::new(self.provider.clone()));
        let c = Client::connect(&self.root.path().join(name), name, t).unwrap();
        (c, tamper)
    }

    /// A key package that says "bob", made by someone without Bob's identity key.
    fn ghost_key_package(&self) -> (Vec<u8>, [u8; 32]) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[0x66; 32]);
        let ghost = MlsClient::open(&self.root.path().join("ghost"), "bob", &key).unwrap();
        (
            ghost.key_package().unwrap(),
            *key.verifying_key().as_bytes(),
        )
    }
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn serve_ghost(tamper: &Tamper, package: Vec<u8>) {
    tamper.answer(
        "GET /v1/keypackages/bob",
        json!({ "package": b64(&package) }),
    );
}

#[test]
fn a_ghost_key_package_is_refused_once_the_peer_is_known() {
    let w = World::new();
    let (alice, lies) = w.client("alice");
    let (mut bob, _) = w.client("bob");
    // A first chat: Alice pins Bob's identity key.
    alice.create_chat("first", &["bob"]).unwrap();
    bob.recv().unwrap();
    assert_eq!(alice.pinned("bob").unwrap(), Some(bob.identity().key));
    // The provider now answers Alice's key-package request for Bob with its own.
    let (ghost, _) = w.ghost_key_package();
    serve_ghost(&lies, ghost);
    let err = alice.create_chat("second", &["bob"]).unwrap_err();
    assert!(
        err.to_string().contains("not the") && err.to_string().contains("pinned"),
        "{err}"
    );
    // Canary: the same request answered honestly goes through.
    lies.stop();
    alice.create_chat("third", &["bob"]).unwrap();
}

#[test]
fn a_ghost_on_first_contact_is_refused_by_the_log_or_caught_by_monitoring_and_safety_numbers() {
    let w = World::new();
    let (alice, lies) = w.client("alice");
    let (bob, _) = w.client("bob");
    let (ghost, ghost_key) = w.ghost_key_package();
    // Bob's monitoring of the honest log finds only his own key (the check can pass).
    assert_eq!(bob.monitor().unwrap().own_entries, 1);
    // The provider serves the ghost but leaves its directory honest: refused.
    serve_ghost(&lies, ghost.clone());
    let err = alice.create_chat("c1", &["bob"]).unwrap_err();
    assert!(err.to_string().contains("directory lists"), "{err}");
    assert_eq!(
        alice.pinned("bob").unwrap(),
        None,
        "nothing pinned on a refusal"
    );
    // It lies in its directory too, without logging the ghost: refused, for the key is not
    // in the key-transparency log (with Bob's real entry's proof, or with none).
    let honest = w.provider.kt_lookup(1).unwrap();
    // (The same chat name each time: a refused creation leaves no group behind.)
    for kt in [json!(honest), Value::Null] {
        lies.answer(
            "GET /v1/identity/bob",
            json!({"name": "bob", "identity_key": hex::encode(ghost_key), "kt": kt}),
        );
        let err = alice.create_chat("c2", &["bob"]).unwrap_err();
        assert!(err.to_string().contains("key-transparency"), "{err}");
    }
    // It logs the ghost key under "bob" and serves its valid proof: on first contact Alice's
    // client cannot tell ...
    w.provider.dangerous_log_identity("bob", ghost_key).unwrap();
    let logged = w.provider.kt_lookup(2).unwrap();
    lies.answer(
        "GET /v1/identity/bob",
        json!({"name": "bob", "identity_key": hex::encode(ghost_key), "kt": logged}),
    );
    alice.create_chat("c3", &["bob"]).unwrap();
    assert_eq!(alice.pinned("bob").unwrap(), Some(ghost_key));
    // ... but Bob, monitoring the log, sees a key for his name that is not his ...
    let err = bob.monitor().unwrap_err();
    assert!(
        err.to_string().contains("another key for this account"),
        "{err}"
    );
    // ... and the safety numbers the two users compare differ.
    bob.trust(&alice.identity()).unwrap();
    assert_ne!(
        alice.safety_number("bob").unwrap(),
        bob.safety_number("alice").unwrap(),
        "the ghost shows as a mismatch"
    );
    // Canary: with the true key pinned, the numbers agree.
    alice
        .trust(&Identity {
            name: "bob".into(),
            key: bob.identity().key,
        })
        .unwrap();
    assert_eq!(
        alice.safety_number("bob").unwrap(),
        bob.safety_number("alice").unwrap()
    );
}

#[test]
fn a_message_re_attributed_by_the_provider_is_refused() {
    let w = World::new();
    let (alice, _) = w.client("alice");
    let (mut bob, lies) = w.client("bob");
    let (_carol, _) = w.client("carol");
    alice.create_chat("c", &["bob"]).unwrap();
    bob.recv().unwrap();
    let mut alice = alice;
    alice.send("c", Some("hi"), None).unwrap();
    lies.lie("GET /v1/queue", |answer| {
        let mut v: Value = serde_json::from_slice(&answer).unwrap();
        for m in v["messages"].as_array_mut().unwrap() {
            m["sender"] = json!("carol");
        }
        serde_json::to_vec(&v).unwrap()
    });
    let got = bob.recv().unwrap();
    assert_eq!(got.len(), 1);
    let err = got[0].as_ref().unwrap_err();
    assert!(matches!(err, ClientError::Identity(_)), "{err}");
}

#[test]
fn concurrent_commits_do_not_fork_the_group() {
    let w = World::new();
    let (mut alice, _) = w.client("alice");
    let (mut bob, _) = w.client("bob");
    let (mut carol, _) = w.client("carol");
    let (mut dave, _) = w.client("dave");
    alice.create_chat("c", &["bob"]).unwrap();
    bob.recv().unwrap();
    // Alice and Bob change the group at the same epoch. The provider relays Alice's commit and
    // refuses Bob's, which Bob drops instead of merging (merged, it would fork the group: Bob
    // in one epoch, Alice and Carol in another, unable to read each other).
    alice.add("c", &["carol"]).unwrap();
    let e = bob.add("c", &["dave"]).unwrap_err();
    assert!(matches!(e, ClientError::Stale(_)), "{e}");
    assert_eq!(bob.members("c").unwrap(), ["alice", "bob"]);
    // Bob catches up and retries; everyone ends in one group.
    bob.recv().unwrap();
    bob.add("c", &["dave"]).unwrap();
    for c in [&mut alice, &mut carol, &mut dave] {
        c.recv().unwrap();
    }
    alice.send("c", Some("one group"), None).unwrap();
    for c in [&mut bob, &mut carol, &mut dave] {
        let got = c.recv().unwrap();
        assert_eq!(got[0].as_ref().unwrap().text.as_deref(), Some("one group"));
    }
}

#[test]
fn content_in_a_handshake_envelope_is_refused() {
    // A modified sender labels a message "commit" so that the provider, which sees only the
    // envelope, runs no application-message check (S2's capsule) on it.
    let w = World::new();
    let (mut alice, _) = w.client("alice");
    let (mut bob, _) = w.client("bob");
    alice.create_chat("c", &["bob"]).unwrap();
    bob.recv().unwrap();
    alice
        .send_raw("c", Envelope::Commit, &json!({"text": "hidden"}), None)
        .unwrap();
    let got = bob.recv().unwrap();
    let e = got[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("sent as a Commit envelope"), "{e}");
    // Honest traffic is untouched.
    alice.send("c", Some("open"), None).unwrap();
    assert_eq!(
        bob.recv().unwrap()[0].as_ref().unwrap().text.as_deref(),
        Some("open")
    );
}

#[test]
fn a_blob_id_that_climbs_out_of_the_blob_endpoint_is_refused() {
    let w = World::new();
    let (mut alice, _) = w.client("alice");
    let (mut bob, tamper) = w.client("bob");
    alice.create_chat("c", &["bob"]).unwrap();
    bob.recv().unwrap();
    // Alice's client is honest; the blob id in her reference is what a modified client could
    // put there. Sent through the same MLS path, it reaches Bob's client, which must not
    // follow it.
    let r = json!({"blob": "../queue", "key": "00", "nonce": "00", "sha256": "00", "len": 1,
        "sender": "alice", "chat": "c"});
    alice
        .send_raw(
            "c",
            Envelope::Application,
            &json!({"text": null, "attachment": r}),
            None,
        )
        .unwrap();
    let got = bob.recv().unwrap();
    assert!(matches!(got[0], Err(ClientError::BadId(_))), "{got:?}");
    let asked = tamper.asked();
    assert!(!asked.iter().any(|a| a.contains("..")), "{asked:?}");
}

#[test]
fn a_silently_changed_scheme_is_noticed_and_refused_until_accepted() {
    let w = World::new();
    let (alice, tamper) = w.client("alice");
    // First use pins what the provider announces (here, plain E2EE).
    let first = alice.scheme_info().unwrap();
    assert_eq!(first["name"], "e2ee");
    assert_eq!(
        alice.scheme_info().unwrap(),
        first,
        "the same announcement passes"
    );
    // The provider moves this one user to server-side scanning.
    tamper.answer(
        "GET /v1/scheme",
        json!({"name": "server-side", "params": {"radius": 31}}),
    );
    let err = alice.scheme_info().unwrap_err();
    assert!(matches!(err, ClientError::SchemeChanged(_)), "{err}");
    assert!(err.to_string().contains("server-side"), "{err}");
    // A changed parameter alone is a change too.
    tamper.answer(
        "GET /v1/scheme",
        json!({"name": "e2ee", "params": {"x": 1}}),
    );
    assert!(matches!(
        alice.scheme_info(),
        Err(ClientError::SchemeChanged(_))
    ));
    // The user accepts; from then on the new announcement is the pinned one.
    alice.accept_scheme().unwrap();
    assert_eq!(alice.scheme_info().unwrap()["params"]["x"], 1);
}

#[test]
fn a_review_is_bound_to_its_blob_and_its_sender() {
    use scanlab_messenger::client::Transport;
    let w = World::new();
    let (alice, _) = w.client("alice");
    let (mallory, _) = w.client("mallory");
    let image = b"the image alice really attached".to_vec();
    let (blob, mut r) = scanlab_messenger::mls::seal_attachment(&image, "alice", "c").unwrap();
    let up = alice
        .transport()
        .put_bytes("/v1/blobs", Some(alice.token()), blob)
        .unwrap();
    r.blob = up["id"].as_str().unwrap().to_string();
    let review = |c: &Client<Malicious>, img: &[u8], r: &scanlab_messenger::mls::AttachmentRef| {
        c.transport().post(
            "/v1/review",
            Some(c.token()),
            &json!({"blob": r.blob, "reason": "test", "image": b64(img), "attachment": r}),
        )
    };
    // Another image under the blob's own reference: refused (framing Alice with a picture).
    let err = review(&alice, b"something else entirely", &r).unwrap_err();
    assert!(err.to_string().contains("not the plaintext"), "{err}");
    // Mallory, holding Alice's reference, cannot file it as hers.
    let err = review(&mallory, &image, &r).unwrap_err();
    assert!(
        err.to_string()
            .contains("not for this blob from this account"),
        "{err}"
    );
    assert!(w.provider.reviews().unwrap().is_empty());
    // Canary: the true image, by its sender, is taken.
    review(&alice, &image, &r).unwrap();
    assert_eq!(w.provider.reviews().unwrap().len(), 1);
}

#[test]
fn a_login_relayed_from_another_provider_is_refused() {
    let w = World::new();
    let (alice, _) = w.client("alice");
    drop(alice);
    // Alice's next login meets a challenge that names another provider: she signs nothing.
    let (t, tamper) = Tampering::new(LocalTransport::new(w.provider.clone()));
    tamper.lie("POST /v1/auth/challenge", |answer| {
        let mut v: Value = serde_json::from_slice(&answer).unwrap();
        v["provider"] = json!("some-other-provider");
        serde_json::to_vec(&v).unwrap()
    });
    let err = Client::connect(&w.root.path().join("alice"), "alice", t)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("registered with"), "{err}");
    assert!(!tamper.asked().iter().any(|a| a == "POST /v1/auth/token"));
    // Canary: the honest provider's challenge logs her in.
    let (t, _) = Tampering::new(LocalTransport::new(w.provider.clone()));
    Client::connect(&w.root.path().join("alice"), "alice", t).unwrap();
}
