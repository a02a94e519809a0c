//! S6 `on-device`: the Commission paper's "all detection on the device". The list goes to every
//! phone, and the phone matches locally.
//!
//! - **Provider half:** announces the list itself in its public parameters (`GET /v1/scheme`),
//!   in one of two [`Form`]s, with the list's sorted-tree root ([`ListRoot`]). It receives
//!   nothing per image: no scan request, no field.
//! - **Client half:** in the plain form, checks that the list it downloaded is the one the
//!   root commits to (so a device holds exactly what the log's head names; comparing that head
//!   with other users' is the list audit's job; a filter cannot be checked against the root,
//!   so the filter form takes the provider's word for what it holds), then matches each outgoing image on the device. On a match the
//!   device itself discloses the plaintext to the provider's review queue
//!   ([`ScanAction::Disclose`]); otherwise nothing leaves it.
//!
//! # The two forms, and what each gives away
//! - [`Form::Plain`]: every list hash, hex. The device matches within the radius (31 bits by
//!   default) through the same multi-index as the provider's matcher: 16 chunks of 16 bits,
//!   each probed within ⌊r/16⌋ = 1 bit for r = 31, since by pigeonhole a hash within 31 bits
//!   of an entry is within 1 bit of it on at least one chunk. Every user then holds every hash: each is a sign pattern from which an
//!   inverse DCT rebuilds a rough picture of the listed image, and anyone can test any image
//!   of their own against it offline, unseen, as often as they like.
//! - [`Form::Filter`]: a binary fuse filter (`xorf`'s `BinaryFuse16`, about 18 bits an entry,
//!   false-positive rate about 2⁻¹⁶) of a domain-separated SHA-256 digest of each hash (unkeyed:
//!   anyone computes it). It does not yield the
//!   hashes, but it matches exactly only (radius 0): a filter answers "is this value in the
//!   set", and a hash within r of an entry is a different value. Chunk filters cannot rescue
//!   it: with 8-bit chunks there are only 32 × 256 possible keys, so a list of a few thousand
//!   entries contains nearly all of them and every image "matches". It is still a membership
//!   oracle: one local query tells a user whether an exact copy of a chosen image is listed.
//!
//! Updating either form means sending it again: a fuse filter is static (rebuilt from all
//! keys), and the plain form is re-announced whole (a delta of 32 bytes per added entry would
//! be possible, and is not built). The evaluation counts the announcement's bytes as the
//! state each device keeps.

use crate::{Matcher, Scheme, SchemeError, SimInputs, Simulation};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use scanlab_hashlist::{Entry, HashList, ListRoot, SortedCommitment};
use scanlab_messenger::client::ClientError;
use scanlab_messenger::scan::{ClientCtx, ClientScheme, Outgoing, ProviderScheme, ScanAction};
use scanlab_pdq::Hash256;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use xorf::Filter as _;

/// S6's descriptor, for one form: `on-device` (S6, [`Form::Plain`]) and `on-device-filter`
/// (S6f, [`Form::Filter`]) are listed apart so the evaluation measures both.
pub struct OnDevice {
    /// The form this descriptor deploys unless configured otherwise.
    pub form: Form,
}

/// How the list is put on the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// Every hash, in the clear: matching within the radius.
    #[default]
    Plain,
    /// A binary fuse filter of the hashes: exact matching only.
    Filter,
}

/// S6's configuration: the list, the radius and the form.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The hash list file.
    pub list: PathBuf,
    /// Match radius in bits (the plain form; the filter form matches exactly).
    #[serde(default = "crate::matcher::default_radius")]
    pub radius: u32,
    /// How the list goes to the device (the descriptor's own form when absent).
    #[serde(default)]
    pub form: Option<Form>,
}

/// Most entries a device accepts in an announced list (a bound on what a hostile provider
/// can make it allocate: 32 MB of plain hashes).
pub const MAX_ENTRIES: usize = 1 << 20;

/// Domain of the filter's key digest.
const FILTER_DOMAIN: &[u8] = b"scanlab-s6-filter-key-v1";

