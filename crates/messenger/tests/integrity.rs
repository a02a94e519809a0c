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

use scanlab_messenger::client::{
    Client, ClientError, LocalTransport, Tamper, Tampering, Transport,
};
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

/// Rewrites the envelope byte of every queued message from `from` to `to`: a provider (or a
/// modified client it does not check) relabelling what a message is.
fn relabel(tamper: &Tamper, from: Envelope, to: Envelope) {
    tamper.lie("GET /v1/queue", move |answer| {
        use base64::Engine;
        let b64e = base64::engine::general_purpose::STANDARD;
        let mut v: Value = serde_json::from_slice(&answer).unwrap();
        for m in v["messages"].as_array_mut().unwrap() {
            let mut p = b64e.decode(m["payload"].as_str().unwrap()).unwrap();
            if p[0] == from.byte() {
                p[0] = to.byte();
            }
            m["payload"] = json!(b64e.encode(p));
        }
        serde_json::to_vec(&v).unwrap()
    });
}

/// A queue page is processed in one transaction; a message in it that can never be read
/// (here a payload that is not base64) is reported and acknowledged on its own, and neither
/// loses the page's other messages nor holds up the queue.
#[test]
fn an_unreadable_message_neither_loses_its_page_nor_blocks_the_queue() {
    let w = World::new();
    let (mut alice, _) = w.client("alice");
    let (mut bob, lies) = w.client("bob");
    alice.create_chat("c", &["bob"]).unwrap();
    bob.recv().unwrap();
    for t in ["one", "two", "three"] {
        alice.send("c", Some(t), None).unwrap();
    }
    lies.lie("GET /v1/queue", |answer| {
        let mut v: Value = serde_json::from_slice(&answer).unwrap();
        if let Some(m) = v["messages"].as_array_mut().unwrap().get_mut(1) {
            m["payload"] = json!("!! not base64 !!");
        }
        serde_json::to_vec(&v).unwrap()
    });
    let got = bob.recv().unwrap();
    lies.stop();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].as_ref().unwrap().text.as_deref(), Some("one"));
    let e = got[1].as_ref().unwrap_err().to_string();
    assert!(e.contains("not base64"), "{e}");
    // "three" is still readable: the corrupted message used no key, so the ratchet skipped it.
    assert_eq!(got[2].as_ref().unwrap().text.as_deref(), Some("three"));
    assert!(bob.recv().unwrap().is_empty());
    alice.send("c", Some("after"), None).unwrap();
    assert_eq!(
        bob.recv().unwrap()[0].as_ref().unwrap().text.as_deref(),
        Some("after")
    );
}

#[test]
fn content_in_a_handshake_envelope_is_refused() {
    // A modified sender labels a message "commit" so that the provider, which sees only the
    // envelope, runs no application-message check (S2's capsule) on it.
    let w = World::new();
    let (mut alice, _) = w.client("alice");
    let (mut bob, lies) = w.client("bob");
    alice.create_chat("c", &["bob"]).unwrap();
    bob.recv().unwrap();
    // The provider reads the clear framing and refuses it.
    let e = alice
        .send_raw("c", Envelope::Commit, &json!({"text": "hidden"}), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("application message sent in a Commit envelope"),
        "{e}"
    );
    // A provider that relabels it anyway: the recipient refuses it too.
    alice.send("c", Some("relabelled"), None).unwrap();
    relabel(&lies, Envelope::Application, Envelope::Commit);
    let got = bob.recv().unwrap();
    let e = got[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("sent as a Commit envelope"), "{e}");
    // Honest traffic is untouched.
    lies.stop();
    alice.send("c", Some("open"), None).unwrap();
    assert_eq!(
        bob.recv().unwrap()[0].as_ref().unwrap().text.as_deref(),
        Some("open")
    );
}

#[test]
fn a_commit_in_an_application_envelope_is_refused_before_it_is_merged() {
    // The other way round: a commit labelled "application" skips the provider's commit order
    // (and is what a scheme that inspects application messages would choke on). Bob refuses
    // it before processing, so his group is untouched.
    let w = World::new();
    let (alice, _) = w.client("alice");
    let (mut bob, lies) = w.client("bob");
    let (_carol, _) = w.client("carol");
    alice.create_chat("c", &["bob"]).unwrap();
    bob.recv().unwrap();
    alice.add("c", &["carol"]).unwrap();
    relabel(&lies, Envelope::Commit, Envelope::Application);
    let got = bob.recv().unwrap();
    let e = got[0].as_ref().unwrap_err().to_string();
    assert!(
        e.contains("handshake message sent as a Application envelope"),
        "{e}"
    );
    assert_eq!(
        bob.members("c").unwrap(),
        ["alice", "bob"],
        "nothing merged"
    );
}

#[test]
fn chats_have_random_ids_and_their_titles_stay_inside() {
    let w = World::new();
    let (alice, _) = w.client("alice");
    let (mut bob, _) = w.client("bob");
    let (carol, _) = w.client("carol");
    alice.create_chat("family", &["bob"]).unwrap();
    carol.create_chat("family", &["bob"]).unwrap();
    let (a, c) = (
        alice.chat_id("family").unwrap(),
        carol.chat_id("family").unwrap(),
    );
    assert_ne!(a, c, "two chats of the same name are two groups");
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
    // Bob sees both, told apart, each with who let him in; the second one's name is suffixed.
    let got: Vec<_> = bob
        .recv()
        .unwrap()
        .into_iter()
        .map(|m| m.unwrap())
        .collect();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].chat.as_str(), got[0].from.as_str()),
        ("family", "alice")
    );
    assert_eq!(got[1].from, "carol");
    assert!(got[1].chat.starts_with("family ("), "{}", got[1].chat);
    assert_eq!(
        got[0].change.as_ref().unwrap().added,
        ["alice", "bob"],
        "joining shows who is in the chat"
    );
    assert_eq!(bob.chat_id("family").unwrap(), a);
    // The provider never saw the title.
    let mut seen = Vec::new();
    for r in w.provider.view().unwrap() {
        seen.extend(r.body.unwrap_or_default());
    }
    assert!(!seen.windows(6).any(|x| x == b"family"));
    assert!(
        seen.windows(32).any(|x| x == a.as_bytes()),
        "a canary: ids are there"
    );
    // Two chats of one name on one client are refused rather than merged.
    assert!(alice.create_chat("family", &["carol"]).is_err());
}

