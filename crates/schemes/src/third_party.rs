//! S8 `third-party`: the Commission paper's "matching by a third party", with one matching
//! organisation beside the provider.
//!
//! # Protocol
//! 1. **The organisation** (`scanlab matcher`, a separate process; or [`Organisation`] in
//!    process for simulations) holds the list, the radius and an HPKE key pair (X25519,
//!    RFC 9180, through [`crate::seal`]). It publishes, at `GET /key`, its public key, the
//!    [`scanlab_hashlist::ListRoot`] of its list and its radius.
//! 2. **The provider** fetches that once and announces it in its scheme parameters
//!    (`key`, `list`, `radius`), which clients pin with the announcement: a later change of
//!    organisation key or list is a scheme change every pinned client sees.
//! 3. **The client** hashes each image (PDQ) and seals the 32-byte hash to the organisation:
//!    `HPKE.Seal(org_pk, info = "scanlab-third-party-v1", aad = blob id, hash)`, and sends the
//!    capsule with the blob id (`POST /v1/scan {blob, sealed}`).
//! 4. **The provider** relays the capsule to the organisation (`POST /match`), authenticated
//!    by the caller token the organisation wrote at start ([`crate::party`]), so that it is
//!    no membership oracle for the network. The provider learns opaque bytes.
//! 5. **The organisation** opens the capsule, matches the hash and answers with a notice only
//!    on a match: the list entry, its inclusion proof and the distance
//!    ([`crate::device_hash::MatchReply`]). It answers `{"notice": null}` otherwise. The
//!    provider passes a notice on to the client, which checks it exactly as in S3
//!    ([`crate::device_hash::verify_reply`]: the entry must be on the pinned list and within
//!    the radius of the device's own hash) and only then uploads the image for review.
//!
//! # What each party learns, by design
//! - **The provider:** ciphertext, metadata, the capsule, and whether each image matched
//!   (a notice or none; a callback instead of an answer would tell it the same, by timing);
//!   the plaintext of matched images.
//! - **The organisation:** every image's 256-bit hash, listed or not, with its blob id. Its
//!   compromise, or a provider that also runs it, is S3's exposure.
//! - **Neither** can make a client disclose an image that is not within the radius of an
//!   entry of the pinned list. Both can put any image on the list: the list is whatever the
//!   organisation is handed.

use crate::device_hash::{Evidence, MatchReply, own_hash};
use crate::party::{Guard, Link};
use crate::seal::{self, KeyPair};
use crate::{Matcher, Party, Scheme, SchemeError, Secret, SimInputs, Simulation, b64, b64_field};
use scanlab_hashlist::ListRoot;
use scanlab_messenger::client::ClientError;
use scanlab_messenger::commit::Db;
use scanlab_messenger::record::{Pending, Recorded};
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Outgoing, ProviderScheme, ScanAction, ScanCtx, ScanError, ScanOutcome,
};
use scanlab_messenger::{SqliteStore, StoreError};
use scanlab_pdq::Hash256;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// HPKE `info` of hash capsules to the organisation.
pub const INFO: &[u8] = b"scanlab-third-party-v1";
/// The organisation's key file in its data directory.
pub const KEY_FILE: &str = "matcher.key";
/// The party's name, in views and compromise rows.
pub const PARTY: &str = "third party";

/// What the organisation publishes at `GET /key`, and the provider announces.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Its HPKE public key, hex.
    pub key: String,
    /// The list it matches against.
    pub list: ListRoot,
    /// Its radius.
    pub radius: u32,
}

/// What the client sends, and the provider relays: one sealed hash.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SealedHash {
    /// The blob id (the capsule's associated data).
    pub blob: String,
    /// The capsule, base64.
    pub sealed: String,
}

/// The organisation's answer: a notice on a match, nothing otherwise.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    /// The match, its entry and proof; `None` for an image that matched nothing.
    pub notice: Option<MatchReply>,
}

/// The matching organisation: its key and its list.
pub struct Organisation {
    keys: Arc<KeyPair>,
    matcher: Matcher,
}

impl Organisation {
    /// An organisation matching against `matcher` with `keys`.
    pub fn new(matcher: Matcher, keys: Arc<KeyPair>) -> Organisation {
        Organisation { keys, matcher }
    }

    /// What it publishes.
    pub fn params(&self) -> Params {
        Params {
            key: hex::encode(self.keys.public()),
            list: self.matcher.list_root(),
            radius: self.matcher.radius(),
        }
    }

    /// Its key pair: what its compromise yields.
    pub fn key(&self) -> Arc<KeyPair> {
        self.keys.clone()
    }