/// The filter key of a hash: the first 8 bytes of SHA-256 over a domain and the hash.
pub fn filter_key(h: &Hash256) -> u64 {
    let d = Sha256::new()
        .chain_update(FILTER_DOMAIN)
        .chain_update(h.to_bytes())
        .finalize();
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The list as a device holds it.
pub enum DeviceList {
    /// Every hash, indexed for radius queries.
    Plain(Matcher),
    /// A binary fuse filter of [`filter_key`]s.
    Filter(xorf::BinaryFuse16),
}

impl DeviceList {
    /// The announcement of `list` in `form`: the public parameters every device downloads.
    pub fn announce(list: &HashList, form: Form, radius: u32) -> Result<Value, SchemeError> {
        let root = SortedCommitment::new(list.hashes()).root();
        Ok(match form {
            Form::Plain => {
                let hashes: Vec<String> = list.entries.iter().map(|e| e.hash.to_string()).collect();
                json!({ "form": form, "radius": radius, "list": root, "hashes": hashes })
            }
            Form::Filter => {
                let keys: Vec<u64> = {
                    let mut k: Vec<u64> = list.hashes().iter().map(filter_key).collect();
                    k.sort_unstable();
                    k.dedup();
                    k
                };
                let f = xorf::BinaryFuse16::try_from(&keys)
                    .map_err(|e| SchemeError::Config(format!("building the filter: {e}")))?;
                let d = &f.descriptor;
                let mut desc = Vec::with_capacity(20);
                desc.extend_from_slice(&d.seed.to_le_bytes());
                desc.extend_from_slice(&d.segment_length.to_le_bytes());
                desc.extend_from_slice(&d.segment_length_mask.to_le_bytes());
                desc.extend_from_slice(&d.segment_count_length.to_le_bytes());
                let fp: Vec<u8> = f
                    .fingerprints
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect();
                json!({
                    "form": form,
                    "radius": 0,
                    "list": root,
                    "filter": { "descriptor": B64.encode(desc), "fingerprints": B64.encode(fp) },
                })
            }
        })
    }

    /// Reads an announcement, checking everything a hostile provider could get wrong: the
    /// form, the size bounds, that the plain hashes are the list the root commits to, and that
    /// the filter's geometry stays inside its fingerprints (a bad one would index past them).
    pub fn from_params(params: &Value) -> Result<DeviceList, SchemeError> {
        let bad = |m: &str| SchemeError::Malformed(format!("on-device list: {m}"));
        let form: Form = serde_json::from_value(params["form"].clone())
            .map_err(|e| bad(&format!("form: {e}")))?;
        let root: ListRoot = serde_json::from_value(params["list"].clone())
            .map_err(|e| bad(&format!("list root: {e}")))?;
        match form {
            Form::Plain => {
                let hashes = params["hashes"]
                    .as_array()
                    .ok_or_else(|| bad("no hashes"))?;
                if hashes.len() > MAX_ENTRIES {
                    return Err(bad(&format!(
                        "{} entries, over {MAX_ENTRIES}",
                        hashes.len()
                    )));
                }
                let mut list = HashList::default();
                for (i, h) in hashes.iter().enumerate() {
                    let hash: Hash256 = h
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| bad(&format!("entry {i} is not a 64-digit hex hash")))?;
                    list.entries.push(Entry::new(i as u64, hash, "on-device"));
                }
                if SortedCommitment::new(list.hashes()).root() != root {
                    return Err(bad(
                        "the hashes are not the list the announced root commits to",
                    ));
                }
                Ok(DeviceList::Plain(Matcher::new(
                    list,
                    crate::device_hash::pinned_radius(params),
                )?))
            }
            Form::Filter => {
                let field = |k: &str| {
                    params["filter"][k]
                        .as_str()
                        .and_then(|s| B64.decode(s).ok())
                        .ok_or_else(|| bad(&format!("filter.{k} is not base64")))
                };
                let desc = field("descriptor")?;
                let fp = field("fingerprints")?;
                if desc.len() != 20 || fp.len() % 2 != 0 || fp.len() / 2 > 2 * MAX_ENTRIES + 4096 {
                    return Err(bad("filter of the wrong size"));
                }
                let u32_at = |i: usize| u32::from_le_bytes(desc[i..i + 4].try_into().unwrap());
                let descriptor = xorf::Descriptor {
                    seed: u64::from_le_bytes(desc[..8].try_into().unwrap()),
                    segment_length: u32_at(8),
                    segment_length_mask: u32_at(12),
                    segment_count_length: u32_at(16),
                };
                let fingerprints: Box<[u16]> = fp
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                let (sl, scl) = (descriptor.segment_length, descriptor.segment_count_length);
                // Every index the lookup computes is below scl + 2·sl when sl is a power of
                // two, the mask is sl − 1, and scl is a multiple of sl.
                let sound = sl.is_power_of_two()
                    && descriptor.segment_length_mask == sl - 1
                    && scl % sl == 0
                    && (scl as u64 + 2 * sl as u64) <= fingerprints.len() as u64;
                if !sound {
                    return Err(bad("filter geometry reaches past its fingerprints"));
                }
                Ok(DeviceList::Filter(xorf::BinaryFuse16 {
                    descriptor,
                    fingerprints,
                }))
            }
        }
    }

    /// The device's verdict on one hash: the reason to disclose, or `None`.
    pub fn check(&self, h: &Hash256) -> Option<String> {
        match self {
            DeviceList::Plain(m) => m.check(h).map(|m| {
                format!(
                    "on-device match: list hash {} at distance {}",
                    m.hash, m.distance
                )
            }),
            DeviceList::Filter(f) => f
                .contains(&filter_key(h))
                .then(|| "on-device match: the list filter holds this hash".to_string()),
        }
    }
}

