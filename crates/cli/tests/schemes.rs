//! The schemes through the command line, each part its own process: `serve --scheme`,
//! `enclave`, `matcher`, `escrow keygen|decrypt`, the client, and `provider-view --reviews`.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanlab"))
}

/// A child process killed when dropped, so a failing test leaves no server behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns a server-like command and reads its ready lines.
fn spawn(args: &[&str], lines: usize) -> (Proc, Vec<String>) {
    let mut child = Proc(bin().args(args).stdout(Stdio::piped()).spawn().unwrap());
    let child_stdout = child.0.stdout.take().unwrap();
    let mut r = BufReader::new(child_stdout);
    let mut out = Vec::new();
    for _ in 0..lines {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        out.push(l.trim().to_string());
    }
    (child, out)
}

/// `scanlab serve` on a free port with `data` and the scheme flags `args`; returns it and its URL.
fn serve(data: &Path, args: &[&str]) -> (Proc, String) {
    let mut all = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let (p, lines) = spawn(&all, 1);
    (p, url_of(&lines[0]))
}

fn url_of(line: &str) -> String {
    line.strip_prefix("listening on ")
        .expect("ready line")
        .to_string()
}

fn image(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../../testdata/pdq-reference/images/reg-test-input/labelme-subset/{name}.jpg"
    ))
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Alice and Bob chat through `url`; Alice sends `q0746` (listed) and `q2821` (not). Returns
/// the messages Bob received.
fn converse(root: &Path, url: &str) -> Vec<Value> {
    let client = |who: &str, args: &[&str]| {
        ok(bin()
            .args([
                "client",
                "--home",
                root.join(who).to_str().unwrap(),
                "--server",
                url,
            ])
            .args(args)
            .output()
            .unwrap())
    };
    client("alice", &["register", "alice"]);
    client("bob", &["register", "bob"]);
    client("alice", &["chat", "create", "pair", "--with", "bob"]);
    for (text, img) in [("listed", "q0746"), ("benign", "q2821")] {
        client(
            "alice",
            &[
                "send",
                "pair",
                "--text",
                text,
                "--image",
                image(img).to_str().unwrap(),
            ],
        );
    }
    let got = json_lines(&client("bob", &["recv"]));
    let messages: Vec<Value> = got
        .into_iter()
        .filter(|l| l.get("change").is_none())
        .collect();
    assert_eq!(messages.len(), 2, "both delivered");
    messages
}

