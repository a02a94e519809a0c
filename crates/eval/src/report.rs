//! The outputs: `results.json` (versioned schema), CSVs, and a self-contained `report.html`
//! with SVG plots and the provider's-eye gallery.

use crate::{EvalError, Results, io};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn csv_writer(path: &Path) -> Result<csv::Writer<std::fs::File>, EvalError> {
    csv::Writer::from_path(path).map_err(io)
}

/// A linkage figure as a reader needs it: how many holders were found, how many users were
/// named to find them, what share of those named hold the image, and what naming users at
/// random would give.
fn linkage_cell(recall: f64, named: usize, precision: Option<f64>, base: f64) -> String {
    match precision {
        None => format!("{}, names no one", pct(recall)),
        Some(p) => format!(
            "{}, precision {} of {named} named (random: {})",
            pct(recall),
            pct(p),
            pct(base)
        ),
    }
}

fn reconstruction_cell(c: &crate::analysis::Reconstruction) -> String {
    let m = c.margin_over_null;
    format!(
        "SSIM {:.2} ({:.2}–{:.2}); nulls {:.2} (mean of other photos), {:.2} (another photo's rebuild); \
margin over the better null per image {:+.3} ({:+.3} – {:+.3}): {}; PSNR {:.1} dB; n = {} ({})",
        c.ssim.mean,
        c.ssim.ci95[0],
        c.ssim.ci95[1],
        c.null_mean_image.mean,
        c.null_other_photo.mean,
        m.mean,
        m.ci95[0],
        m.ci95[1],
        if c.above_null {
            "above the null"
        } else if c.images < crate::analysis::MIN_RECONSTRUCTIONS {
            "too few images to say"
        } else {
            "not above the null"
        },
        c.psnr.mean,
        c.images,
        c.method
    )
}

fn chosen_cell(c: &crate::analysis::ChosenImages) -> String {
    if c.found == 0 {
        return format!("none of {} (0–{:.0}%)", c.targets, 100.0 * c.found_ci95[1]);
    }
    format!(
        "{} of {} ({:.0}–{:.0}%), recall {}, precision {}",
        c.found,
        c.targets,
        100.0 * c.found_ci95[0],
        100.0 * c.found_ci95[1],
        pct(c.mean_recall),
        c.mean_precision.map_or("—".into(), pct)
    )
}

