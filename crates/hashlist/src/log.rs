//! The auditable list: an append-only transparency log of list entries, in the style of
//! Certificate Transparency (RFC 6962 / RFC 9162).
//!
//! # Why
//! The open letter's central warning is that whoever controls the hash list decides what is
//! detected, and can target one user with a list nobody else sees. A transparency log does not
//! stop an operator from adding a lawful image for everyone (hashes are opaque), but it makes a
//! list served to one user alone, a **split view**, detectable, and it lets anyone check that a
//! given hash is, or is not, in the list everyone was served.
//!
//! # The construction
//! - **Leaves** are the canonical bytes of a [`LogLeaf`] (id, hash, label, time, vouchers), in
//!   order of addition. The log tree is RFC 6962's Merkle tree over them, computed by the
//!   `ct-merkle` crate (no home-made tree code here): inclusion proofs (RFC 9162 §2.1.3) and
//!   consistency proofs between versions (§2.1.4) come from it.
//! - **Absence.** An append-only log cannot prove a negative without revealing everything. So
//!   each version also commits to a second RFC 6962 tree over the *sorted, distinct* hashes.
//!   A proof that `h` is absent is its two neighbours `a < h < b` at adjacent positions `i, i+1`
//!   of that sorted tree, each with an inclusion proof (or one neighbour at position 0 or
//!   `n-1`, for an `h` outside the range). This is the sorted-leaf technique of
//!   certificate-revocation transparency (Laurie and Kasper, "Revocation Transparency", 2012).
//!   What it proves is exact absence: it cannot show that no *near* duplicate of `h` (within
//!   PDQ's distance 31) is listed; only a party holding the full list can check that.
//! - **Signed tree head** ([`SignedTreeHead`]): size, both roots and a timestamp, signed with
//!   Ed25519 (RFC 8032) by the list operator under the context string
//!   `scanlab-list-sth-v1`.
//! - **Gossip.** Clients exchange the heads they were served ([`Auditor::gossip`]). Two valid
//!   heads of the same size with different roots, or of different sizes without a valid
//!   consistency proof, are a split view; the two signed heads are the evidence.
//! - **k-of-n admission** ([`Policy`]): a hash enters only when `k` registered organisations, in
//!   `k` distinct jurisdictions, have each signed it (Ed25519, context `scanlab-voucher-v1`).
//!   This is Apple's 2021 rule that a hash must come from at least two child-safety
//!   organisations in different sovereign jurisdictions. Vouchers are inside the leaf, so any
//!   client can re-check them.
//!
//! What the sorted tree commits to is checked by auditors who download the whole list
//! ([`Auditor::audit_full_list`]); a client holding only proofs relies on them for that.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
pub use ed25519_dalek::VerifyingKey as PublicKey;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use scanlab_pdq::Hash256;
use sha2_11::Sha256;
use std::collections::BTreeSet;

/// Signing context for tree heads.
const STH_CONTEXT: &[u8] = b"scanlab-list-sth-v1";
/// Signing context for organisations' vouchers.
const VOUCHER_CONTEXT: &[u8] = b"scanlab-voucher-v1";

/// An organisation's signature on one hash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Voucher {
    /// The organisation's registered name.
    pub org: String,
    /// Ed25519 signature over `scanlab-voucher-v1 ‖ hash`.
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLeaf {
    /// Entry id.
    pub id: u64,
    /// The hash.
    pub hash: Hash256,
    /// Stand-in category.
    pub label: String,
    /// Seconds since the Unix epoch.
    pub added: u64,
    /// The organisations' signatures.
    pub vouchers: Vec<Voucher>,
}

impl LogLeaf {
    /// Canonical, unambiguous bytes (length-prefixed fields), the Merkle leaf.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + 80 * self.vouchers.len());
        b.extend_from_slice(b"scanlab-leaf-v1");
        b.extend_from_slice(&self.id.to_be_bytes());
        b.extend_from_slice(&self.hash.to_bytes());
        b.extend_from_slice(&self.added.to_be_bytes());
        put(&mut b, self.label.as_bytes());
        b.extend_from_slice(&(self.vouchers.len() as u32).to_be_bytes());
        for v in &self.vouchers {
            put(&mut b, v.org.as_bytes());
            b.extend_from_slice(&v.signature);
        }
        b
    }
}

