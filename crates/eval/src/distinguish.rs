//! The provider's guess, from the shape of its own records alone, of what an undisclosed send
//! was.
//!
//! # Why
//! Below its disclosure point a scheme promises that the provider's records of a listed image
//! look like those of any other: S7's synthetic vouchers exist so that an opened voucher below
//! the threshold could be a decoy. The exposure rows decode contents (hashes, thumbnails,
//! images). This asks the other question: does the *shape* of the records give a send away —
//! which endpoints it touched, how long each body was, which fields the provider derived, how
//! many items their arrays held, which flags were set?
//!
//! # The procedure, the same for every scheme
//! 1. **A send's trace:** every provider record whose JSON (body or metadata) or endpoint names
//!    the send's blob id and no other, and the response that answered each such request (the
//!    next `sent` record on the same endpoint to the same account). A record naming several
//!    blobs (an account's state) is about none of them alone and is left out; blob ids and the
//!    account's name in an endpoint become placeholders. The blob's own upload and downloads
//!    are left out: S0 has them too, and their padded sizes depend on the photo, not on the
//!    scheme. The simulation sends list, edited and background images in one seeded random
//!    order, so a counter that grows with an account's traffic does not separate the classes.
//! 2. **Its tokens**, read without knowing the scheme. *Shape* tokens: each record's kind and
//!    endpoint; every JSON leaf's path (array positions dropped) and type; the length of every
//!    array; the value of every boolean and null. *Value* tokens: each record's length in bytes,
//!    every integer below 1,000, and every string's length rounded up to a power of two.
//! 3. **The classifier:** Bernoulli naive Bayes with Laplace smoothing over every token, scored by stratified 5-fold cross-validation on two
//!    classes of equal size (the larger is subsampled, seeded); a tie counts as half a correct guess. A provider can
//!    train exactly this: it holds the list, so it can send listed and unlisted images from
//!    accounts of its own and label its own records.
//!
//! Only undisclosed sends take part (no review-queue entry): what a disclosure reveals is
//! measured elsewhere, and below a threshold nothing is disclosed.
//!
//! # The questions
//! - **listed vs unlisted:** list images as sent against background images;
//! - **near-duplicates vs unlisted:** edited copies within the radius of their list image
//!   against background images;
//! - **decoys:** the *marking shape* is the shape most over-represented among listed sends (as
//!   sent, or within the radius) against background sends, among the shapes both take and that
//!   are significantly more common among listed sends (S7: an opened voucher). The share of background sends that take it is the provider's estimate of
//!   the scheme's decoy rate (S7's synthetic vouchers), with the sends it needs to estimate that
//!   rate within ±2 percentage points; and the classifier is asked to tell the listed sends of
//!   that shape from the background sends of that shape (real matches from decoys);
//! - **distance:** among undisclosed edited copies within the radius, those within half of it
//!   against the rest, which is what a fuzzy scheme's per-bucket records can give away.
//!
//! # What it cannot show
//! Naive Bayes on these tokens is one distinguisher, not the best possible one: an accuracy at
//! chance bounds nothing. The Wilson interval treats the guesses as independent, which they
//! are not (the folds' training sets overlap, and edited copies share 24 originals), and the
//! matrix asks several questions of ten schemes: an accuracy just outside its interval is a
//! lead, not a proof. Edited copies are re-encoded at another JPEG quality than background
//! images as sent, so a scheme whose records reflect encoding would separate the
//! near-duplicate question without knowing the list; the distance question compares edited
//! copies with edited copies. It reads no contents (the
//! hash values, the ciphertext bytes: the analyst's decoders and [`scanlab_schemes::psi`]'s own
//! distinguisher do) and no timing. Balanced classes measure separability, not what a guess is
//! worth at a real base rate, where listed images are rare.

use crate::analyst::strings;
use crate::sim::{Outcome, Tag};
use crate::stats::wilson;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use scanlab_messenger::{RecordKind, ViewRecord};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Folds of the cross-validation.
pub const FOLDS: usize = 5;

/// The tokens of one send's trace.
pub type Trace = BTreeSet<String>;

/// A token of the shape of a trace (the rest are values).
fn is_shape(t: &str) -> bool {
    t.starts_with('s')
}

