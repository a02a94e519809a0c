//! S8 `third-party-multi`: the Commission paper's "matching by several third parties", built
//! so that no single organisation learns the hash: two non-colluding organisations, each
//! holding the list, match a hash neither sees, with distributed point functions.
//!
//! # Construction
//! Two-server private membership testing by function secret sharing (Boyle, Gilboa and Ishai,
//! EUROCRYPT 2015 and CCS 2016; as a keyword-PIR/membership use, Wang et al., "Splinter",
//! NSDI 2017), over the multi-index-hashing split of a PDQ hash (Norouzi, Punjani and Fleet,
//! CVPR 2012). The point functions are [`crate::dpf`]'s, from the `prio` crate's IDPF
//! (draft-irtf-cfrg-vdaf-18). This is a derived design (`../shared/notes/designs.md` §4): no
//! deployed system is known to run it.
//!
//! 1. **The device** cuts its image's 256-bit PDQ hash `h` into [`CHUNKS`] = 16 chunks of 16
//!    bits, `h_c`. By the pigeonhole principle an image within 15 bits of a list entry agrees
//!    with it on at least one whole chunk; at PDQ's radius 31 most near copies still do (the
//!    evaluation measures the recall this costs against S3). For each chunk it makes the two
//!    keys `(k_c^1, k_c^2)` of the point function at `h_c`, and seals the sixteen keys `k^i`
//!    to organisation `i`: `HPKE.Seal(pk_i, info = "scanlab-third-party-multi-v1",
//!    aad = blob id, {blob, keys})`. The provider relays both capsules and learns opaque bytes.
//! 2. **Organisation `i`** opens its capsule and, for every chunk `c`, evaluates its key at
//!    chunk `c` of every list entry `e_j` (position `j` in the list's sorted commitment),
//!    returning `(Σ_j F_c^i(e_j,c), Σ_j (j+1)·F_c^i(e_j,c))` in `Field64`: shares of how many
//!    entries agree with the image on chunk `c`, and of the sum of their positions.
//! 3. **The provider** adds the two organisations' shares. For a chunk where exactly one
//!    entry agrees, it has that entry's position, and asks organisation 1 for the entry and
//!    its inclusion proof (`POST /entry`, no blob named). It sends the candidates to the
//!    device, which discloses the image only for a candidate on the pinned list within the
//!    radius of its own hash (as S3's [`crate::device_hash::verify_reply`]); a candidate
//!    farther away (a chunk collision) is dropped, and a candidate off the list is refused.
//!
//! # What each party learns, by design
//! - **Each organisation alone:** a pseudorandom key per chunk, so nothing about `h` (DPF
//!   security), and its own shares, which are pseudorandom too. It learns that some image
//!   matched entry `j` when asked for it.
//! - **Both organisations together:** both keys of every chunk, so every `h_c`, so `h`: a
//!   coalition of the two is S8's single organisation. The evaluation measures both
//!   (`exposure.parties`, `exposure.coalitions`).
//! - **The provider:** per image, how many entries agree on each chunk (a partial-hash leak
//!   for innocent images that collide on a chunk with some entry, about 16·n/65,536 of them
//!   for a list of n), the candidates' entries, and the plaintext of matched images.
//! - **Cost:** each organisation evaluates 16 keys at every distinct chunk value of the list,
//!   so its work per image grows linearly with the list, where S8's single organisation does
//!   one index lookup. The evaluation's timings and `benches/third_party.rs` measure both.
//!
//! # What it does not ensure
//! - Non-collusion is assumed, not enforced: two organisations under one jurisdiction, or
//!   one compelled to hand over its key, end it.
//! - Both organisations hold the list, so both can put any image on it, as in S8.
//! - A chunk with two or more agreeing entries names no candidate; other chunks usually do.