fn put(b: &mut Vec<u8>, s: &[u8]) {
    b.extend_from_slice(&(s.len() as u32).to_be_bytes());
    b.extend_from_slice(s);
}

/// A registered organisation, as the policy knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgKey {
    /// Name, as in [`Voucher::org`].
    pub name: String,
    /// Sovereign jurisdiction (e.g. a country code).
    pub jurisdiction: String,
    /// Its Ed25519 public key.
    pub key: VerifyingKey,
}

/// An organisation's signing side (a simulated child-safety organisation, in scanlab).
pub struct Organisation {
    /// Public part.
    pub public: OrgKey,
    key: SigningKey,
}

impl Organisation {
    /// An organisation with a key from 32 secret bytes.
    pub fn new(name: &str, jurisdiction: &str, secret: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&secret);
        Organisation {
            public: OrgKey {
                name: name.into(),
                jurisdiction: jurisdiction.into(),
                key: key.verifying_key(),
            },
            key,
        }
    }

    /// Vouches for a hash.
    pub fn vouch(&self, hash: &Hash256) -> Voucher {
        let msg = [VOUCHER_CONTEXT, &hash.to_bytes()[..]].concat();
        Voucher {
            org: self.public.name.clone(),
            signature: self.key.sign(&msg).to_bytes(),
        }
    }
}

/// The k-of-n admission rule.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Valid vouchers needed, from organisations in distinct jurisdictions.
    pub k: usize,
    /// The registered organisations.
    pub orgs: Vec<OrgKey>,
}

/// Why an entry was refused by the policy, or a proof or head by a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// Too few valid vouchers from distinct jurisdictions.
    #[error(
        "hash {hash} has valid vouchers from {got} distinct jurisdiction(s); the policy needs {need}"
    )]
    Policy {
        /// The hash.
        hash: Hash256,
        /// Distinct jurisdictions with a valid voucher.
        got: usize,
        /// Required.
        need: usize,
    },
    /// A tree head's signature does not verify under the operator key.
    #[error(
        "tree head of size {size} is not signed by the list operator\n  do not trust this list version"
    )]
    BadSignature {
        /// Its claimed size.
        size: u64,
    },
    /// An inclusion, absence or consistency proof failed.
    #[error("{0} proof failed to verify")]
    Proof(&'static str),
    /// Two heads that cannot both be honest: the evidence of a split view.
    #[error("split view: tree heads of sizes {} and {} are inconsistent\n  the operator served different lists; keep both signed heads as evidence", .0.size, .1.size)]
    SplitView(Box<SignedTreeHead>, Box<SignedTreeHead>),
    /// A full-list audit found the sorted root does not match the log's content.
    #[error("the sorted-hash root of size {0} does not match the logged entries")]
    SortedRootMismatch(u64),
    /// An index outside the tree.
    #[error("position {0} is outside the log")]
    OutOfRange(u64),
}

impl Policy {
    /// Checks `vouchers` for `hash`: counts distinct jurisdictions of registered organisations
    /// whose signature verifies.
    pub fn check(&self, hash: &Hash256, vouchers: &[Voucher]) -> Result<(), LogError> {
        let msg = [VOUCHER_CONTEXT, &hash.to_bytes()[..]].concat();
        let mut jurisdictions = BTreeSet::new();
        for v in vouchers {
            let Some(org) = self.orgs.iter().find(|o| o.name == v.org) else {
                continue;
            };
            if org
                .key
                .verify(&msg, &Signature::from_bytes(&v.signature))
                .is_ok()
            {
                jurisdictions.insert(org.jurisdiction.clone());
            }
        }
        if jurisdictions.len() < self.k {
            return Err(LogError::Policy {
                hash: *hash,
                got: jurisdictions.len(),
                need: self.k,
            });
        }
        Ok(())
    }
}

/// A signed tree head: what a client is served with each list version.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedTreeHead {
    /// Number of log entries.
    pub size: u64,
    /// RFC 6962 root over the leaves in order.
    #[serde(with = "hex32")]
    pub log_root: [u8; 32],
    /// RFC 6962 root over the sorted distinct hashes.
    #[serde(with = "hex32")]
    pub sorted_root: [u8; 32],
    /// Number of distinct hashes (leaves of the sorted tree).
    pub distinct: u64,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    /// Ed25519 signature by the operator.
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

