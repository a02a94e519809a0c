//! `scanlab serve` as a real process: nothing the provider acknowledged is lost when it is
//! killed with SIGKILL mid-conversation, and `scanlab provider-view` dumps what it received.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn spawn(data: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scanlab"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("ready line")
        .to_string();
    (child, url)
}

async fn post(url: &str, path: &str, token: Option<&str>, body: Value) -> Value {
    let mut r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn account(url: &str, name: &str, seed: u8) -> String {
    let key = SigningKey::from_bytes(&[seed; 32]);
    post(
        url,
        "/v1/register",
        None,
        json!({"name": name, "identity_key": hex::encode(key.verifying_key().as_bytes())}),
    )
    .await;
    login(url, name, &key).await
}

async fn login(url: &str, name: &str, key: &SigningKey) -> String {
    let c = post(url, "/v1/auth/challenge", None, json!({"name": name})).await;
    let nonce = hex::decode(c["nonce"].as_str().unwrap()).unwrap();
    let sig = key.sign(&scanlab_messenger::provider::auth_message(
        c["provider"].as_str().unwrap(),
        name,
        &nonce,
    ));
    let t = post(
        url,
        "/v1/auth/token",
        None,
        json!({"name": name, "nonce": c["nonce"], "signature": hex::encode(sig.to_bytes())}),
    )
    .await;
    t["token"].as_str().unwrap().to_string()
}

async fn queue_ids(url: &str, token: &str) -> Vec<i64> {
    let r: Value = reqwest::Client::new()
        .get(format!("{url}/v1/queue"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = spawn(dir.path());
    let alice = account(&url, "alice", 1).await;
    let bob = account(&url, "bob", 2).await;
    let mut sent = Vec::new();
    for i in 0..50 {
        let r = post(
            &url,
            "/v1/messages",
            Some(&alice),
            json!({"group": "g", "recipients": ["bob"], "payload": B64.encode(format!("m{i}"))}),
        )
        .await;
        sent.push(r["id"].as_i64().unwrap());
    }
    server.kill().unwrap(); // SIGKILL: no shutdown path runs
    server.wait().unwrap();

    let (mut server, url) = spawn(dir.path());
    assert_eq!(
        queue_ids(&url, &bob).await,
        sent,
        "every acknowledged send survived, in order"
    );
    post(
        &url,
        "/v1/queue/ack",
        Some(&bob),
        json!({"ids": sent[..20]}),
    )
    .await;
    server.kill().unwrap();
    server.wait().unwrap();

    let (mut server, url) = spawn(dir.path());
    assert_eq!(
        queue_ids(&url, &bob).await,
        sent[20..].to_vec(),
        "acknowledged ones stay gone"
    );
    server.kill().unwrap();
    server.wait().unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_scanlab"))
        .args([
            "provider-view",
            "--json",
            "--data",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sends = records
        .iter()
        .filter(|r| r["endpoint"] == "POST /v1/messages" && r["kind"] == "received")
        .count();
    assert_eq!(sends, 50);
    assert!(
        records
            .iter()
            .all(|r| r["sha256"].as_str().unwrap().len() == 64)
    );
}

fn client(home: &Path, url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scanlab"))
        .args(["client", "--home", home.to_str().unwrap(), "--server", url])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_client_cli_chats_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = spawn(&dir.path().join("provider"));
    let home = |n: &str| dir.path().join(n);
    for n in ["alice", "bob", "carol"] {
        let o = client(&home(n), &url, &["register", n]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(
        client(
            &home("alice"),
            &url,
            &["chat", "create", "team", "--with", "bob,carol"]
        )
        .status
        .success()
    );
    let img = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/pdq-reference/images/misc-images/wee.jpg");
    assert!(
        client(
            &home("alice"),
            &url,
            &[
                "send",
                "team",
                "--text",
                "hi",
                "--image",
                img.to_str().unwrap()
            ]
        )
        .status
        .success()
    );
    let o = client(&home("bob"), &url, &["recv"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // First the join, shown with who is in the chat (also said on stderr), then the message.
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["chat"], "team");
    assert_eq!(
        lines[0]["change"]["added"],
        json!(["alice", "bob", "carol"])
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("alice added carol to chat \"team\""));
    assert_eq!(lines[1]["text"], "hi");
    assert_eq!(
        std::fs::read(lines[1]["image"].as_str().unwrap()).unwrap(),
        std::fs::read(&img).unwrap()
    );
    assert!(
        client(&home("alice"), &url, &["chat", "remove", "team", "carol"])
            .status
            .success()
    );
    assert!(
        client(
            &home("alice"),
            &url,
            &["send", "team", "--text", "bob only"]
        )
        .status
        .success()
    );
    let o = client(&home("carol"), &url, &["recv"]);
    let carol = String::from_utf8(o.stdout).unwrap();
    assert!(
        carol.contains("\"hi\"") && !carol.contains("bob only"),
        "{carol}"
    );
    // A verb before registering explains what to do.
    let o = client(&home("dave"), &url, &["recv"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("register NAME"));
    server.kill().unwrap();
    server.wait().unwrap();
}
