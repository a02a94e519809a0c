//! Key transparency for identity keys: the provider publishes every account's identity key
//! in an append-only RFC 6962 log, and clients check what the directory tells them against it.
//!
//! # Why
//! The "ghost user" (Levy and Robinson, 2018) needs the provider to give Alice a key for "bob"
//! that is not Bob's. With pinned keys and identity-bound MLS credentials, it can still do so
//! on first contact, by lying in its directory. Key transparency (CONIKS, Melara et al.,
//! USENIX Security 2015; Google's Key Transparency) turns that lie into evidence: the
//! directory's answer must come with an inclusion proof under a signed head, so the ghost key
//! must be *in the log*, where Bob, monitoring the entries under his own name, finds it.
//!
//! # The construction
//! - **Leaf**: `"scanlab-kt-leaf-v1" ‖ len(name) (u32) ‖ name ‖ identity key (32 bytes)`, one
//!   per registration, in order. The tree is RFC 6962's, computed by `ct-merkle` (the same code
//!   as the list log, `scanlab_hashlist::log`).
//! - **Head** ([`KtHead`]): size, root and timestamp, signed with Ed25519 by the provider's log
//!   key under `"scanlab-kt-head-v1"`. The log key's public half is the provider's id, which
//!   clients pin at first login, so no other key can sign heads they accept.
//! - **Lookup**: `GET /v1/identity/{name}` answers the key with its position, the inclusion
//!   proof and the head ([`Lookup`]); [`Lookup::verify`] checks all three.
//! - **Monitoring**: `GET /v1/kt` serves the head and every leaf; [`audit`] recomputes the root
//!   and lists every key logged under a name, so an account sees a key that is not its own.
//!
//! - **Append-only, per client**: each client keeps the last head it verified. A head of the
//!   same size must have the same root; a larger one must come with an RFC 6962 consistency
//!   proof from the kept one (`GET /v1/kt/consistency/{from}/{to}`, [`verify_consistency`]); a
//!   smaller one is a rollback. So the provider cannot rewrite, to one client, what it already
//!   showed that client (to drop a ghost key after the fact, say): the two signed heads are the
//!   evidence ([`KtError::Fork`]).
//!
//! What it does not do here: heads are not gossiped between clients yet, so a provider can
//! still show Alice and Bob different logs (a split view) that only gossip would expose; and
//! monitoring downloads the whole log (no sparse tree or paging).

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{InclusionProof, RootHash};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2_11::Sha256;

const LEAF_CONTEXT: &[u8] = b"scanlab-kt-leaf-v1";
const HEAD_CONTEXT: &[u8] = b"scanlab-kt-head-v1";

/// Why a lookup or an audit does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KtError {
    /// The head is not signed by the pinned log key.
    #[error("the key-transparency head is not signed by this provider's log key")]
    BadHead,
    /// The inclusion proof does not put the key in the log.
    #[error("the directory's key for {0:?} is not in the key-transparency log")]
    NotLogged(String),
    /// The served leaves do not make the head's root.
    #[error("the key-transparency log served does not match its head")]
    Mismatch,
    /// Malformed hex or sizes.
    #[error("malformed key-transparency data: {0}")]
    Malformed(String),
    /// Two heads signed by the log key that no append-only log could both have produced: the
    /// provider rewrote or forked its history.
    #[error(
        "the key-transparency log forked: a head of size {new} does not extend the head of size {old} seen before; keep both heads, they are the evidence"
    )]
    Fork {
        /// Size of the head seen before.
        old: u64,
        /// Size of the head now served.
        new: u64,
    },
}

/// A signed head of the identity log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KtHead {
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root, hex.
    pub root: String,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    /// Ed25519 signature by the log key, hex.
    pub signature: String,
}

/// One logged registration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KtLeaf {
    /// Account name.
    pub name: String,
    /// Its identity key, hex.
    pub key: String,
}

/// The directory's answer with its evidence.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lookup {
    /// Position of the leaf.
    pub index: u64,
    /// RFC 9162 inclusion proof, hex.
    pub proof: String,
    /// The head it is relative to.
    pub head: KtHead,
}

fn leaf_bytes(name: &str, key: &[u8; 32]) -> Vec<u8> {
    let mut b = LEAF_CONTEXT.to_vec();
    b.extend_from_slice(&(name.len() as u32).to_be_bytes());
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(key);
    b
}

fn head_message(size: u64, root: &[u8; 32], timestamp: u64) -> Vec<u8> {
    let mut m = HEAD_CONTEXT.to_vec();
    m.extend_from_slice(&size.to_be_bytes());
    m.extend_from_slice(root);
    m.extend_from_slice(&timestamp.to_be_bytes());
    m
}

fn tree(leaves: &[(String, [u8; 32])]) -> MemoryBackedTree<Sha256, Vec<u8>> {
    let mut t = MemoryBackedTree::new();
    for (n, k) in leaves {
        t.push(leaf_bytes(n, k));
    }
    t
}