impl SignedTreeHead {
    fn message(&self) -> Vec<u8> {
        let mut m = STH_CONTEXT.to_vec();
        m.extend_from_slice(&self.size.to_be_bytes());
        m.extend_from_slice(&self.log_root);
        m.extend_from_slice(&self.sorted_root);
        m.extend_from_slice(&self.distinct.to_be_bytes());
        m.extend_from_slice(&self.timestamp.to_be_bytes());
        m
    }
}

/// Proof that a hash is in no entry of a version.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AbsenceProof {
    /// The nearest smaller listed hash and its sorted position, with an inclusion proof.
    pub below: Option<(u64, Hash256, Vec<u8>)>,
    /// The nearest larger listed hash and its sorted position, with an inclusion proof.
    pub above: Option<(u64, Hash256, Vec<u8>)>,
}

fn sorted_tree(hashes: &BTreeSet<Hash256>) -> MemoryBackedTree<Sha256, [u8; 32]> {
    let mut t = MemoryBackedTree::new();
    for h in hashes {
        t.push(h.to_bytes());
    }
    t
}

fn root_bytes(r: &RootHash<Sha256>) -> [u8; 32] {
    r.as_bytes().as_slice().try_into().expect("SHA-256 output")
}

fn root_of(bytes: &[u8; 32], n: u64) -> RootHash<Sha256> {
    RootHash::new((*bytes).into(), n)
}

/// The operator's side: holds the log and the signing key.
pub struct ListLog {
    key: SigningKey,
    policy: Policy,
    tree: MemoryBackedTree<Sha256, Vec<u8>>,
    leaves: Vec<LogLeaf>,
}

impl ListLog {
    /// An empty log with the operator's 32-byte secret key and an admission policy.
    pub fn new(secret: [u8; 32], policy: Policy) -> Self {
        ListLog {
            key: SigningKey::from_bytes(&secret),
            policy,
            tree: MemoryBackedTree::new(),
            leaves: Vec::new(),
        }
    }

    /// The operator's public key, which clients pin.
    pub fn operator_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The leaves, in order.
    pub fn leaves(&self) -> &[LogLeaf] {
        &self.leaves
    }

    /// Appends an entry if the policy admits it; returns its position.
    pub fn append(&mut self, leaf: LogLeaf) -> Result<u64, LogError> {
        self.policy.check(&leaf.hash, &leaf.vouchers)?;
        self.append_unchecked(leaf)
    }

    /// Appends without the policy check: what a dishonest or coerced operator does. Clients
    /// that re-check vouchers ([`Auditor::check_leaf`]) still catch it; nothing else does.
    pub fn dangerous_append_unchecked(&mut self, leaf: LogLeaf) -> u64 {
        self.append_unchecked(leaf).expect("never fails")
    }

    fn append_unchecked(&mut self, leaf: LogLeaf) -> Result<u64, LogError> {
        self.tree.push(leaf.to_bytes());
        self.leaves.push(leaf);
        Ok(self.leaves.len() as u64 - 1)
    }

    fn distinct(&self, size: u64) -> BTreeSet<Hash256> {
        self.leaves[..size as usize]
            .iter()
            .map(|l| l.hash)
            .collect()
    }

    /// Signs a head for the current version.
    pub fn publish(&self, timestamp: u64) -> SignedTreeHead {
        let distinct = self.distinct(self.leaves.len() as u64);
        let sorted = sorted_tree(&distinct);
        let mut sth = SignedTreeHead {
            size: self.leaves.len() as u64,
            log_root: root_bytes(&self.tree.root()),
            sorted_root: root_bytes(&sorted.root()),
            distinct: distinct.len() as u64,
            timestamp,
            signature: [0; 64],
        };
        sth.signature = self.key.sign(&sth.message()).to_bytes();
        sth
    }

    /// Inclusion proof of leaf `idx` in the current version.
    pub fn prove_inclusion(&self, idx: u64) -> Result<Vec<u8>, LogError> {
        if idx >= self.leaves.len() as u64 {
            return Err(LogError::OutOfRange(idx));
        }
        Ok(self.tree.prove_inclusion(idx as usize).as_bytes().to_vec())
    }

