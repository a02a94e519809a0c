//! `scanlab evaluate --quick`, as CI runs it: the report's invariants, and the same seed giving
//! the same results.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn evaluate(out: &Path, extra: &[&str]) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_scanlab"))
        .args([
            "evaluate",
            "--quick",
            "--seed",
            "7",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap()
}

fn scheme<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["schemes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn quick_evaluation_holds_its_invariants_and_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = std::env::var_os("SCANLAB_VPDQ_REFERENCE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vpdq-reference")
        })
        .join("videos");
    let r = evaluate(
        &tmp.path().join("a"),
        &["--reference-videos", reference.to_str().unwrap()],
    );
    assert_eq!(r["schema"], "scanlab-evaluate/1");
    let registered = scanlab_schemes::registry();
    let names: Vec<&str> = r["schemes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        registered.names(),
        "every registered scheme, in order"
    );
    assert!(r["command"].as_str().unwrap().contains("evaluate"));

    // S0 discloses nothing: no extra bytes, nothing rebuilt, nothing exposed, no content link.
    let s0 = scheme(&r, "e2ee");
    assert_eq!(s0["extra_bytes_per_image"], 0.0);
    assert!(s0["reconstruction"].is_null());
    assert_eq!(s0["linkage"]["by_content"], 0.0);
    assert_eq!(s0["poisoning"]["either"], 0.0);
    for k in ["provider_plaintext", "provider_thumbnail", "provider_hash"] {
        assert_eq!(s0["exposure"][k], 0.0, "{k}");
    }
    // Devices keep only the scheme's parameters: none for S0, an attestation for S5.
    assert_eq!(s0["device_state_bytes"], 2, "S0's parameters are {{}}");
    assert!(
        scheme(&r, "enclave")["device_state_bytes"]
            .as_u64()
            .unwrap()
            > 200
    );
    // The padded blob size still links the leaked document's holders in every scheme (it
    // silently found no one when the blob format grew and the analysis kept the old overhead).
    for s in r["schemes"].as_array().unwrap() {
        assert!(
            s["linkage"]["by_size"].as_f64().unwrap() >= 0.9,
            "{}: {}",
            s["name"],
            s["linkage"]
        );
        // Every linkage figure carries what it cost: who was named, what share of them hold
        // the image, and the base rate of naming at random.
        let l = &s["linkage"];
        let f = |k: &str| l[k].as_f64().unwrap();
        let n = |k: &str| l[k].as_u64().unwrap() as f64;
        assert!(
            (f("base_rate") - n("holders") / n("users")).abs() < 1e-12,
            "{l}"
        );
        let p = f("precision_by_size");
        assert!(
            (p - (n("named_by_size") - n("wrong_by_size")) / n("named_by_size")).abs() < 1e-12,
            "{l}"
        );
        assert!(p <= 1.0 && n("named_by_size") <= n("users"));
    }
    // S5's provider holds a digest per capsule (the scan receipt), which is no image's hash:
    // nothing exposed, nothing rebuilt.
    let s5 = scheme(&r, "enclave");
    assert_eq!(s5["exposure"]["provider_hash"], 0.0);
    assert!(s5["reconstruction"].is_null(), "{}", s5["reconstruction"]);
    // S3: the provider links the leaked document's holders from hashes alone, naming no one else.
    let s3 = scheme(&r, "device-hash");
    assert!(s3["linkage"]["by_content"].as_f64().unwrap() >= 0.9);
    assert_eq!(s3["linkage"]["wrong_by_content"], 0);
    // It finds the holders of most images it might choose, not of one: every unlisted image
    // of the run is a target. S0's provider finds none.
    let chosen = &s3["chosen_images"];
    let targets = chosen["targets"].as_u64().unwrap();
    assert!(targets > 20, "{chosen}");
    assert!(
        chosen["found"].as_u64().unwrap() * 10 >= targets * 9,
        "{chosen}"
    );
    assert_eq!(s0["chosen_images"]["found"], 0);
    assert_eq!(s0["chosen_images"]["targets"], targets);
    // What it rebuilds from a hash is above what knowing nothing gives, over every unmatched
    // image, with an interval (unit tests in analysis.rs show a flat grey image or another
    // photo is not).
    let rec = &s3["reconstruction"];
    assert!(rec["above_null"].as_bool().unwrap(), "{rec}");
    assert!(
        rec["margin_over_null"]["ci95"][0].as_f64().unwrap() > 0.0,
        "{rec}"
    );
    assert!(rec["images"].as_u64().unwrap() >= 20, "{rec}");
    // S4's luma64 is a thumbnail.
    assert!(
        scheme(&r, "partial-hash")["reconstruction"]["ssim"]["mean"]
            .as_f64()
            .unwrap()
            > 0.9
    );
    // The list holds originals: the image as sent (resized, recompressed) still matches in
    // nearly every case for every matching scheme, and they agree on every edit.
    for name in [
        "server-side",
        "device-hash",
        "partial-hash",
        "enclave",
        "on-device",
    ] {
        let s = scheme(&r, name);
        assert!(s["recall_as_sent"].as_f64().unwrap() >= 0.85, "{name}");
        assert_eq!(s["recall"][0]["edit"], "as sent");
        assert_eq!(
            s["recall"], s3["recall"],
            "{name} flags exactly what S3 flags"
        );
    }
    // A list on the device: the plain form gives every user every hash and an offline
    // membership oracle, the filter form the oracle for exact copies only; a list kept at the
    // provider gives neither (the device must ask).
    let user = |name: &str| scheme(&r, name)["user_list"].clone();
    let u = |v: &Value, k: &str| v[k].as_u64().unwrap();
    let s6 = user("on-device");
    assert_eq!(u(&s6, "hashes_exposed"), u(&s6, "list_entries"), "{s6}");
    assert_eq!(u(&s6, "listed_known"), u(&s6, "listed_probed"), "{s6}");
    assert_eq!(u(&s6, "unlisted_known"), 0, "{s6}");
    assert!(s6["bytes_per_entry"].as_f64().unwrap() > 60.0, "{s6}");
    let s6f = user("on-device-filter");
    assert_eq!(u(&s6f, "hashes_exposed"), 0, "{s6f}");
    assert!(s6f["bytes_per_entry"].as_f64().unwrap() < 8.0, "{s6f}");
    assert!(u(&s6f, "listed_known") < u(&s6f, "listed_probed"), "{s6f}");
    for name in ["device-hash", "enclave"] {
        let k = user(name);
        assert_eq!(u(&k, "hashes_exposed"), 0, "{name}");
        assert_eq!(u(&k, "listed_known") + u(&k, "unlisted_known"), 0, "{name}");
        assert_eq!(
            u(&k, "asks_provider"),
            u(&k, "listed_probed") + u(&k, "unlisted_probed"),
            "{name}"
        );
    }
    // Accounts flagged, by list images sent: the rows account for every user; S0 flags no
    // one, S3 flags accounts, and no scheme flags one that sent no list image.
    let accounts = |name: &str| scheme(&r, name)["accounts_by_listed_sent"].clone();
    for name in ["e2ee", "device-hash"] {
        let rows = accounts(name);
        let rows = rows.as_array().unwrap();
        let sum: u64 = rows.iter().map(|x| u(x, "accounts")).sum();
        assert_eq!(
            sum,
            r["workload"]["users"].as_u64().unwrap(),
            "{name}: {rows:?}"
        );
        let flagged: u64 = rows.iter().map(|x| u(x, "flagged")).sum();
        assert_eq!(flagged == 0, name == "e2ee", "{name}: {rows:?}");
        for row in rows {
            assert!(u(row, "flagged") <= u(row, "accounts"), "{row}");
            if u(row, "listed_sent") == 0 {
                assert_eq!(u(row, "flagged"), 0, "{name}: {row}");
            }
        }
    }
    // The shape distinguisher. S0's provider has no record that names a send, so every guess
    // ties: exactly chance, the control. S7f's provider records which buckets opened, which
    // says how near a copy is to the list: the leak it must catch.
    let d = |name: &str| scheme(&r, name)["distinguisher"].clone();
    let s0 = d("e2ee");
    for q in ["listed", "near_duplicates", "distance"] {
        assert_eq!(s0[q]["accuracy"], 0.5, "{q}: {s0}");
        assert_eq!(s0[q]["ties"], s0[q]["guesses"], "{q}: {s0}");
    }
    assert!(
        s0["lookalike_rate"].is_null(),
        "one shape for every send: {s0}"
    );
    let s7f = d("private-match-fuzzy");
    let lower = |q: &str| s7f[q]["ci95"][0].as_f64().unwrap_or(0.0);
    assert!(
        lower("near_duplicates").max(lower("distance")) > 0.5,
        "{s7f}"
    );
    // S9: recipients report list images; each of the chat's three other members reports with
    // probability p, independently, so a send reaches review with probability 1 - (1 - p)^3:
    // the known answer the curve's intervals must hold. A scheme without reporting has none.
    let curve = scheme(&r, "user-report")["report_curve"].clone();
    assert_eq!(curve.as_array().unwrap().len(), 5, "{curve}");
    for p in curve.as_array().unwrap() {
        let rate = p["rate"].as_f64().unwrap();
        let want = 1.0 - (1.0 - rate).powi(3);
        let (k, n) = (
            p["reviewed"].as_f64().unwrap(),
            p["sends"].as_f64().unwrap(),
        );
        // Within 3.29 standard errors (99.9%: five rates, and any seed or corpus, must pass).
        let tol = 3.29 * (want * (1.0 - want) / n).sqrt() + 1.0 / n;
        assert!(
            (k / n - want).abs() <= tol,
            "rate {rate}: {k}/{n} against {want}"
        );
    }
    assert_eq!(scheme(&r, "e2ee")["report_curve"], serde_json::json!([]));
    let on_device = scheme(&r, "on-device");
    assert_eq!(
        on_device["extra_bytes_per_image"], on_device["disclosed_bytes_per_image"],
        "S6 sends nothing per image but its disclosures"
    );
    // The escrow key opens everything; the enclave key opens everything sent to it.
    assert_eq!(
        scheme(&r, "exceptional-access")["exposure"]["stolen_key"]["escrow authority"],
        1.0
    );
    assert_eq!(
        scheme(&r, "enclave")["exposure"]["stolen_key"]["enclave"],
        1.0
    );
    // Without the key, neither opens anything.
    for name in ["exceptional-access", "enclave"] {
        assert_eq!(
            scheme(&r, name)["exposure"]["provider_plaintext"],
            0.0,
            "{name}"
        );
    }
    // Each party beside the provider, on its own view with its own key: the enclave holds every
    // innocent image, S8's organisation every innocent hash and no image, and the provider of
    // S8 none of either. A scheme with no other party has no such row.
    let own = |name: &str, party: &str| scheme(&r, name)["exposure"]["parties"][party].clone();
    assert_eq!(own("enclave", "enclave")["plaintext"], 1.0);
    let org = own("third-party", "third party");
    assert_eq!(
        (org["hash"].as_f64(), org["plaintext"].as_f64()),
        (Some(1.0), Some(0.0))
    );
    let s8 = &scheme(&r, "third-party")["exposure"];
    assert_eq!(
        (
            s8["provider_hash"].as_f64(),
            s8["provider_plaintext"].as_f64()
        ),
        (Some(0.0), Some(0.0))
    );
    assert_eq!(
        scheme(&r, "device-hash")["exposure"]["parties"],
        serde_json::json!({})
    );
    // Non-compliant senders. A device-side scheme catches an honest sender's list images and
    // none from a client that skips its scan or scans a decoy; the provider sees the skip (no
    // scan request) but not the decoy; only S5's recipient re-checks and refuses both. S1
    // decrypts the real attachment itself, so a decoy changes nothing there, and S6 receives
    // nothing per image, so it cannot see a skip.
    let nc = r["noncompliant"]["rows"].as_array().unwrap();
    let row = |code: &str, client: &str| {
        nc.iter()
            .find(|x| x["scheme"] == code && x["client"] == client)
            .unwrap_or_else(|| panic!("{code} {client}"))
            .clone()
    };
    for code in ["S3", "S4", "S5", "S8", "S8m"] {
        let honest = row(code, "honest");
        assert_eq!(honest["reached_review"], honest["sent"], "{code}");
        for client in ["skips the scan", "scans a decoy", "scans noise"] {
            assert_eq!(row(code, client)["reached_review"], 0, "{code} {client}");
        }
        assert_eq!(
            row(code, "scans noise")["visible_to_provider"],
            false,
            "{code}"
        );
        assert_eq!(
            row(code, "skips the scan")["visible_to_provider"],
            true,
            "{code}"
        );
        assert_eq!(
            row(code, "scans a decoy")["visible_to_provider"],
            false,
            "{code}"
        );
    }
    for client in ["scans a decoy", "scans noise"] {
        assert_eq!(
            row("S5", client)["refused_by_recipient"],
            row("S5", client)["sent"],
            "{client}"
        );
    }
    assert_eq!(row("S3", "scans a decoy")["refused_by_recipient"], 0);
    assert_eq!(
        row("S1", "scans a decoy")["reached_review"],
        row("S1", "honest")["sent"]
    );
    assert_eq!(row("S6", "skips the scan")["visible_to_provider"], false);
    assert_eq!(
        row("S6", "honest")["reached_review"],
        row("S6", "honest")["sent"]
    );
    // Attacks on the hash: every attack succeeds on most list images within its budget and in
    // at most 5 s each; the white-box evading copies keep the picture (median PSNR above
    // 40 dB). No scheme catches an evading copy, though S3 catches every list image as sent.
    let adv = &r["adversary"];
    for a in adv["attacks"].as_array().unwrap() {
        let (k, n) = (
            a["succeeded"].as_u64().unwrap(),
            a["attempted"].as_u64().unwrap(),
        );
        assert!(n >= 8 && 4 * k >= 3 * n, "{a}");
        assert!(a["max_seconds"].as_f64().unwrap() < 5.0, "{a}");
    }
    assert!(adv["attacks"][0]["median_psnr"].as_f64().unwrap() > 40.0);
    for e in adv["evaded"].as_array().unwrap() {
        assert_eq!(e["white_reviewed"], 0, "{e}");
    }
    let framed = |key: &str, code: &str| {
        adv[key]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["scheme"] == code)
            .unwrap_or_else(|| panic!("{key} {code}"))["victim_reviewed"]
            .as_u64()
            .unwrap()
    };
    // A near collision frames the victim under radius matching (S3), an exact one is needed
    // under exact matching (S7), and S7's threshold stops one exact collision but not all.
    assert!(framed("framing_one", "S3") == 1 && framed("framing_one", "S7") == 0);
    assert_eq!(framed("exact_one", "S7"), 0);
    assert!(framed("exact_all", "S7") > 0);
    assert_eq!(framed("framing_all", "S0"), 0);
    let poisoned = |code: &str| {
        adv["poisoning"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["scheme"] == code && x["reached_review"] == true)
    };
    assert!(poisoned("S3") && !poisoned("S0"));
    for f in ["0-original.png", "0-evade-white.png", "0-collide.png"] {
        assert!(tmp.path().join("a/attacks").join(f).exists(), "{f}");
    }
    // Packaging: no scheme finds a list image inside a zip, encrypted or split; S3 refuses
    // every file (lawful ones too), S0 lets them all through, S5's enclave still finds the
    // JPEG typed as a file.
    let pk = r["packaging"]["rows"].as_array().unwrap();
    let way = |code: &str, w: &str| {
        pk.iter()
            .find(|x| x["scheme"] == code && x["way"] == w)
            .unwrap_or_else(|| panic!("{code} {w}"))
            .clone()
    };
    for x in pk {
        if ["inside a zip", "pre-encrypted", "split in three"].contains(&x["way"].as_str().unwrap())
        {
            assert_eq!(x["reached_review"], 0, "{x}");
        }
    }
    assert_eq!(way("S3", "as an image")["reached_review"], 8);
    assert_eq!(way("S3", "as a generic file")["sent"], 0);
    assert_eq!(way("S0", "pre-encrypted")["received"], 8);
    assert_eq!(way("S5", "as a generic file")["reached_review"], 8);
    // Video: the clips as made match themselves at the hash, no background clip matches, and
    // every scheme that applies the vPDQ rule to the same list flags through the messenger
    // exactly what the index finds, edit by edit. (Schemes pool the list's frames, the index
    // counts per listed video; they can differ on a montage of listed clips, which this
    // workload does not hold, so here they must agree.)
    let v = &r["video"];
    assert_eq!(v["listed_clips"], 4);
    assert_eq!(v["edited_clips"], 32);
    let hr = v["hash_recall"].as_array().unwrap();
    assert_eq!(hr[0]["edit"], "as made");
    assert_eq!(hr[0]["matched"], hr[0]["clips"]);
    assert_eq!(v["false_positives"]["matched"], 0);
    let at_hash = |edit: &str| {
        hr.iter()
            .find(|e| e["edit"] == edit)
            .unwrap_or_else(|| panic!("{edit}"))["matched"]
            .clone()
    };
    let vs = v["schemes"].as_array().unwrap();
    let vrow = |code: &str| vs.iter().find(|x| x["scheme"] == code).unwrap().clone();
    for code in ["S1", "S3", "S4", "S5", "S6", "S8", "S8m"] {
        let x = vrow(code);
        assert_eq!(x["listed_reached"], 4, "{code}");
        assert_eq!(x["background_reached"], 0, "{code}");
        assert_eq!(x["send_errors"], 0, "{code}");
        for e in x["edited"].as_array().unwrap() {
            assert_eq!(e[2], at_hash(e[0].as_str().unwrap()), "{code} {e}");
        }
    }
    for code in ["S0", "S2", "S9"] {
        let x = vrow(code);
        assert_eq!(x["listed_reached"], 0, "{code}");
        assert_eq!(x["requests_per_video"], 0.0, "{code}");
    }
    // One request per clip where the provider or enclave hashes it, one per counted frame
    // where the device sends hashes.
    assert_eq!(vrow("S1")["requests_per_video"], 1.0);
    assert!(vrow("S3")["requests_per_video"].as_f64().unwrap() > 1.5);
    assert_eq!(
        vrow("S3")["requests_per_video"],
        vrow("S8")["requests_per_video"]
    );
    // Meta's sample videos: every listed original finds itself, and nothing matches across
    // families.
    let refs = v["reference"].as_array().unwrap();
    assert!(refs.len() >= 10, "the sample videos were read");
    for x in refs {
        if x["role"] == "listed" {
            assert_eq!(x["matched_own"], true, "{x}");
        }
        assert!(x["matched_other"].as_array().unwrap().is_empty(), "{x}");
    }
    // Poisoning is caught only when targeted.
    assert_eq!(r["audit"]["targeted_split_view_detected"], true);
    assert_eq!(r["audit"]["global_with_vouchers_detected"], false);
    assert_eq!(r["audit"]["hidden_entry_detected_by_monitor"], true);
    assert_eq!(r["audit"]["control_passes"], true);
    // A malicious provider: no scheme's client follows a downgrade or a forged disclose; the
    // logged ghost reads everything and is found by monitoring and safety numbers.
    let rows = r["provider_attacks"]["rows"].as_array().unwrap();
    assert!(rows.len() >= 3 * 6 + 2, "{rows:?}");
    for row in rows {
        let a = row["attack"].as_str().unwrap();
        match a {
            "ghost user, logged" => assert_eq!(row["succeeded"], true, "{row}"),
            _ => assert_eq!(row["succeeded"], false, "{row}"),
        }
        if a == "downgrade" {
            assert_eq!(row["detected_by"], "scheme pin", "{row}");
        }
    }
    let g = &r["provider_attacks"]["ghost"];
    assert_eq!(g["read"], g["sent"]);
    assert_eq!(g["found_by_monitoring"], true);
    assert_eq!(g["found_by_safety_numbers"], true);
    assert_eq!(g["unlogged_refused"], true);
    // The enclave's assumptions, read from the enclave's own view: the honest one opens
    // every image (its job) and forwards none; a rogue build is refused until the provider
    // allow-lists it, or a stolen vendor key vouches for it; then it gets every image, and
    // sends the ones on its list to review.
    let tr = r["enclave_trust"]["rows"].as_array().unwrap();
    assert_eq!(tr.len(), 4);
    let n = tr[0]["images"].clone();
    assert_eq!(tr[0]["opened_by_enclave"], n);
    assert_eq!(tr[0]["reached_review"], 0);
    assert_eq!(tr[1]["accepted"], false);
    assert_eq!(tr[1]["sent"], 0);
    assert!(tr[1]["refused_by"].as_str().unwrap().contains("allow-list"));
    for row in &tr[2..] {
        assert_eq!(row["accepted"], true, "{row}");
        assert_eq!(row["opened_by_enclave"], n, "{row}");
        assert_eq!(row["reached_review"], n, "{row}");
    }
    // Unrelated photos sit near 128 bits apart.
    let mean = r["false_positives"]["mean"].as_f64().unwrap();
    assert!((100.0..150.0).contains(&mean), "{mean}");
    // The report exists and carries the matrix, the plots and the gallery.
    let html = std::fs::read_to_string(tmp.path().join("a/report.html")).unwrap();
    assert!(html.contains("Assessment matrix") && html.contains("<svg"));
    assert!(html.matches("data:image/png;base64").count() >= 7);
    // Every source the report cites is in the repository (docs/sources.md), not in a notes
    // folder a reader does not have.
    assert!(!html.contains("literature.md"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert!(html.contains("docs/sources.md"));
    assert!(root.join("docs/sources.md").exists());
    for f in [
        "recall.csv",
        "matrix.csv",
        "fp_histogram.csv",
        "comparison.csv",
        "roc.csv",
    ] {
        assert!(tmp.path().join("a").join(f).exists(), "{f}");
    }
    // `scanlab demo --results` reads this matrix: a column per scheme run, a cell per row.
    let m = scanlab_demo::Matrix::read(&tmp.path().join("a")).unwrap();
    for s in r["schemes"].as_array().unwrap() {
        let col = m.column(s["code"].as_str().unwrap()).expect("a column");
        assert_eq!(col.len(), m.rows.len());
        assert!(
            col[0].0.starts_with("Recall") && !col[0].1.is_empty(),
            "{col:?}"
        );
    }
    assert!(m.column("S99").is_none());
    // Every workload parameter is in results.json.
    for k in [
        "forward_p",
        "cascade_hops",
        "recompress_p",
        "recompress_quality",
        "edit_quality",
        "chats_per_user",
        "list_holds",
    ] {
        assert!(!r["workload"][k].is_null(), "{k}");
    }
    // PDQ beside the 64-bit hashes, each at its own radius, with the trade-off across radii:
    // the curve at the usual radius is the table's figures, and at half the bits about half
    // the unrelated pairs are within it.
    let hashes = r["comparison"]["hashes"].as_array().unwrap();
    let names: Vec<&str> = hashes.iter().map(|h| h["hash"].as_str().unwrap()).collect();
    assert_eq!(names, ["pdq", "phash", "dhash", "ahash"]);
    for h in hashes {
        let roc = h["roc"].as_array().unwrap();
        assert_eq!(roc.len() as u64, h["bits"].as_u64().unwrap() / 2 + 1);
        let at = &roc[h["radius"].as_u64().unwrap() as usize];
        assert_eq!(at["recall"], h["recall_edited"], "{}", h["hash"]);
        let fp = h["pairs_within"].as_f64().unwrap() / h["pairs"].as_f64().unwrap();
        assert!(
            (at["fp_rate"].as_f64().unwrap() - fp).abs() < 1e-12,
            "{}",
            h["hash"]
        );
        let half = roc.last().unwrap()["fp_rate"].as_f64().unwrap();
        assert!((0.3..0.9).contains(&half), "{}: {half}", h["hash"]);
        assert_eq!(h["recall"][0]["edit"], "as sent");
    }
    // The recall PDQ shows outside the messenger is what the schemes flagged through it.
    let pdq_edited = hashes[0]["recall_edited"].as_f64().unwrap();
    assert!((pdq_edited - s3["recall_edited"].as_f64().unwrap()).abs() < 0.02);

    // results.json is documented by schema/results.schema.json, which the types generate, and
    // validates against it; a canary with a field of the wrong type or missing must not.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/results.schema.json");
    let schema: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        schema,
        scanlab_eval::results_schema(),
        "schema/results.schema.json is out of date: run `scanlab evaluate --print-schema > schema/results.schema.json`"
    );
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&r).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let mut wrong = r.clone();
    wrong["schemes"][0]["recall"][0]["sent"] = "eight".into();
    assert!(
        !validator.is_valid(&wrong),
        "a string where a count belongs"
    );
    let mut missing = r.clone();
    missing["workload"]
        .as_object_mut()
        .unwrap()
        .remove("forward_p");
    assert!(
        !validator.is_valid(&missing),
        "a workload parameter missing"
    );

    // Same seed, a subset of schemes: the same figures for them.
    let again = evaluate(&tmp.path().join("b"), &["--schemes", "e2ee,device-hash"]);
    for name in ["e2ee", "device-hash"] {
        assert_eq!(
            scheme(&again, name),
            scheme(&r, name),
            "{name} is deterministic"
        );
    }
    for k in ["false_positives", "audit", "workload"] {
        assert_eq!(again[k], r[k], "{k} is deterministic");
    }
    for k in ["hash_recall", "false_positives", "bitrates_kbps"] {
        assert_eq!(
            again["video"][k], r["video"][k],
            "video {k} is deterministic"
        );
    }
    // The attacks are seeded: the same figures, timings aside.
    let strip = |v: &Value| {
        let mut v = v["adversary"]["attacks"].clone();
        for a in v.as_array_mut().unwrap() {
            a.as_object_mut().unwrap().remove("max_seconds");
        }
        v
    };
    assert_eq!(strip(&again), strip(&r), "attacks are deterministic");
}
