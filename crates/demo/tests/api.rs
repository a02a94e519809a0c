//! The demo's API through its router (the browser tests drive the page itself): a send
//! reaches Bob and the provider's pane, bad requests get a clear error and change nothing.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

fn demo(scheme: &str) -> Arc<scanlab_demo::Demo> {
    let corpus = scanlab_corpus::ensure(&scanlab_corpus::default_cache_dir(), &mut |_| {})
        .expect("the dev corpus");
    scanlab_demo::start(&scanlab_demo::DemoConfig {
        scheme: scheme.into(),
        corpus: corpus.paths(),
        seed: 1,
        results: None,
    })
    .expect("the demo starts")
}

async fn call(
    d: &Arc<scanlab_demo::Demo>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(match body {
            Some(b) => Body::from(b.to_string()),
            None => Body::empty(),
        })
        .unwrap();
    let resp = scanlab_demo::router(d.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_reaches_bob_and_the_provider_reads_its_hash() {
    let d = tokio::task::spawn_blocking(|| demo("device-hash"))
        .await
        .unwrap();
    let (s, v) = call(
        &d,
        "POST",
        "/api/send",
        Some(json!({"from": "alice", "text": "hi", "item": "benign-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, st) = call(&d, "GET", "/api/state", None).await;
    let bob = st["users"]["bob"].as_array().unwrap();
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0]["text"], "hi");
    assert!(
        bob[0]["image"]
            .as_str()
            .unwrap()
            .starts_with("data:image/jpeg;base64,")
    );
    let provider = &st["parties"][0];
    assert_eq!(provider["name"], "provider");
    let whats: Vec<&str> = provider["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["finding"]["what"].as_str().unwrap())
        .collect();
    // The scan request carries the photo's PDQ; tokens, keys and digests are no photo's hash.
    assert!(whats.contains(&"hash"), "{whats:?}");
    assert!(!whats.contains(&"plaintext"), "{whats:?}");
    assert_eq!(provider["reviews"].as_array().unwrap().len(), 0);

    // A listed photo reaches review, and its reviewers see the photo.
    let (s, _) = call(
        &d,
        "POST",
        "/api/send",
        Some(json!({"from": "alice", "item": "listed-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, st) = call(&d, "GET", "/api/state", None).await;
    let reviews = st["parties"][0]["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0][1]["what"], "plaintext");
    assert!(
        reviews[0][1]["text"]
            .as_str()
            .unwrap()
            .contains("listed photo 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_a_reason() {
    let d = tokio::task::spawn_blocking(|| demo("e2ee")).await.unwrap();
    let (_, before) = call(&d, "GET", "/api/state", None).await;
    let cases = [
        (
            json!({"from": "mallory", "text": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no user",
        ),
        (
            json!({"from": "alice"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing to send",
        ),
        (
            json!({"from": "alice", "item": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no image",
        ),
        (
            json!({"from": "alice", "upload": "%%%"}),
            StatusCode::BAD_REQUEST,
            "not base64",
        ),
        (
            json!({"from": "alice", "text": "x".repeat(5000)}),
            StatusCode::BAD_REQUEST,
            "text over",
        ),
        (
            json!({"from": "alice", "extra": 1}),
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
    ];
    for (body, want, says) in cases {
        let (s, v) = call(&d, "POST", "/api/send", Some(body.clone())).await;
        assert_eq!(s, want, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let (s, v) = call(
        &d,
        "POST",
        "/api/attack",
        Some(json!({"attack": "steal", "holder": "nobody"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _) = call(&d, "POST", "/api/attack", Some(json!({"attack": "launch"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = call(&d, "POST", "/api/scheme", Some(json!({"name": "S99"}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"].as_str().unwrap().contains("unknown scheme"));
    // An upload over the limit is refused before anything is decoded.
    let big = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        vec![0u8; scanlab_demo::MAX_UPLOAD + 1],
    );
    let (s, _) = call(
        &d,
        "POST",
        "/api/send",
        Some(json!({"from": "alice", "upload": big})),
    )
    .await;
    assert!(
        s == StatusCode::BAD_REQUEST || s == StatusCode::PAYLOAD_TOO_LARGE,
        "{s}"
    );
    // Nothing reached the users.
    let (_, after) = call(&d, "GET", "/api/state", None).await;
    assert_eq!(before["users"], after["users"]);
    assert_eq!(after["scheme"][0], "S0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_upload_is_a_refused_message_not_a_crash() {
    let d = tokio::task::spawn_blocking(|| demo("device-hash"))
        .await
        .unwrap();
    let junk = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        b"\xFF\xD8\xFFnot a jpeg at all",
    );
    let (s, v) = call(
        &d,
        "POST",
        "/api/send",
        Some(json!({"from": "alice", "upload": junk})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, st) = call(&d, "GET", "/api/state", None).await;
    let alice = st["users"]["alice"].as_array().unwrap();
    assert_eq!(alice[0]["failed"], true, "{alice:?}");
    assert!(alice[0]["note"].as_str().unwrap().starts_with("not sent"));
    assert_eq!(st["users"]["bob"].as_array().unwrap().len(), 0);
    // The demo goes on.
    let (s, _) = call(
        &d,
        "POST",
        "/api/send",
        Some(json!({"from": "alice", "text": "still here"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_comes_from_the_binary_and_events_stream() {
    let d = tokio::task::spawn_blocking(|| demo("e2ee")).await.unwrap();
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let resp = scanlab_demo::router(d.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with(kind));
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{path} names another host"
        );
    }
    let resp = scanlab_demo::router(d.clone())
        .oneshot(Request::get("/api/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
}