    /// Consistency proof from an earlier size to the current version.
    pub fn prove_consistency(&self, old_size: u64) -> Result<Vec<u8>, LogError> {
        let n = self.leaves.len() as u64;
        if old_size == 0 || old_size > n {
            return Err(LogError::OutOfRange(old_size));
        }
        Ok(self
            .tree
            .prove_consistency((n - old_size) as usize)
            .as_bytes()
            .to_vec())
    }

    /// Proof that `hash` is in no entry of the current version, or `None` if it is listed.
    pub fn prove_absence(&self, hash: &Hash256) -> Option<AbsenceProof> {
        let distinct = self.distinct(self.leaves.len() as u64);
        if distinct.contains(hash) {
            return None;
        }
        let sorted: Vec<Hash256> = distinct.iter().copied().collect();
        let tree = sorted_tree(&distinct);
        let pos = sorted.partition_point(|x| x < hash);
        let proof = |i: usize| {
            (
                i as u64,
                sorted[i],
                tree.prove_inclusion(i).as_bytes().to_vec(),
            )
        };
        Some(AbsenceProof {
            below: (pos > 0).then(|| proof(pos - 1)),
            above: (pos < sorted.len()).then(|| proof(pos)),
        })
    }
}

/// A client's (or auditor's) side: pins the operator key and the policy, verifies heads and
/// proofs, remembers what it has seen, and gossips.
pub struct Auditor {
    operator: VerifyingKey,
    policy: Policy,
    latest: Option<SignedTreeHead>,
}

impl Auditor {
    /// A client that trusts heads signed by `operator`.
    pub fn new(operator: VerifyingKey, policy: Policy) -> Self {
        Auditor {
            operator,
            policy,
            latest: None,
        }
    }

    /// Checks a head's signature.
    pub fn verify_head(&self, sth: &SignedTreeHead) -> Result<(), LogError> {
        self.operator
            .verify(&sth.message(), &Signature::from_bytes(&sth.signature))
            .map_err(|_| LogError::BadSignature { size: sth.size })
    }

    /// Accepts a new head, checking its signature and, when an older head was seen, that the
    /// new version extends it (`consistency` proves it; unused when sizes are equal).
    pub fn observe(&mut self, sth: &SignedTreeHead, consistency: &[u8]) -> Result<(), LogError> {
        self.verify_head(sth)?;
        if let Some(old) = &self.latest {
            check_pair(old, sth, consistency)?;
        }
        if self.latest.as_ref().is_none_or(|o| sth.size >= o.size) {
            self.latest = Some(sth.clone());
        }
        Ok(())
    }

    /// Compares a head another client was served with ours. `consistency` proves that the
    /// smaller of the two is a prefix of the larger (empty when sizes are equal).
    pub fn gossip(&self, theirs: &SignedTreeHead, consistency: &[u8]) -> Result<(), LogError> {
        self.verify_head(theirs)?;
        match &self.latest {
            Some(ours) => check_pair(ours, theirs, consistency),
            None => Ok(()),
        }
    }

    /// Verifies that `leaf` is at `idx` under `sth`, and that its vouchers satisfy the policy.
    pub fn check_leaf(
        &self,
        sth: &SignedTreeHead,
        leaf: &LogLeaf,
        idx: u64,
        proof: &[u8],
    ) -> Result<(), LogError> {
        self.verify_head(sth)?;
        let p = InclusionProof::<Sha256>::try_from_bytes(proof.to_vec())
            .map_err(|_| LogError::Proof("inclusion"))?;
        root_of(&sth.log_root, sth.size)
            .verify_inclusion(&leaf.to_bytes(), idx, &p)
            .map_err(|_| LogError::Proof("inclusion"))?;
        self.policy.check(&leaf.hash, &leaf.vouchers)
    }

