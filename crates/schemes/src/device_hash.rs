//! S3 `device-hash`: the Commission paper's shortlisted "on-device full hashing with matching
//! at server".
//!
//! - **Client half:** computes the PDQ hash of every image and sends it beside the ciphertext.
//! - **Provider half:** matches the hash against the list (radius 31 by default). It receives
//!   exactly one 256-bit hash per image, listed or not, and keeps it.
//! - **On a match:** the provider tells the client to disclose, naming the list entry's hash as
//!   evidence, with its inclusion proof in the sorted tree of the list whose root
//!   ([`ListRoot`], the log head's sorted root for that list) the announcement carries and the
//!   client pinned. The client checks the proof, computes the distance itself, and uploads the
//!   full plaintext image to the provider's review queue only if both hold; a bare "disclose",
//!   an entry off the announced list, or one too far away, is refused ([`verify_reply`]).

use crate::fingerprint::{CountedFrame, Fingerprint, fingerprint, video_frames, video_verdict};
use crate::{Matcher, Scheme, SchemeError, SimInputs, Simulation};
use scanlab_hashlist::{EntryProof, ListRoot};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::mls::Media;
use scanlab_messenger::scan::{
    ClientCtx, ClientScheme, Outgoing, ProviderScheme, ScanAction, ScanCtx, ScanError, ScanOutcome,
};
use scanlab_pdq::Hash256;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// S3's descriptor.
pub struct DeviceHash;

/// S3's configuration: the list and the radius.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The hash list file.
    pub list: PathBuf,
    /// Match radius in bits.
    #[serde(default = "crate::matcher::default_radius")]
    pub radius: u32,
}

impl Config {
    /// The matcher this configuration describes (reads the list file).
    pub fn matcher(&self) -> Result<Matcher, SchemeError> {
        Matcher::new(crate::read_list(&self.list)?, self.radius)
    }
}

/// What the client sends for each image: `POST /v1/scan`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScanRequest {
    /// The encrypted attachment's blob id.
    pub blob: String,
    /// Its PDQ hash.
    pub hash: Hash256,
}

/// The provider's answer (shared with S4): whether it matched, and whether to disclose.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MatchReply {
    /// Matched the list.
    #[serde(rename = "match")]
    pub matched: bool,
    /// The client should upload the plaintext for review.
    pub disclose: bool,
    /// Why (the list entry and distance), on a match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The matched entry's hash: the device checks its own distance to it before disclosing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<Hash256>,
    /// The entry's inclusion proof under the announced list root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<EntryProof>,
}

impl MatchReply {
    /// The reply for a match result against `matcher`'s list.
    pub fn of(m: &Option<crate::MatchInfo>, matcher: &Matcher) -> MatchReply {
        MatchReply {
            matched: m.is_some(),
            disclose: m.is_some(),
            reason: m.as_ref().map(|m| m.reason()),
            entry: m.as_ref().map(|m| m.hash),
            proof: m.as_ref().and_then(|m| matcher.prove(&m.hash)),
        }
    }
}

/// What the client half checks a provider's evidence against, from the pinned announcement:
/// the radius and the list root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The match radius.
    pub radius: u32,
    /// The committed list.
    pub list: ListRoot,
}

impl Evidence {
    /// Reads `radius` and `list` from announced parameters; a deployment that commits to no
    /// list gets no disclosure from this client.
    pub fn from_params(params: &Value) -> Result<Evidence, SchemeError> {
        let list = serde_json::from_value(params["list"].clone()).map_err(|e| {
            SchemeError::Config(format!(
                "the announcement commits to no list (params.list: {e}); this client will not disclose to it"
            ))
        })?;
        Ok(Evidence {
            radius: pinned_radius(params),
            list,
        })
    }
}

/// The client half's reading of a [`MatchReply`] for an image it hashes to `own`: disclose
/// only when the provider names a list entry, proves it is in the announced list, and the
/// entry is within the radius of `own`, all checked here on the device. A provider that
/// answers "disclose" for an image that matches nothing (to fetch any image it wants), or names
/// an entry of a list it did not announce, gets an error, not the image. What this cannot
/// check: that the announced list is the one everyone is served (gossip of announcements and
/// log heads does that) or what its entries depict.
pub fn verify_reply(
    reply: &Value,
    own: &Hash256,
    evidence: &Evidence,
) -> Result<Option<String>, ClientError> {
    let radius = evidence.radius;
    let r: MatchReply = serde_json::from_value(reply.clone())
        .map_err(|e| ClientError::Scheme(format!("malformed scan reply: {e}")))?;
    if !r.disclose {
        return Ok(None);
    }
    let Some(entry) = r.entry else {
        return Err(ClientError::Scheme(
            "the provider asked for the image without naming the list entry it matched; refused"
                .into(),
        ));
    };
    let listed = r
        .proof
        .as_ref()
        .is_some_and(|p| evidence.list.verify(&entry, p).is_ok());
    if !listed {
        return Err(ClientError::Scheme(format!(
            "the provider asked for the image for entry {entry}, with no valid proof that it is in the announced list; refused"
        )));
    }
    let d = own.distance(&entry);
    if d > radius {
        return Err(ClientError::Scheme(format!(
            "the provider asked for the image for a list entry {d} bits away (radius {radius}); refused"
        )));
    }
    Ok(Some(
        r.reason.unwrap_or_else(|| format!("match at distance {d}")),
    ))
}