use crate::device_hash::{Evidence, MatchReply, own_hash};
use crate::dpf::{self, KeyShare};
use crate::party::Link;
use crate::seal::{self, KeyPair};
use crate::third_party::{OrganisationService, Params};
use crate::{Matcher, Party, Scheme, SchemeError, Secret, SimInputs, Simulation, b64, b64_field};
use scanlab_hashlist::EntryProof;
use scanlab_messenger::client::ClientError;
use scanlab_messenger::record::Pending;
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Outgoing, ProviderScheme, ScanAction, ScanCtx, ScanError, ScanOutcome,
};
use scanlab_pdq::Hash256;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// HPKE `info` of key capsules to the organisations.
pub const INFO: &[u8] = b"scanlab-third-party-multi-v1";
/// Chunks per hash.
pub const CHUNKS: usize = 16;
/// Bits per chunk.
pub const CHUNK_BITS: usize = 256 / CHUNKS;
/// Organisations.
pub const ORGS: usize = 2;
/// Most candidates the provider asks for per image.
const MAX_CANDIDATES: usize = 4;

/// The name of organisation `i` (from 0), in views and compromise rows.
pub fn party_name(i: usize) -> String {
    format!("organisation {}", i + 1)
}

/// What the device seals to one organisation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Keys {
    /// The blob id.
    pub blob: String,
    /// One key per chunk, in chunk order.
    pub keys: Vec<KeyShare>,
}

/// What the client sends: one capsule per organisation, in order.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// The blob id.
    pub blob: String,
    /// The capsules, base64.
    pub sealed: Vec<String>,
}

/// One organisation's answer: per chunk, its shares of the agreeing entries' count and of the
/// sum of their positions (plus one).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Shares {
    /// `[count share, position-sum share]` per chunk.
    pub shares: Vec<[u64; 2]>,
}

/// A list entry, by position, as organisation 1 names it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Named {
    /// The entry.
    pub entry: Hash256,
    /// Its inclusion proof under the announced list root.
    pub proof: EntryProof,
    /// The entry's id in the list.
    pub id: u64,
    /// The entry's label.
    pub label: String,
}

/// The provider's reply to the device.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    /// Entries that agree with the image on a whole chunk (none if absent: a bare
    /// "disclose" from the provider names nothing, so discloses nothing).
    #[serde(default)]
    pub candidates: Vec<Named>,
}

/// One of the organisations: its key, its list, and the list's chunks.
pub struct Organisation {
    /// Its key and list, as S8's single organisation holds them.
    base: crate::third_party::Organisation,
    /// Per chunk: each distinct chunk value of the list, with how many entries have it and
    /// the sum of their positions plus one.
    chunks: Vec<Vec<(Vec<bool>, u64, u64)>>,
}

impl Organisation {
    /// An organisation over `matcher`'s list with `keys`.
    pub fn new(matcher: Matcher, keys: Arc<KeyPair>) -> Organisation {
        let chunks = (0..CHUNKS)
            .map(|c| {
                let mut by: BTreeMap<Vec<bool>, (u64, u64)> = BTreeMap::new();
                for (j, h) in matcher.sorted().iter().enumerate() {
                    let v = by
                        .entry(dpf::bits_of(&h.to_bytes(), c * CHUNK_BITS, CHUNK_BITS))
                        .or_default();
                    v.0 += 1;
                    v.1 += j as u64 + 1;
                }
                by.into_iter().map(|(k, (n, s))| (k, n, s)).collect()
            })
            .collect();
        Organisation {
            base: crate::third_party::Organisation::new(matcher, keys),
            chunks,
        }
    }

    /// What it publishes (as S8's single organisation).
    pub fn params(&self) -> Params {
        self.base.params()
    }

    /// Its key pair: what its compromise yields.
    pub fn key(&self) -> Arc<KeyPair> {
        self.base.key()
    }