    /// Verifies that `hash` is in no entry of the version `sth` describes.
    pub fn check_absence(
        &self,
        sth: &SignedTreeHead,
        hash: &Hash256,
        proof: &AbsenceProof,
    ) -> Result<(), LogError> {
        self.verify_head(sth)?;
        let bad = || LogError::Proof("absence");
        let root = root_of(&sth.sorted_root, sth.distinct);
        let check = |(i, h, p): &(u64, Hash256, Vec<u8>)| -> Result<(), LogError> {
            let p = InclusionProof::<Sha256>::try_from_bytes(p.clone()).map_err(|_| bad())?;
            root.verify_inclusion(&h.to_bytes(), *i, &p)
                .map_err(|_| bad())
        };
        match (&proof.below, &proof.above) {
            (Some(b), Some(a)) => {
                check(b)?;
                check(a)?;
                if !(b.1 < *hash && *hash < a.1 && a.0 == b.0 + 1) {
                    return Err(bad());
                }
            }
            (None, Some(a)) => {
                check(a)?;
                if !(a.0 == 0 && *hash < a.1) {
                    return Err(bad());
                }
            }
            (Some(b), None) => {
                check(b)?;
                if !(b.0 + 1 == sth.distinct && b.1 < *hash) {
                    return Err(bad());
                }
            }
            (None, None) => {
                if sth.distinct != 0 {
                    return Err(bad());
                }
            }
        }
        Ok(())
    }

    /// A full audit by a party holding the whole list: the head's roots must be those of
    /// exactly these leaves, and every leaf must satisfy the policy.
    pub fn audit_full_list(
        &self,
        sth: &SignedTreeHead,
        leaves: &[LogLeaf],
    ) -> Result<(), LogError> {
        self.verify_head(sth)?;
        let mut t = MemoryBackedTree::<Sha256, Vec<u8>>::new();
        for l in leaves {
            t.push(l.to_bytes());
            self.policy.check(&l.hash, &l.vouchers)?;
        }
        if leaves.len() as u64 != sth.size || root_bytes(&t.root()) != sth.log_root {
            return Err(LogError::Proof("full-list"));
        }
        let distinct: BTreeSet<Hash256> = leaves.iter().map(|l| l.hash).collect();
        if root_bytes(&sorted_tree(&distinct).root()) != sth.sorted_root
            || distinct.len() as u64 != sth.distinct
        {
            return Err(LogError::SortedRootMismatch(sth.size));
        }
        Ok(())
    }
}

/// Two verified heads: equal sizes need equal roots; otherwise the smaller must be a prefix.
fn check_pair(a: &SignedTreeHead, b: &SignedTreeHead, consistency: &[u8]) -> Result<(), LogError> {
    let split = || LogError::SplitView(Box::new(a.clone()), Box::new(b.clone()));
    if a.size == b.size {
        return if a.log_root == b.log_root && a.sorted_root == b.sorted_root {
            Ok(())
        } else {
            Err(split())
        };
    }
    let (old, new) = if a.size < b.size { (a, b) } else { (b, a) };
    let p =
        ConsistencyProof::<Sha256>::try_from_bytes(consistency.to_vec()).map_err(|_| split())?;
    root_of(&new.log_root, new.size)
        .verify_consistency(&root_of(&old.log_root, old.size), &p)
        .map_err(|_| split())
}

mod hex32 {
    pub fn serialize<S: serde::Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        super::hex_bytes(d)
    }
}

mod hex64 {
    pub fn serialize<S: serde::Serializer>(b: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        super::hex_bytes(d)
    }
}

