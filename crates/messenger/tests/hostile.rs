//! What a hostile user actually does to the provider, each a regression test of a failure a
//! hostile run found: login denial and account enumeration, bodies and records before
//! authentication, unbounded queue pages, slow clients, weak keys and empty sends.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey};
use scanlab_messenger::provider::auth_message;
use scanlab_messenger::{Limits, Provider, RecordKind, ServeOptions, SqliteStore};
use serde_json::{Value, json};
use std::sync::Arc;

struct Srv {
    url: String,
    provider: Arc<Provider>,
    _dir: tempfile::TempDir,
}

async fn start(opts: ServeOptions) -> Srv {
    start_with(opts, Limits::default()).await
}

async fn start_with(opts: ServeOptions, limits: Limits) -> Srv {
    let dir = tempfile::tempdir().unwrap();
    let provider = Provider::new(Box::new(SqliteStore::open(dir.path()).unwrap()), limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    IDS.lock()
        .unwrap()
        .push((url.clone(), provider.id().to_string()));
    let router = scanlab_messenger::router(provider.clone());
    tokio::spawn(scanlab_messenger::serve_router(
        listener,
        router,
        std::future::pending(),
        opts,
    ));
    Srv {
        url,
        provider,
        _dir: dir,
    }
}

async fn post(url: &str, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

async fn register(url: &str, name: &str, key: &SigningKey) {
    let (s, _) = post(
        url,
        "/v1/register",
        None,
        json!({"name": name, "identity_key": hex::encode(key.verifying_key().as_bytes())}),
    )
    .await;
    assert_eq!(s, 200);
}

async fn challenge(url: &str, name: &str) -> (u16, String) {
    let (s, c) = post(url, "/v1/auth/challenge", None, json!({ "name": name })).await;
    (s, c["nonce"].as_str().unwrap_or_default().to_string())
}

/// Provider ids by URL, noted when each test's provider starts: logins are bound to them.
static IDS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// The id of the provider at `url`, which logins are bound to.
async fn provider_id(url: &str) -> String {
    let ids = IDS.lock().unwrap();
    ids.iter().find(|(u, _)| u == url).unwrap().1.clone()
}

async fn answer(url: &str, name: &str, nonce: &str, key: &SigningKey) -> (u16, Value) {
    let id = provider_id(url).await;
    let sig = key.sign(&auth_message(&id, name, &hex::decode(nonce).unwrap()));
    post(
        url,
        "/v1/auth/token",
        None,
        json!({"name": name, "nonce": nonce, "signature": hex::encode(sig.to_bytes())}),
    )
    .await
}

/// Registers `name` with a key from `seed` and logs in; returns the token.
async fn user(url: &str, name: &str, seed: u8) -> String {
    register(url, name, &SigningKey::from_bytes(&[seed; 32])).await;
    user_login(url, name, seed).await
}

/// Logs `name` (key from `seed`) in; returns the token.
async fn user_login(url: &str, name: &str, seed: u8) -> String {
    let k = SigningKey::from_bytes(&[seed; 32]);
    let (_, n) = challenge(url, name).await;
    answer(url, name, &n, &k).await.1["token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn nobody_but_the_signer_can_spend_or_replace_a_login_challenge() {
    let srv = start(ServeOptions::default()).await;
    let victim = SigningKey::from_bytes(&[5; 32]);
    register(&srv.url, "victim", &victim).await;
    let (_, nonce) = challenge(&srv.url, "victim").await;
    // The attacker asks for fresh challenges for the victim and answers the victim's with a
    // bad signature: neither touches the victim's challenge.
    let mallory = SigningKey::from_bytes(&[6; 32]);
    for _ in 0..5 {
        challenge(&srv.url, "victim").await;
    }
    assert_eq!(answer(&srv.url, "victim", &nonce, &mallory).await.0, 401);
    let (s, t) = answer(&srv.url, "victim", &nonce, &victim).await;
    assert_eq!(s, 200, "the victim still logs in");
    assert!(t["token"].is_string());
    // A signed answer is spent once.
    assert_eq!(answer(&srv.url, "victim", &nonce, &victim).await.0, 401);
    // And a signature for one name is worth nothing for another.
    let other = SigningKey::from_bytes(&[8; 32]);
    register(&srv.url, "other", &other).await;
    let (_, n2) = challenge(&srv.url, "victim").await;
    let id = provider_id(&srv.url).await;
    let sig = other.sign(&auth_message(&id, "other", &hex::decode(&n2).unwrap()));
    // Nor is a signature for another provider.
    let (_, n3) = challenge(&srv.url, "victim").await;
    let elsewhere = victim.sign(&auth_message(
        "another-provider",
        "victim",
        &hex::decode(&n3).unwrap(),
    ));
    let (s3, _) = post(
        &srv.url,
        "/v1/auth/token",
        None,
        json!({"name": "victim", "nonce": n3, "signature": hex::encode(elsewhere.to_bytes())}),
    )
    .await;
    assert_eq!(s3, 401, "a signature bound to another provider is refused");
    let (s, _) = post(
        &srv.url,
        "/v1/auth/token",
        None,
        json!({"name": "victim", "nonce": n2, "signature": hex::encode(sig.to_bytes())}),
    )
    .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn challenges_do_not_tell_known_names_from_unknown_ones() {
    let srv = start(ServeOptions::default()).await;
    register(&srv.url, "known", &SigningKey::from_bytes(&[5; 32])).await;
    let (a, na) = challenge(&srv.url, "known").await;
    let (b, nb) = challenge(&srv.url, "nobody-here").await;
    assert_eq!((a, na.len()), (b, nb.len()));
}

#[tokio::test]
async fn refused_requests_cost_neither_memory_nor_records() {
    let srv = start(ServeOptions::default()).await;
    let before = srv.provider.view().unwrap().len();
    let c = reqwest::Client::new();
    // 20 junk uploads of 4 MiB and 50 bad-token requests: refused before the body is read.
    for _ in 0..20 {
        let r = c
            .put(format!("{}/v1/blobs", srv.url))
            .bearer_auth("not-a-token")
            .body(vec![0u8; 4 << 20])
            .send()
            .await;
        if let Ok(r) = r {
            assert_eq!(r.status(), 401);
        }
    }
    for _ in 0..50 {
        let (s, _) = post(&srv.url, "/v1/queue/ack", Some("nope"), json!({"ids": []})).await;
        assert_eq!(s, 401);
    }
    // Failed logins, too.
    for _ in 0..10 {
        let (s, _) = answer(
            &srv.url,
            "ghost",
            &"00".repeat(32),
            &SigningKey::from_bytes(&[1; 32]),
        )
        .await;
        assert_eq!(s, 401);
    }
    let v = srv.provider.view().unwrap();
    assert_eq!(
        v.len(),
        before,
        "nothing recorded: {:?}",
        v.iter()
            .map(|r| (r.kind, r.endpoint.clone()))
            .collect::<Vec<_>>()
    );
    assert!(srv.provider.refused() >= 80, "{}", srv.provider.refused());
    // An unauthenticated body on a public route is capped small.
    let r = c
        .post(format!("{}/v1/register", srv.url))
        .header("content-type", "application/json")
        .body(vec![b' '; 1 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn weak_keys_and_empty_sends_are_refused() {
    let srv = start(ServeOptions::default()).await;
    // The all-zero Ed25519 point has small order: it "verifies" forged signatures.
    let (s, e) = post(
        &srv.url,
        "/v1/register",
        None,
        json!({"name": "zero", "identity_key": hex::encode([0u8; 32])}),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    let identity = {
        let mut k = [0u8; 32];
        k[0] = 1; // the identity point, also small order
        k
    };
    let (s, _) = post(
        &srv.url,
        "/v1/register",
        None,
        json!({"name": "one", "identity_key": hex::encode(identity)}),
    )
    .await;
    assert_eq!(s, 400);
    let key = SigningKey::from_bytes(&[9; 32]);
    register(&srv.url, "alice", &key).await;
    let (_, n) = challenge(&srv.url, "alice").await;
    let (_, t) = answer(&srv.url, "alice", &n, &key).await;
    let token = t["token"].as_str().unwrap();
    let (s, _) = post(
        &srv.url,
        "/v1/messages",
        Some(token),
        json!({"group": "g", "recipients": [], "payload": B64.encode(b"x")}),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn queue_pages_are_bounded_in_bytes() {
    let srv = start(ServeOptions::default()).await;
    let (ta, tb) = (user(&srv.url, "a", 1).await, user(&srv.url, "b", 2).await);
    // An application envelope (kind 0) of 2 MiB.
    let mut raw = vec![7u8; 2 << 20];
    raw[0] = 0;
    let big = B64.encode(raw);
    for _ in 0..5 {
        let (s, _) = post(
            &srv.url,
            "/v1/messages",
            Some(&ta),
            json!({"group": "g", "recipients": ["b"], "payload": big}),
        )
        .await;
        assert_eq!(s, 200);
    }
    let page = |token: String| {
        let url = srv.url.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{url}/v1/queue"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let p1 = page(tb.clone()).await;
    let n1 = p1["messages"].as_array().unwrap().len();
    assert!(
        n1 < 5,
        "a page stops at {} MiB",
        scanlab_messenger::store::MAX_PAGE_BYTES >> 20
    );
    assert_eq!(p1["more"], true);
    let ids: Vec<Value> = p1["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    post(&srv.url, "/v1/queue/ack", Some(&tb), json!({ "ids": ids })).await;
    let p2 = page(tb).await;
    assert_eq!(p2["messages"].as_array().unwrap().len(), 5 - n1);
    assert_eq!(p2["more"], false);
    // The page is recorded by length and digest and the ids it carried, not a second copy.
    let view = srv.provider.view().unwrap();
    let sent = view
        .iter()
        .filter(|r| r.kind == RecordKind::Sent && r.endpoint == "GET /v1/queue")
        .collect::<Vec<_>>();
    assert!(sent.iter().all(|r| r.body.is_none() && r.extra.is_some()));
}

#[tokio::test]
async fn a_slow_client_is_dropped_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = start(ServeOptions {
        header_read_timeout: std::time::Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let addr = srv.url.trim_start_matches("http://").to_string();
    // Half a request line, then nothing: the provider must close the connection.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /v1/scheme HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // An idle connection that never sends a byte, likewise.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 256];
    for s in [&mut slow, &mut idle] {
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await;
        match r {
            Ok(Ok(n)) => assert!(n == 0 || buf[..n].starts_with(b"HTTP/1.1 408"), "{n}"),
            Ok(Err(_)) => {}
            Err(_) => panic!("the connection was still open after 5 s"),
        }
    }
    // An honest client is served meanwhile.
    let (s, _) = (
        reqwest::get(format!("{}/v1/scheme", srv.url))
            .await
            .unwrap()
            .status()
            .as_u16(),
        (),
    );
    assert_eq!(s, 200);
}

#[tokio::test]
async fn one_user_cannot_drain_anothers_key_packages_at_will() {
    let srv = start(ServeOptions::default()).await;
    let (ta, tb) = (user(&srv.url, "a", 1).await, user(&srv.url, "b", 2).await);
    let packages: Vec<String> = (0..100).map(|i| B64.encode([i as u8; 40])).collect();
    let (s, _) = post(
        &srv.url,
        "/v1/keypackages",
        Some(&tb),
        json!({ "packages": packages }),
    )
    .await;
    assert_eq!(s, 200);
    let limit = scanlab_messenger::provider::KEY_PACKAGE_TAKES_PER_MINUTE;
    let c = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..limit + 5 {
        let r = c
            .get(format!("{}/v1/keypackages/b", srv.url))
            .bearer_auth(&ta)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(statuses[..limit as usize].iter().all(|&s| s == 200));
    assert!(
        statuses[limit as usize..].iter().all(|&s| s == 429),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_token_stops_working_when_it_expires() {
    // A short lifetime stands in for the default 24 h; the check is the same comparison.
    let limits = Limits {
        token_ttl_ms: 1500,
        ..Limits::default()
    };
    let srv = start_with(ServeOptions::default(), limits).await;
    let token = user(&srv.url, "alice", 1).await;
    let queue = |t: String| {
        let url = srv.url.clone();
        async move {
            let r = reqwest::Client::new()
                .get(format!("{url}/v1/queue"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }
    };
    // Fresh, the token works (and is now in the provider's cache, which must not outlive it).
    assert_eq!(queue(token.clone()).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    assert_eq!(
        queue(token.clone()).await,
        401,
        "an expired token is refused"
    );
    // Logging in again gives a token that works.
    let fresh = user_login(&srv.url, "alice", 1).await;
    assert_eq!(queue(fresh).await, 200);
}