#[test]
fn membership_changes_are_shown_to_every_member() {
    let w = World::new();
    let (alice, _) = w.client("alice");
    let (mut bob, _) = w.client("bob");
    let (mut carol, _) = w.client("carol");
    alice.create_chat("c", &["bob"]).unwrap();
    bob.recv().unwrap();
    alice.add("c", &["carol"]).unwrap();
    let got = bob.recv().unwrap();
    let m = got[0].as_ref().unwrap();
    assert_eq!(m.from, "alice");
    assert_eq!(m.change.as_ref().unwrap().added, ["carol"]);
    carol.recv().unwrap();
    alice.remove("c", &["carol"]).unwrap();
    for c in [&mut bob, &mut carol] {
        let got = c.recv().unwrap();
        let m = got[0].as_ref().unwrap();
        assert_eq!(m.change.as_ref().unwrap().removed, ["carol"]);
        assert!(m.text.is_none());
    }
}

#[test]
fn only_a_member_commits_to_a_group_or_welcomes_into_it() {
    // Carol learns Alice and Bob's group id (say from a leaked record) and tries to claim
    // its next epoch with junk, which would block their next change, or to welcome herself.
    let w = World::new();
    let (alice, _) = w.client("alice");
    let (mut bob, _) = w.client("bob");
    let (carol, _) = w.client("carol");
    alice.create_chat("c", &["bob"]).unwrap();
    bob.recv().unwrap();
    let gid = alice.chat_id("c").unwrap();
    // A well-formed commit framed with their group id, made by Carol's own MLS client.
    let key = ed25519_dalek::SigningKey::from_bytes(&[0x77; 32]);
    let raw = MlsClient::open(&w.root.path().join("carol-raw"), "carol", &key).unwrap();
    let other = MlsClient::open(&w.root.path().join("x"), "x", &key).unwrap();
    raw.create_group(&gid, None).unwrap();
    let (commit, welcome) = raw
        .add(&gid, &[other.key_package().unwrap()], &|_| Ok(()))
        .unwrap();
    let t = carol.transport();
    for (kind, bytes) in [(Envelope::Commit, commit), (Envelope::Welcome, welcome)] {
        let payload = [&[kind.byte()][..], &bytes].concat();
        let r = t.post(
            "/v1/messages",
            Some(carol.token()),
            &json!({"group": gid, "recipients": ["alice"], "payload": b64(&payload)}),
        );
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("403") && e.contains("only a member"),
            "{kind:?}: {e}"
        );
    }
    // The group still changes: Carol's tries claimed no epoch of it.
    let (_dave, _) = w.client("dave");
    alice.add("c", &["dave"]).unwrap();
    assert_eq!(alice.members("c").unwrap(), ["alice", "bob", "dave"]);
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
        "sender": "alice", "chat": alice.chat_id("c").unwrap()});
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

#[test]
fn a_provider_that_rewrites_its_key_log_is_caught_by_a_client_that_saw_it() {
    let w = World::new();
    let (alice, lies) = w.client("alice");
    let (bob, _) = w.client("bob");
    let seen = alice.monitor().unwrap();
    assert_eq!(seen.size, 2);
    assert_eq!(alice.kt_head().unwrap().unwrap(), seen.head);
    let serve = |leaves: Vec<(String, [u8; 32])>| {
        let head = w.provider.dangerous_kt_head(&leaves);
        let leaves: Vec<Value> = leaves
            .iter()
            .map(|(n, k)| json!({"name": n, "key": hex::encode(k)}))
            .collect();
        lies.answer("GET /v1/kt", json!({"head": head, "leaves": leaves}));
    };
    let honest = vec![
        ("alice".to_string(), alice.identity().key),
        ("bob".to_string(), bob.identity().key),
    ];
    // The same size, Bob's entry swapped for another key: signed by the provider, and yet
    // not the log Alice saw.
    let mut rewritten = honest.clone();
    rewritten[1].1 = [0x66; 32];
    serve(rewritten.clone());
    let e = alice.monitor().unwrap_err().to_string();
    assert!(e.contains("forked"), "{e}");
    // A larger rewritten log: the consistency proof from what Alice saw does not hold.
    // The liar proves what it can: consistency within its own rewritten history.
    rewritten.push(("carol".into(), [3; 32]));
    let proof = scanlab_messenger::kt::prove_consistency(&rewritten, 2, 3).unwrap();
    lies.answer("GET /v1/kt/consistency/2/3", json!({ "proof": proof }));
    serve(rewritten);
    let e = alice.monitor().unwrap_err().to_string();
    assert!(e.contains("forked"), "{e}");
    // A rollback to a smaller log is refused too.
    serve(honest[..1].to_vec());
    assert!(alice.monitor().is_err());
    // A canary: the honest log, grown by a registration, is accepted and kept.
    lies.stop();
    let (_carol, _) = w.client("carol");
    assert_eq!(alice.monitor().unwrap().size, 3);
    assert_eq!(alice.kt_head().unwrap().unwrap().size, 3);
}