fn guess_cell(g: Option<&crate::distinguish::Guess>) -> String {
    match g {
        None => "too few undisclosed sends".into(),
        Some(g) => format!(
            "{} ({}–{}), {} per class{}",
            pct(g.accuracy),
            pct(g.ci95[0]),
            pct(g.ci95[1]),
            g.per_class,
            match g.ties {
                0 => String::new(),
                t if t == g.guesses =>
                    ", every score tied (no records tell the sends apart)".into(),
                t => format!(", {t} ties"),
            }
        ),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Writes `results.json`, `recall.csv`, `comparison.csv`, `roc.csv`, `matrix.csv`,
/// `fp_histogram.csv` and `report.html`.
pub fn write(r: &Results, out: &Path) -> Result<(), EvalError> {
    std::fs::create_dir_all(out).map_err(io)?;
    let json = serde_json::to_string_pretty(r).map_err(io)?;
    std::fs::write(out.join("results.json"), json + "\n").map_err(io)?;

    // Every CSV through the csv crate: fields with commas or quotes are quoted, so Python's
    // csv module and pandas read back exactly what was written.
    let mut w = csv_writer(&out.join("recall.csv"))?;
    w.write_record([
        "scheme",
        "edit",
        "strength",
        "sent",
        "flagged",
        "recall",
        "ci95_low",
        "ci95_high",
    ])
    .map_err(io)?;
    for s in &r.schemes {
        for p in &s.recall {
            w.write_record([
                s.name.clone(),
                p.edit.to_string(),
                p.strength.to_string(),
                p.sent.to_string(),
                p.flagged.to_string(),
                format!("{:.4}", p.recall),
                format!("{:.4}", p.ci95[0]),
                format!("{:.4}", p.ci95[1]),
            ])
            .map_err(io)?;
        }
    }
    w.flush().map_err(io)?;
    write_attack_images(r, out)?;
    let mut w = csv_writer(&out.join("fp_histogram.csv"))?;
    w.write_record(["distance", "pairs"]).map_err(io)?;
    for (d, c) in r.false_positives.histogram.iter().enumerate() {
        w.write_record([d.to_string(), c.to_string()]).map_err(io)?;
    }
    w.flush().map_err(io)?;
    let mut w = csv_writer(&out.join("comparison.csv"))?;
    w.write_record([
        "hash",
        "bits",
        "radius",
        "edit",
        "strength",
        "copies",
        "matched",
        "recall",
        "ci95_low",
        "ci95_high",
    ])
    .map_err(io)?;
    for f in &r.comparison.hashes {
        for x in &f.recall {
            w.write_record([
                f.hash.clone(),
                f.bits.to_string(),
                f.radius.to_string(),
                x.edit.clone(),
                x.strength.to_string(),
                x.copies.to_string(),
                x.matched.to_string(),
                format!("{:.4}", x.matched as f64 / x.copies.max(1) as f64),
                format!("{:.4}", x.ci95[0]),
                format!("{:.4}", x.ci95[1]),
            ])
            .map_err(io)?;
        }
    }
    w.flush().map_err(io)?;
    let mut w = csv_writer(&out.join("roc.csv"))?;
    w.write_record(["hash", "radius", "recall", "fp_rate"])
        .map_err(io)?;
    for f in &r.comparison.hashes {
        for p in &f.roc {
            w.write_record([
                f.hash.clone(),
                p.radius.to_string(),
                format!("{:.6}", p.recall),
                format!("{:e}", p.fp_rate),
            ])
            .map_err(io)?;
        }
    }
    w.flush().map_err(io)?;
    let mut w = csv_writer(&out.join("video.csv"))?;
    w.write_record(["scheme", "clips", "sent", "reached_review"])
        .map_err(io)?;
    for x in &r.video.schemes {
        let mut groups = vec![
            (
                "listed as made".to_string(),
                x.listed_sent,
                x.listed_reached,
            ),
            (
                "background".to_string(),
                x.background_sent,
                x.background_reached,
            ),
        ];
        groups.extend(x.edited.iter().cloned());
        for (clips, sent, reached) in groups {
            w.write_record([
                x.scheme.clone(),
                clips,
                sent.to_string(),
                reached.to_string(),
            ])
            .map_err(io)?;
        }
    }
    w.flush().map_err(io)?;
    // Costs are per scheme, averaged over every clip it sent.
    let mut w = csv_writer(&out.join("video_cost.csv"))?;
    w.write_record([
        "scheme",
        "clips",
        "requests_per_video",
        "scan_bytes_per_video",
        "blob_bytes_per_video",
        "ms_per_video",
    ])
    .map_err(io)?;
    for x in &r.video.schemes {
        let clips = x.listed_sent + x.background_sent + x.edited.iter().map(|e| e.1).sum::<usize>();
        w.write_record([
            x.scheme.clone(),
            clips.to_string(),
            format!("{:.3}", x.requests_per_video),
            format!("{:.1}", x.scan_bytes_per_video),
            format!("{:.1}", x.blob_bytes_per_video),
            format!("{:.2}", x.ms_per_video),
        ])
        .map_err(io)?;
    }
    w.flush().map_err(io)?;
    let m = matrix(r);
    let mut w = csv_writer(&out.join("matrix.csv"))?;
    let mut header = vec!["criterion".to_string()];
    header.extend(r.schemes.iter().map(|s| format!("{} {}", s.code, s.name)));
    w.write_record(&header).map_err(io)?;
    for (name, cells) in &m {
        let mut row = vec![name.clone()];
        row.extend(cells.iter().cloned());
        w.write_record(&row).map_err(io)?;
    }
    w.flush().map_err(io)?;
    std::fs::write(out.join("report.html"), html(r, &m)?).map_err(io)?;
    Ok(())
}

/// The assessment matrix: criterion → one cell per scheme.
pub fn matrix(r: &Results) -> Vec<(String, Vec<String>)> {
    let t = |f: &dyn Fn(&crate::analysis::SchemeMeasures) -> String| -> Vec<String> {
        r.schemes.iter().map(f).collect()
    };
    let timing = |f: &dyn Fn(&crate::Timing) -> f64| -> Vec<String> {
        r.schemes
            .iter()
            .map(|s| {
                r.timings
                    .schemes
                    .iter()
                    .find(|t| t.scheme == s.name)
                    .map(|t| match f(t) {
                        v if v.is_finite() => format!("{v:.2}"),
                        _ => "no scheme work".into(),
                    })
                    .unwrap_or_default()
            })
            .collect()
    };
    let mut rows: Vec<(String, Vec<String>)> = vec![
        ("Recall, list images as sent (the list holds the originals)".into(), t(&|s| pct(s.recall_as_sent))),
        ("Recall, edited copies (mean over all edits)".into(), t(&|s| pct(s.recall_edited))),
        ("Evasion by ordinary edits (1 − recall)".into(), t(&|s| pct(1.0 - s.recall_edited))),
        ("Unlisted images flagged in the run".into(), t(&|s| format!("{} / {}", s.background_flagged, s.background_sent))),
        ("Extra bytes to the provider per image".into(), t(&|s| format!("{:.0}", s.extra_bytes_per_image))),
        ("… of which disclosed plaintext".into(), t(&|s| format!("{:.0}", s.disclosed_bytes_per_image))),
        ("Reconstruction of unmatched images: SSIM against the image as sent at 64×64 (95% interval), beside two nulls".into(), t(&|s| s.reconstruction.as_ref().map_or("nothing to rebuild from".into(), reconstruction_cell))),
        ("Leaked-document holders identified with no list entry, by content: recall, precision of those named (naming at random)".into(), t(&|s| linkage_cell(s.linkage.by_content, s.linkage.named_by_content, s.linkage.precision_by_content, s.linkage.base_rate))),
        ("… by padded blob size".into(), t(&|s| linkage_cell(s.linkage.by_size, s.linkage.named_by_size, s.linkage.precision_by_size, s.linkage.base_rate))),
        ("Provider finds holders of unlisted images it chooses, from its records: images found (95% interval), mean recall, mean precision".into(), t(&|s| chosen_cell(&s.chosen_images))),
        ("Poster holders identified once it is listed".into(), t(&|s| pct(s.poisoning.either))),
        ("Provider's data exposes: plaintext / thumbnail / hash".into(), t(&|s| format!("{} / {} / {}", pct(s.exposure.provider_plaintext), pct(s.exposure.provider_thumbnail), pct(s.exposure.provider_hash)))),
    ];
    // One row per kind of key some party holds, named by its holder.
    let holders: std::collections::BTreeSet<&String> = r
        .schemes
        .iter()
        .flat_map(|s| s.exposure.stolen_key.keys())
        .collect();
    for h in holders {
        rows.push((
            format!("Stolen or compelled key of the {h} opens from the provider's data (innocent images): plaintext / hash"),
            t(&|s| {
                let e = &s.exposure;
                match (e.stolen_key.get(h), e.stolen_key_hash.get(h)) {
                    (Some(&p), Some(&k)) => format!("{} / {}", pct(p), pct(k)),
                    _ => "— (no such key)".into(),
                }
            }),
        ));
    }
    // One row per party beside the provider, read from its own view with its own keys.
    let parties: std::collections::BTreeSet<&String> = r
        .schemes
        .iter()
        .flat_map(|s| s.exposure.parties.keys())
        .collect();
    for p in parties {
        rows.push((
            format!("The {p}'s own view holds (innocent images): plaintext / thumbnail / hash"),
            t(&|s| {
                s.exposure
                    .parties
                    .get(p)
                    .map_or("— (no such party)".into(), |e| {
                        format!(
                            "{} / {} / {}",
                            pct(e.plaintext),
                            pct(e.thumbnail),
                            pct(e.hash)
                        )
                    })
            }),
        ));
    }
    let coalitions: std::collections::BTreeSet<&String> = r
        .schemes
        .iter()
        .flat_map(|s| s.exposure.coalitions.keys())
        .collect();
    for c in coalitions {
        rows.push((
            format!("Coalition {c}, views and keys together (innocent images): plaintext / thumbnail / hash"),
            t(&|s| {
                s.exposure.coalitions.get(c).map_or("— (no such coalition)".into(), |e| {
                    format!("{} / {} / {}", pct(e.plaintext), pct(e.thumbnail), pct(e.hash))
                })
            }),
        ));
    }
    // Each scheme against a non-compliant sender, one row per kind of client.
    for client in ["skips the scan", "scans a decoy", "scans noise"] {
        rows.push((
            format!("Sender's client {client}: list images reaching review; refused by the honest recipient; visible to the provider by its count of scheme requests"),
            t(&|s| {
                r.noncompliant
                    .rows
                    .iter()
                    .find(|x| x.scheme == s.code && x.client == client)
                    .map_or("— (not run)".into(), |x| {
                        format!(
                            "{} of {}; {} refused; {}",
                            x.reached_review,
                            x.sent,
                            x.refused_by_recipient,
                            if x.visible_to_provider { "visible" } else { "not visible" }
                        )
                    })
            }),
        ));
    }
    // Attacks on the hash, sent through each scheme.
    let adv = &r.adversary;
    for (k, label) in [(0usize, "white-box"), (1, "black-box")] {
        let Some(a) = adv.attacks.get(k) else {
            continue;
        };
        rows.push((
            format!(
                "Evasion under attack, {label} ({} budget: {} {}; beyond r = {} for {} of {}, median PSNR {}): attacked list images reaching review",
                a.budget,
                a.budget_units,
                if k == 0 { "hashes" } else { "oracle queries" },
                adv.radius,
                a.succeeded,
                a.attempted,
                a.median_psnr.map_or("—".into(), |p| format!("{p:.1} dB"))
            ),
            t(&|s| {
                adv.evaded.iter().find(|x| x.scheme == s.code).map_or("— (not run)".into(), |x| {
                    let (m, n) = if k == 0 { (x.white_reviewed, x.white_sent) } else { (x.black_reviewed, x.black_sent) };
                    format!("{m} of {n}")
                })
            }),
        ));
    }
    for (label, framing) in [
        ("one colliding image", &adv.framing_one),
        ("every colliding image", &adv.framing_all),
        ("one exactly colliding image", &adv.exact_one),
        ("every exactly colliding image", &adv.exact_all),
    ] {
        rows.push((
            format!("Framing by collision, {label} sent to a victim who forwards it: victim's forwards reaching review; attacker's sends reaching review"),
            t(&|s| {
                framing.iter().find(|x| x.scheme == s.code).map_or("— (not run)".into(), |x| {
                    format!("{} of {}; {} of {}", x.victim_reviewed, x.forwarded, x.attacker_reviewed, x.sent)
                })
            }),
        ));
    }
    rows.push((
        "Poisoning by collision (the poster made to collide with a vouched list entry, no list change): the poster reaches review".into(),
        t(&|s| {
            adv.poisoning.iter().find(|x| x.scheme == s.code).map_or("— (not run)".into(), |x| {
                if x.reached_review { "yes".into() } else { "no".into() }
            })
        }),
    ));
    // The list images packaged: what reaches review, and what the sender's client refuses.
    rows.push((
        "Recall under packaging, list images sent as an image / a generic file / inside a zip / pre-encrypted / split in three: attachments reaching review (sends the client refused)".into(),
        t(&|s| {
            let cells: Vec<String> = crate::packaging::Way::ALL
                .iter()
                .filter_map(|w| {
                    r.packaging
                        .rows
                        .iter()
                        .find(|x| x.scheme == s.code && x.way == w.label())
                })
                .map(|x| format!("{} ({} refused)", x.reached_review, x.images - x.sent))
                .collect();
            if cells.is_empty() { "— (not run)".into() } else { cells.join(" / ") }
        }),
    ));
    // Video: the clip workload through every scheme.
    let vrow =
        |s: &crate::analysis::SchemeMeasures| r.video.schemes.iter().find(|x| x.scheme == s.code);
    rows.push((
        "Video recall: listed clips as made reaching review / edited copies reaching review (a clip counts when it, or a thumbnail of one of its frames, reached the queue)".into(),
        t(&|s| {
            vrow(s).map_or("— (not run)".into(), |x| {
                let (sent, got) = x.edited.iter().fold((0, 0), |(a, b), e| (a + e.1, b + e.2));
                format!("{} of {} / {} of {}", x.listed_reached, x.listed_sent, got, sent)
            })
        }),
    ));
    rows.push((
        "Video false positives: background clips reaching review".into(),
        t(&|s| {
            vrow(s).map_or("— (not run)".into(), |x| {
                format!("{} of {}", x.background_reached, x.background_sent)
            })
        }),
    ));
    rows.push((
        "Video cost per clip: scan requests; bytes the provider received for scanning; padded blob bytes".into(),
        t(&|s| {
            vrow(s).map_or("— (not run)".into(), |x| {
                format!(
                    "{:.1}; {:.0} B; {:.0} B",
                    x.requests_per_video, x.scan_bytes_per_video, x.blob_bytes_per_video
                )
            })
        }),
    ));
    // The enclave's assumptions, one row per scenario, filled for the scheme they were run on.
    if let Some(tr) = &r.enclave_trust {
        for row in &tr.rows {
            rows.push((
                format!("Enclave trust, {}: clients accept; images the enclave opens; unlisted images reaching review", row.scenario),
                t(&|s| {
                    if s.code != tr.scheme {
                        return "— (no enclave)".into();
                    }
                    if !row.accepted {
                        return format!("refused by clients ({} images sent)", row.sent);
                    }
                    format!(
                        "accepted; opens {} of {}; {} of {} reach review",
                        row.opened_by_enclave, row.sent, row.reached_review, row.sent
                    )
                }),
            ));
        }
    }
    rows.extend([
        (
            "Scheme state on the device, bytes (a list there would count)".into(),
            t(&|s| s.device_state_bytes.to_string()),
        ),
        (
            "List images reaching review through recipients' verified reports, by reporting rate (95% interval)".into(),
            t(&|s| {
                if s.report_curve.is_empty() {
                    return "— (no reporting)".into();
                }
                s.report_curve
                    .iter()
                    .map(|p| {
                        format!(
                            "p={}: {}/{} ({}–{})",
                            p.rate,
                            p.reviewed,
                            p.sends,
                            pct(p.ci95[0]),
                            pct(p.ci95[1])
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" · ")
            }),
        ),
        (
            "Accounts flagged, by list images they sent (k: flagged / accounts)".into(),
            t(&|s| {
                s.accounts_by_listed_sent
                    .iter()
                    .map(|r| format!("{}: {}/{}", r.listed_sent, r.flagged, r.accounts))
                    .collect::<Vec<_>>()
                    .join(" · ")
            }),
        ),
        (
            "… growth per list entry, bytes (an update re-sends it all)".into(),
            t(&|s| format!("{:.1}", s.user_list.bytes_per_entry)),
        ),
        (
            "A user reads list hashes from their device: entries exposed (95% interval); listed images rebuilt from them".into(),
            t(&|s| {
                let u = &s.user_list;
                let rebuilt = u
                    .reconstruction
                    .as_ref()
                    .map_or("nothing to rebuild".into(), reconstruction_cell);
                format!(
                    "{} of {} ({}–{}); {rebuilt}",
                    u.hashes_exposed,
                    u.list_entries,
                    pct(u.exposed_ci95[0]),
                    pct(u.exposed_ci95[1])
                )
            }),
        ),
        (
            "Offline membership oracle, one query per image: listed known / unlisted called listed / must ask the provider; accuracy (95% interval) against the base rate".into(),
            t(&|s| {
                let u = &s.user_list;
                format!(
                    "{}/{} · {}/{} · {}; {} ({}–{}) vs {}",
                    u.listed_known,
                    u.listed_probed,
                    u.unlisted_known,
                    u.unlisted_probed,
                    u.asks_provider,
                    pct(u.oracle_accuracy),
                    pct(u.oracle_ci95[0]),
                    pct(u.oracle_ci95[1]),
                    pct(u.oracle_base_rate)
                )
            }),
        ),
        (
            "Provider guesses from the shape of its records, undisclosed sends, chance 50%: list images as sent vs unlisted".into(),
            t(&|s| guess_cell(s.distinguisher.listed.as_ref())),
        ),
        (
            "… edited copies within the radius vs unlisted".into(),
            t(&|s| guess_cell(s.distinguisher.near_duplicates.as_ref())),
        ),
        (
            "… real matches vs decoys: listed sends of the shape that most marks one vs unlisted sends of that shape".into(),
            t(&|s| match s.distinguisher.lookalike_rate {
                None => "no shape marks a listed send".into(),
                Some(_) => guess_cell(s.distinguisher.lookalikes.as_ref()),
            }),
        ),
        (
            "… unlisted sends of that shape, the decoy rate (95% interval), of all unlisted; sends to estimate it within ±2 points".into(),
            t(&|s| {
                let d = &s.distinguisher;
                match d.lookalike_rate {
                    None => "no shape marks a listed send".into(),
                    Some(r) => format!(
                        "{} ({}–{}) of {}; {}",
                        pct(r),
                        pct(d.lookalike_ci95[0]),
                        pct(d.lookalike_ci95[1]),
                        d.background,
                        d.sends_for_rate
                            .map_or("—".into(), |n| n.to_string())
                    ),
                }
            }),
        ),
        (
            "… edited copies within half the radius vs beyond it: distance from the list".into(),
            t(&|s| guess_cell(s.distinguisher.distance.as_ref())),
        ),
        (
            "Client ms per image (scheme half: the sender's and every recipient's hooks)".into(),
            timing(&|t| t.client_ms),
        ),
        (
            "Provider ms per image (scheme half, every hook)".into(),
            timing(&|t| t.provider_ms),
        ),
        (
            "Provider throughput, images/s per core (scheme half)".into(),
            timing(&|t| {
                // Under a microsecond per image the hooks only return: no throughput to speak of.
                if t.provider_ms >= 0.001 {
                    1000.0 / t.provider_ms
                } else {
                    f64::INFINITY
                }
            }),
        ),
    ]);
    rows
}

fn recall_svg(r: &Results) -> Result<String, EvalError> {
    // The first scheme that flags anything; the caption names every scheme whose curves are
    // the same, as read from the results.
    let Some(s) = r.schemes.iter().find(|s| s.recall_as_sent > 0.0) else {
        return Ok(String::new());
    };
    let same = |a: &crate::analysis::SchemeMeasures| {
        a.recall.len() == s.recall.len()
            && a.recall
                .iter()
                .zip(&s.recall)
                .all(|(x, y)| x.flagged == y.flagged)
    };
    let agree: Vec<&str> = r
        .schemes
        .iter()
        .filter(|x| same(x))
        .map(|x| x.code.as_str())
        .collect();
    let kinds = scanlab_imaging::EditKind::ALL;
    let cols = 4usize;
    let rows = kinds.len().div_ceil(cols);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (1000, 40 + 230 * rows as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(io)?;
        let root = root
            .titled(
                &format!(
                    "Recall of PDQ at radius {} by edit, with Wilson 95% bands ({} run; {} agree; \
strength 0 is the image as sent)",
                    r.workload.radius,
                    s.code,
                    agree.join(", ")
                ),
                ("sans-serif", 16),
            )
            .map_err(io)?;
        let first = &s.recall[0];
        for (panel, kind) in root.split_evenly((rows, cols)).iter().zip(kinds) {
            // Strength 0 is the as-sent image, which every edit starts from.
            let pts: Vec<(f32, f64, [f64; 2])> = std::iter::once((0.0, first.recall, first.ci95))
                .chain(
                    s.recall
                        .iter()
                        .filter(|p| p.edit == kind.name())
                        .map(|p| (p.strength, p.recall, p.ci95)),
                )
                .collect();
            let n = s
                .recall
                .iter()
                .find(|p| p.edit == kind.name())
                .map_or(0, |p| p.sent);
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!("{} (n = {n} per point)", kind.name()),
                    ("sans-serif", 14),
                )
                .margin(6)
                .x_label_area_size(28)
                .y_label_area_size(36)
                .build_cartesian_2d(0f32..1f32, 0f64..1.02f64)
                .map_err(io)?;
            chart
                .configure_mesh()
                .x_labels(5)
                .y_labels(5)
                .x_desc("strength")
                .draw()
                .map_err(io)?;
            let band: Vec<(f32, f64)> = pts
                .iter()
                .map(|p| (p.0, p.2[1]))
                .chain(pts.iter().rev().map(|p| (p.0, p.2[0])))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(band, BLUE.mix(0.18).filled())))
                .map_err(io)?;
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|p| (p.0, p.1)),
                    BLUE.stroke_width(2),
                ))
                .map_err(io)?;
            chart
                .draw_series(
                    pts.iter()
                        .map(|p| Circle::new((p.0, p.1), 3, BLUE.filled())),
                )
                .map_err(io)?;
        }
        root.present().map_err(io)?;
    }
    Ok(svg)
}

