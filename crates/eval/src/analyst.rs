//! The scheme-blind analyst: what a party can read from its own records, and from the keys it
//! holds in a stated threat scenario.
//!
//! It knows no scheme. It applies the same decoders to every record of a view (every body it
//! received, sent, derived or stored, and the images in its review queue), walking each JSON
//! value to its leaves:
//!
//! - **attachment references**: any object with a blob id, key, nonce and digest is tried on the
//!   blob it names, from the party's own blob store; what opens is that image's plaintext;
//! - **perceptual hashes**: any 64-digit hex string, or any base64 string of 32 bytes;
//! - **PDQ intermediates**: base64 strings of 16,384 bytes (a 64×64 array of `f32`) or 1,024
//!   bytes (16×16), all finite;
//! - **images**: base64 strings whose bytes start like a JPEG, PNG, GIF, WebP or BMP file;
//! - **sealed capsules**: in a scenario that hands the party a key, every base64 string is tried
//!   as an HPKE capsule under that key, with each other string of the same record as associated
//!   data; what opens is decoded again with the same decoders;
//! - **point-function keys** ([`scanlab_schemes::dpf::KeyShare`], prio's IDPF): one key says
//!   nothing, but the two keys of one function, found anywhere in the records read together
//!   (a coalition's views), give its point, which is bits of a larger value at the offset the
//!   key names. Bits that together cover all 256 bits of a value for one blob are a hash.
//!
//! What it finds in a record is attributed to every blob id that record (or what opened inside
//! it) names. So a scheme it has never seen, hiding a hash or a thumbnail in any field, is read
//! the same way as the six it was written beside.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use scanlab_messenger::mls::{AttachmentRef, open_attachment};
use scanlab_messenger::{Review, ViewRecord};
use scanlab_pdq::Hash256;
use scanlab_schemes::Secret;
use scanlab_schemes::dpf::{self, KeyShare};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// How the party came to hold an image's plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainSource {
    /// It opened the attachment with a key found in its records.
    AttachmentKey,
    /// The image itself was in its records (a review upload, a forward, a capsule it opened).
    Image,
}

/// What a party can read about one blob (one image send).
#[derive(Clone, Debug, Default)]
pub struct Knowledge {
    /// The image file, and how it was obtained.
    pub plaintext: Option<(Vec<u8>, PlainSource)>,
    /// A 64×64 luminance array.
    pub luma64: Option<Vec<f32>>,
    /// A 16×16 DCT array.
    pub dct16: Option<Vec<f32>>,
    /// 256-bit values that may be perceptual hashes.
    pub hashes: Vec<Hash256>,
}

impl Knowledge {
    /// Whether anything at all is known.
    pub fn any(&self) -> bool {
        self.plaintext.is_some()
            || self.luma64.is_some()
            || self.dct16.is_some()
            || !self.hashes.is_empty()
    }

    /// Adds what `o` knows: the better plaintext (an opened attachment over a copy), the first
    /// thumbnail of each kind, every hash once.
    pub fn merge(&mut self, o: Knowledge) {
        match (&self.plaintext, &o.plaintext) {
            (None, Some(_))
            | (Some((_, PlainSource::Image)), Some((_, PlainSource::AttachmentKey))) => {
                self.plaintext = o.plaintext
            }
            _ => {}
        }
        self.luma64 = self.luma64.take().or(o.luma64);
        self.dct16 = self.dct16.take().or(o.dct16);
        for h in o.hashes {
            if !self.hashes.contains(&h) {
                self.hashes.push(h);
            }
        }
    }

    /// Perceptual hashes the party has or can compute: those it holds, else the PDQ of what
    /// it holds (a thumbnail or the image).
    pub fn perceptual_hashes(&self) -> Vec<Hash256> {
        if !self.hashes.is_empty() {
            return self.hashes.clone();
        }
        if let Some(l) = &self.luma64 {
            let mut buf = [[0f32; 64]; 64];
            for (row, c) in buf.iter_mut().zip(l.chunks_exact(64)) {
                row.copy_from_slice(c);
            }
            return vec![scanlab_pdq::hash_from_downsample(&buf).hash];
        }
        if let Some(d) = &self.dct16 {
            return vec![scanlab_pdq::hash_from_dct16(&to16(d))];
        }
        if let Some((img, _)) = &self.plaintext
            && let Ok(p) = scanlab_schemes::pdq_of(img)
        {
            return vec![p.hash];
        }
        Vec::new()
    }
}

fn to16(v: &[f32]) -> [[f32; 16]; 16] {
    let mut d = [[0f32; 16]; 16];
    for (row, c) in d.iter_mut().zip(v.chunks_exact(16)) {
        row.copy_from_slice(c);
    }
    d
}

