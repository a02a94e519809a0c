//! The provider over real sockets: accounts and authentication, key packages, ordered
//! at-least-once delivery with acknowledgement, blobs and limits, persistence across restarts,
//! and the provider view.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey};
use scanlab_messenger::{Limits, Provider, SqliteStore};
use serde_json::{Value, json};
use std::path::Path;

struct Server {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    provider: std::sync::Arc<Provider>,
}

async fn start(dir: &Path, limits: Limits) -> Server {
    let provider = Provider::new(Box::new(SqliteStore::open(dir).unwrap()), limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let p = provider.clone();
    let task = tokio::spawn(async move {
        scanlab_messenger::serve(listener, p, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server {
        url,
        stop: Some(tx),
        task,
        provider,
    }
}

impl Server {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

struct User {
    name: String,
    key: SigningKey,
    token: Option<String>,
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(url: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = http().post(format!("{url}{path}")).json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(url: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = http().get(format!("{url}{path}"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn user(url: &str, name: &str, seed: u8) -> User {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let (s, _) = post(
        url,
        "/v1/register",
        None,
        json!({"name": name, "identity_key": hex::encode(key.verifying_key().as_bytes())}),
    )
    .await;
    assert_eq!(s, 200);
    let mut u = User {
        name: name.into(),
        key,
        token: None,
    };
    u.token = Some(login(url, &u).await);
    u
}

async fn login(url: &str, u: &User) -> String {
    let (_, c) = post(url, "/v1/auth/challenge", None, json!({"name": u.name})).await;
    let nonce = hex::decode(c["nonce"].as_str().unwrap()).unwrap();
    let sig = u.key.sign(&scanlab_messenger::provider::auth_message(
        c["provider"].as_str().unwrap(),
        &u.name,
        &nonce,
    ));
    let (s, t) = post(
        url,
        "/v1/auth/token",
        None,
        json!({"name": u.name, "nonce": c["nonce"], "signature": hex::encode(sig.to_bytes())}),
    )
    .await;
    assert_eq!(s, 200);
    t["token"].as_str().unwrap().to_string()
}

impl User {
    fn t(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

async fn send(url: &str, from: &User, group: &str, to: &[&User], payload: &[u8]) -> i64 {
    let recipients: Vec<&str> = to.iter().map(|u| u.name.as_str()).collect();
    let (s, r) = post(
        url,
        "/v1/messages",
        from.t(),
        json!({"group": group, "recipients": recipients, "payload": B64.encode(payload)}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    r["id"].as_i64().unwrap()
}

async fn pending(url: &str, u: &User) -> Vec<(i64, Vec<u8>)> {
    let (s, q) = get(url, "/v1/queue", u.t()).await;
    assert_eq!(s, 200);
    q["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_i64().unwrap(),
                B64.decode(m["payload"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn authentication_is_required_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), Limits::default()).await;
    let url = srv.url.clone();
    let alice = user(&url, "alice", 1).await;
    assert_eq!(get(&url, "/v1/queue", None).await.0, 401, "no token");
    assert_eq!(
        get(&url, "/v1/queue", Some("forged")).await.0,
        401,
        "unknown token"
    );
    // Same name again: refused.
    let (s, _) = post(
        &url,
        "/v1/register",
        None,
        json!({"name": "alice", "identity_key": hex::encode([7u8; 32])}),
    )
    .await;
    assert!(s == 409 || s == 400);
    // A signature by the wrong key is refused.
    let mallory = User {
        name: "alice".into(),
        key: SigningKey::from_bytes(&[66; 32]),
        token: None,
    };
    let (_, c) = post(&url, "/v1/auth/challenge", None, json!({"name": "alice"})).await;
    let nonce = hex::decode(c["nonce"].as_str().unwrap()).unwrap();
    let sig = mallory.key.sign(&scanlab_messenger::provider::auth_message(
        c["provider"].as_str().unwrap(),
        "alice",
        &nonce,
    ));
    let (s, _) = post(
        &url,
        "/v1/auth/token",
        None,
        json!({"name": "alice", "nonce": c["nonce"], "signature": hex::encode(sig.to_bytes())}),
    )
    .await;
    assert_eq!(s, 401);
    // Malformed JSON is a 4xx, never a 500.
    let resp = http()
        .post(format!("{url}/v1/messages"))
        .bearer_auth(alice.t().unwrap())
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    srv.stop().await;
}

#[tokio::test]
async fn fan_out_is_ordered_acknowledged_and_private_to_each_queue() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), Limits::default()).await;
    let url = srv.url.clone();
    let (alice, bob, carol) = (
        user(&url, "alice", 1).await,
        user(&url, "bob", 2).await,
        user(&url, "carol", 3).await,
    );
    let m1 = send(&url, &alice, "g1", &[&bob, &carol], b"first").await;
    let m2 = send(&url, &alice, "g1", &[&bob, &carol], b"second").await;
    let m3 = send(&url, &bob, "g2", &[&alice], b"to alice").await;
    assert!(m1 < m2);
    assert_eq!(
        pending(&url, &bob).await,
        vec![(m1, b"first".to_vec()), (m2, b"second".to_vec())]
    );
    // Bob acknowledging Alice's message id does nothing to Alice's queue.
    let (_, r) = post(&url, "/v1/queue/ack", bob.t(), json!({"ids": [m3]})).await;
    assert_eq!(r["acked"], 0);
    assert_eq!(
        pending(&url, &alice).await,
        vec![(m3, b"to alice".to_vec())]
    );
    // Until acknowledged, a message is delivered again (at least once).
    assert_eq!(pending(&url, &bob).await.len(), 2);
    let (_, r) = post(&url, "/v1/queue/ack", bob.t(), json!({"ids": [m1]})).await;
    assert_eq!(r["acked"], 1);
    assert_eq!(pending(&url, &bob).await, vec![(m2, b"second".to_vec())]);
    // Carol's queue is her own.
    assert_eq!(pending(&url, &carol).await.len(), 2);
    // Unknown recipients are refused.
    let (s, _) = post(
        &url,
        "/v1/messages",
        alice.t(),
        json!({"group": "g", "recipients": ["nobody"], "payload": ""}),
    )
    .await;
    assert_eq!(s, 400);
    srv.stop().await;
}

#[tokio::test]
async fn key_packages_are_single_use() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), Limits::default()).await;
    let url = srv.url.clone();
    let (alice, bob) = (user(&url, "alice", 1).await, user(&url, "bob", 2).await);
    let (s, _) = post(
        &url,
        "/v1/keypackages",
        bob.t(),
        json!({"packages": [B64.encode(b"kp1"), B64.encode(b"kp2")]}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, a) = get(&url, "/v1/keypackages/bob", alice.t()).await;
    let (_, b) = get(&url, "/v1/keypackages/bob", alice.t()).await;
    assert_eq!(
        (
            a["package"].as_str().unwrap(),
            b["package"].as_str().unwrap()
        ),
        (B64.encode(b"kp1").as_str(), B64.encode(b"kp2").as_str())
    );
    assert_eq!(get(&url, "/v1/keypackages/bob", alice.t()).await.0, 404);
    srv.stop().await;
}

#[tokio::test]
async fn blobs_round_trip_and_oversize_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(
        dir.path(),
        Limits {
            max_blob: 1000,
            ..Limits::default()
        },
    )
    .await;
    let url = srv.url.clone();
    let alice = user(&url, "alice", 1).await;
    let put = |body: Vec<u8>| {
        http()
            .put(format!("{url}/v1/blobs"))
            .bearer_auth(alice.t().unwrap())
            .body(body)
            .send()
    };
    let r = put(vec![7u8; 1000]).await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let back = http()
        .get(format!("{url}/v1/blobs/{id}"))
        .bearer_auth(alice.t().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(back.to_vec(), vec![7u8; 1000]);
    assert_eq!(put(vec![7u8; 1001]).await.unwrap().status(), 413);
    srv.stop().await;
}

#[tokio::test]
async fn unacknowledged_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), Limits::default()).await;
    let url = srv.url.clone();
    let (alice, bob) = (user(&url, "alice", 1).await, user(&url, "bob", 2).await);
    let m1 = send(&url, &alice, "g", &[&bob], b"kept").await;
    srv.stop().await;
    let srv = start(dir.path(), Limits::default()).await;
    // Tokens and queues are in the database, not in memory.
    assert_eq!(pending(&srv.url, &bob).await, vec![(m1, b"kept".to_vec())]);
    srv.stop().await;
}

#[tokio::test]
async fn the_provider_view_records_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), Limits::default()).await;
    let url = srv.url.clone();
    let (alice, bob) = (user(&url, "alice", 1).await, user(&url, "bob", 2).await);
    send(&url, &alice, "g", &[&bob], b"opaque-ciphertext").await;
    let blob = b"encrypted-attachment-bytes".to_vec();
    http()
        .put(format!("{url}/v1/blobs"))
        .bearer_auth(alice.t().unwrap())
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    let all = srv.provider.view().unwrap();
    use scanlab_messenger::RecordKind;
    let view: Vec<_> = all
        .iter()
        .filter(|r| r.kind == RecordKind::Received)
        .cloned()
        .collect();
    // register ×2, challenge ×2, token ×2, message, blob.
    assert_eq!(view.len(), 8);
    // And every answer too, in the same order: what the provider sent is in its view.
    let sent: Vec<_> = all.iter().filter(|r| r.kind == RecordKind::Sent).collect();
    assert_eq!(sent.len(), 8);
    for (q, a) in view.iter().zip(&sent) {
        assert_eq!(q.endpoint, a.endpoint);
        assert!(q.seq < a.seq, "a request is recorded before its answer");
    }
    let nonce = sent
        .iter()
        .find(|r| r.endpoint == "POST /v1/auth/challenge")
        .unwrap();
    assert!(
        String::from_utf8(nonce.body.clone().unwrap())
            .unwrap()
            .contains("nonce"),
        "the challenge the provider sent is recorded"
    );
    let msg = view
        .iter()
        .find(|r| r.endpoint == "POST /v1/messages")
        .unwrap();
    assert_eq!(msg.who.as_deref(), Some("alice"));
    let body = String::from_utf8(msg.body.clone().unwrap()).unwrap();
    assert!(body.contains(&B64.encode(b"opaque-ciphertext")));
    let b = view.iter().find(|r| r.endpoint == "PUT /v1/blobs").unwrap();
    assert_eq!(b.len, blob.len() as i64);
    assert!(
        b.body.is_none(),
        "blobs are recorded by length and digest only"
    );
    use sha2::Digest;
    assert_eq!(b.sha256, hex::encode(sha2::Sha256::digest(&blob)));
    srv.stop().await;
}

#[tokio::test]
async fn refused_requests_and_downloads_are_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), Limits::default()).await;
    let url = srv.url.clone();
    let alice = user(&url, "alice", 1).await;
    // A write that fails half way (an unknown recipient): its record survives the undo.
    let (s, _) = post(
        &url,
        "/v1/messages",
        alice.t(),
        json!({"group": "g", "recipients": ["nobody"], "payload": B64.encode(b"x")}),
    )
    .await;
    assert_eq!(s, 400);
    let r = http().get(format!("{url}/v1/scheme")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let scheme = r.bytes().await.unwrap();
    let view = srv.provider.view().unwrap();
    use scanlab_messenger::RecordKind;
    let of = |kind, ep: &str| {
        view.iter()
            .filter(|r| r.kind == kind && r.endpoint == ep)
            .collect::<Vec<_>>()
    };
    assert_eq!(of(RecordKind::Received, "POST /v1/messages").len(), 1);
    let refusal = of(RecordKind::Sent, "POST /v1/messages");
    assert_eq!(refusal.len(), 1);
    assert!(String::from_utf8_lossy(refusal[0].body.as_ref().unwrap()).contains("nobody"));
    // The scheme parameters every device downloads are in the view as sent bytes.
    let down = of(RecordKind::Sent, "GET /v1/scheme");
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].body.as_deref(), Some(&scheme[..]));
    srv.stop().await;
}