/// One question put to the classifier.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Guess {
    /// Traces per class after balancing (the smaller class's size).
    pub per_class: usize,
    /// Correct cross-validated guesses, ties aside.
    pub correct: usize,
    /// Traces whose scores tied, each counted half correct (a coin's expected score).
    pub ties: usize,
    /// Guesses made (`2 × per_class`).
    pub guesses: usize,
    /// `(correct + ties / 2) / guesses`; chance is 0.5.
    pub accuracy: f64,
    /// Wilson 95% interval of the accuracy.
    pub ci95: [f64; 2],
}

/// What the provider's record shapes tell it about undisclosed sends.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Distinguisher {
    /// List images as sent against background images.
    pub listed: Option<Guess>,
    /// Edited copies within the radius against background images.
    pub near_duplicates: Option<Guess>,
    /// Listed sends (as sent, or within the radius) of the marking shape against background
    /// sends of that shape: real matches against decoys.
    pub lookalikes: Option<Guess>,
    /// Background sends of the marking shape (the shape most over-represented among listed
    /// sends): the provider's estimate of the decoy rate. `None` when no shape taken by both
    /// classes is significantly more common among listed sends.
    pub lookalike_rate: Option<f64>,
    /// Its Wilson 95% interval.
    pub lookalike_ci95: [f64; 2],
    /// Undisclosed background sends it rests on.
    pub background: usize,
    /// Sends needed to estimate that rate within ±2 points at 95% (normal approximation), when
    /// it lies strictly between 0 and 1.
    pub sends_for_rate: Option<usize>,
    /// Edited copies within half the radius against those beyond half and within it.
    pub distance: Option<Guess>,
}

fn leaf_tokens(v: &Value, path: &str, out: &mut Trace) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                leaf_tokens(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => {
            out.insert(format!("s {path} array of {}", a.len()));
            for x in a {
                leaf_tokens(x, &format!("{path}[]"), out);
            }
        }
        Value::Bool(b) => {
            out.insert(format!("s {path} = {b}"));
        }
        Value::Null => {
            out.insert(format!("s {path} = null"));
        }
        Value::Number(n) => {
            out.insert(format!("s {path} number"));
            if let Some(i) = n.as_u64().filter(|&i| i < 1000) {
                out.insert(format!("v {path} = {i}"));
            }
        }
        Value::String(s) => {
            out.insert(format!("s {path} string"));
            out.insert(format!("v {path} length ≤ {}", s.len().next_power_of_two()));
        }
    }
}