/// The analyst for one party in one scenario: the party's blob store, and the keys it holds.
pub struct Analyst<'a> {
    blobs: &'a BTreeMap<String, Vec<u8>>,
    keys: Vec<&'a Secret>,
}

/// Findings in one JSON value, before attribution.
#[derive(Default)]
struct Found {
    refs: BTreeSet<String>,
    knowledge: Knowledge,
    by_ref: Vec<(String, Knowledge)>,
    dpf: Vec<KeyShare>,
}

const IMAGE_MAGIC: [&[u8]; 6] = [
    b"\xFF\xD8\xFF",
    b"\x89PNG",
    b"GIF8",
    b"RIFF",
    b"BM",
    b"II*\0",
];

fn looks_like_image(b: &[u8]) -> bool {
    IMAGE_MAGIC.iter().any(|m| b.starts_with(m))
}

fn f32s(b: &[u8]) -> Option<Vec<f32>> {
    let v: Vec<f32> = b
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    v.iter().all(|f| f.is_finite()).then_some(v)
}

/// Every string leaf of `v`, in order.
pub(crate) fn strings<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

impl<'a> Analyst<'a> {
    /// An analyst over `blobs` (the party's stored ciphertexts) holding `keys`.
    pub fn new(blobs: &'a BTreeMap<String, Vec<u8>>, keys: Vec<&'a Secret>) -> Analyst<'a> {
        Analyst { blobs, keys }
    }

    /// Everything the party can read, by blob id, from its view and its review queue.
    pub fn read(&self, view: &[ViewRecord], reviews: &[Review]) -> BTreeMap<String, Knowledge> {
        let mut out: BTreeMap<String, Knowledge> = BTreeMap::new();
        let mut add = |f: Found, extra_refs: &BTreeSet<String>| {
            for (blob, k) in f.by_ref {
                out.entry(blob).or_default().merge(k);
            }
            if f.knowledge.any() {
                for b in f.refs.iter().chain(extra_refs) {
                    out.entry(b.clone()).or_default().merge(f.knowledge.clone());
                }
            }
        };
        let mut keys: Vec<FoundKey> = Vec::new();
        for r in view {
            let mut refs = BTreeSet::new();
            // An endpoint can name a blob too (`GET /v1/blobs/ID`).
            for part in r.endpoint.split(['/', ' ']) {
                if self.blobs.contains_key(part) {
                    refs.insert(part.to_string());
                }
            }
            for v in [
                r.json(),
                r.extra.as_ref().and_then(|e| serde_json::from_str(e).ok()),
            ]
            .into_iter()
            .flatten()
            {
                let f = self.walk(&v, 0);
                for k in &f.dpf {
                    keys.push((f.refs.union(&refs).cloned().collect(), k.clone()));
                }
                add(f, &refs);
            }
        }
        for (blob, h) in combine_point_functions(&keys) {
            out.entry(blob).or_default().merge(Knowledge {
                hashes: vec![h],
                ..Default::default()
            });
        }
        for rv in reviews {
            let mut k = Knowledge::default();
            if looks_like_image(&rv.image) {
                k.plaintext = Some((rv.image.clone(), PlainSource::Image));
            }
            out.entry(rv.blob.clone()).or_default().merge(k);
        }
        out.retain(|_, k| k.any());
        out
    }

    /// Everything the decoders read in one JSON value that is no record (the scheme
    /// parameters every device downloads), unattributed and not deduplicated.
    pub fn decode(&self, v: &Value) -> Knowledge {
        let f = self.walk(v, 0);
        let mut k = f.knowledge;
        for (_, o) in f.by_ref {
            k.plaintext = k.plaintext.or(o.plaintext);
            k.hashes.extend(o.hashes);
        }
        k
    }

    /// Decodes one JSON value (a record body, or what opened inside one).
    fn walk(&self, v: &Value, depth: usize) -> Found {
        let mut f = Found::default();
        let mut all = Vec::new();
        strings(v, &mut all);
        for s in &all {
            if self.blobs.contains_key(*s) {
                f.refs.insert(s.to_string());
            }
        }
        self.visit(v, &all, depth, &mut f);
        f
    }

    fn visit(&self, v: &Value, context: &[&str], depth: usize, f: &mut Found) {
        match v {
            Value::Object(o) => {
                if let Ok(k) = serde_json::from_value::<KeyShare>(v.clone()) {
                    f.dpf.push(k);
                    return;
                }
                if let Ok(a) = serde_json::from_value::<AttachmentRef>(v.clone())
                    && let Some(ct) = self.blobs.get(&a.blob)
                    && let Ok(img) = open_attachment(ct, &a)
                {
                    f.by_ref.push((
                        a.blob.clone(),
                        Knowledge {
                            plaintext: Some((img, PlainSource::AttachmentKey)),
                            ..Default::default()
                        },
                    ));
                }
                o.values().for_each(|x| self.visit(x, context, depth, f));
            }
            Value::Array(a) => a.iter().for_each(|x| self.visit(x, context, depth, f)),
            Value::String(s) => self.string(s, context, depth, f),
            _ => {}
        }
    }

    fn string(&self, s: &str, context: &[&str], depth: usize, f: &mut Found) {
        if s.len() == 64
            && let Ok(h) = s.parse::<Hash256>()
        {
            f.knowledge.hashes.push(h);
            return;
        }
        if s.len() < 44 || !s.len().is_multiple_of(4) {
            return;
        }
        let Ok(bytes) = B64.decode(s) else { return };
        match bytes.len() {
            32 => {
                let mut h = [0u8; 32];
                h.copy_from_slice(&bytes);
                f.knowledge.hashes.push(Hash256::from_bytes(h));
                return;
            }
            16384 => {
                if let Some(v) = f32s(&bytes) {
                    f.knowledge.luma64 = Some(v);
                    return;
                }
            }
            1024 => {
                if let Some(v) = f32s(&bytes) {
                    f.knowledge.dct16 = Some(v);
                    return;
                }
            }
            _ => {}
        }
        if looks_like_image(&bytes) {
            f.knowledge.plaintext = Some((bytes, PlainSource::Image));
            return;
        }
        if depth < 2 && bytes.len() >= scanlab_schemes::seal::ENC_LEN + 16 {
            self.try_open(&bytes, context, depth, f);
        }
    }

    /// Tries every key the scenario gives on one base64 value, with every short string of the
    /// record (and nothing) as associated data.
    fn try_open(&self, capsule: &[u8], context: &[&str], depth: usize, f: &mut Found) {
        for k in &self.keys {
            let aads =
                std::iter::once("").chain(context.iter().copied().filter(|c| c.len() <= 256));
            for aad in aads {
                let Ok(pt) = k.key.open(&k.info, aad.as_bytes(), capsule) else {
                    continue;
                };
                if looks_like_image(&pt) {
                    // The associated data that opened it names the blob it belongs to.
                    if self.blobs.contains_key(aad) {
                        f.refs.insert(aad.to_string());
                    }
                    f.knowledge.plaintext = Some((pt.to_vec(), PlainSource::Image));
                } else if let Ok(v) = serde_json::from_slice::<Value>(&pt) {
                    let inner = self.walk(&v, depth + 1);
                    f.refs.extend(inner.refs);
                    f.by_ref.extend(inner.by_ref);
                    f.dpf.extend(inner.dpf);
                    f.knowledge.merge(inner.knowledge);
                }
                return;
            }
        }
    }
}