fn root_bytes(t: &MemoryBackedTree<Sha256, Vec<u8>>) -> [u8; 32] {
    t.root()
        .as_bytes()
        .as_slice()
        .try_into()
        .expect("SHA-256 output")
}

fn unhex<const N: usize>(s: &str) -> Result<[u8; N], KtError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| KtError::Malformed(e.to_string()))?;
    Ok(out)
}

/// The provider's side: signs a head over `leaves` at `timestamp`.
pub fn sign_head(log: &SigningKey, leaves: &[(String, [u8; 32])], timestamp: u64) -> KtHead {
    let root = root_bytes(&tree(leaves));
    let size = leaves.len() as u64;
    KtHead {
        size,
        root: hex::encode(root),
        timestamp,
        signature: hex::encode(log.sign(&head_message(size, &root, timestamp)).to_bytes()),
    }
}

/// The provider's side: the lookup for the leaf at `index`, under a fresh head.
pub fn lookup(
    log: &SigningKey,
    leaves: &[(String, [u8; 32])],
    index: usize,
    timestamp: u64,
) -> Lookup {
    let t = tree(leaves);
    Lookup {
        index: index as u64,
        proof: hex::encode(t.prove_inclusion(index).as_bytes()),
        head: sign_head(log, leaves, timestamp),
    }
}

impl KtHead {
    /// Checks the head's signature under the pinned log key (strictly).
    pub fn verify(&self, log: &VerifyingKey) -> Result<[u8; 32], KtError> {
        let root = unhex::<32>(&self.root)?;
        let sig = unhex::<64>(&self.signature)?;
        log.verify_strict(
            &head_message(self.size, &root, self.timestamp),
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| KtError::BadHead)?;
        Ok(root)
    }
}

impl Lookup {
    /// Checks that `key` is logged for `name` under a head signed by `log`.
    pub fn verify(&self, log: &VerifyingKey, name: &str, key: &[u8; 32]) -> Result<(), KtError> {
        let root = self.head.verify(log)?;
        let proof = hex::decode(&self.proof).map_err(|e| KtError::Malformed(e.to_string()))?;
        let p = InclusionProof::<Sha256>::try_from_bytes(proof)
            .map_err(|_| KtError::NotLogged(name.into()))?;
        RootHash::<Sha256>::new(root.into(), self.head.size)
            .verify_inclusion(&leaf_bytes(name, key), self.index, &p)
            .map_err(|_| KtError::NotLogged(name.into()))
    }
}

/// The provider's side: a proof that the log's first `to` leaves extend its first `from`.
pub fn prove_consistency(
    leaves: &[(String, [u8; 32])],
    from: u64,
    to: u64,
) -> Result<String, KtError> {
    if from == 0 || from > to || to > leaves.len() as u64 {
        return Err(KtError::Malformed(format!(
            "no consistency proof from size {from} to size {to} of a log of {}",
            leaves.len()
        )));
    }
    let t = tree(&leaves[..to as usize]);
    Ok(hex::encode(
        t.prove_consistency((to - from) as usize).as_bytes(),
    ))
}

/// Checks that `new` extends `old` (both already verified under the log key): equal sizes
/// need equal roots; a larger head needs a valid consistency proof (hex); a smaller one is a
/// rollback. Any failure is a [`KtError::Fork`].
pub fn verify_consistency(old: &KtHead, new: &KtHead, proof: &str) -> Result<(), KtError> {
    let fork = || KtError::Fork {
        old: old.size,
        new: new.size,
    };
    let (a, b) = (unhex::<32>(&old.root)?, unhex::<32>(&new.root)?);
    if new.size == old.size {
        return if a == b { Ok(()) } else { Err(fork()) };
    }
    if new.size < old.size || old.size == 0 {
        // The empty log is extended by everything.
        return if old.size == 0 && new.size > 0 {
            Ok(())
        } else {
            Err(fork())
        };
    }
    let bytes = hex::decode(proof).map_err(|_| fork())?;
    let p = ct_merkle::ConsistencyProof::<Sha256>::try_from_bytes(bytes).map_err(|_| fork())?;
    RootHash::<Sha256>::new(b.into(), new.size)
        .verify_consistency(&RootHash::<Sha256>::new(a.into(), old.size), &p)
        .map_err(|_| fork())
}

/// The keys logged under `name` in the first `head.size` of `leaves`, which must make the
/// head's root (signed by `log`): what a party handed a copy of the log (the escrow authority)
/// may rely on, given a head it obtained independently. Leaves after the head are ignored.
pub fn logged_keys(
    log: &VerifyingKey,
    head: &KtHead,
    leaves: &[(String, [u8; 32])],
    name: &str,
) -> Result<Vec<[u8; 32]>, KtError> {
    let root = head.verify(log)?;
    let n = usize::try_from(head.size).map_err(|e| KtError::Malformed(e.to_string()))?;
    let prefix = leaves.get(..n).ok_or(KtError::Mismatch)?;
    if root_bytes(&tree(prefix)) != root {
        return Err(KtError::Mismatch);
    }
    Ok(prefix
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, k)| *k)
        .collect())
}