fn roc_svg(r: &Results) -> Result<String, EvalError> {
    let c = &r.comparison;
    // False-positive rates span many decades and start at 0: the x axis is logarithmic, and
    // a rate of 0 is drawn at half of one pair in the corpus, the floor the corpus can see.
    let floor = c
        .hashes
        .first()
        .map_or(1e-6, |f| 0.5 / f.pairs.max(1) as f64);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(io)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Recall against false-positive rate across radii ({} copies; {} pairs; a rate of 0 drawn at {floor:.1e}; dots: each hash's usual radius)",
                    c.copies,
                    c.hashes.first().map_or(0, |f| f.pairs)
                ),
                ("sans-serif", 15),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((floor..1.0f64).log_scale(), 0f64..1.02f64)
            .map_err(io)?;
        chart
            .configure_mesh()
            .x_desc("share of unrelated pairs within the radius")
            .y_desc("recall (edited copies)")
            .x_label_formatter(&|x| format!("{x:.0e}"))
            .draw()
            .map_err(io)?;
        for (k, f) in c.hashes.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            let pts: Vec<(f64, f64)> = f
                .roc
                .iter()
                .map(|p| (p.fp_rate.max(floor), p.recall))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(io)?
                .label(format!("{} ({} bits)", f.hash, f.bits))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            if let Some(p) = f.roc.iter().find(|p| p.radius == f.radius) {
                chart
                    .draw_series(std::iter::once(Circle::new(
                        (p.fp_rate.max(floor), p.recall),
                        5,
                        color.filled(),
                    )))
                    .map_err(io)?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(io)?;
        root.present().map_err(io)?;
    }
    Ok(svg)
}