/// A point-function key, with the blobs named where it was found.
type FoundKey = (BTreeSet<String>, KeyShare);

/// Pairs the point-function keys found (by their shared public part), recovers each pair's
/// point, and assembles, per blob the keys were found with, the 256-bit values whose bits the
/// points cover completely.
fn combine_point_functions(keys: &[FoundKey]) -> Vec<(String, Hash256)> {
    let mut pairs: BTreeMap<&str, [Option<&FoundKey>; 2]> = BTreeMap::new();
    for k in keys {
        if k.1.agg <= 1 {
            pairs.entry(k.1.public.as_str()).or_default()[k.1.agg as usize] = Some(k);
        }
    }
    // Per blob: the bits known, by position.
    let mut bits: BTreeMap<String, BTreeMap<usize, bool>> = BTreeMap::new();
    for [a, b] in pairs.into_values() {
        let (Some(a), Some(b)) = (a, b) else { continue };
        let (Ok(ka), Ok(kb)) = (a.1.open(), b.1.open()) else {
            continue;
        };
        let Some(point) = dpf::recover(&ka, &kb) else {
            continue;
        };
        for blob in a.0.union(&b.0) {
            let known = bits.entry(blob.clone()).or_default();
            for (i, bit) in point.iter().enumerate() {
                known.insert(a.1.offset as usize + i, *bit);
            }
        }
    }
    bits.into_iter()
        .filter(|(_, known)| (0..256).all(|i| known.contains_key(&i)))
        .map(|(blob, known)| {
            let mut h = [0u8; 32];
            for (i, bit) in known.into_iter().filter(|(i, _)| *i < 256) {
                h[i / 8] |= u8::from(bit) << (7 - i % 8);
            }
            (blob, Hash256::from_bytes(h))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! The decoders on records whose answer is known: each finding must be made, attributed
    //! to the right blob, and not made where there is nothing.
    use super::*;
    use scanlab_messenger::RecordKind;
    use scanlab_schemes::seal::KeyPair;
    use serde_json::json;
    use std::sync::Arc;

    const H: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

    fn rec(v: Value) -> ViewRecord {
        ViewRecord::of(
            RecordKind::Received,
            None,
            "POST /x",
            v.to_string().as_bytes(),
            true,
        )
    }

    fn blobs() -> BTreeMap<String, Vec<u8>> {
        ["b1", "b2"].map(|b| (b.to_string(), vec![0u8; 600])).into()
    }

    #[test]
    fn hashes_and_thumbnails_hidden_in_any_field_are_found_and_attributed() {
        let bl = blobs();
        let luma: Vec<u8> = (0..4096)
            .flat_map(|i| (i as f32 % 255.0).to_le_bytes())
            .collect();
        let view = vec![
            // A hash in an innocuous field, hex; another as base64 of 32 bytes.
            rec(json!({ "ref": "b1", "note": { "deep": [H] } })),
            rec(json!({ "ref": "b2", "padding": B64.encode([7u8; 32]) })),
            // A thumbnail in a field named for something else.
            rec(json!({ "id": "b2", "telemetry": B64.encode(&luma) })),
            // A hash with no blob named: known, but about nothing.
            rec(json!({ "orphan": H })),
        ];
        let k = Analyst::new(&bl, vec![]).read(&view, &[]);
        assert_eq!(k["b1"].hashes, vec![H.parse::<Hash256>().unwrap()]);
        assert_eq!(k["b2"].hashes, vec![Hash256::from_bytes([7; 32])]);
        assert_eq!(k["b2"].luma64.as_ref().unwrap().len(), 4096);
        assert!(k["b1"].luma64.is_none() && k["b1"].plaintext.is_none());
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn ciphertext_and_metadata_alone_yield_nothing() {
        let bl = blobs();
        let view = vec![
            rec(json!({ "group": "g", "recipients": ["bob"], "payload": B64.encode([9u8; 300]) })),
            rec(json!({ "id": "b1" })),
            rec(json!({ "blob": "b2", "sealed": B64.encode([3u8; 700]) })),
        ];
        assert!(Analyst::new(&bl, vec![]).read(&view, &[]).is_empty());
    }

    #[test]
    fn a_capsule_opens_only_for_the_analyst_holding_its_key() {
        let png = {
            let img = image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]));
            let mut out = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                .unwrap();
            out
        };
        let key = KeyPair::generate();
        let capsule = scanlab_schemes::seal::seal(&key.public(), b"ctx", b"b2", &png).unwrap();
        let view = vec![rec(json!({ "blob": "b2", "sealed": B64.encode(&capsule) }))];
        let bl = blobs();
        assert!(Analyst::new(&bl, vec![]).read(&view, &[]).is_empty());
        let secret = Secret {
            holder: "test".into(),
            key: Arc::new(key),
            info: b"ctx".to_vec(),
        };
        let k = Analyst::new(&bl, vec![&secret]).read(&view, &[]);
        assert_eq!(k["b2"].plaintext.as_ref().unwrap().0, png);
        // The wrong context opens nothing.
        let wrong = Secret {
            info: b"other".to_vec(),
            ..secret
        };
        assert!(Analyst::new(&bl, vec![&wrong]).read(&view, &[]).is_empty());
    }

    #[test]
    fn point_function_keys_give_a_hash_only_when_both_halves_of_every_chunk_are_read() {
        let h = Hash256::from_bytes(std::array::from_fn(|i| (i * 41 + 7) as u8));
        let other = Hash256::from_bytes([0x5a; 32]);
        // Each hash cut into 16 chunks of 16 bits; each chunk's two keys go to two views.
        let split = |h: &Hash256, blob: &str| -> [ViewRecord; 2] {
            let mut halves = [Vec::new(), Vec::new()];
            for c in 0..16 {
                let p = dpf::bits_of(&h.to_bytes(), c * 16, 16);
                let pair = dpf::split(&p, (c * 16) as u16).unwrap();
                for (half, k) in halves.iter_mut().zip(pair) {
                    half.push(k);
                }
            }
            halves.map(|keys| rec(json!({ "blob": blob, "keys": keys })))
        };
        let [a1, b1] = split(&h, "b1");
        let [a2, b2] = split(&other, "b2");
        let bl = blobs();
        let read = |v: Vec<ViewRecord>| Analyst::new(&bl, vec![]).read(&v, &[]);
        // One organisation's view, however much of it: nothing.
        assert!(read(vec![a1.clone(), a2.clone()]).is_empty());
        // Both halves: the hash, for its blob only.
        let k = read(vec![a1.clone(), b1.clone(), a2.clone()]);
        assert_eq!(k["b1"].hashes, vec![h]);
        assert!(!k.contains_key("b2"));
        // Halves of two different splits never pair: nothing.
        assert!(read(vec![a1.clone(), b2.clone()]).is_empty());
        // Fifteen chunks of sixteen are not a hash.
        let mut v: Value = a1.json().unwrap();
        v["keys"].as_array_mut().unwrap().pop();
        assert!(read(vec![rec(v), b1]).is_empty());
    }
}
