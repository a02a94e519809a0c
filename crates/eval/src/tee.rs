//! What S5's "secure enclave" rests on, exercised: the allow-list of measurements and the
//! hardware vendor's key. The shortlist's option (c) is only as private as those two, and the
//! evaluation's main run, which deploys an honest enclave, cannot show either.
//!
//! Each scenario deploys the real S5 halves ([`scanlab_schemes::enclave`]): an enclave
//! process-in-process recording its own view, the provider half that publishes its
//! attestation and allow-list, and two messenger clients that check the attestation as they
//! would in production. Alice sends unlisted photos to Bob. What the enclave then holds is
//! read by the scheme-blind [`crate::analyst`] from **the enclave's own recorded view**, with
//! the enclave's key; what reached the provider's review queue is read from the provider.
//!
//! - **honest enclave** (the control): the enclave opens every image sent, as its job is;
//!   nothing unlisted reaches review;
//! - **rogue build, not on the allow-list**: an enclave running other code, matching a list
//!   of the provider's choosing (the very photos Alice will send), attests truthfully; the
//!   provider publishes the honest allow-list; clients refuse (a consistency check between
//!   what is announced: a provider running a rogue enclave would announce both, as next);
//! - **rogue build added to the allow-list**: the provider publishes both measurements.
//!   Clients that pinned the old announcement see a scheme change (the attacks table); a
//!   client installed after the change has nothing to compare with and accepts;
//! - **stolen vendor key**: the rogue build attests the honest measurement, signed with the
//!   vendor's key; every client's check passes.

use crate::analyst::Analyst;
use crate::{EvalError, io};
use scanlab_hashlist::{Entry, HashList};
use scanlab_messenger::client::{Client, LocalTransport};
use scanlab_messenger::{Limits, Provider, SqliteStore};
use scanlab_schemes::enclave::{self, Enclave, EnclaveLink, EnclaveScheme, EnclaveService};
use scanlab_schemes::{DEFAULT_RADIUS, Matcher, Scheme, Secret};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One scenario's outcome.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct TrustRow {
    /// The scenario.
    pub scenario: String,
    /// Whether the clients accepted the announced enclave.
    pub accepted: bool,
    /// The error a client gave when it refused.
    pub refused_by: Option<String>,
    /// Unlisted images Alice tried to send.
    pub images: usize,
    /// Of those, sent (a refusing client sends none through the scheme).
    pub sent: usize,
    /// Images whose plaintext the enclave's own view yields, with its key.
    pub opened_by_enclave: usize,
    /// Unlisted images (distinct blobs) that reached the provider's review queue, read from
    /// the provider.
    pub reached_review: usize,
}

/// All scenarios.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct EnclaveTrust {
    /// The code of the scheme these rows belong to.
    pub scheme: String,
    /// One row per scenario, the control first.
    pub rows: Vec<TrustRow>,
    /// What these rows cannot show.
    pub limits: String,
}

/// The rogue build's code digest.
fn rogue_code() -> [u8; 32] {
    Sha256::digest(b"scanlab rogue enclave build (evaluation only)").into()
}