fn fp_svg(r: &Results) -> Result<String, EvalError> {
    let fp = &r.false_positives;
    let max = fp
        .histogram
        .chunks(2)
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(io)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "PDQ distance between {} unrelated pairs, with the lattice model; radius {} marked",
                    fp.pairs, fp.radius
                ),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0u32..256u32, 0f64..max * 1.1)
            .map_err(io)?;
        chart
            .configure_mesh()
            .x_desc("Hamming distance (bits)")
            .y_desc("pairs")
            .draw()
            .map_err(io)?;
        // PDQ distances are even: one bar per even distance, two bits wide, and the model's
        // expected pairs at each even distance (an odd one, rare, joins the even below it).
        chart
            .draw_series((0..=128u32).map(|j| {
                let c = fp.histogram[2 * j as usize]
                    + fp.histogram.get(2 * j as usize + 1).copied().unwrap_or(0);
                Rectangle::new(
                    [(2 * j, 0.0), (2 * j + 2, c as f64)],
                    BLUE.mix(0.6).filled(),
                )
            }))
            .map_err(io)?
            .label("pairs at each (even) distance")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], BLUE.mix(0.6).filled()));
        if let Some(m) = &fp.model {
            let pmf = crate::stats::lattice_pmf(m.theta);
            chart
                .draw_series(LineSeries::new(
                    (0..=128u32).map(|j| (2 * j + 1, fp.pairs as f64 * pmf[j as usize])),
                    RED.stroke_width(2),
                ))
                .map_err(io)?
                .label("lattice model")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], RED.stroke_width(2)));
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(fp.radius, 0.0), (fp.radius, max * 1.1)],
                BLACK.stroke_width(2),
            )))
            .map_err(io)?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(io)?;
        root.present().map_err(io)?;
    }
    Ok(svg)
}

