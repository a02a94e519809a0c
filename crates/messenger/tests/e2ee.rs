//! Three users over real sockets: a group with add and remove, text and an image delivered and
//! decrypted, a removed member locked out, and no plaintext byte at the provider.

use scanlab_messenger::client::{Client, HttpTransport, LocalTransport, Transport};
use scanlab_messenger::{Limits, Provider, SqliteStore};
use std::path::{Path, PathBuf};

fn start(dir: &Path) -> (String, std::sync::Arc<Provider>) {
    let provider = Provider::new(Box::new(SqliteStore::open(dir).unwrap()), Limits::default());
    let p = provider.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}", listener.local_addr().unwrap()))
                .unwrap();
            scanlab_messenger::serve(listener, p, std::future::pending())
                .await
                .unwrap();
        });
    });
    (rx.recv().unwrap(), provider)
}

fn photo() -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/pdq-reference/images/reg-test-input/labelme-subset/q0746.jpg");
    std::fs::read(p).unwrap()
}

#[test]
fn three_users_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("provider");
    let (url, provider) = start(&data);
    three_users(tmp.path(), &data, &provider, || HttpTransport::new(&url));
}

#[test]
fn three_users_in_process() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("provider");
    let provider = Provider::new(
        Box::new(SqliteStore::open(&data).unwrap()),
        Limits::default(),
    );
    three_users(tmp.path(), &data, &provider, || {
        LocalTransport::new(provider.clone())
    });
}

/// A group with add and remove, text and an image delivered and decrypted, a removed member
/// locked out, and no plaintext byte at the provider; the same over either transport.
fn three_users<T: Transport>(
    root: &Path,
    data: &Path,
    provider: &Provider,
    transport: impl Fn() -> T,
) {
    let home = |n: &str| root.join(n);
    let mut alice = Client::connect(&home("alice"), "alice", transport()).unwrap();
    let mut bob = Client::connect(&home("bob"), "bob", transport()).unwrap();
    let mut carol = Client::connect(&home("carol"), "carol", transport()).unwrap();

    alice.create_chat("team", &["bob", "carol"]).unwrap();
    for c in [&mut bob, &mut carol] {
        let got = c.recv().unwrap();
        assert_eq!(got.len(), 1, "joining shows one change, no message");
        let m = got[0].as_ref().unwrap();
        assert_eq!(
            (m.chat.as_str(), m.from.as_str(), m.text.as_ref()),
            ("team", "alice", None)
        );
        assert_eq!(m.change.as_ref().unwrap().added, ["alice", "bob", "carol"]);
    }

    alice.send("team", Some("hello team"), None).unwrap();
    for c in [&mut bob, &mut carol] {
        let got = c.recv().unwrap();
        assert_eq!(got.len(), 1);
        let m = got[0].as_ref().unwrap();
        assert_eq!(
            (m.from.as_str(), m.text.as_deref()),
            ("alice", Some("hello team"))
        );
    }

    let img = photo();
    bob.send("team", Some("look at this"), Some(&img)).unwrap();
    for c in [&mut alice, &mut carol] {
        let got = c.recv().unwrap();
        let m = got[0].as_ref().unwrap();
        assert_eq!(
            std::fs::read(m.image.as_ref().unwrap()).unwrap(),
            img,
            "image decrypted and verified"
        );
        // Saved under its real type, so a viewer opens it.
        let path = m.image.as_ref().unwrap();
        assert_eq!(path.extension().unwrap(), "jpg", "{}", path.display());
    }

    // Alice removes Carol; Bob and Carol process the commit.
    let carol_gid = carol.chat_id("team").unwrap();
    alice.remove("team", &["carol"]).unwrap();
    for c in [&mut bob, &mut carol] {
        let got = c.recv().unwrap();
        assert_eq!(got.len(), 1);
        let change = got[0].as_ref().unwrap().change.clone().unwrap();
        assert_eq!(change.removed, ["carol"], "both see Carol leave");
    }
    alice.send("team", Some("after carol left"), None).unwrap();
    let got = bob.recv().unwrap();
    assert_eq!(
        got[0].as_ref().unwrap().text.as_deref(),
        Some("after carol left")
    );
    assert!(
        carol.recv().unwrap().is_empty(),
        "the provider no longer delivers to Carol"
    );
    // Even with the ciphertext in hand (from the provider's own records), Carol cannot decrypt.
    let view = provider.view().unwrap();
    let last = view
        .iter()
        .rev()
        .find(|r| {
            r.kind == scanlab_messenger::RecordKind::Received && r.endpoint == "POST /v1/messages"
        })
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(last.body.as_ref().unwrap()).unwrap();
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(body["payload"].as_str().unwrap())
        .unwrap();
    let any_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let carol_mls =
        scanlab_messenger::mls::MlsClient::open(&home("carol"), "carol", &any_key).unwrap();
    assert!(
        carol_mls
            .process(&carol_gid, &payload[1..], &|_| Ok(()))
            .is_err()
    );

    // No plaintext byte of any text or of the image reaches the provider: not in the view, not
    // anywhere in its database files.
    let mut provider_bytes = Vec::new();
    for r in &view {
        provider_bytes.extend(r.body.clone().unwrap_or_default());
    }
    for f in std::fs::read_dir(data).unwrap() {
        provider_bytes.extend(std::fs::read(f.unwrap().path()).unwrap());
    }
    let contains = |needle: &[u8]| provider_bytes.windows(needle.len()).any(|w| w == needle);
    // Every text has a space, which base64 (how JSON bodies carry bytes) never contains, so a
    // hit cannot be a chance match inside base64 text.
    for text in ["hello team", "look at this", "after carol left"] {
        assert!(!contains(text.as_bytes()), "{text:?} leaked");
    }
    for chunk in img.chunks(64).step_by(7) {
        if chunk.len() == 64 {
            assert!(!contains(chunk), "image bytes leaked");
        }
    }
    // …but it does see who sent to whom, when, and how much: metadata.
    assert!(view.iter().any(|r| r.who.as_deref() == Some("bob")
        && r.endpoint == "PUT /v1/blobs"
        && r.len as usize > img.len()));
}

#[test]
fn a_client_survives_a_restart_and_keeps_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, _p) = start(&tmp.path().join("provider"));
    let home = |n: &str| tmp.path().join(n);
    let mut alice = Client::connect(&home("alice"), "alice", HttpTransport::new(&url)).unwrap();
    let mut bob = Client::connect(&home("bob"), "bob", HttpTransport::new(&url)).unwrap();
    alice.create_chat("dm", &["bob"]).unwrap();
    bob.recv().unwrap();
    drop(bob);
    alice.send("dm", Some("while you were away"), None).unwrap();
    let mut bob = Client::connect(&home("bob"), "bob", HttpTransport::new(&url)).unwrap();
    let got = bob.recv().unwrap();
    assert_eq!(
        got[0].as_ref().unwrap().text.as_deref(),
        Some("while you were away")
    );
    assert!(
        bob.recv().unwrap().is_empty(),
        "acknowledged messages are not shown twice"
    );
}