/// Deploys `enclave` behind a provider publishing `allow` (empty: the enclave's own
/// measurement), has Alice send `images` to Bob, and reads what the enclave and the provider
/// got.
fn scenario(
    name: &str,
    enclave: Enclave,
    allow: Vec<String>,
    images: &[Vec<u8>],
) -> Result<TrustRow, EvalError> {
    let dir = tempfile::tempdir().map_err(io)?;
    let e = Arc::new(enclave);
    let data = dir.path().join("enclave");
    let (service, token) = EnclaveService::open(e.clone(), &data)?;
    let half = enclave::Provider::new(EnclaveLink::local(service, token), allow)?;
    let provider = Provider::with_scheme(
        Box::new(SqliteStore::open(&dir.path().join("provider"))?),
        Limits::default(),
        Arc::new(half),
    );
    let mut row = TrustRow {
        scenario: name.into(),
        accepted: true,
        refused_by: None,
        images: images.len(),
        sent: 0,
        opened_by_enclave: 0,
        reached_review: 0,
    };
    let mut clients = Vec::new();
    for who in ["alice", "bob"] {
        let mut c = Client::connect(
            &dir.path().join(who),
            who,
            LocalTransport::new(provider.clone()),
        )?;
        match EnclaveScheme.client(&c.scheme_info()?["params"]) {
            Ok(h) => c.set_scheme(h)?,
            Err(err) => {
                row.accepted = false;
                row.refused_by = Some(err.to_string());
            }
        }
        clients.push(c);
    }
    if !row.accepted {
        return Ok(row);
    }
    let [alice, bob] = &mut clients[..] else {
        return Err(io("two clients"));
    };
    alice.create_chat("pair", &["bob"])?;
    bob.recv()?;
    let mut blobs = BTreeMap::new();
    for img in images {
        let sent = alice.send_detailed("pair", None, Some(img))?;
        row.sent += 1;
        if let Some(id) = sent.blob
            && let Some(b) = provider.blob(&id)?
        {
            blobs.insert(id, b);
        }
    }
    for m in bob.recv()? {
        m?;
    }
    row.reached_review = provider
        .reviews()?
        .iter()
        .map(|r| r.blob.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    drop(clients);
    drop(provider);
    let (mut store, _) = SqliteStore::open_existing(&data)?;
    let view = scanlab_messenger::Store::view(&mut store)?;
    let secret = Secret {
        holder: "enclave".into(),
        key: e.key(),
        info: enclave::INFO.to_vec(),
    };
    let known = Analyst::new(&blobs, vec![&secret]).read(&view, &[]);
    row.opened_by_enclave = blobs
        .keys()
        .filter(|b| known.get(*b).is_some_and(|k| k.plaintext.is_some()))
        .count();
    Ok(row)
}

/// Runs every scenario with `list` as the honest list and `images` (on no list) as what
/// Alice sends; `code` names the scheme in the report.
pub fn run(code: &str, list: &HashList, images: &[Vec<u8>]) -> Result<EnclaveTrust, EvalError> {
    // The rogue build's list: the photos the provider wants to find, which Alice is about to
    // send.
    let targets = HashList {
        entries: images
            .iter()
            .enumerate()
            .map(|(i, img)| {
                Ok(Entry {
                    id: i as u64 + 1,
                    kind: Default::default(),
                    hash: scanlab_schemes::pdq_of(img)?.hash,
                    label: "chosen by the provider".into(),
                    vouched_by: vec![],
                    added: 0,
                    quality: None,
                })
            })
            .collect::<Result<_, scanlab_schemes::SchemeError>>()?,
    };
    let rogue = || -> Result<Enclave, EvalError> {
        Ok(Enclave::new(
            Matcher::new(targets.clone(), DEFAULT_RADIUS)?,
            rogue_code(),
        ))
    };
    let control = Enclave::new(
        Matcher::new(list.clone(), DEFAULT_RADIUS)?,
        enclave::own_code_digest(),
    );
    let honest_claim = *control.measured();
    let honest_m = hex::encode(honest_claim.measurement());
    let rogue_m = hex::encode(rogue()?.measured().measurement());
    let rows = vec![
        scenario("honest enclave (control)", control, vec![], images)?,
        scenario(
            "rogue build, not on the allow-list",
            rogue()?,
            vec![honest_m.clone()],
            images,
        )?,
        scenario(
            "rogue build added to the allow-list (a client installed after the change)",
            rogue()?,
            vec![honest_m.clone(), rogue_m],
            images,
        )?,
        scenario(
            "stolen vendor key: the rogue build attests the honest measurement",
            Enclave::dangerous_claiming(
                Matcher::new(targets.clone(), DEFAULT_RADIUS)?,
                honest_claim,
            ),
            vec![honest_m],
            images,
        )?,
    ];
    Ok(EnclaveTrust {
        scheme: code.into(),
        rows,
        limits: format!(
            "{} photos per scenario. Any enclave, honest or not, opens every image sent to it: what tells the scenarios apart is what it forwards, read from the provider's review queue. The not-allow-listed row shows only that clients check the announced attestation against the announced allow-list; a provider running a rogue enclave publishes both (the next row), so the guard is the client's pin on the announcement, and a new install has none. The enclave is simulated: hardware isolation is not modelled, and the vendor key is a published test key, so the stolen-key row is what any holder of a real vendor key (or a side channel that extracts an enclave's attestation key) could do, not a measured break of real hardware. A client that pinned the honest announcement refuses the changed allow-list (see the attacks table); whether users notice, or reinstall, is outside the measurement.",
            images.len()
        ),
    })
}