fn html(r: &Results, m: &[(String, Vec<String>)]) -> Result<String, EvalError> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>scanlab evaluate</title><style>\
body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}\
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #bbb;padding:4px 8px;font-size:14px;vertical-align:top}}\
th{{background:#eee}}code{{background:#f4f4f4;padding:1px 4px}}.g img{{image-rendering:pixelated;width:128px;height:128px;border:1px solid #999}}\
.g div{{display:inline-block;margin:6px;text-align:center;width:150px;font-size:12px;vertical-align:top}}</style></head><body>"
    );
    let _ = write!(
        h,
        "<h1>scanlab evaluate: the detection schemes, measured</h1>\
<p>scanlab {} · seed {} · {} · scheme parameters: {} · generated by<br><code>{}</code></p>\
<p>Every figure below was computed from one simulated population running the real messenger \
(MLS via openmls, encrypted attachments, the provider's HTTP router over the in-process \
transport) with each scheme's real client and provider halves. Privacy figures are read from \
what the provider actually recorded. The list is a stand-in of {} benign corpus photos: the system \
matches whatever list it is handed.</p>",
        esc(&r.version),
        r.seed,
        if r.quick { "quick run" } else { "full run" },
        if r.params.is_empty() {
            "defaults".to_string()
        } else {
            esc(&serde_json::Value::Object(r.params.clone()).to_string())
        },
        esc(&r.command),
        r.workload.list_images
    );
    h.push_str("<h2>Assessment matrix</h2><table><tr><th>criterion</th>");
    for s in &r.schemes {
        let _ = write!(h, "<th>{} <code>{}</code></th>", s.code, esc(&s.name));
    }
    h.push_str("</tr>");
    for (name, cells) in m {
        let _ = write!(h, "<tr><td>{}</td>", esc(name));
        for c in cells {
            let _ = write!(h, "<td>{}</td>", esc(c));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table><p>Timings (the last two rows) are wall-clock on this machine and vary between runs; every other cell is reproducible from the seed.</p>");

    h.push_str("<h2>Effectiveness: recall and evasion</h2>");
    h.push_str(&recall_svg(r)?);
    let n = r.workload.list_images;
    let _ = write!(
        h,
        "<p><b>Recall</b> = copies that ended in the provider's review queue ÷ copies sent, \
for each list image as the messenger sends it (the list holds the hashes of the original files, \
so the send path's resize to {} px and JPEG quality {} is part of the chain) and under every edit \
of that image at each strength. <b>Evasion</b> = 1 − recall. \
Each point rests on {n} images, so its Wilson 95% interval (the band) is wide (recall.csv has it for every \
point; at full recall it is {:.0}–100%).</p>",
        r.workload.send_max_side,
        r.workload.send_quality,
        100.0 * crate::stats::wilson(n, n)[0]
    );
    // Every scheme side by side, per edit, all strengths pooled: the exact and fuzzy variants
    // of a design read off one row.
    h.push_str("<p>Recall by edit, all strengths pooled (copies flagged / sent):</p><table><tr><th>edit</th>");
    for s in &r.schemes {
        let _ = write!(h, "<th>{}</th>", esc(&s.code));
    }
    h.push_str("</tr>");
    let mut edits: Vec<&str> = Vec::new();
    for p in r.schemes.iter().flat_map(|s| &s.recall) {
        if !edits.contains(&p.edit.as_str()) {
            edits.push(&p.edit);
        }
    }
    for e in edits {
        let _ = write!(h, "<tr><td>{}</td>", esc(e));
        for s in &r.schemes {
            let (f, n) = s
                .recall
                .iter()
                .filter(|p| p.edit == e)
                .fold((0, 0), |(f, n), p| (f + p.flagged, n + p.sent));
            let _ = write!(h, "<td>{f}/{n}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");

    let fp = &r.false_positives;
    h.push_str("<h2>False positives</h2>");
    h.push_str(&fp_svg(r)?);
    let model = match &fp.model {
        Some(m) => {
            let checks: Vec<String> = m
                .tail_check
                .iter()
                .map(|t| {
                    format!(
                        "≤ {} bits: {} observed, {:.1} expected",
                        t.distance, t.observed, t.expected
                    )
                })
                .collect();
            format!(
                "Lattice model (the random-hash null tilted to the observed mean and spread, θ = {:.3}, {:.3}): \
per-pair probability {:.2e} (bootstrap 95% interval {:.2e} – {:.2e}); its lower tail against the data: {}. \
The count within the radius is {} with it.",
                m.theta[0],
                m.theta[1],
                m.rate,
                m.ci[0],
                m.ci[1],
                checks.join("; "),
                if m.consistent {
                    "consistent"
                } else {
                    "not consistent"
                }
            )
        }
        None => "The lattice model could not be fitted.".into(),
    };
    let _ = write!(
        h,
        "<p>{} images, {} unrelated pairs ({} at an odd distance): mean distance {:.1} bits (sd {:.1}); \
closest pair {} bits; {} pairs within radius {}: empirical rate {:.2e}, exact 95% interval {:.2e} – {:.2e}. \
{} The projection uses the {} estimate, {:.2e} per pair ({:.2e} – {:.2e}).</p>\
<table><tr><th>list entries</th><th>innocent images flagged per day at {:.1e} images/day (95% CI)</th>\
<th>the corpus alone rules out more than (per day)</th></tr>",
        fp.images,
        fp.pairs,
        fp.odd_pairs,
        fp.mean,
        fp.sd,
        fp.min_distance,
        fp.within_radius,
        fp.radius,
        fp.empirical_rate,
        fp.empirical_ci[0],
        fp.empirical_ci[1],
        model,
        fp.estimate_from,
        fp.estimate,
        fp.estimate_ci[0],
        fp.estimate_ci[1],
        fp.daily
    );
    for p in &fp.projection {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{:.3e} ({:.2e} – {:.2e})</td><td>{:.3e}</td></tr>",
            p.list_size, p.per_day, p.per_day_ci[0], p.per_day_ci[1], p.per_day_empirical_upper
        );
    }
    let _ = write!(
        h,
        "</table><p>What this cannot show: {}</p>",
        esc(&fp.limits)
    );

    h.push_str("<h2>PDQ beside pHash, dHash and aHash</h2>");
    h.push_str(&roc_svg(r)?);
    let c = &r.comparison;
    h.push_str("<table><tr><th>edit (mean over strengths)</th>");
    for f in &c.hashes {
        let _ = write!(
            h,
            "<th>{} ({} bits, radius {})</th>",
            f.hash, f.bits, f.radius
        );
    }
    h.push_str("</tr>");
    let mut edits: Vec<&str> = Vec::new();
    for x in c.hashes.iter().flat_map(|f| &f.recall) {
        if !edits.contains(&x.edit.as_str()) {
            edits.push(&x.edit);
        }
    }
    for e in edits {
        let _ = write!(h, "<tr><td>{}</td>", esc(e));
        for f in &c.hashes {
            let (m, n) = f
                .recall
                .iter()
                .filter(|x| x.edit == e)
                .fold((0, 0), |(a, b), x| (a + x.matched, b + x.copies));
            let _ = write!(h, "<td>{}</td>", pct(m as f64 / n.max(1) as f64));
        }
        h.push_str("</tr>");
    }
    h.push_str("<tr><td><b>all edited copies</b></td>");
    for f in &c.hashes {
        let _ = write!(h, "<td><b>{}</b></td>", pct(f.recall_edited));
    }
    h.push_str("</tr><tr><td><b>unrelated pairs within the radius (exact 95% interval)</b></td>");
    for f in &c.hashes {
        let _ = write!(
            h,
            "<td><b>{} of {}: {:.2e} ({:.2e} – {:.2e})</b></td>",
            f.pairs_within, f.pairs, f.fp_rate, f.fp_ci95[0], f.fp_ci95[1]
        );
    }
    let _ = write!(
        h,
        "</tr></table><p>Recall is the share of copies whose hash lies within the radius of \
the hash of their original; outside the messenger, so it holds for any scheme that matches with \
that hash. comparison.csv has every edit and strength with its Wilson interval, roc.csv every \
radius. What this cannot show: {}</p>",
        esc(&c.limits)
    );

    h.push_str("<h2>What the provider can see: the provider's-eye gallery</h2><div class=\"g\">");
    for g in &r.gallery {
        let _ = write!(
            h,
            "<div><img src=\"data:image/png;base64,{}\" alt=\"\"><br><b>{}</b><br>{}</div>",
            g.png_base64,
            esc(&g.title),
            esc(&g.caption)
        );
    }
    h.push_str(
        "</div><p>An unmatched background photo: the original, and the best image each \
provider can rebuild from what it received for it (the reconstruction metric above, SSIM against \
the original at 64×64).</p>",
    );

    adversary_section(&mut h, r);
    video_section(&mut h, r);

    h.push_str("<h2>Linkage, poisoning and compromise</h2><table><tr><th>scheme</th>\
<th>leaked-document holders (of users)</th><th>identified by content</th><th>named by content (non-holders)</th><th>by size</th><th>named by size (non-holders)</th>\
<th>poster holders</th><th>identified after poisoning</th></tr>");
    for s in &r.schemes {
        let _ = write!(
            h,
            "<tr><td>{} {}</td><td>{} (of {})</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td></tr>",
            s.code,
            esc(&s.name),
            s.linkage.holders,
            s.linkage.users,
            pct(s.linkage.by_content),
            s.linkage.named_by_content,
            s.linkage.wrong_by_content,
            pct(s.linkage.by_size),
            s.linkage.named_by_size,
            s.linkage.wrong_by_size,
            s.poisoning.holders,
            pct(s.poisoning.either)
        );
    }
    let a = &r.audit;
    let _ = write!(
        h,
        "</table><p><b>Linkage</b>: the leaked document is on no list. The provider obtains a copy \
and searches what it recorded: hashes within radius 31 (content), or blobs of exactly the copy's \
padded encrypted size (size: attachments are padded in 5% steps, so a bucket holds other \
photos too, and the size method also names their holders). A user is identified if they uploaded or downloaded a \
linked blob. <b>Poisoning</b>: the protest poster is added to the list; identified = uploaders and \
downloaders of flagged poster blobs.</p>\
<p><b>Does the auditable list catch the poisoning?</b> Targeted split view (one user served the \
poisoned list): <b>{}</b>. Global addition with vouchers from two jurisdictions: <b>{}</b>. Global \
addition with no vouchers: <b>{}</b>. A head of a size only one user is served, whose sorted \
tree hides a listed entry: that user's absence proof {}; a monitor holding the list: <b>{}</b>. \
Honest control (no attack): <b>{}</b>. Hashes are opaque, so a globally added, properly vouched \
entry is indistinguishable from a legitimate one. An attack counts as detected only on the error \
that names it.</p>",
        if a.targeted_split_view_detected {
            "detected (gossip)"
        } else {
            "not detected"
        },
        if a.global_with_vouchers_detected {
            "detected"
        } else {
            "not detected"
        },
        if a.global_without_vouchers_detected {
            "detected (policy check)"
        } else {
            "not detected"
        },
        if a.hidden_entry_absence_verified_for_user {
            "verifies"
        } else {
            "fails"
        },
        if a.hidden_entry_detected_by_monitor {
            "detected (sorted root)"
        } else {
            "not detected"
        },
        if a.control_passes {
            "no alarm"
        } else {
            "FALSE ALARM"
        },
    );

    let g = &r.provider_attacks.ghost;
    let _ = write!(
        h,
        "<h2>Against a malicious provider</h2><p>The provider deploys each scheme, then lies in \
its answers to the real clients. A row says whether the attack got what it wanted and which \
check caught it. The ghost user (S2b): a ghost key the provider does not log is {}; a logged \
one is {} on first contact and reads {} of the {} messages sent after it; the impersonated \
account's key-transparency monitoring {} it, and comparing safety numbers {} it.</p><table><tr><th>scheme</th><th>attack</th><th>succeeded</th><th>caught by</th></tr>",
        if g.unlogged_refused {
            "refused"
        } else {
            "accepted"
        },
        if g.logged_accepted {
            "accepted"
        } else {
            "refused"
        },
        g.read,
        g.sent,
        if g.found_by_monitoring {
            "finds"
        } else {
            "misses"
        },
        if g.found_by_safety_numbers {
            "shows"
        } else {
            "misses"
        },
    );
    for a in &r.provider_attacks.rows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.scheme),
            esc(&a.attack),
            if a.succeeded { "yes" } else { "no" },
            esc(a.detected_by.as_deref().unwrap_or("nothing"))
        );
    }
    h.push_str("</table>");

    if let Some(tr) = &r.enclave_trust {
        let _ = write!(
            h,
            "<h2>What the enclave ({}) rests on</h2><p>Alice sends unlisted photos to Bob through \
the real {} halves, with the enclave swapped for a rogue build (other code, matching a list of the \
provider's choosing: the very photos sent). What the enclave holds is read from its own recorded \
view, with its key, by the same analyst as every other figure.</p><table><tr><th>scenario</th>\
<th>clients accept</th><th>images sent</th><th>opened by the enclave</th><th>unlisted images in \
the provider's review queue</th></tr>",
            esc(&tr.scheme),
            esc(&tr.scheme)
        );
        for row in &tr.rows {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{} of {}</td><td>{}</td><td>{}</td></tr>",
                esc(&row.scenario),
                match &row.refused_by {
                    None => "yes".to_string(),
                    Some(e) => format!("no: {}", esc(e)),
                },
                row.sent,
                row.images,
                row.opened_by_enclave,
                row.reached_review
            );
        }
        let _ = write!(
            h,
            "</table><p>What this cannot show: {}</p>",
            esc(&tr.limits)
        );
    }

    h.push_str("<h2>Sanity against published behaviour</h2><table><tr><th>quantity</th><th>measured here</th><th>published</th></tr>");
    for s in &r.sanity {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.quantity),
            esc(&s.measured),
            esc(&s.published)
        );
    }
    h.push_str("</table>");

    h.push_str("<h2>Definitions</h2><ul>");
    for (k, v) in crate::DEFINITIONS {
        let _ = write!(h, "<li><b>{}</b>: {}</li>", esc(k), esc(v));
    }
    let _ = write!(
        h,
        "</ul><h2>Workload</h2><pre>{}</pre></body></html>",
        esc(&serde_json::to_string_pretty(&r.workload).map_err(io)?)
    );
    Ok(h)
}