fn hex_bytes<'de, D: serde::Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
    use serde::Deserialize;
    let s = String::deserialize(d)?;
    let mut out = [0u8; N];
    hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;

    fn orgs() -> Vec<Organisation> {
        vec![
            Organisation::new("ncmec-standin", "US", [1; 32]),
            Organisation::new("iwf-standin", "UK", [2; 32]),
            Organisation::new("us-second", "US", [3; 32]),
        ]
    }

    fn policy(k: usize) -> Policy {
        Policy {
            k,
            orgs: orgs().into_iter().map(|o| o.public).collect(),
        }
    }

    fn leaf(id: u64, hash: Hash256, by: &[&Organisation]) -> LogLeaf {
        LogLeaf {
            id,
            hash,
            label: "known".into(),
            added: 1_700_000_000 + id,
            vouchers: by.iter().map(|o| o.vouch(&hash)).collect(),
        }
    }

    fn log_with(n: usize) -> (ListLog, Vec<Hash256>) {
        let o = orgs();
        let mut log = ListLog::new([9; 32], policy(2));
        let hs = synth::list(n, synth::Shape::Uniform, 7);
        for (i, h) in hs.iter().enumerate() {
            log.append(leaf(i as u64, *h, &[&o[0], &o[1]])).unwrap();
        }
        (log, hs)
    }

    #[test]
    fn inclusion_proofs_verify_and_forged_ones_do_not() {
        let (log, _) = log_with(37);
        let sth = log.publish(1);
        let client = Auditor::new(log.operator_key(), policy(2));
        for idx in [0u64, 1, 17, 36] {
            let proof = log.prove_inclusion(idx).unwrap();
            client
                .check_leaf(&sth, &log.leaves()[idx as usize], idx, &proof)
                .unwrap();
            // The same proof for another leaf, or a flipped byte, fails.
            let other = &log.leaves()[(idx as usize + 1) % 37];
            assert_eq!(
                client.check_leaf(&sth, other, idx, &proof),
                Err(LogError::Proof("inclusion"))
            );
            let mut forged = proof.clone();
            forged[0] ^= 1;
            assert!(
                client
                    .check_leaf(&sth, &log.leaves()[idx as usize], idx, &forged)
                    .is_err()
            );
        }
        let mut fake = sth.clone();
        fake.log_root[0] ^= 1;
        assert_eq!(
            client.verify_head(&fake),
            Err(LogError::BadSignature { size: 37 })
        );
    }

    #[test]
    fn absence_proofs_verify_for_unlisted_hashes_only() {
        let (log, hs) = log_with(50);
        let sth = log.publish(1);
        let client = Auditor::new(log.operator_key(), policy(2));
        assert!(
            log.prove_absence(&hs[3]).is_none(),
            "a listed hash has no absence proof"
        );
        let mut sorted = hs.clone();
        sorted.sort();
        let below_all = Hash256([0; 4]);
        let above_all = Hash256([u64::MAX; 4]);
        for q in synth::queries(&hs, 20, 3)
            .into_iter()
            .chain([below_all, above_all])
        {
            if hs.contains(&q) {
                continue;
            }
            let p = log.prove_absence(&q).unwrap();
            client.check_absence(&sth, &q, &p).unwrap();
            // The proof does not transfer to a listed hash between the same neighbours' bounds.
            assert!(client.check_absence(&sth, &sorted[10], &p).is_err());
        }
        // A proof that skips a listed hash (non-adjacent neighbours) is rejected.
        let q = Hash256([
            sorted[20].0[0],
            sorted[20].0[1],
            sorted[20].0[2],
            sorted[20].0[3].wrapping_add(1),
        ]);
        let mut p = log.prove_absence(&q).expect("q is not listed");
        client.check_absence(&sth, &q, &p).unwrap();
        let tree_below = log.prove_absence(&Hash256([0; 4])).unwrap();
        p.above = tree_below.above; // position 0: not adjacent to `below`
        assert!(client.check_absence(&sth, &q, &p).is_err());
    }

    #[test]
    fn heads_with_non_hex_fields_are_rejected_not_panicked_on() {
        let (log, _) = log_with(3);
        let json = serde_json::to_string(&log.publish(1)).unwrap();
        let sth: serde_json::Value = serde_json::from_str(&json).unwrap();
        // 64 characters, but multi-byte ones: a byte-slicing decoder would panic here.
        let mut bad = sth.clone();
        bad["log_root"] = serde_json::Value::String("é".repeat(32));
        assert!(serde_json::from_value::<SignedTreeHead>(bad).is_err());
        let mut short = sth;
        short["signature"] = serde_json::Value::String("ab".into());
        assert!(serde_json::from_value::<SignedTreeHead>(short).is_err());
    }

    #[test]
    fn consistent_growth_is_accepted_and_a_split_view_is_detected() {
        let o = orgs();
        let (mut log, _) = log_with(20);
        let mut alice = Auditor::new(log.operator_key(), policy(2));
        let head20 = log.publish(1);
        alice.observe(&head20, &[]).unwrap();
        for i in 20..30 {
            let h = synth::list(1, synth::Shape::Uniform, 1000 + i)[0];
            log.append(leaf(i, h, &[&o[0], &o[1]])).unwrap();
        }
        let head30 = log.publish(2);
        alice
            .observe(&head30, &log.prove_consistency(20).unwrap())
            .unwrap();

        // The operator serves Bob, alone, a list with a "protest poster" appended: same size as
        // the honest version 31, different content.
        let poster = synth::list(1, synth::Shape::Uniform, 4242)[0];
        let mut bob_log = ListLog::new([9; 32], policy(2));
        for l in log.leaves() {
            bob_log.append(l.clone()).unwrap();
        }
        bob_log.append(leaf(30, poster, &[&o[0], &o[1]])).unwrap();
        let honest = synth::list(1, synth::Shape::Uniform, 5151)[0];
        log.append(leaf(30, honest, &[&o[0], &o[1]])).unwrap();
        let head31 = log.publish(3);
        let bob31 = bob_log.publish(3);
        alice
            .observe(&head31, &log.prove_consistency(30).unwrap())
            .unwrap();
        // Bob's head verifies on its own (the operator signed it) …
        alice.verify_head(&bob31).unwrap();
        // … but gossip between Alice and Bob exposes it.
        match alice.gossip(&bob31, &[]) {
            Err(LogError::SplitView(a, b)) => assert_eq!((a.size, b.size), (31, 31)),
            other => panic!("{other:?}"),
        }
        // A forked history of a different size fails its consistency proof too.
        let mut fork = ListLog::new([9; 32], policy(2));
        for l in &log.leaves()[..25] {
            fork.append(l.clone()).unwrap();
        }
        fork.append(leaf(25, poster, &[&o[0], &o[1]])).unwrap();
        for l in &log.leaves()[26..] {
            fork.append(l.clone()).unwrap();
        }
        fork.append(leaf(31, honest, &[&o[0], &o[1]])).unwrap();
        let fork32 = fork.publish(4);
        assert!(matches!(
            alice.gossip(&fork32, &fork.prove_consistency(31).unwrap()),
            Err(LogError::SplitView(..))
        ));
    }

    #[test]
    fn the_k_of_n_policy_needs_distinct_jurisdictions() {
        let o = orgs();
        let mut log = ListLog::new([9; 32], policy(2));
        let h = synth::list(1, synth::Shape::Uniform, 1)[0];
        // Two US organisations are one jurisdiction.
        assert_eq!(
            log.append(leaf(0, h, &[&o[0], &o[2]])),
            Err(LogError::Policy {
                hash: h,
                got: 1,
                need: 2
            })
        );
        // A forged voucher (signed by the wrong key) does not count.
        let mut forged = leaf(0, h, &[&o[0]]);
        forged.vouchers.push(Voucher {
            org: "iwf-standin".into(),
            signature: o[2].vouch(&h).signature,
        });
        assert!(log.append(forged).is_err());
        assert_eq!(log.append(leaf(0, h, &[&o[0], &o[1]])), Ok(0));
        // An operator who bypasses the policy is caught by any client re-checking the leaf.
        let poster = synth::list(1, synth::Shape::Uniform, 2)[0];
        let idx = log.dangerous_append_unchecked(leaf(1, poster, &[&o[0]]));
        let sth = log.publish(1);
        let client = Auditor::new(log.operator_key(), policy(2));
        let proof = log.prove_inclusion(idx).unwrap();
        assert!(matches!(
            client.check_leaf(&sth, &log.leaves()[1], idx, &proof),
            Err(LogError::Policy { .. })
        ));
        assert!(client.audit_full_list(&sth, log.leaves()).is_err());
    }

    #[test]
    fn a_full_audit_catches_a_lying_sorted_root() {
        let (log, _) = log_with(10);
        let sth = log.publish(1);
        let client = Auditor::new(log.operator_key(), policy(2));
        client.audit_full_list(&sth, log.leaves()).unwrap();
        // Dropping one leaf changes the roots.
        assert!(client.audit_full_list(&sth, &log.leaves()[..9]).is_err());
    }

    #[test]
    fn heads_round_trip_through_json() {
        let (log, _) = log_with(5);
        let sth = log.publish(1);
        let back: SignedTreeHead =
            serde_json::from_str(&serde_json::to_string(&sth).unwrap()).unwrap();
        assert_eq!(back, sth);
        let p = log.prove_absence(&Hash256([1; 4])).unwrap();
        let back: AbsenceProof = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
