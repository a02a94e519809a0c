//! A provider that lies, in the one place it can: its answers. Each test puts a malicious
//! provider between a client and the real one (every answer passes through it and may be
//! replaced) and checks what the client detects:
//!
//! - the ghost user: the provider serves its own key package as "bob";
//! - a false directory entry on first contact, caught only by comparing safety numbers;
//! - a message re-attributed to another sender;
//! - a peer's blob id that climbs out of the blob endpoint.

use scanlab_messenger::client::{Client, ClientError, LocalTransport, Transport};
use scanlab_messenger::identity::Identity;
use scanlab_messenger::mls::MlsClient;
use scanlab_messenger::{Limits, Provider, SqliteStore};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// Replacement answers, by `METHOD path`; shared so a test can change them mid-run.
type Lies = Rc<RefCell<HashMap<String, Box<dyn Fn(Vec<u8>) -> Vec<u8>>>>>;

struct Malicious {
    honest: LocalTransport,
    lies: Lies,
    asked: Rc<RefCell<Vec<String>>>,
}

impl Transport for Malicious {
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        json: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let key = format!("{method} {path}");
        self.asked.borrow_mut().push(key.clone());
        let answer = self.honest.call(method, path, token, body, json)?;
        Ok(match self.lies.borrow().get(&key) {
            Some(lie) => lie(answer),
            None => answer,
        })
    }
}

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

    fn client(&self, name: &str) -> (Client<Malicious>, Lies, Rc<RefCell<Vec<String>>>) {
        let lies: Lies = Rc::default();
        let asked = Rc::default();
        let t = Malicious {
            honest: LocalTransport::new(self.provider.clone()),
            lies: lies.clone(),
            asked: Rc::clone(&asked),
        };
        let c = Client::connect(&self.root.path().join(name), name, t).unwrap();
        (c, lies, asked)
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

fn serve_ghost(lies: &Lies, package: Vec<u8>) {
    lies.borrow_mut().insert(
        "GET /v1/keypackages/bob".into(),
        Box::new(move |_| serde_json::to_vec(&json!({ "package": b64(&package) })).unwrap()),
    );
}

#[test]
fn a_ghost_key_package_is_refused_once_the_peer_is_known() {
    let w = World::new();
    let (alice, lies, _) = w.client("alice");
    let (mut bob, _, _) = w.client("bob");
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
    lies.borrow_mut().clear();
    alice.create_chat("third", &["bob"]).unwrap();
}

#[test]
fn a_ghost_on_first_contact_is_refused_by_the_directory_or_caught_by_safety_numbers() {
    let w = World::new();
    let (alice, lies, _) = w.client("alice");
    let (bob, _, _) = w.client("bob");
    let (ghost, ghost_key) = w.ghost_key_package();
    // The provider serves the ghost but leaves its directory honest: refused.
    serve_ghost(&lies, ghost.clone());
    let err = alice.create_chat("c1", &["bob"]).unwrap_err();
    assert!(err.to_string().contains("directory lists"), "{err}");
    assert_eq!(
        alice.pinned("bob").unwrap(),
        None,
        "nothing pinned on a refusal"
    );
    // The provider lies in its directory too: on first contact the client cannot tell ...
    lies.borrow_mut().insert(
        "GET /v1/identity/bob".into(),
        Box::new(move |_| {
            serde_json::to_vec(&json!({"name": "bob", "identity_key": hex::encode(ghost_key)}))
                .unwrap()
        }),
    );
    alice.create_chat("c2", &["bob"]).unwrap();
    assert_eq!(alice.pinned("bob").unwrap(), Some(ghost_key));
    // ... but the safety numbers the two users compare differ.
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
    let (alice, _, _) = w.client("alice");
    let (mut bob, lies, _) = w.client("bob");
    let (_carol, _, _) = w.client("carol");
    alice.create_chat("c", &["bob"]).unwrap();
    bob.recv().unwrap();
    let mut alice = alice;
    alice.send("c", Some("hi"), None).unwrap();
    lies.borrow_mut().insert(
        "GET /v1/queue".into(),
        Box::new(|answer| {
            let mut v: Value = serde_json::from_slice(&answer).unwrap();
            for m in v["messages"].as_array_mut().unwrap() {
                m["sender"] = json!("carol");
            }
            serde_json::to_vec(&v).unwrap()
        }),
    );
    let got = bob.recv().unwrap();
    assert_eq!(got.len(), 1);
    let err = got[0].as_ref().unwrap_err();
    assert!(matches!(err, ClientError::Identity(_)), "{err}");
}

#[test]
fn a_blob_id_that_climbs_out_of_the_blob_endpoint_is_refused() {
    let w = World::new();
    let (mut alice, _, _) = w.client("alice");
    let (mut bob, _, asked) = w.client("bob");
    alice.create_chat("c", &["bob"]).unwrap();
    bob.recv().unwrap();
    // Alice's client is honest; the blob id in her reference is what a modified client could
    // put there. Sent through the same MLS path, it reaches Bob's client, which must not
    // follow it.
    let r = json!({"blob": "../queue", "key": "00", "nonce": "00", "sha256": "00", "len": 1,
        "sender": "alice", "chat": "c"});
    alice
        .send_raw("c", &json!({"text": null, "attachment": r}))
        .unwrap();
    let got = bob.recv().unwrap();
    assert!(matches!(got[0], Err(ClientError::BadId(_))), "{got:?}");
    assert!(
        !asked.borrow().iter().any(|a| a.contains("..")),
        "{:?}",
        asked.borrow()
    );
}