/// The files of the attack gallery, under `attacks/` beside the report.
fn attack_files(i: usize) -> [(&'static str, String); 5] {
    [
        ("list image as sent", format!("attacks/{i}-original.png")),
        (
            "evading copy, white-box",
            format!("attacks/{i}-evade-white.png"),
        ),
        (
            "evading copy, black-box",
            format!("attacks/{i}-evade-black.png"),
        ),
        ("benign photo", format!("attacks/{i}-benign.png")),
        ("colliding image", format!("attacks/{i}-collide.png")),
    ]
}

fn write_attack_images(r: &Results, out: &Path) -> Result<(), EvalError> {
    if r.adversary.examples.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(out.join("attacks")).map_err(io)?;
    for (i, e) in r.adversary.examples.iter().enumerate() {
        let imgs = [
            &e.original,
            &e.evade_white.image,
            &e.evade_black.image,
            &e.source,
            &e.collide.image,
        ];
        for ((_, file), img) in attack_files(i).iter().zip(imgs) {
            img.save_with_format(out.join(file), image::ImageFormat::Png)
                .map_err(io)?;
        }
    }
    Ok(())
}

/// Attacks on the hash: the summary table beside the published figures, and the gallery.
fn adversary_section(h: &mut String, r: &Results) {
    let a = &r.adversary;
    h.push_str("<h2>Attacks on the hash: evasion and collision</h2><table><tr><th>attack</th>\
<th>budget</th><th>success (Wilson 95%)</th><th>survive JPEG q85</th><th>median PSNR</th>\
<th>median SSIM</th><th>median L2</th><th>median L∞</th><th>median cost</th><th>slowest, s</th></tr>");
    let f = |x: Option<f64>, d: usize| x.map_or("—".into(), |v| format!("{v:.d$}"));
    for s in &a.attacks {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{} ({})</td><td>{} of {} ({} – {})</td><td>{} of {}</td><td>{} dB</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td></tr>",
            esc(&s.attack),
            esc(&s.budget),
            s.budget_units,
            s.succeeded,
            s.attempted,
            pct(s.rate_ci[0]),
            pct(s.rate_ci[1]),
            s.survive_jpeg,
            s.succeeded,
            f(s.median_psnr, 1),
            f(s.median_ssim, 3),
            f(s.median_l2, 2),
            f(s.median_linf, 0),
            s.median_cost,
            s.max_seconds
        );
    }
    if let Some(p) = &a.poison_collision {
        let _ = write!(
            h,
            "<tr><td>poster → vouched entry</td><td></td><td>{}</td><td></td><td>{:.1} dB</td><td>{:.3}</td><td colspan=\"4\">distance {}</td></tr>",
            if p.success { "succeeded" } else { "failed" },
            p.psnr,
            p.ssim,
            p.distance
        );
    }
    let _ = write!(
        h,
        "</table><p>Success is judged by re-hashing each image with scanlab's PDQ: an evading copy \
lies more than r = {} bits from its listed hash, a colliding image within r of its target. \
Published points: Jain, Creţu and de Montjoye (USENIX Security 2022) evaded PDQ-style hashes on \
more than 99.9% of ImageNet images black-box while keeping content; Madden et al. (arXiv \
2406.00918) found PDQ resists black-box evasion under their distortion and query budgets; \
Dolhansky and Canton Ferrer (arXiv 2011.09473) made white-box collisions for nearly every image \
pair. What this cannot show: {}</p>",
        a.radius,
        esc(&a.limits)
    );
    if a.examples.is_empty() {
        return;
    }
    h.push_str("<h3>Gallery</h3><div class=\"g\">");
    for (i, e) in a.examples.iter().enumerate() {
        let notes = [
            String::new(),
            outcome_note(&e.evade_white),
            outcome_note(&e.evade_black),
            String::new(),
            outcome_note(&e.collide),
        ];
        for ((title, file), note) in attack_files(i).iter().zip(notes) {
            let _ = write!(
                h,
                "<div><img src=\"{file}\" width=\"160\" alt=\"{}\"><br><b>{}</b><br>{}</div>",
                esc(title),
                esc(title),
                esc(&note)
            );
        }
    }
    h.push_str("</div><p>Each row: a list image, its two evading copies (distance from its listed hash), a benign background photo, and that photo made to collide with the list image's hash (distance from it). PNG files in attacks/.</p>");
}