    /// Its list.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Opens `capsule` for `blob` under its key and `info`.
    pub(crate) fn open(
        &self,
        info: &[u8],
        blob: &str,
        capsule: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, SchemeError> {
        Ok(self.keys.open(info, blob.as_bytes(), capsule)?)
    }

    /// Opens and matches one sealed hash; also returns what it derived, for its view.
    pub fn check(&self, blob: &str, capsule: &[u8]) -> Result<(Answer, Value), SchemeError> {
        let bytes = self.open(INFO, blob, capsule)?;
        let raw: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            SchemeError::Malformed(format!("a sealed hash of {} bytes, not 32", bytes.len()))
        })?;
        let hash = Hash256::from_bytes(raw);
        let m = self.matcher.check(&hash);
        let derived = json!({ "blob": blob, "hash": hash.to_string(), "match": m });
        let notice = m.is_some().then(|| MatchReply::of(&m, &self.matcher));
        Ok((Answer { notice }, derived))
    }
}

/// An organisation (`O`: S8's [`Organisation`], or one of S8 multi's) as a recorded service
/// (`DIR/third-party.sqlite`): only the caller holding its token may use any route but
/// `GET /key`.
pub struct OrganisationService<O = Organisation> {
    /// The organisation.
    pub org: Arc<O>,
    db: Db,
    guard: Guard,
}

impl<O: Send + Sync + 'static> OrganisationService<O> {
    /// The organisation recording into `data`, with a fresh caller token in
    /// `data/caller.token`; returns the service and the token.
    pub fn open(
        org: Arc<O>,
        data: &Path,
    ) -> Result<(Arc<OrganisationService<O>>, zeroize::Zeroizing<String>), SchemeError> {
        let (guard, token) = Guard::issue(data)?;
        Ok((
            Arc::new(OrganisationService {
                org,
                db: Db::start(Box::new(SqliteStore::open_party(data, "third-party")?)),
                guard,
            }),
            token,
        ))
    }
}

impl<O: Send + Sync + 'static> Recorded for OrganisationService<O> {
    fn db(&self) -> &Db {
        &self.db
    }
    fn body_limit(&self, _path: &str) -> usize {
        64 << 10
    }
    fn requires_auth(&self, path: &str) -> bool {
        path != "/key"
    }
    async fn who(&self, parts: &axum::http::request::Parts) -> Result<Option<String>, StoreError> {
        Ok(self.guard.who(parts))
    }
}

/// The organisation's HTTP interface, for `scanlab matcher`: `GET /key` → [`Params`], and
/// `POST /match {blob, sealed}` → [`Answer`] for the token holder, behind the recording layer.
pub fn router(service: Arc<OrganisationService>) -> axum::Router {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    async fn key(State(s): State<Arc<OrganisationService>>) -> axum::Json<Params> {
        axum::Json(s.org.params())
    }
    async fn matching(
        State(s): State<Arc<OrganisationService>>,
        pending: Pending,
        axum::Json(req): axum::Json<Value>,
    ) -> Result<axum::Json<Answer>, (StatusCode, String)> {
        let bad = |e: SchemeError| (StatusCode::BAD_REQUEST, e.to_string());
        let req: SealedHash =
            serde_json::from_value(req).map_err(|e| bad(SchemeError::Malformed(e.to_string())))?;
        let capsule = b64_field(&json!({ "s": req.sealed }), "s").map_err(bad)?;
        let (answer, derived) = s.org.check(&req.blob, &capsule).map_err(bad)?;
        pending.stage(scanlab_messenger::record::derived(
            None,
            "POST /match",
            &derived,
        ));
        Ok(axum::Json(answer))
    }
    axum::Router::new()
        .route("/key", get(key))
        .route("/match", post(matching))
        .layer(axum::middleware::from_fn_with_state(
            service.clone(),
            scanlab_messenger::record::record_layer::<OrganisationService>,
        ))
        .with_state(service)
}

/// S8's descriptor.
pub struct ThirdParty;

/// S8's configuration: where the organisation is, and its caller token.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of a running `scanlab matcher`.
    pub matcher: String,
    /// The organisation's caller token file (`caller.token` in its data directory).
    pub matcher_token: PathBuf,
}

impl Scheme for ThirdParty {
    fn code(&self) -> &'static str {
        "S8"
    }
    fn name(&self) -> &'static str {
        "third-party"
    }
    fn summary(&self) -> &'static str {
        "the device seals each image's hash to a matching organisation; the provider relays it, and uploads follow the organisation's notices"
    }
    fn explanation(&self) -> &'static str {
        "Third-party matching: the device seals each image's hash to a matching organisation outside the provider, which the provider relays; the organisation matches and, on a match, issues a notice after which the device uploads the image. The provider learns no hash, but the organisation learns one for every photo, listed or not."
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let c: Config = crate::config(self.name(), config)?;
        let token = crate::party::read_token(&c.matcher_token, "--matcher-token")?;
        Ok(Arc::new(Provider::new(Link::http(&c.matcher, token))?))
    }
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Ok(Box::new(Client::from_params(params)?))
    }
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        let org = Arc::new(Organisation::new(
            Matcher::new(inputs.list.clone(), crate::DEFAULT_RADIUS)?,
            Arc::new(KeyPair::generate()),
        ));
        let data = inputs.dir.join("third-party");
        let (service, token) = OrganisationService::open(org.clone(), &data)?;
        Ok(Simulation {
            provider: Arc::new(Provider::new(Link::local(router(service), token))?),
            parties: vec![Party {
                name: PARTY.into(),
                data,
            }],
            secrets: vec![Secret {
                holder: PARTY.into(),
                key: org.key(),
                info: INFO.to_vec(),
            }],
        })
    }
}