impl Scheme for OnDevice {
    fn code(&self) -> &'static str {
        match self.form {
            Form::Plain => "S6",
            Form::Filter => "S6f",
        }
    }
    fn name(&self) -> &'static str {
        match self.form {
            Form::Plain => "on-device",
            Form::Filter => "on-device-filter",
        }
    }
    fn summary(&self) -> &'static str {
        match self.form {
            Form::Plain => {
                "every device downloads the list's hashes and matches locally within the radius; on a match the device discloses the image"
            }
            Form::Filter => {
                "every device downloads a binary fuse filter of the list and matches exact hashes locally; on a match the device discloses the image"
            }
        }
    }
    fn explanation(&self) -> &'static str {
        match self.form {
            Form::Plain => {
                "An on-device list: every device downloads the list's hashes and matches each image locally within the radius; only a match leaves the device, as the image for review. The provider learns nothing of unmatched photos, but every user holds the list and can test any image against it offline."
            }
            Form::Filter => {
                "An on-device list shipped as a binary fuse filter of exact hashes: every device matches each image's hash locally; only a match leaves the device, as the image for review. Smaller and less readable than the list itself, but only exact hash matches count, so any re-encoding evades it."
            }
        }
    }
    fn provider(&self, config: &Value) -> Result<Arc<dyn ProviderScheme>, SchemeError> {
        let c: Config = crate::config(self.name(), config)?;
        let list = crate::read_list(&c.list)?;
        Ok(Arc::new(Provider::new(
            self.name(),
            &list,
            c.form.unwrap_or(self.form),
            c.radius,
        )?))
    }
    fn client(&self, params: &Value) -> Result<Box<dyn ClientScheme>, SchemeError> {
        Ok(Box::new(Client {
            name: self.name(),
            list: DeviceList::from_params(params)?,
        }))
    }
    fn simulate(&self, inputs: &SimInputs) -> Result<Simulation, SchemeError> {
        Ok(Simulation::provider_only(Arc::new(Provider::new(
            self.name(),
            inputs.list,
            self.form,
            crate::DEFAULT_RADIUS,
        )?)))
    }
}

/// S6's client half: the list on the device.
pub struct Client {
    name: &'static str,
    list: DeviceList,
}

impl ClientScheme for Client {
    fn name(&self) -> &str {
        self.name
    }
    fn on_attachment(&mut self, _: &ClientCtx, a: &Outgoing) -> Result<ScanAction, ClientError> {
        let verdict = if a.media == scanlab_messenger::mls::Media::Video {
            let video = crate::video_frames(a.bytes)?;
            let per: Vec<Option<String>> = video
                .counted()
                .map(|f| self.list.check(&f.hash.hash))
                .collect();
            crate::video_verdict(&per)
        } else {
            self.list.check(&crate::device_hash::own_hash(a)?)
        };
        Ok(verdict.map_or(ScanAction::Nothing, ScanAction::Disclose))
    }
}

/// S6's provider half: it only announces.
pub struct Provider {
    name: &'static str,
    params: Value,
}