fn outcome_note(o: &scanlab_attack::Outcome) -> String {
    format!(
        "{}: distance {}, PSNR {:.1} dB, SSIM {:.3}",
        if o.success { "succeeded" } else { "failed" },
        o.distance,
        o.change.psnr,
        o.change.ssim
    )
}

fn video_section(h: &mut String, r: &Results) {
    let v = &r.video;
    let _ = write!(
        h,
        "<h2>Video</h2><p>{} listed and {} background clips ({}; kinds {}; bitrates {:?} kbit/s), each listed clip edited {} ways; {} counted frames per clip on average. Rule: {}. Hashes from {}.</p>",
        v.listed_clips,
        v.background_clips,
        esc(&v.clip_format),
        esc(&v.kinds.join(", ")),
        v.bitrates_kbps,
        v.edits.len(),
        format_args!("{:.1}", v.counted_frames_per_clip),
        esc(&v.rule),
        esc(&v.ffmpeg)
    );
    h.push_str("<h3>At the hash (vPDQ index, no messenger)</h3><table><tr><th>clips</th><th>matched to their own listed clip (Wilson 95%)</th><th>median share of frames found</th><th>matched another listed clip</th></tr>");
    for e in &v.hash_recall {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{} of {} ({} – {})</td><td>{:.0}%</td><td>{}</td></tr>",
            esc(&e.edit),
            e.matched,
            e.clips,
            pct(e.ci95[0]),
            pct(e.ci95[1]),
            e.median_query_percent,
            e.wrong_matches
        );
    }
    let fp = &v.false_positives;
    let _ = write!(
        h,
        "<tr><td>background (false positives)</td><td>{} of {} ({} – {})</td><td>largest share in any listed clip {:.0}% over {} pairs</td><td></td></tr></table>",
        fp.matched,
        fp.clips,
        pct(fp.ci95[0]),
        pct(fp.ci95[1]),
        fp.max_query_percent,
        fp.pairs
    );
    let _ = write!(
        h,
        "<p>Stills in video: {} of {} listed clips have a frame within the radius of an image-list entry (their source photos are list images).</p>",
        v.stills_found.0, v.stills_found.1
    );
    if !v.reference.is_empty() {
        h.push_str("<h3>Meta's sample videos</h3><table><tr><th>video</th><th>role</th><th>listed original</th><th>counted frames</th><th>share found</th><th>matched</th><th>false matches</th></tr>");
        for x in &v.reference {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}%</td><td>{}</td><td>{}</td></tr>",
                esc(&x.video),
                esc(&x.role),
                esc(x.family_listed.as_deref().unwrap_or("—")),
                x.counted_frames,
                x.query_percent,
                if x.matched_own { "yes" } else { "no" },
                esc(&x.matched_other.join(", "))
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h3>Through every scheme</h3><table><tr><th>scheme</th><th>listed as made</th>");
    for e in &v.edits {
        let _ = write!(h, "<th>{}</th>", esc(e));
    }
    h.push_str("<th>background</th><th>requests / clip</th><th>scan bytes / clip</th><th>blob bytes / clip</th><th>ms / clip</th></tr>");
    for x in &v.schemes {
        let _ = write!(
            h,
            "<tr><td>{} {}</td><td>{} of {}</td>",
            esc(&x.scheme),
            esc(&x.name),
            x.listed_reached,
            x.listed_sent
        );
        for e in &x.edited {
            let _ = write!(h, "<td>{} of {}</td>", e.2, e.1);
        }
        let _ = write!(
            h,
            "<td>{} of {}</td><td>{:.1}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td></tr>",
            x.background_reached,
            x.background_sent,
            x.requests_per_video,
            x.scan_bytes_per_video,
            x.blob_bytes_per_video,
            x.ms_per_video
        );
    }
    let _ = write!(
        h,
        "</table><p>What this cannot show: {}</p>",
        esc(&v.limits)
    );
}