/// S8's client half: seals each hash to the pinned organisation key, and discloses only on a
/// notice it can check.
pub struct Client {
    key: [u8; 32],
    evidence: Evidence,
}

impl Client {
    /// From the announced (and pinned) parameters.
    pub fn from_params(params: &Value) -> Result<Client, SchemeError> {
        let p: Params = serde_json::from_value(params.clone())
            .map_err(|e| SchemeError::Config(format!("third-party parameters: {e}")))?;
        Ok(Client {
            key: seal::public_from_hex(&p.key)?,
            evidence: Evidence::from_params(params)?,
        })
    }
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "third-party"
    }
    fn on_attachment(&mut self, _: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        let blob = &a.attachment.blob;
        crate::device_hash::per_hash_requests(a, |frame| {
            let hash = match frame {
                Some(f) => f.hash.hash,
                None => own_hash(a)?,
            };
            let capsule = seal::seal(&self.key, INFO, blob.as_bytes(), &hash.to_bytes())
                .map_err(SchemeError::from)?;
            Ok(json!(SealedHash {
                blob: blob.clone(),
                sealed: b64(&capsule),
            }))
        })
    }
    fn on_scan_reply(
        &mut self,
        _: &ClientCtx,
        a: &Outgoing,
        reply: &Value,
    ) -> Result<Option<String>, ClientError> {
        crate::device_hash::per_hash_verdict(a, reply, |r, own| {
            crate::device_hash::verify_reply(r, own, &self.evidence)
        })
    }
}

/// S8's provider half: relays sealed hashes, passes notices on.
pub struct Provider {
    link: Link,
    params: Params,
}

impl Provider {
    /// Attaches to an organisation and fetches what it publishes.
    pub fn new(link: Link) -> Result<Provider, SchemeError> {
        let params = serde_json::from_value(link.get("/key")?)
            .map_err(|e| SchemeError::Party(format!("the organisation's /key: {e}")))?;
        Ok(Provider { link, params })
    }
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "third-party"
    }
    fn public_params(&self) -> Value {
        json!(self.params)
    }
    fn scan(&self, _ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ScanError> {
        let r: SealedHash = crate::device_hash::parse(request)?;
        scanlab_messenger::client::url_id(&r.blob)
            .map_err(|e| ScanError::Malformed(e.to_string()))?;
        let answer: Answer = serde_json::from_value(self.link.post("/match", &json!(r))?)
            .map_err(|e| SchemeError::Party(format!("the organisation's answer: {e}")))?;
        let matched = answer.notice.is_some();
        let reply = answer.notice.unwrap_or(MatchReply {
            matched: false,
            disclose: false,
            reason: None,
            entry: None,
            proof: None,
        });
        Ok(ScanOutcome {
            reply: json!(reply),
            derived: Some(json!({ "blob": r.blob, "notified": matched })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scanlab_messenger::client::{LocalTransport, Transport};

    fn org() -> Organisation {
        let m = Matcher::new(Default::default(), 31).unwrap();
        Organisation::new(m, Arc::new(KeyPair::generate()))
    }

    #[test]
    fn a_capsule_opens_only_at_the_organisation_for_its_blob_and_must_hold_a_hash() {
        let o = org();
        let key = o.keys.public();
        let c = seal::seal(&key, INFO, b"b1", &[7; 32]).unwrap();
        let (a, derived) = o.check("b1", &c).unwrap();
        assert_eq!(a.notice, None);
        assert_eq!(derived["hash"], "07".repeat(32));
        assert!(matches!(o.check("b2", &c), Err(SchemeError::Seal(_))));
        assert!(matches!(org().check("b1", &c), Err(SchemeError::Seal(_))));
        let short = seal::seal(&key, INFO, b"b1", &[7; 31]).unwrap();
        assert!(matches!(
            o.check("b1", &short),
            Err(SchemeError::Malformed(_))
        ));
    }

    #[test]
    fn only_the_caller_holding_the_token_may_match() {
        let dir = tempfile::tempdir().unwrap();
        let o = Arc::new(org());
        let key = o.keys.public();
        let (service, token) = OrganisationService::open(o, dir.path()).unwrap();
        let t = LocalTransport::from_router(router(service));
        let body = json!(SealedHash {
            blob: "b".into(),
            sealed: b64(&seal::seal(&key, INFO, b"b", &[1; 32]).unwrap()),
        });
        for wrong in [None, Some("0".repeat(64))] {
            let e = t.post("/match", wrong.as_deref(), &body).unwrap_err();
            assert!(e.to_string().contains("401"), "{e}");
        }
        let a = t.post("/match", Some(&token), &body).unwrap();
        assert_eq!(a, json!({ "notice": null }));
        // Anyone may read the key, which clients get through the provider anyway.
        assert_eq!(t.get("/key", None).unwrap()["key"], hex::encode(key));
    }
}