    /// Opens one capsule and evaluates its keys over the list; also returns what it derived.
    pub fn answer(&self, blob: &str, capsule: &[u8]) -> Result<(Shares, Value), SchemeError> {
        let bytes = self.base.open(INFO, blob, capsule)?;
        let k: Keys =
            serde_json::from_slice(&bytes).map_err(|e| SchemeError::Malformed(e.to_string()))?;
        if k.blob != blob || k.keys.len() != CHUNKS {
            return Err(SchemeError::Malformed(format!(
                "{} keys for blob {:?}; expected {CHUNKS} for {blob:?}",
                k.keys.len(),
                k.blob
            )));
        }
        let mut shares = Vec::with_capacity(CHUNKS);
        for (c, (share, list)) in k.keys.iter().zip(&self.chunks).enumerate() {
            let key = share.open()?;
            if key.bits() != CHUNK_BITS || share.offset as usize != c * CHUNK_BITS {
                return Err(SchemeError::Malformed(format!(
                    "chunk {c}: a key for {} bits at {}",
                    key.bits(),
                    share.offset
                )));
            }
            let mut acc = [0u64; 2];
            for (value, n, sum) in list {
                let y = key.eval(value)?;
                acc[0] = dpf::add(acc[0], dpf::scale(y, *n));
                acc[1] = dpf::add(acc[1], dpf::scale(y, *sum));
            }
            shares.push(acc);
        }
        let derived = json!({ "blob": blob, "shares": shares });
        Ok((Shares { shares }, derived))
    }

    /// The entry at `position` in the sorted list, with its proof.
    pub fn entry(&self, position: usize) -> Result<Named, SchemeError> {
        let entry = *self
            .base
            .matcher()
            .sorted()
            .get(position)
            .ok_or_else(|| SchemeError::Malformed(format!("no entry at {position}")))?;
        let proof = self
            .base
            .matcher()
            .prove(&entry)
            .ok_or_else(|| SchemeError::Malformed("unprovable entry".into()))?;
        let info = self
            .base
            .matcher()
            .check(&entry)
            .ok_or_else(|| SchemeError::Malformed("an entry that matches nothing".into()))?;
        Ok(Named {
            entry,
            proof,
            id: info.entry,
            label: info.label,
        })
    }
}

/// An organisation's HTTP interface, for `scanlab matcher --multi`: `GET /key` → [`Params`];
/// `POST /match {blob, sealed}` → [`Shares`] and `POST /entry {position}` → [`Named`], for
/// the token holder; behind the recording layer.
pub fn router(service: Arc<OrganisationService<Organisation>>) -> axum::Router {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    type S = State<Arc<OrganisationService<Organisation>>>;
    fn bad(e: SchemeError) -> (StatusCode, String) {
        (StatusCode::BAD_REQUEST, e.to_string())
    }
    async fn key(State(s): S) -> axum::Json<Params> {
        axum::Json(s.org.params())
    }
    async fn matching(
        State(s): S,
        pending: Pending,
        axum::Json(req): axum::Json<Value>,
    ) -> Result<axum::Json<Shares>, (StatusCode, String)> {
        let blob = crate::field(&req, "blob").map_err(bad)?.to_string();
        let capsule = b64_field(&req, "sealed").map_err(bad)?;
        let o = s.org.clone();
        let (shares, derived) = tokio::task::spawn_blocking(move || o.answer(&blob, &capsule))
            .await
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(bad)?;
        pending.stage(scanlab_messenger::record::derived(
            None,
            "POST /match",
            &derived,
        ));
        Ok(axum::Json(shares))
    }
    async fn entry(
        State(s): S,
        axum::Json(req): axum::Json<Value>,
    ) -> Result<axum::Json<Named>, (StatusCode, String)> {
        let p = req["position"]
            .as_u64()
            .ok_or_else(|| bad(SchemeError::Malformed("position".into())))?;
        Ok(axum::Json(s.org.entry(p as usize).map_err(bad)?))
    }
    axum::Router::new()
        .route("/key", get(key))
        .route("/match", post(matching))
        .route("/entry", post(entry))
        .layer(axum::middleware::from_fn_with_state(
            service.clone(),
            scanlab_messenger::record::record_layer::<OrganisationService<Organisation>>,
        ))
        .with_state(service)
}

/// S8 multi's descriptor.
pub struct ThirdPartyMulti;

/// Its configuration: the organisations, in order, and their caller tokens.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URLs of the running `scanlab matcher --multi` processes.
    pub matcher: Vec<String>,
    /// Their caller token files, in the same order.
    pub matcher_token: Vec<PathBuf>,
}