impl Provider {
    /// Announces `list` in `form`, as scheme `name`.
    pub fn new(
        name: &'static str,
        list: &HashList,
        form: Form,
        radius: u32,
    ) -> Result<Provider, SchemeError> {
        if radius > scanlab_hashlist::index::MAX_RADIUS {
            return Err(SchemeError::Config(format!(
                "radius {radius} is over 64; PDQ's threshold is 31"
            )));
        }
        Ok(Provider {
            name,
            params: DeviceList::announce(list, form, radius)?,
        })
    }
}

impl ProviderScheme for Provider {
    fn name(&self) -> &str {
        self.name
    }
    fn public_params(&self) -> Value {
        self.params.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: usize, seed: u64) -> HashList {
        let mut l = HashList::default();
        let mut x = seed;
        for i in 0..n {
            let mut b = [0u8; 32];
            for v in b.iter_mut() {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *v = (x >> 33) as u8;
            }
            l.entries
                .push(Entry::new(i as u64, Hash256::from_bytes(b), "t"));
        }
        l
    }

    fn flip(h: &Hash256, bits: usize) -> Hash256 {
        let mut b = h.to_bytes();
        for i in 0..bits {
            b[i / 8] ^= 1 << (i % 8);
        }
        Hash256::from_bytes(b)
    }

    #[test]
    fn plain_matches_within_the_radius_and_filter_matches_exactly() {
        let l = list(500, 1);
        let h = l.entries[7].hash;
        let plain =
            DeviceList::from_params(&DeviceList::announce(&l, Form::Plain, 31).unwrap()).unwrap();
        let filter =
            DeviceList::from_params(&DeviceList::announce(&l, Form::Filter, 31).unwrap()).unwrap();
        assert!(plain.check(&h).is_some() && filter.check(&h).is_some());
        let near = flip(&h, 20);
        assert_eq!(near.distance(&h), 20);
        assert!(plain.check(&near).is_some());
        assert!(filter.check(&near).is_none(), "the filter matches exactly");
        let far = flip(&h, 40);
        assert!(plain.check(&far).is_none());
        // Unlisted hashes: the filter's false positives, about 2^-16 each.
        let others = list(20_000, 99);
        let fp = others
            .entries
            .iter()
            .filter(|e| filter.check(&e.hash).is_some())
            .count();
        assert!(fp <= 3, "{fp} false positives in 20,000");
    }

    #[test]
    fn a_hostile_announcement_is_refused_not_obeyed() {
        let l = list(50, 2);
        // Hashes that are not the list the root names.
        let mut p = DeviceList::announce(&l, Form::Plain, 31).unwrap();
        p["hashes"][3] = json!(list(1, 7).entries[0].hash.to_string());
        assert!(matches!(
            DeviceList::from_params(&p),
            Err(SchemeError::Malformed(_))
        ));
        // A filter whose geometry indexes past its fingerprints (would panic on lookup).
        let mut f = DeviceList::announce(&l, Form::Filter, 31).unwrap();
        let mut desc = B64
            .decode(f["filter"]["descriptor"].as_str().unwrap())
            .unwrap();
        desc[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        f["filter"]["descriptor"] = json!(B64.encode(&desc));
        assert!(matches!(
            DeviceList::from_params(&f),
            Err(SchemeError::Malformed(_))
        ));
        // The unmodified ones are accepted (the canary for both refusals).
        assert!(
            DeviceList::from_params(&DeviceList::announce(&l, Form::Plain, 31).unwrap()).is_ok()
        );
        assert!(
            DeviceList::from_params(&DeviceList::announce(&l, Form::Filter, 31).unwrap()).is_ok()
        );
        for junk in [
            json!(null),
            json!({"form": "plain"}),
            json!({"form": "bloom"}),
        ] {
            assert!(DeviceList::from_params(&junk).is_err());
        }
    }

    #[test]
    fn the_filter_is_smaller_than_the_plain_list() {
        let l = list(10_000, 3);
        let len = |f| DeviceList::announce(&l, f, 31).unwrap().to_string().len();
        let (p, f) = (len(Form::Plain), len(Form::Filter));
        // About 67 bytes an entry in JSON hex against about 3 (18 bits, base64).
        assert!(p > 60 * 10_000 && f < 4 * 10_000, "plain {p}, filter {f}");
    }
}