/// `endpoint` with each blob id and the account's name replaced by a placeholder, so that a
/// per-account state row or a per-blob path is one token for every send, not a token of its
/// own.
fn endpoint<T>(r: &ViewRecord, blobs: &BTreeMap<String, T>) -> String {
    let e: Vec<&str> = r
        .endpoint
        .split(' ')
        .map(|w| {
            if r.who.as_deref() == Some(w) {
                "<account>"
            } else {
                w
            }
        })
        .collect();
    e.join(" ")
        .split('/')
        .map(|seg| {
            if blobs.contains_key(seg) {
                "<blob>"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn record_tokens<T>(r: &ViewRecord, blobs: &BTreeMap<String, T>, out: &mut Trace) {
    let head = format!("{} {}", r.kind.as_str(), endpoint(r, blobs));
    out.insert(format!("s {head}"));
    out.insert(format!("v {head} {} bytes", r.len));
    if let Some(v) = r.json() {
        leaf_tokens(&v, &format!("{head} body"), out);
    }
    if let Some(v) = r.extra.as_ref().and_then(|e| serde_json::from_str(e).ok()) {
        leaf_tokens(&v, &format!("{head} extra"), out);
    }
}

/// Every blob's trace in `view`, keyed by blob id (blob ids are the keys of `blobs`).
pub fn traces<T>(view: &[ViewRecord], blobs: &BTreeMap<String, T>) -> BTreeMap<String, Trace> {
    let mut out: BTreeMap<String, Trace> = BTreeMap::new();
    for (i, r) in view.iter().enumerate() {
        if r.endpoint.contains("/v1/blobs") {
            continue;
        }
        // An endpoint can name a blob too (`GET /v1/scan/receipt/ID`).
        let mut named: BTreeSet<String> = r
            .endpoint
            .split(['/', ' '])
            .filter(|p| blobs.contains_key(*p))
            .map(str::to_string)
            .collect();
        for v in [
            r.json(),
            r.extra.as_ref().and_then(|e| serde_json::from_str(e).ok()),
        ]
        .into_iter()
        .flatten()
        {
            let mut all = Vec::new();
            strings(&v, &mut all);
            named.extend(
                all.into_iter()
                    .filter(|s| blobs.contains_key(*s))
                    .map(str::to_string),
            );
        }
        // A record about several sends (an account's state, listing every blob it holds a
        // share of) is about none of them alone: followed, it would give each send a shape of
        // its own, its rank in the account.
        if named.len() != 1 {
            continue;
        }
        let mut tokens = Trace::new();
        record_tokens(r, blobs, &mut tokens);
        if r.kind == RecordKind::Received
            && let Some(reply) = view[i + 1..]
                .iter()
                .find(|x| x.kind == RecordKind::Sent && x.endpoint == r.endpoint && x.who == r.who)
        {
            record_tokens(reply, blobs, &mut tokens);
        }
        for b in named {
            out.entry(b).or_default().extend(tokens.iter().cloned());
        }
    }
    out
}

/// Bernoulli naive Bayes on `a` against `b`, balanced by subsampling and scored by stratified
/// [`FOLDS`]-fold cross-validation; `None` when either class has fewer than two traces.
pub fn guess<'t>(a: &[&'t Trace], b: &[&'t Trace], seed: u64) -> Option<Guess> {
    let m = a.len().min(b.len());
    if m < 2 {
        return None;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut pick = |c: &[&'t Trace]| -> Vec<&'t Trace> {
        let mut v = c.to_vec();
        v.shuffle(&mut rng);
        v.truncate(m);
        v
    };
    let classes = [pick(a), pick(b)];
    let mut df: BTreeMap<&str, [usize; 2]> = BTreeMap::new();
    for (c, items) in classes.iter().enumerate() {
        for t in items {
            for tok in t.iter() {
                df.entry(tok.as_str()).or_default()[c] += 1;
            }
        }
    }
    // Every token counts, however rare: a vocabulary chosen on all traces would be chosen on
    // the held-out trace too.
    let vocab: Vec<(&str, [usize; 2])> = df.into_iter().collect();
    // Stratified k-fold: each fold holds the same number of traces of each class, so the
    // training classes stay equal in size and no test trace's tokens are in either. (Leave-one-
    // out takes a trace from its own class only, which biases every guess against it: on two
    // classes drawn alike it scored far below chance.)
    let k = FOLDS.min(m);
    let fold_of = |i: usize| i % k;
    let mut fold_df: Vec<Vec<[usize; 2]>> = vec![vec![[0; 2]; vocab.len()]; k];
    for (c, items) in classes.iter().enumerate() {
        for (i, t) in items.iter().enumerate() {
            for (v, (tok, _)) in vocab.iter().enumerate() {
                fold_df[fold_of(i)][v][c] += usize::from(t.contains(*tok));
            }
        }
    }
    let mut fold_size = vec![0; k];
    (0..m).for_each(|i| fold_size[fold_of(i)] += 1);
    let (mut correct, mut ties) = (0, 0);
    for (c, items) in classes.iter().enumerate() {
        for (i, t) in items.iter().enumerate() {
            let f = fold_of(i);
            let n = (m - fold_size[f]) as f64;
            let mut score = [0.0f64; 2];
            for (cls, s) in score.iter_mut().enumerate() {
                for (v, (tok, cnt)) in vocab.iter().enumerate() {
                    let p = ((cnt[cls] - fold_df[f][v][cls]) as f64 + 1.0) / (n + 2.0);
                    *s += if t.contains(*tok) {
                        p.ln()
                    } else {
                        (1.0 - p).ln()
                    };
                }
            }
            let d = score[0] - score[1];
            if d.abs() < 1e-9 {
                ties += 1;
            } else {
                correct += usize::from(usize::from(d < 0.0) == c);
            }
        }
    }
    let guesses = 2 * m;
    // A tie counts half: a coin's expected score, without its noise.
    Some(Guess {
        per_class: m,
        correct,
        ties,
        guesses,
        accuracy: (correct as f64 + ties as f64 / 2.0) / guesses as f64,
        ci95: [
            wilson(correct + ties / 2, guesses)[0],
            wilson(correct + ties.div_ceil(2), guesses)[1],
        ],
    })
}

/// The shape of a trace: its shape tokens.
fn shape(t: &Trace) -> Trace {
    t.iter().filter(|x| is_shape(x)).cloned().collect()
}

/// The shape that most marks a listed send: among the shapes both `marked` and `background`
/// traces take and that are significantly more common in `marked` (a one-sided two-proportion
/// z-test at 5%), the one most over-represented there, with the number of `background` traces
/// that take it. `None` when no shape marks a listed send.
pub fn marking_shape(marked: &[&Trace], background: &[&Trace]) -> Option<(Trace, usize)> {
    let mut counts: BTreeMap<Trace, [usize; 2]> = BTreeMap::new();
    for (c, items) in [marked, background].into_iter().enumerate() {
        for t in items {
            counts.entry(shape(t)).or_default()[c] += 1;
        }
    }
    let ratio = |n: &[usize; 2]| {
        (n[0] as f64 / marked.len().max(1) as f64) / (n[1] as f64 / background.len().max(1) as f64)
    };
    let over = |n: &[usize; 2]| {
        let (a, b) = (marked.len() as f64, background.len() as f64);
        let (p1, p2) = (n[0] as f64 / a, n[1] as f64 / b);
        let p = (n[0] + n[1]) as f64 / (a + b);
        let se = (p * (1.0 - p) * (1.0 / a + 1.0 / b)).sqrt();
        se > 0.0 && (p1 - p2) / se > 1.645
    };
    counts
        .into_iter()
        .filter(|(_, n)| n[0] > 0 && n[1] > 0 && over(n))
        .max_by(|a, b| {
            ratio(&a.1)
                .total_cmp(&ratio(&b.1))
                .then(a.1[0].cmp(&b.1[0]))
        })
        .map(|(s, n)| (s, n[1]))
}

/// Sends needed for a 95% normal interval of half-width `half` on a rate near `p`.
pub fn sends_for(p: f64, half: f64) -> Option<usize> {
    (p > 0.0 && p < 1.0).then(|| (1.96f64.powi(2) * p * (1.0 - p) / (half * half)).ceil() as usize)
}

/// Runs every question on one scheme's run. `edited_distance[e]` is the PDQ distance of edited
/// copy `e` from its list image, `radius` the radius that counts as a near-duplicate.
pub fn measure(o: &Outcome, edited_distance: &[u32], radius: u32, seed: u64) -> Distinguisher {
    let all = traces(&o.view, &o.blobs);
    let disclosed: BTreeSet<&str> = o.reviews.iter().map(|r| r.blob.as_str()).collect();
    let empty = Trace::new();
    let mut listed = Vec::new();
    let mut near = Vec::new();
    let mut close = Vec::new();
    let mut far = Vec::new();
    let mut background = Vec::new();
    for s in o
        .sends
        .iter()
        .filter(|s| !disclosed.contains(s.blob.as_str()))
    {
        let t = all.get(&s.blob).unwrap_or(&empty);
        match s.tag {
            Tag::Listed(_, None) => listed.push(t),
            Tag::Listed(_, Some(e)) => match edited_distance.get(e) {
                Some(&d) if d <= radius => {
                    near.push(t);
                    if d <= radius / 2 {
                        &mut close
                    } else {
                        &mut far
                    }
                    .push(t);
                }
                _ => {}
            },
            Tag::Background(_) => background.push(t),
            _ => {}
        }
    }
    let marked: Vec<&Trace> = listed.iter().chain(&near).copied().collect();
    let mark = marking_shape(&marked, &background);
    fn with_mark<'t>(c: &[&'t Trace], m: &Trace) -> Vec<&'t Trace> {
        c.iter().copied().filter(|t| &shape(t) == m).collect()
    }
    let (lookalikes, rate, alike) = match &mark {
        Some((m, k)) => (
            guess(&with_mark(&marked, m), &with_mark(&background, m), seed ^ 2),
            Some(*k as f64 / background.len() as f64),
            *k,
        ),
        None => (None, None, 0),
    };
    Distinguisher {
        listed: guess(&listed, &background, seed),
        near_duplicates: guess(&near, &background, seed ^ 1),
        lookalikes,
        lookalike_rate: rate,
        lookalike_ci95: if rate.is_some() {
            wilson(alike, background.len())
        } else {
            [0.0, 1.0]
        },
        background: background.len(),
        sends_for_rate: rate.and_then(|r| sends_for(r, 0.02)),
        distance: guess(&close, &far, seed ^ 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn traces_with(n: usize, p: f64, marker: &str, seed: u64) -> Vec<Trace> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let mut t = Trace::new();
                t.insert("s POST /v1/scan".into());
                // Noise that is the same in distribution for both classes.
                t.insert(format!("v noise {}", rng.random_range(0..4)));
                // A token of its own (unique across both classes).
                t.insert(format!("v id {seed} {i}"));
                if rng.random_bool(p) {
                    t.insert(marker.into());
                }
                t
            })
            .collect()
    }

    fn run(a: &[Trace], b: &[Trace], seed: u64) -> Guess {
        let a: Vec<&Trace> = a.iter().collect();
        let b: Vec<&Trace> = b.iter().collect();
        guess(&a, &b, seed).unwrap()
    }

    // Known answers: the Bayes-optimal accuracy of each pair of distributions is known, and the
    // classifier's interval must hold it.

    #[test]
    fn alike_classes_are_guessed_at_chance() {
        let g = run(
            &traces_with(400, 0.3, "s m", 1),
            &traces_with(400, 0.3, "s m", 2),
            3,
        );
        assert!(g.ci95[0] <= 0.5 && 0.5 <= g.ci95[1], "{g:?}");
        // Rare tokens drawn alike for both classes, many shared by two or three traces (what
        // exact record lengths look like).
        let rare = |seed: u64| -> Vec<Trace> {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            (0..300)
                .map(|_| {
                    (0..3)
                        .map(|_| format!("v len {}", rng.random_range(0..400)))
                        .collect()
                })
                .collect()
        };
        let g = run(&rare(10), &rare(11), 12);
        assert!(g.ci95[0] <= 0.5 && 0.5 <= g.ci95[1], "{g:?}");
        // Identical traces: every score ties, and scores exactly half.
        let same = vec![Trace::from(["s x".to_string()]); 300];
        let g = run(&same, &same, 4);
        assert_eq!((g.ties, g.accuracy), (600, 0.5), "{g:?}");
    }

    #[test]
    fn a_marker_is_found_and_a_noisy_one_at_the_bayes_rate() {
        let g = run(
            &traces_with(100, 1.0, "s m", 1),
            &traces_with(100, 0.0, "s m", 2),
            3,
        );
        assert_eq!(g.correct, g.guesses, "{g:?}");
        // Present with probability 0.8 against 0.2: the best rule is right 80% of the time.
        let g = run(
            &traces_with(500, 0.8, "s m", 5),
            &traces_with(500, 0.2, "s m", 6),
            7,
        );
        assert!(g.ci95[0] <= 0.8 && 0.8 <= g.ci95[1], "{g:?}");
        // Too few to guess.
        let one = traces_with(1, 1.0, "s m", 8);
        let r: Vec<&Trace> = one.iter().collect();
        assert!(guess(&r, &r, 0).is_none());
    }

    #[test]
    fn the_marking_shape_is_the_decoys_shape() {
        // Listed sends: 30% open (real matches and decoys), the rest do not; unlisted sends
        // open at the decoy rate of 10%. Value tokens differ and must not split the shapes.
        let t = |open: bool, i: usize| -> Trace {
            let mut t = Trace::from([format!("v len {i}")]);
            t.insert(format!("s opened array of {}", usize::from(open)));
            t
        };
        let marked: Vec<Trace> = (0..100).map(|i| t(i % 10 < 3, i)).collect();
        let background: Vec<Trace> = (0..200).map(|i| t(i % 10 == 0, i)).collect();
        let m: Vec<&Trace> = marked.iter().collect();
        let b: Vec<&Trace> = background.iter().collect();
        let (s, k) = marking_shape(&m, &b).unwrap();
        assert_eq!(
            (s, k),
            (Trace::from(["s opened array of 1".to_string()]), 20)
        );
        // One shape for everything, or shapes as common in both: nothing marks a listed send.
        let flat: Vec<Trace> = (0..10).map(|_| Trace::new()).collect();
        let f: Vec<&Trace> = flat.iter().collect();
        assert_eq!(marking_shape(&f, &f), None);
        let same: Vec<Trace> = (0..200).map(|i| t(i % 10 == 0, i)).collect();
        let s: Vec<&Trace> = same.iter().collect();
        assert_eq!(marking_shape(&s[..100], &s[100..]), None);
        // Shapes the two never share: no mark.
        assert_eq!(marking_shape(&m[..1], &b[1..2]), None);
    }

    #[test]
    fn the_sends_for_a_rate_give_the_promised_interval() {
        // At the computed size, about 95% of estimates fall within ±2 points.
        let p = 0.1;
        let n = sends_for(p, 0.02).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let trials = 2000;
        let within = (0..trials)
            .filter(|_| {
                let k = (0..n).filter(|_| rng.random_bool(p)).count();
                (k as f64 / n as f64 - p).abs() <= 0.02
            })
            .count();
        let share = within as f64 / trials as f64;
        assert!((0.93..0.97).contains(&share), "{n} sends: {share}");
        assert_eq!(sends_for(0.0, 0.02), None);
        assert_eq!(sends_for(1.0, 0.02), None);
    }

    #[test]
    fn a_trace_gathers_the_records_that_name_a_blob_and_their_replies() {
        let rec = |seq, kind, endpoint: &str, body: &str| ViewRecord {
            seq,
            at_ms: 0,
            kind,
            who: Some("u000".into()),
            endpoint: endpoint.into(),
            len: body.len() as i64,
            sha256: String::new(),
            body: Some(body.as_bytes().to_vec()),
            extra: None,
        };
        let view = vec![
            rec(1, RecordKind::Received, "PUT /v1/blobs", r#"{"blob":"b1"}"#),
            rec(2, RecordKind::Received, "POST /v1/scan", r#"{"blob":"b1"}"#),
            rec(
                3,
                RecordKind::Derived,
                "POST /v1/scan",
                r#"{"blob":"b1","opened":[0]}"#,
            ),
            rec(4, RecordKind::Sent, "POST /v1/scan", r#"{"match":true}"#),
            rec(5, RecordKind::Received, "POST /v1/scan", r#"{"blob":"b2"}"#),
            // An account's state, naming both blobs: about neither alone.
            rec(
                6,
                RecordKind::State,
                "s account u000",
                r#"{"shares":["b1","b2"]}"#,
            ),
            // A per-account row naming one blob: the account becomes a placeholder.
            rec(7, RecordKind::State, "s account u000", r#"{"last":"b2"}"#),
            // A per-blob path.
            rec(8, RecordKind::Received, "GET /v1/scan/receipt/b2", ""),
        ];
        let blobs: BTreeMap<String, ()> = [("b1".into(), ()), ("b2".into(), ())].into();
        let t = traces(&view, &blobs);
        let b1 = &t["b1"];
        assert!(
            b1.contains("s derived POST /v1/scan body.opened array of 1"),
            "{b1:?}"
        );
        assert!(
            b1.contains("s sent POST /v1/scan body.match = true"),
            "{b1:?}"
        );
        assert!(!b1.iter().any(|x| x.contains("/v1/blobs")), "{b1:?}");
        // b2's request has no reply after it.
        let b2 = &t["b2"];
        assert!(!b2.iter().any(|x| x.contains("sent")), "{b2:?}");
        assert!(
            !b1.iter().chain(b2).any(|x| x.contains("shares")),
            "{b1:?} {b2:?}"
        );
        assert!(b2.contains("s state s account <account>"), "{b2:?}");
        assert!(
            b2.contains("s received GET /v1/scan/receipt/<blob>"),
            "{b2:?}"
        );
    }
}