impl Scheme for ThirdPartyMulti {
    fn code(&self) -> &'static str {
        "S8m"
    }
    fn name(&self) -> &'static str {
        "third-party-multi"
    }
    fn summary(&self) -> &'static str {
        "the device splits each hash into point-function keys for two matching organisations, neither of which learns it; the provider adds their shares"
    }
    fn explanation(&self) -> &'static str {
        "Secret-shared matching by two organisations: the device splits each hash into distributed point-function keys, one per organisation, so that neither learns the hash; each evaluates its key against the list and the provider adds their answers to learn only whether the hash is listed. It holds as long as the two do not pool their keys."
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let c: Config = crate::config(self.name(), config)?;
        if c.matcher.len() != ORGS || c.matcher_token.len() != ORGS {
            return Err(SchemeError::Config(format!(
                "third-party-multi: {ORGS} organisations, each with its token (--matcher and --matcher-token, {ORGS} of each); got {} and {}",
                c.matcher.len(),
                c.matcher_token.len()
            )));
        }
        let links = c
            .matcher
            .iter()
            .zip(&c.matcher_token)
            .map(|(u, t)| {
                Ok(Link::http(
                    u,
                    crate::party::read_token(t, "--matcher-token")?,
                ))
            })
            .collect::<Result<Vec<_>, SchemeError>>()?;
        Ok(Arc::new(Provider::new(links)?))
    }
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Ok(Box::new(Client::from_params(params)?))
    }
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        let mut links = Vec::new();
        let mut parties = Vec::new();
        let mut secrets = Vec::new();
        for i in 0..ORGS {
            let org = Arc::new(Organisation::new(
                Matcher::new(inputs.list.clone(), crate::DEFAULT_RADIUS)?,
                Arc::new(KeyPair::generate()),
            ));
            let data = inputs.dir.join(format!("org-{}", i + 1));
            secrets.push(Secret {
                holder: party_name(i),
                key: org.key(),
                info: INFO.to_vec(),
            });
            let (service, token) = OrganisationService::open(org, &data)?;
            links.push(Link::local(router(service), token));
            parties.push(Party {
                name: party_name(i),
                data,
            });
        }
        Ok(Simulation {
            provider: Arc::new(Provider::new(links)?),
            parties,
            secrets,
        })
    }
}

/// The announced parameters: the organisations' keys, and the list and radius they share.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MultiParams {
    /// The organisations' HPKE public keys, hex, in order.
    pub keys: Vec<String>,
    /// The list both hold.
    pub list: scanlab_hashlist::ListRoot,
    /// The radius.
    pub radius: u32,
}

/// The client half.
pub struct Client {
    keys: Vec<[u8; 32]>,
    evidence: Evidence,
}

impl Client {
    /// From the announced (and pinned) parameters.
    pub fn from_params(params: &Value) -> Result<Client, SchemeError> {
        let p: MultiParams = serde_json::from_value(params.clone())
            .map_err(|e| SchemeError::Config(format!("third-party-multi parameters: {e}")))?;
        if p.keys.len() != ORGS {
            return Err(SchemeError::Config(format!(
                "{} organisation keys announced; this client needs {ORGS}",
                p.keys.len()
            )));
        }
        Ok(Client {
            keys: p
                .keys
                .iter()
                .map(|k| seal::public_from_hex(k))
                .collect::<Result<_, _>>()?,
            evidence: Evidence::from_params(params)?,
        })
    }
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "third-party-multi"
    }
    fn on_attachment(&mut self, _: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        let blob = &a.attachment.blob;
        crate::device_hash::per_hash_requests(a, |frame| {
            let hash = match frame {
                Some(f) => f.hash.hash,
                None => own_hash(a)?,
            };
            Ok(json!(Request {
                blob: blob.clone(),
                sealed: seal_hash(&self.keys, blob, &hash)?,
            }))
        })
    }
    fn on_scan_reply(
        &mut self,
        _: &ClientCtx,
        a: &Outgoing,
        reply: &Value,
    ) -> Result<Option<String>, ClientError> {
        crate::device_hash::per_hash_verdict(a, reply, |r, own| self.verify(r, own))
    }
}