/// Every recorded body of a `view --json` listing, as text.
fn body_text(view: &[Value]) -> String {
    view.iter()
        .filter_map(|v| v["body"].as_array())
        .map(|b| {
            let bytes: Vec<u8> = b.iter().map(|x| x.as_u64().unwrap() as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect()
}

/// The PDQ hash of a test image, as `scanlab hash` prints it.
fn hash_of(name: &str) -> String {
    let out = ok(bin()
        .args(["hash", image(name).to_str().unwrap()])
        .output()
        .unwrap());
    let h = out.split(',').next().unwrap().to_string();
    assert_eq!(h.len(), 64);
    h
}

fn list(root: &Path) -> String {
    let l = root.join("list.csv");
    ok(bin()
        .args([
            "list",
            "build",
            "--out",
            l.to_str().unwrap(),
            image("q0746").to_str().unwrap(),
        ])
        .output()
        .unwrap());
    l.to_str().unwrap().to_string()
}

fn reviews(data: &Path) -> Vec<Value> {
    json_lines(&ok(bin()
        .args([
            "provider-view",
            "--reviews",
            "--data",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap()))
}

#[test]
fn device_hash_deployment_flags_only_the_listed_image() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("provider");
    let l = list(root.path());
    let (srv, url) = serve(&data, &["--scheme", "device-hash", "--list", &l]);
    converse(root.path(), &url);
    drop(srv);
    let r = reviews(&data);
    assert_eq!(r.len(), 1);
    use sha2::Digest;
    let want = hex::encode(sha2::Sha256::digest(std::fs::read(image("q0746")).unwrap()));
    assert_eq!(r[0]["image_sha256"], want);
    assert_eq!(r[0]["submitter"], "alice");
    let view = json_lines(&ok(bin()
        .args(["provider-view", "--json", "--data", data.to_str().unwrap()])
        .output()
        .unwrap()));
    assert_eq!(
        view.iter()
            .filter(|v| v["endpoint"] == "POST /v1/scan" && v["kind"] == "received")
            .count(),
        2
    );
    // The text view prints every row, derived ones included (it used to panic on them).
    let text = ok(bin()
        .args(["provider-view", "--data", data.to_str().unwrap()])
        .output()
        .unwrap());
    assert_eq!(text.lines().filter(|l| l.contains(" derived ")).count(), 2);
    assert_eq!(
        text.lines().count(),
        view.len() + 1,
        "a header and a line per record"
    );
    // A folder with no view is an error, and nothing is created there.
    let nowhere = root.path().join("no-such-dir");
    let o = bin()
        .args(["view", "--data", nowhere.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!nowhere.exists());
    // A matching scheme without a list is a usage error that says what to do.
    let o = bin()
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--scheme",
            "device-hash",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--list"));
}

#[test]
fn escrow_authority_decrypts_the_providers_data() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("provider");
    let keys = root.path().join("escrow");
    ok(bin()
        .args(["escrow", "keygen", "--out", keys.to_str().unwrap()])
        .output()
        .unwrap());
    let (srv, url) = serve(
        &data,
        &[
            "--scheme",
            "exceptional-access",
            "--escrow-pub",
            keys.join("escrow.pub").to_str().unwrap(),
        ],
    );
    converse(root.path(), &url);
    // Bob's monitoring output anchors the authority's check of who signed what.
    let anchor = root.path().join("anchor.json");
    let monitor = ok(bin()
        .args([
            "client",
            "--home",
            root.path().join("bob").to_str().unwrap(),
        ])
        .args(["--server", &url, "monitor"])
        .output()
        .unwrap());
    std::fs::write(&anchor, &monitor).unwrap();
    drop(srv);
    let out = root.path().join("recovered");
    let got = json_lines(&ok(bin()
        .args([
            "escrow",
            "decrypt",
            "--data",
            data.to_str().unwrap(),
            "--key",
            keys.join("escrow.key").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--kt-anchor",
            anchor.to_str().unwrap(),
        ])
        .output()
        .unwrap()));
    let texts: Vec<_> = got.iter().map(|g| g["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["listed", "benign"]);
    for g in &got {
        assert_eq!(
            (&g["signed"], &g["anchored"], &g["sender_keys"]),
            (&json!(true), &json!(true), &json!(1)),
            "{g}"
        );
    }
    assert_eq!(
        std::fs::read(got[1]["image"].as_str().unwrap()).unwrap(),
        std::fs::read(image("q2821")).unwrap()
    );
    // The authority's own view (kept beside its key) holds the two capsules it was handed.
    let view = json_lines(&ok(bin()
        .args(["view", "--json", "--data", keys.to_str().unwrap()])
        .output()
        .unwrap()));
    let capsules = view
        .iter()
        .filter(|v| v["kind"] == "received" && v["endpoint"] == "escrow capsule")
        .count();
    assert_eq!(capsules, 2);
    // The public key is not the secret one: decrypting with it is refused or reads nothing.
    let o = bin()
        .args([
            "escrow",
            "decrypt",
            "--data",
            data.to_str().unwrap(),
            "--key",
            keys.join("escrow.pub").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("benign"));
}

#[test]
fn matcher_process_sees_every_hash_and_only_its_notice_leads_to_review() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("provider");
    let l = list(root.path());
    let mdata = root.path().join("matcher");
    let start = || {
        spawn(
            &[
                "matcher",
                "--listen",
                "127.0.0.1:0",
                "--list",
                &l,
                "--data",
                mdata.to_str().unwrap(),
            ],
            3,
        )
    };
    let (org, lines) = start();
    let key = lines[1].strip_prefix("key ").unwrap().to_string();
    assert_eq!(key.len(), 64);
    let token = lines[2].strip_prefix("caller token ").unwrap().to_string();
    let (srv, url) = serve(
        &data,
        &[
            "--scheme",
            "third-party",
            "--matcher",
            &url_of(&lines[0]),
            "--matcher-token",
            &token,
        ],
    );
    converse(root.path(), &url);
    drop(srv);
    let r = reviews(&data);
    assert_eq!(r.len(), 1, "the listed image only: {r:?}");
    assert_eq!(r[0]["submitter"], "alice");
    // The organisation's own view: two sealed hashes received, two hashes derived (the
    // listed image's and the benign one's), one match.
    drop(org);
    let ov = json_lines(&ok(bin()
        .args(["view", "--json", "--data", mdata.to_str().unwrap()])
        .output()
        .unwrap()));
    let of = |kind: &str| {
        ov.iter()
            .filter(|v| v["kind"] == kind && v["endpoint"] == "POST /match")
            .count()
    };
    assert_eq!((of("received"), of("derived")), (2, 2));
    // The provider's view holds the capsules, never a hash of the benign image.
    let pv = body_text(&json_lines(&ok(bin()
        .args(["provider-view", "--json", "--data", data.to_str().unwrap()])
        .output()
        .unwrap())));
    let benign = hash_of("q2821");
    assert!(!pv.contains(&benign), "the provider holds the benign hash");
    assert!(body_text(&ov).contains(&benign), "the organisation does");
    // Restarted, the organisation keeps its key (clients pinned it) but not its token.
    let (_org, again) = start();
    assert_eq!(again[1], lines[1]);
}

#[test]
fn two_matcher_processes_match_a_hash_neither_holds() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("provider");
    let l = list(root.path());
    let mut procs = Vec::new();
    let mut flags: Vec<String> = vec!["--scheme".into(), "third-party-multi".into()];
    let mut dirs = Vec::new();
    for i in 1..=2 {
        let d = root.path().join(format!("org-{i}"));
        let (p, lines) = spawn(
            &[
                "matcher",
                "--multi",
                "--listen",
                "127.0.0.1:0",
                "--list",
                &l,
                "--data",
                d.to_str().unwrap(),
            ],
            3,
        );
        flags.extend(["--matcher".into(), url_of(&lines[0])]);
        flags.extend([
            "--matcher-token".into(),
            lines[2].strip_prefix("caller token ").unwrap().to_string(),
        ]);
        procs.push(p);
        dirs.push(d);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (srv, url) = serve(&data, &flags);
    converse(root.path(), &url);
    drop(srv);
    drop(procs);
    let r = reviews(&data);
    assert_eq!(r.len(), 1, "the listed image only: {r:?}");
    let benign = hash_of("q2821");
    for d in &dirs {
        let v = ok(bin()
            .args(["view", "--json", "--data", d.to_str().unwrap()])
            .output()
            .unwrap());
        let view = json_lines(&v);
        let received = view
            .iter()
            .filter(|v| v["kind"] == "received" && v["endpoint"] == "POST /match")
            .count();
        assert_eq!(received, 2, "one capsule per image");
        assert!(
            !body_text(&view).contains(&benign),
            "an organisation holds the benign hash"
        );
    }
}

#[test]
fn a_franked_message_reaches_review_only_when_its_recipient_reports_it() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("provider");
    let (srv, url) = serve(&data, &["--scheme", "user-report"]);
    let got = converse(root.path(), &url);
    assert!(reviews(&data).is_empty(), "nothing before a report");
    let listed = got.iter().find(|m| m["text"] == "listed").unwrap();
    let id = listed["id"].as_i64().unwrap().to_string();
    let bob = root.path().join("bob");
    let report = |who: &Path| {
        bin()
            .args([
                "client",
                "--home",
                who.to_str().unwrap(),
                "--server",
                &url,
                "report",
                &id,
            ])
            .output()
            .unwrap()
    };
    ok(report(&bob));
    // Alice never received her own message, so she has nothing to report.
    let alice = report(&root.path().join("alice"));
    assert!(!alice.status.success());
    let why = String::from_utf8_lossy(&alice.stderr);
    assert!(!why.contains("connect"), "{why}");
    drop(srv);
    let r = reviews(&data);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["submitter"], "report");
}

#[test]
fn enclave_process_forwards_only_the_match() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("provider");
    let l = list(root.path());
    let edata = root.path().join("enclave");
    let (enc, elines) = spawn(
        &[
            "enclave",
            "--listen",
            "127.0.0.1:0",
            "--list",
            &l,
            "--data",
            edata.to_str().unwrap(),
        ],
        3,
    );
    let measurement = elines[1].strip_prefix("measurement ").unwrap().to_string();
    assert_eq!(measurement.len(), 64);
    let token = elines[2].strip_prefix("caller token ").unwrap().to_string();
    let (srv, url) = serve(
        &data,
        &[
            "--scheme",
            "enclave",
            "--enclave",
            &url_of(&elines[0]),
            "--enclave-token",
            &token,
        ],
    );
    converse(root.path(), &url);
    drop(srv);
    let r = reviews(&data);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["submitter"], "enclave");
    // The enclave process recorded, in its own view, the two capsules it was sent.
    let ev = json_lines(&ok(bin()
        .args(["view", "--json", "--data", edata.to_str().unwrap()])
        .output()
        .unwrap()));
    let scans = ev
        .iter()
        .filter(|v| v["kind"] == "received" && v["endpoint"] == "POST /scan")
        .count();
    assert_eq!(scans, 2);
    // A provider publishing an allow-list without this enclave: the client refuses to send.
    let data2 = root.path().join("provider2");
    let (srv, url) = serve(
        &data2,
        &[
            "--scheme",
            "enclave",
            "--enclave",
            &url_of(&elines[0]),
            "--enclave-token",
            &token,
            "--allow",
            &"00".repeat(32),
        ],
    );
    let home = root.path().join("carol");
    ok(bin()
        .args([
            "client",
            "--home",
            home.to_str().unwrap(),
            "--server",
            &url,
            "register",
            "carol",
        ])
        .output()
        .unwrap());
    let dave = root.path().join("dave");
    ok(bin()
        .args([
            "client",
            "--home",
            dave.to_str().unwrap(),
            "--server",
            &url,
            "register",
            "dave",
        ])
        .output()
        .unwrap());
    ok(bin()
        .args([
            "client",
            "--home",
            home.to_str().unwrap(),
            "--server",
            &url,
            "chat",
            "create",
            "solo",
            "--with",
            "dave",
        ])
        .output()
        .unwrap());
    let o = bin()
        .args([
            "client",
            "--home",
            home.to_str().unwrap(),
            "--server",
            &url,
            "send",
            "solo",
            "--image",
            image("q2821").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("allow-list"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    drop(srv);
    drop(enc);
}