/// A monitor's audit of the whole log: the leaves must make the head's root; returns every key
/// logged under `name` (an account expects exactly its own).
pub fn audit(
    log: &VerifyingKey,
    head: &KtHead,
    leaves: &[KtLeaf],
    name: &str,
) -> Result<Vec<[u8; 32]>, KtError> {
    let root = head.verify(log)?;
    let parsed = leaves
        .iter()
        .map(|l| Ok((l.name.clone(), unhex::<32>(&l.key)?)))
        .collect::<Result<Vec<_>, KtError>>()?;
    if parsed.len() as u64 != head.size || root_bytes(&tree(&parsed)) != root {
        return Err(KtError::Mismatch);
    }
    Ok(parsed
        .into_iter()
        .filter(|(n, _)| n == name)
        .map(|(_, k)| k)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves() -> Vec<(String, [u8; 32])> {
        (0..7u8).map(|i| (format!("user{i}"), [i; 32])).collect()
    }

    #[test]
    fn consistency_holds_for_a_grown_log_and_fails_for_a_rewritten_one() {
        let log = SigningKey::from_bytes(&[4; 32]);
        let l = leaves();
        let old = sign_head(&log, &l[..3], 1);
        let new = sign_head(&log, &l, 2);
        let proof = prove_consistency(&l, 3, 7).unwrap();
        verify_consistency(&old, &new, &proof).unwrap();
        verify_consistency(&old, &old, "").unwrap();
        verify_consistency(&sign_head(&log, &[], 0), &old, "").unwrap();
        // A log whose second entry was replaced (a ghost key dropped after the fact): its
        // grown head has a proof of its own, which does not reach the head seen before.
        let mut rewritten = l.clone();
        rewritten[1].1 = [99; 32];
        let forged = sign_head(&log, &rewritten, 3);
        let p = prove_consistency(&rewritten, 3, 7).unwrap();
        assert_eq!(
            verify_consistency(&old, &forged, &p),
            Err(KtError::Fork { old: 3, new: 7 })
        );
        // The same size with another root, and a smaller head, are forks too.
        let same_size = sign_head(&log, &rewritten[..3], 4);
        assert!(verify_consistency(&old, &same_size, "").is_err());
        assert!(verify_consistency(&new, &old, &proof).is_err());
        assert!(prove_consistency(&l, 0, 3).is_err());
        assert!(prove_consistency(&l, 3, 8).is_err());
        // Keys under a name, from a copy of the log checked against a head.
        assert_eq!(
            logged_keys(&log.verifying_key(), &old, &l, "user1").unwrap(),
            [[1; 32]]
        );
        assert_eq!(
            logged_keys(&log.verifying_key(), &old, &rewritten, "user1"),
            Err(KtError::Mismatch),
            "a copy that is not the log the head signs"
        );
        assert!(
            logged_keys(&log.verifying_key(), &old, &l, "user5")
                .unwrap()
                .is_empty(),
            "entries after the head are not relied on"
        );
    }

    #[test]
    fn lookups_verify_and_a_key_off_the_log_does_not() {
        let log = SigningKey::from_bytes(&[4; 32]);
        let l = leaves();
        let found = lookup(&log, &l, 3, 10);
        found
            .verify(&log.verifying_key(), "user3", &[3; 32])
            .unwrap();
        // Another key for the same name, or the same proof for another name: not logged.
        assert_eq!(
            found.verify(&log.verifying_key(), "user3", &[9; 32]),
            Err(KtError::NotLogged("user3".into()))
        );
        assert!(
            found
                .verify(&log.verifying_key(), "user4", &[3; 32])
                .is_err()
        );
        // A head signed by another key is refused.
        let other = SigningKey::from_bytes(&[5; 32]);
        assert_eq!(
            found.verify(&other.verifying_key(), "user3", &[3; 32]),
            Err(KtError::BadHead)
        );
    }

    #[test]
    fn an_audit_lists_every_key_under_a_name_and_catches_a_doctored_log() {
        let log = SigningKey::from_bytes(&[4; 32]);
        let mut l = leaves();
        l.push(("user3".into(), [0x66; 32]));
        let head = sign_head(&log, &l, 10);
        let served: Vec<KtLeaf> = l
            .iter()
            .map(|(n, k)| KtLeaf {
                name: n.clone(),
                key: hex::encode(k),
            })
            .collect();
        let keys = audit(&log.verifying_key(), &head, &served, "user3").unwrap();
        assert_eq!(keys, [[3; 32], [0x66; 32]]);
        // Serving the log without the second entry does not match the head.
        assert_eq!(
            audit(&log.verifying_key(), &head, &served[..7], "user3"),
            Err(KtError::Mismatch)
        );
    }
}