impl Client {
    /// The client's check of the organisations' candidates for one hash: a candidate beyond
    /// the radius is a chunk collision (checked to be on the list, then passed over); one
    /// within it is S3's evidence.
    fn verify(&self, reply: &Value, own: &Hash256) -> Result<Option<String>, ClientError> {
        let r: Reply = serde_json::from_value(reply.clone())
            .map_err(|e| ClientError::Scheme(format!("malformed scan reply: {e}")))?;
        for c in r.candidates {
            if own.distance(&c.entry) > self.evidence.radius {
                // A chunk collision, not a match: verify_reply would refuse it as a lie.
                if self.evidence.list.verify(&c.entry, &c.proof).is_err() {
                    return Err(ClientError::Scheme(format!(
                        "the provider named entry {}, with no valid proof that it is in the announced list; refused",
                        c.entry
                    )));
                }
                continue;
            }
            let reason = crate::MatchInfo {
                entry: c.id,
                label: c.label,
                distance: own.distance(&c.entry),
                hash: c.entry,
            }
            .reason();
            let as_s3 = MatchReply {
                matched: true,
                disclose: true,
                reason: Some(reason),
                entry: Some(c.entry),
                proof: Some(c.proof),
            };
            return crate::device_hash::verify_reply(&json!(as_s3), own, &self.evidence);
        }
        Ok(None)
    }
}

/// The device's work for one image: `hash` cut into chunks, each chunk's point-function keys
/// made, and each organisation's keys sealed to it for `blob`; the capsules, base64, in the
/// organisations' order.
pub fn seal_hash(
    org_keys: &[[u8; 32]],
    blob: &str,
    hash: &Hash256,
) -> Result<Vec<String>, SchemeError> {
    let h = hash.to_bytes();
    let mut per_org: Vec<Vec<KeyShare>> = vec![Vec::with_capacity(CHUNKS); org_keys.len()];
    for c in 0..CHUNKS {
        let point = dpf::bits_of(&h, c * CHUNK_BITS, CHUNK_BITS);
        let pair = dpf::split(&point, (c * CHUNK_BITS) as u16)?;
        for (org, k) in per_org.iter_mut().zip(pair) {
            org.push(k);
        }
    }
    let mut sealed = Vec::with_capacity(org_keys.len());
    for (key, keys) in org_keys.iter().zip(per_org) {
        let body = serde_json::to_vec(&Keys {
            blob: blob.to_string(),
            keys,
        })
        .map_err(|e| SchemeError::Malformed(e.to_string()))?;
        sealed.push(b64(&seal::seal(key, INFO, blob.as_bytes(), &body)?));
    }
    Ok(sealed)
}

/// The provider half: relays each capsule to its organisation and adds their shares.
pub struct Provider {
    links: Vec<Link>,
    params: MultiParams,
}