/// The radius the client checks evidence against: the one in the (pinned) announcement.
pub(crate) fn pinned_radius(params: &Value) -> u32 {
    params["radius"]
        .as_u64()
        .map_or(crate::DEFAULT_RADIUS, |r| r.min(256) as u32)
}

/// The image hash a client half checks a provider's evidence against.
pub(crate) fn own_hash(a: &Outgoing) -> Result<Hash256, ClientError> {
    match fingerprint(a.media, a.bytes)? {
        Fingerprint::Image { hash, .. } => Ok(hash),
        Fingerprint::Video { .. } => Err(SchemeError::Media(a.media).into()),
    }
}

/// What a scheme that sends the provider something per hash asks for one attachment: the
/// image's request, or one per counted frame of a video (`request` is given the frame; `None`
/// for an image, which it reads from the attachment itself). A video with no counted frames
/// sends nothing.
pub(crate) fn per_hash_requests(
    a: &Outgoing,
    mut request: impl FnMut(Option<&CountedFrame>) -> Result<Value, ClientError>,
) -> Result<ScanAction, ClientError> {
    if a.media != Media::Video {
        return Ok(ScanAction::Request(request(None)?));
    }
    let video = video_frames(a.bytes)?;
    let reqs = video
        .counted()
        .map(|f| request(Some(f)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if reqs.is_empty() {
        ScanAction::Nothing
    } else {
        ScanAction::Requests(reqs)
    })
}

/// The client's decision on the provider's replies to [`per_hash_requests`]: `one` checks a
/// reply against the hash it was for; a video's replies come as an array, one per counted
/// frame, and the video is disclosed by the vPDQ rule ([`video_verdict`]). A reply that `one`
/// refuses (false evidence) refuses the whole attachment.
pub(crate) fn per_hash_verdict(
    a: &Outgoing,
    reply: &Value,
    mut one: impl FnMut(&Value, &Hash256) -> Result<Option<String>, ClientError>,
) -> Result<Option<String>, ClientError> {
    if a.media != Media::Video {
        return one(reply, &own_hash(a)?);
    }
    let video = video_frames(a.bytes)?;
    let replies = reply
        .as_array()
        .filter(|r| r.len() == video.counted.len())
        .ok_or_else(|| {
            ClientError::Scheme(format!(
                "expected one scan reply per counted video frame ({})",
                video.counted.len()
            ))
        })?;
    let per = video
        .counted()
        .zip(replies)
        .map(|(f, r)| one(r, &f.hash.hash))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(video_verdict(&per))
}

impl Scheme for DeviceHash {
    fn code(&self) -> &'static str {
        "S3"
    }
    fn name(&self) -> &'static str {
        "device-hash"
    }
    fn summary(&self) -> &'static str {
        "the device sends each image's PDQ hash; the provider matches it and asks for the image on a match"
    }
    fn explanation(&self) -> &'static str {
        "Option (a) of the European Commission's 2020 expert paper: the device computes each image's PDQ hash and sends it to the provider, which matches it against its list within the radius; on a match the device uploads the image for human review. The provider learns a perceptual hash of every photo, listed or not, and whatever list it is handed decides what is flagged."
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let c: Config = crate::config(self.name(), config)?;
        Ok(Arc::new(Provider::new(c.matcher()?)))
    }
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Ok(Box::new(Client {
            evidence: Evidence::from_params(params)?,
        }))
    }
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        let m = Matcher::new(inputs.list.clone(), crate::DEFAULT_RADIUS)?;
        Ok(Simulation::provider_only(Arc::new(Provider::new(m))))
    }
}

/// S3's client half.
pub struct Client {
    /// What it checks a provider's evidence against.
    pub evidence: Evidence,
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        "device-hash"
    }
    fn on_attachment(&mut self, _: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        per_hash_requests(a, |frame| {
            let hash = match frame {
                Some(f) => f.hash.hash,
                None => own_hash(a)?,
            };
            Ok(json!(ScanRequest {
                blob: a.attachment.blob.clone(),
                hash,
            }))
        })
    }
    fn on_scan_reply(
        &mut self,
        _: &ClientCtx,
        a: &Outgoing,
        reply: &Value,
    ) -> Result<Option<String>, ClientError> {
        per_hash_verdict(a, reply, |r, own| verify_reply(r, own, &self.evidence))
    }
}

/// S3's provider half.
pub struct Provider {
    matcher: Matcher,
}

impl Provider {
    /// Matches against `matcher`'s list.
    pub fn new(matcher: Matcher) -> Provider {
        Provider { matcher }
    }
}

/// Parses a typed request body, or says what is wrong with it.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, ScanError> {
    serde_json::from_value(v.clone()).map_err(|e| ScanError::Malformed(e.to_string()))
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        "device-hash"
    }
    fn public_params(&self) -> Value {
        json!({ "radius": self.matcher.radius(), "list": self.matcher.list_root() })
    }
    fn scan(&self, _ctx: &ScanCtx, request: &Value) -> Result<ScanOutcome, ScanError> {
        let r: ScanRequest = parse(request)?;
        let m = self.matcher.check(&r.hash);
        Ok(ScanOutcome {
            reply: json!(MatchReply::of(&m, &self.matcher)),
            derived: Some(json!({ "blob": r.blob, "hash": r.hash.to_string(), "match": m })),
        })
    }
}