impl Provider {
    /// Attaches to the organisations, which must hold the same list at the same radius.
    pub fn new(links: Vec<Link>) -> Result<Provider, SchemeError> {
        let mut keys = Vec::new();
        let mut shared: Option<Params> = None;
        for l in &links {
            let p: Params = serde_json::from_value(l.get("/key")?)
                .map_err(|e| SchemeError::Party(format!("an organisation's /key: {e}")))?;
            if let Some(s) = &shared
                && (s.list != p.list || s.radius != p.radius)
            {
                return Err(SchemeError::Config(
                    "the organisations hold different lists or radii; each must hold the same"
                        .into(),
                ));
            }
            keys.push(p.key.clone());
            shared = Some(p);
        }
        let shared =
            shared.ok_or_else(|| SchemeError::Config("no organisation attached".into()))?;
        Ok(Provider {
            links,
            params: MultiParams {
                keys,
                list: shared.list,
                radius: shared.radius,
            },
        })
    }
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "third-party-multi"
    }
    fn public_params(&self) -> Value {
        json!(self.params)
    }
    fn scan(&self, _ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ScanError> {
        let r: Request = crate::device_hash::parse(request)?;
        scanlab_messenger::client::url_id(&r.blob)
            .map_err(|e| ScanError::Malformed(e.to_string()))?;
        if r.sealed.len() != self.links.len() {
            return Err(ScanError::Malformed(format!(
                "{} capsules; expected one per organisation ({})",
                r.sealed.len(),
                self.links.len()
            )));
        }
        let mut total = vec![[0u64; 2]; CHUNKS];
        for (link, sealed) in self.links.iter().zip(&r.sealed) {
            let s: Shares = serde_json::from_value(
                link.post("/match", &json!({ "blob": r.blob, "sealed": sealed }))?,
            )
            .map_err(|e| SchemeError::Party(format!("an organisation's shares: {e}")))?;
            if s.shares.len() != CHUNKS {
                return Err(SchemeError::Party(format!("{} shares", s.shares.len())).into());
            }
            for (t, s) in total.iter_mut().zip(&s.shares) {
                t[0] = dpf::add(t[0], s[0]);
                t[1] = dpf::add(t[1], s[1]);
            }
        }
        let mut positions: Vec<u64> = total
            .iter()
            .filter(|t| t[0] == 1 && t[1] >= 1)
            .map(|t| t[1] - 1)
            .collect();
        positions.sort_unstable();
        positions.dedup();
        let mut reply = Reply::default();
        for p in positions.into_iter().take(MAX_CANDIDATES) {
            let n: Named =
                serde_json::from_value(self.links[0].post("/entry", &json!({ "position": p }))?)
                    .map_err(|e| SchemeError::Party(format!("an organisation's entry: {e}")))?;
            reply.candidates.push(n);
        }
        let counts: Vec<u64> = total.iter().map(|t| t[0]).collect();
        let candidates: Vec<String> = reply
            .candidates
            .iter()
            .map(|c| c.entry.to_string())
            .collect();
        Ok(ScanOutcome {
            reply: json!(reply),
            derived: Some(json!({ "blob": r.blob, "agreeing": counts, "candidates": candidates })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list_of(hashes: &[Hash256]) -> scanlab_hashlist::HashList {
        scanlab_hashlist::HashList {
            entries: hashes
                .iter()
                .enumerate()
                .map(|(i, h)| scanlab_hashlist::Entry {
                    id: i as u64 + 1,
                    kind: Default::default(),
                    hash: *h,
                    label: "stand-in".into(),
                    vouched_by: vec![],
                    added: 0,
                    quality: None,
                })
                .collect(),
        }
    }

    #[test]
    fn the_two_shares_count_agreeing_entries_and_name_a_lone_one() {
        let listed: Vec<Hash256> = (1..=5u8)
            .map(|b| Hash256::from_bytes([b * 37; 32]))
            .collect();
        let orgs: Vec<Organisation> = (0..2)
            .map(|_| {
                Organisation::new(
                    Matcher::new(list_of(&listed), 31).unwrap(),
                    Arc::new(KeyPair::generate()),
                )
            })
            .collect();
        // A query equal to entry 3 on chunks 0..4 and different elsewhere.
        let target = listed[2].to_bytes();
        let mut q = [0u8; 32];
        q[..8].copy_from_slice(&target[..8]);
        let keys: Vec<[u8; 32]> = orgs.iter().map(|o| o.key().public()).collect();
        let sealed = seal_hash(&keys, "b", &Hash256::from_bytes(q)).unwrap();
        let mut total = vec![[0u64; 2]; CHUNKS];
        for (org, capsule) in orgs.iter().zip(sealed) {
            let capsule = b64_field(&json!({ "c": capsule }), "c").unwrap();
            let (s, _) = org.answer("b", &capsule).unwrap();
            // One share alone is not the count.
            assert!(s.shares.iter().any(|x| x[0] > 1));
            for (t, x) in total.iter_mut().zip(&s.shares) {
                t[0] = dpf::add(t[0], x[0]);
                t[1] = dpf::add(t[1], x[1]);
            }
        }
        let pos = orgs[0]
            .base
            .matcher()
            .sorted()
            .iter()
            .position(|h| *h == listed[2])
            .unwrap() as u64;
        for (c, t) in total.iter().enumerate() {
            if c < 4 {
                assert_eq!(*t, [1, pos + 1], "chunk {c}");
            } else {
                assert_eq!(t[0], 0, "chunk {c}");
            }
        }
        assert_eq!(orgs[0].entry(pos as usize).unwrap().entry, listed[2]);
        // A capsule for another blob, or with keys for the wrong chunks, is refused.
        assert!(orgs[0].answer("c", &[0; 80]).is_err());
    }
}
