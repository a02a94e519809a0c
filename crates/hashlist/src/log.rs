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
//! - **Log id** ([`log_id`]): `SHA-256("scanlab-log-id-v1" ‖ operator key)`, as RFC 6962's
//!   log id is the hash of the log's key. Heads and vouchers carry it, so neither replays into
//!   another log.
//! - **Signed tree head** ([`SignedTreeHead`]): log id, size, both roots and a timestamp,
//!   signed with Ed25519 (RFC 8032, strict verification) by the list operator under the
//!   context string `scanlab-list-sth-v2`. A client refuses a head from the future (beyond a
//!   clock skew), one older than its freshness window, and one whose timestamp goes backwards
//!   as the log grows ([`Freshness`]).
//! - **Gossip.** Clients exchange the heads they were served ([`Auditor::gossip`]). Two valid
//!   heads of the same size with different roots, or of different sizes without a valid
//!   consistency proof, are a split view; the two signed heads are the evidence.
//! - **k-of-n admission** ([`Policy`]): a hash enters only when `k` registered organisations, in
//!   `k` distinct jurisdictions and with `k` distinct keys, have each signed it. A voucher is
//!   an Ed25519 signature over `"scanlab-voucher-v2" ‖ log id ‖ hash ‖ SHA-256(label) ‖
//!   expiry`, valid for an entry added before its expiry. This is Apple's 2021 rule that a hash
//!   must come from at least two child-safety organisations in different sovereign
//!   jurisdictions. Vouchers are inside the leaf, so any client can re-check them, and a
//!   policy that registers one key under two names is refused ([`Policy::new`]). The operator
//!   writes an entry's `added` date, so a client bounds it by the heads it observed: an entry
//!   not in a head signed at `t` must say it was added at `t` or later, and a backdated one
//!   (to slip under an expired voucher) is refused ([`Auditor::check_leaf`]).
//!
//! What the sorted tree commits to can only be checked by a party holding the list: a
//! **monitor** ([`Auditor::audit_head`]) recomputes it for the prefix of *every* head it is
//! gossiped, whatever its size. A head of a size only one user sees can carry a sorted tree
//! that omits a listed hash, and the absence proof under it verifies for that user; the monitor
//! catches it once the head reaches it. A client holding only proofs relies on monitors for
//! that.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
pub use ed25519_dalek::VerifyingKey as PublicKey;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use scanlab_pdq::Hash256;
use sha2_11::Sha256;
use std::collections::BTreeSet;

/// Signing context for tree heads.
const STH_CONTEXT: &[u8] = b"scanlab-list-sth-v2";
/// Signing context for organisations' vouchers.
const VOUCHER_CONTEXT: &[u8] = b"scanlab-voucher-v2";
/// Context of the log id.
const LOG_ID_CONTEXT: &[u8] = b"scanlab-log-id-v1";

/// A log's id: `SHA-256("scanlab-log-id-v1" ‖ operator public key)`.
pub fn log_id(operator: &VerifyingKey) -> [u8; 32] {
    use sha2_11::Digest;
    let mut h = Sha256::new();
    h.update(LOG_ID_CONTEXT);
    h.update(operator.as_bytes());
    h.finalize().into()
}

/// What a voucher signs: `context ‖ log id ‖ hash ‖ SHA-256(label) ‖ expiry`.
fn voucher_message(log: &[u8; 32], hash: &Hash256, label: &str, expires: u64) -> Vec<u8> {
    use sha2_11::Digest;
    let mut m = VOUCHER_CONTEXT.to_vec();
    m.extend_from_slice(log);
    m.extend_from_slice(&hash.to_bytes());
    m.extend_from_slice(&Sha256::digest(label.as_bytes()));
    m.extend_from_slice(&expires.to_be_bytes());
    m
}

/// An organisation's signature on one entry of one log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Voucher {
    /// The organisation's registered name.
    pub org: String,
    /// Seconds since the Unix epoch after which the voucher admits no new entry.
    pub expires: u64,
    /// Ed25519 signature over `scanlab-voucher-v2 ‖ log id ‖ hash ‖ SHA-256(label) ‖ expires`.
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
        b.extend_from_slice(b"scanlab-leaf-v2");
        b.extend_from_slice(&self.id.to_be_bytes());
        b.extend_from_slice(&self.hash.to_bytes());
        b.extend_from_slice(&self.added.to_be_bytes());
        put(&mut b, self.label.as_bytes());
        b.extend_from_slice(&(self.vouchers.len() as u32).to_be_bytes());
        for v in &self.vouchers {
            put(&mut b, v.org.as_bytes());
            b.extend_from_slice(&v.expires.to_be_bytes());
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

    /// Vouches for `hash` under `label` in the log `log` (its [`log_id`]), for entries added
    /// before `expires`.
    pub fn vouch(&self, log: &[u8; 32], hash: &Hash256, label: &str, expires: u64) -> Voucher {
        Voucher {
            org: self.public.name.clone(),
            expires,
            signature: self
                .key
                .sign(&voucher_message(log, hash, label, expires))
                .to_bytes(),
        }
    }
}

/// The k-of-n admission rule. Build it with [`Policy::new`], which refuses a key or a name
/// registered twice; [`Policy::check`] also counts each key once, so a hand-built policy with a
/// duplicate cannot double-count either.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Valid vouchers needed, from organisations in distinct jurisdictions with distinct keys.
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
    /// A head names another log than the one this client pins.
    #[error(
        "tree head of size {size} belongs to another log\n  it cannot be compared with this log's heads"
    )]
    WrongLog {
        /// Its claimed size.
        size: u64,
    },
    /// A head's timestamp is in the future, too old, or goes backwards as the log grows.
    #[error(
        "tree head of size {size}: {why}\n  do not trust this list version; keep the head as evidence"
    )]
    Timestamp {
        /// Its claimed size.
        size: u64,
        /// What is wrong with it.
        why: String,
    },
    /// A policy registers one key or one name twice.
    #[error("the policy registers {0:?} twice; each organisation needs its own name and key")]
    Duplicate(String),
    /// A policy with k = 0 admits any entry unvouched.
    #[error("the policy needs k of at least 1; k = 0 admits any entry without a voucher")]
    NoThreshold,
    /// A policy registers a weak (small-order) key, under which forged signatures verify.
    #[error("organisation {0:?} has a weak Ed25519 key; register a properly generated key")]
    WeakKey(String),
}

impl Policy {
    /// A policy needing `k` vouchers from `orgs`, refused if two organisations share a name or
    /// a key (one key under two names would count as two organisations).
    pub fn new(k: usize, orgs: Vec<OrgKey>) -> Result<Policy, LogError> {
        if k == 0 {
            return Err(LogError::NoThreshold);
        }
        for (i, a) in orgs.iter().enumerate() {
            if a.key.is_weak() {
                return Err(LogError::WeakKey(a.name.clone()));
            }
            if let Some(b) = orgs[..i]
                .iter()
                .find(|b| b.name == a.name || b.key == a.key)
            {
                let what = if b.name == a.name {
                    a.name.clone()
                } else {
                    format!("the key of {} (also {})", b.name, a.name)
                };
                return Err(LogError::Duplicate(what));
            }
        }
        Ok(Policy { k, orgs })
    }

    /// Checks `leaf`'s vouchers for the log `log`: counts the distinct jurisdictions of
    /// registered organisations, each key once, whose signature verifies strictly and whose
    /// voucher had not expired when the entry was added.
    pub fn check(&self, log: &[u8; 32], leaf: &LogLeaf) -> Result<(), LogError> {
        let mut jurisdictions = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for v in &leaf.vouchers {
            let Some(org) = self.orgs.iter().find(|o| o.name == v.org) else {
                continue;
            };
            if leaf.added >= v.expires || keys.contains(org.key.as_bytes()) {
                continue;
            }
            let msg = voucher_message(log, &leaf.hash, &leaf.label, v.expires);
            if org
                .key
                .verify_strict(&msg, &Signature::from_bytes(&v.signature))
                .is_ok()
            {
                keys.insert(*org.key.as_bytes());
                jurisdictions.insert(org.jurisdiction.clone());
            }
        }
        if jurisdictions.len() < self.k {
            return Err(LogError::Policy {
                hash: leaf.hash,
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
    /// The log's id ([`log_id`]).
    #[serde(with = "hex32")]
    pub log_id: [u8; 32],
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
        m.extend_from_slice(&self.log_id);
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

/// The commitment a deployment announces to the list it matches against: the RFC 6962 root
/// of the sorted tree over its distinct hashes, and their number. It is the same value as a
/// log head's [`SignedTreeHead::sorted_root`] for that list, so a scheme's announcement, an
/// enclave's attestation and the log can be compared byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListRoot {
    /// RFC 6962 root over the sorted distinct hashes.
    #[serde(with = "hex32")]
    pub root: [u8; 32],
    /// Number of distinct hashes.
    pub distinct: u64,
}

/// Where a listed hash sits in the sorted tree, and the inclusion proof that puts it there.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EntryProof {
    /// Position in the sorted distinct hashes.
    pub position: u64,
    /// RFC 9162 inclusion proof, hex.
    pub inclusion: String,
}

impl ListRoot {
    /// Checks that `hash` is in the list this root commits to.
    pub fn verify(&self, hash: &Hash256, proof: &EntryProof) -> Result<(), LogError> {
        let bad = || LogError::Proof("list inclusion");
        let bytes = hex::decode(&proof.inclusion).map_err(|_| bad())?;
        let p = InclusionProof::<Sha256>::try_from_bytes(bytes).map_err(|_| bad())?;
        root_of(&self.root, self.distinct)
            .verify_inclusion(&hash.to_bytes(), proof.position, &p)
            .map_err(|_| bad())
    }
}

/// A list's sorted tree, kept by whoever matches against the list so it can prove an entry.
pub struct SortedCommitment {
    sorted: Vec<Hash256>,
    tree: MemoryBackedTree<Sha256, [u8; 32]>,
}

impl SortedCommitment {
    /// The commitment to the distinct hashes among `hashes`.
    pub fn new(hashes: impl IntoIterator<Item = Hash256>) -> SortedCommitment {
        let distinct: BTreeSet<Hash256> = hashes.into_iter().collect();
        SortedCommitment {
            tree: sorted_tree(&distinct),
            sorted: distinct.into_iter().collect(),
        }
    }

    /// Its root.
    pub fn root(&self) -> ListRoot {
        ListRoot {
            root: root_bytes(&self.tree.root()),
            distinct: self.sorted.len() as u64,
        }
    }

    /// The distinct hashes, in the sorted order the commitment's leaves have.
    pub fn sorted(&self) -> &[Hash256] {
        &self.sorted
    }

    /// The proof that `hash` is listed, or `None` if it is not.
    pub fn prove(&self, hash: &Hash256) -> Option<EntryProof> {
        let i = self.sorted.binary_search(hash).ok()?;
        Some(EntryProof {
            position: i as u64,
            inclusion: hex::encode(self.tree.prove_inclusion(i).as_bytes()),
        })
    }
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

    /// This log's id, which vouchers and heads carry.
    pub fn log_id(&self) -> [u8; 32] {
        log_id(&self.key.verifying_key())
    }

    /// The admission policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The leaves, in order.
    pub fn leaves(&self) -> &[LogLeaf] {
        &self.leaves
    }

    /// Appends an entry if the policy admits it; returns its position.
    pub fn append(&mut self, leaf: LogLeaf) -> Result<u64, LogError> {
        self.policy.check(&self.log_id(), &leaf)?;
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
        self.sign_head(self.distinct(self.leaves.len() as u64), timestamp)
    }

    /// Signs a head whose sorted tree leaves `omit` out, and an absence proof for it under that
    /// head: what a dishonest operator serves one user to hide an entry. The proof verifies for
    /// that user; a monitor's [`Auditor::audit_head`] catches the head.
    pub fn dangerous_publish_omitting(
        &self,
        timestamp: u64,
        omit: &Hash256,
    ) -> (SignedTreeHead, AbsenceProof) {
        let mut distinct = self.distinct(self.leaves.len() as u64);
        distinct.remove(omit);
        let proof = absence_in(&distinct, omit).expect("the hash was removed");
        (self.sign_head(distinct, timestamp), proof)
    }

    fn sign_head(&self, distinct: BTreeSet<Hash256>, timestamp: u64) -> SignedTreeHead {
        let sorted = sorted_tree(&distinct);
        let mut sth = SignedTreeHead {
            log_id: self.log_id(),
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
        absence_in(&self.distinct(self.leaves.len() as u64), hash)
    }
}

/// The absence proof of `hash` in the sorted tree over `distinct`.
fn absence_in(distinct: &BTreeSet<Hash256>, hash: &Hash256) -> Option<AbsenceProof> {
    if distinct.contains(hash) {
        return None;
    }
    let sorted: Vec<Hash256> = distinct.iter().copied().collect();
    let tree = sorted_tree(distinct);
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

/// How old and how far ahead a head's timestamp may be (seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freshness {
    /// A head older than this is stale: the operator may be hiding newer versions.
    pub max_age: u64,
    /// Tolerated clock difference for a head from the future.
    pub max_skew: u64,
}

impl Default for Freshness {
    /// A week, as a list updated at least weekly allows, and five minutes of clock skew.
    fn default() -> Freshness {
        Freshness {
            max_age: 7 * 24 * 3600,
            max_skew: 300,
        }
    }
}

/// A client's (or auditor's) side: pins the operator key and the policy, verifies heads and
/// proofs, remembers what it has seen, and gossips.
pub struct Auditor {
    operator: VerifyingKey,
    log_id: [u8; 32],
    policy: Policy,
    freshness: Freshness,
    latest: Option<SignedTreeHead>,
    /// Size and timestamp of every head observed, in order of size: an entry past a head's
    /// size was added after that head was signed.
    seen: Vec<(u64, u64)>,
}

impl Auditor {
    /// A client that trusts heads signed by `operator`, with the default [`Freshness`].
    pub fn new(operator: VerifyingKey, policy: Policy) -> Self {
        Auditor {
            operator,
            log_id: log_id(&operator),
            policy,
            freshness: Freshness::default(),
            latest: None,
            seen: Vec::new(),
        }
    }

    /// The same client with another freshness window.
    pub fn with_freshness(mut self, freshness: Freshness) -> Self {
        self.freshness = freshness;
        self
    }

    /// The newest head observed.
    pub fn latest(&self) -> Option<&SignedTreeHead> {
        self.latest.as_ref()
    }

    /// Checks a head's log id and its signature (strict Ed25519: no weak keys, no malleable
    /// signatures).
    pub fn verify_head(&self, sth: &SignedTreeHead) -> Result<(), LogError> {
        if sth.log_id != self.log_id {
            return Err(LogError::WrongLog { size: sth.size });
        }
        self.operator
            .verify_strict(&sth.message(), &Signature::from_bytes(&sth.signature))
            .map_err(|_| LogError::BadSignature { size: sth.size })
    }

    /// Accepts a new head at time `now` (seconds since the epoch), checking its signature, its
    /// timestamp against `now` and the [`Freshness`] window, and, when an older head was seen,
    /// that the new version extends it (`consistency` proves it; unused when sizes are equal)
    /// and that time did not go backwards as it grew.
    pub fn observe(
        &mut self,
        sth: &SignedTreeHead,
        consistency: &[u8],
        now: u64,
    ) -> Result<(), LogError> {
        self.verify_head(sth)?;
        let late = |why: String| LogError::Timestamp {
            size: sth.size,
            why,
        };
        if sth.timestamp > now.saturating_add(self.freshness.max_skew) {
            return Err(late(format!(
                "signed {} s in the future",
                sth.timestamp - now
            )));
        }
        if now.saturating_sub(sth.timestamp) > self.freshness.max_age {
            return Err(late(format!(
                "signed {} s ago, over the {} s this client accepts: the operator may be hiding newer versions",
                now - sth.timestamp,
                self.freshness.max_age
            )));
        }
        if let Some(old) = &self.latest {
            check_pair(old, sth, consistency)?;
            let backwards = (sth.size > old.size && sth.timestamp < old.timestamp)
                || (sth.size < old.size && sth.timestamp > old.timestamp);
            if backwards {
                return Err(late(format!(
                    "timestamp {} goes backwards against size {}'s {}",
                    sth.timestamp, old.size, old.timestamp
                )));
            }
        }
        if self.latest.as_ref().is_none_or(|o| sth.size >= o.size) {
            self.latest = Some(sth.clone());
        }
        if let Err(at) = self.seen.binary_search(&(sth.size, sth.timestamp)) {
            self.seen.insert(at, (sth.size, sth.timestamp));
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
        // The operator writes `added`, and vouchers expire by it: an entry that was not in a
        // head this client saw was added after that head was signed, whatever date it claims.
        // Without this, an operator backdates an entry to slip in under an expired voucher.
        // The latest-signed head observed that does not hold the entry bounds its date.
        if let Some(&(size, at)) = self
            .seen
            .iter()
            .filter(|(size, _)| *size <= idx)
            .max_by_key(|(_, at)| *at)
            && leaf.added < at
        {
            return Err(LogError::Timestamp {
                size: sth.size,
                why: format!(
                    "entry {idx} claims it was added at {}, but it is not in the head of size {size} signed at {at}: it is backdated",
                    leaf.added
                ),
            });
        }
        self.policy.check(&self.log_id, leaf)
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
            self.policy.check(&self.log_id, l)?;
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

impl Auditor {
    /// A monitor's check of any head it is gossiped, whatever its size: `leaves` is the whole
    /// list the monitor holds (at least `sth.size` entries, from the operator's public log),
    /// and the head must describe exactly its first `sth.size` entries, both roots included.
    /// This is what catches a sorted tree that omits an entry in a head of a size nobody else
    /// was served.
    pub fn audit_head(&self, sth: &SignedTreeHead, leaves: &[LogLeaf]) -> Result<(), LogError> {
        let n = usize::try_from(sth.size)
            .ok()
            .filter(|&n| n <= leaves.len())
            .ok_or(LogError::OutOfRange(sth.size))?;
        self.audit_full_list(sth, &leaves[..n])
    }
}

/// Two verified heads: equal sizes need equal roots; otherwise the smaller must be a prefix.
fn check_pair(a: &SignedTreeHead, b: &SignedTreeHead, consistency: &[u8]) -> Result<(), LogError> {
    let split = || LogError::SplitView(Box::new(a.clone()), Box::new(b.clone()));
    if a.size == b.size {
        let same =
            a.log_root == b.log_root && a.sorted_root == b.sorted_root && a.distinct == b.distinct;
        return if same { Ok(()) } else { Err(split()) };
    }
    let (old, new) = if a.size < b.size { (a, b) } else { (b, a) };
    // A log only gains distinct hashes as it grows.
    if new.distinct < old.distinct {
        return Err(split());
    }
    // Every log extends the empty one (RFC 9162 defines no proof from size 0).
    if old.size == 0 {
        return Ok(());
    }
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
    use ed25519_dalek::Verifier;

    fn orgs() -> Vec<Organisation> {
        vec![
            Organisation::new("ncmec-standin", "US", [1; 32]),
            Organisation::new("iwf-standin", "UK", [2; 32]),
            Organisation::new("us-second", "US", [3; 32]),
        ]
    }

    fn policy(k: usize) -> Policy {
        Policy::new(k, orgs().into_iter().map(|o| o.public).collect()).unwrap()
    }

    /// The id of the tests' log (operator secret `[9; 32]`).
    fn lid() -> [u8; 32] {
        log_id(&SigningKey::from_bytes(&[9; 32]).verifying_key())
    }

    const FAR: u64 = 2_000_000_000;

    fn leaf(id: u64, hash: Hash256, by: &[&Organisation]) -> LogLeaf {
        LogLeaf {
            id,
            hash,
            label: "known".into(),
            added: 1_700_000_000 + id,
            vouchers: by
                .iter()
                .map(|o| o.vouch(&lid(), &hash, "known", FAR))
                .collect(),
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
        alice.observe(&head20, &[], 1).unwrap();
        for i in 20..30 {
            let h = synth::list(1, synth::Shape::Uniform, 1000 + i)[0];
            log.append(leaf(i, h, &[&o[0], &o[1]])).unwrap();
        }
        let head30 = log.publish(2);
        alice
            .observe(&head30, &log.prove_consistency(20).unwrap(), 2)
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
            .observe(&head31, &log.prove_consistency(30).unwrap(), 3)
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
            expires: FAR,
            signature: o[2].vouch(&lid(), &h, "known", FAR).signature,
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
    fn a_backdated_entry_the_client_saw_was_missing_is_refused() {
        let o = orgs();
        let mut log = ListLog::new([9; 32], policy(2));
        let hs = synth::list(3, synth::Shape::Uniform, 5);
        log.append(leaf(0, hs[0], &[&o[0], &o[1]])).unwrap();
        let seen_at = 1_800_000_000;
        let mut client = Auditor::new(log.operator_key(), policy(2));
        client.observe(&log.publish(seen_at), &[], seen_at).unwrap();
        // Two entries appear later: one honestly dated, one dated before the head the client
        // saw without it (where a voucher that has since expired would still admit it).
        let mut honest = leaf(1, hs[1], &[&o[0], &o[1]]);
        honest.added = seen_at + 10;
        let backdated = leaf(2, hs[2], &[&o[0], &o[1]]);
        log.append(honest).unwrap();
        log.append(backdated).unwrap();
        let head = log.publish(seen_at + 60);
        let c = log.prove_consistency(1).unwrap();
        client.observe(&head, &c, seen_at + 60).unwrap();
        let check = |idx: u64| {
            let p = log.prove_inclusion(idx).unwrap();
            client.check_leaf(&head, &log.leaves()[idx as usize], idx, &p)
        };
        assert_eq!(check(1), Ok(()), "a canary: the honest entry passes");
        assert!(matches!(check(2), Err(LogError::Timestamp { .. })));
        // The first entry was in the head seen; its date is not bounded by it.
        assert_eq!(check(0), Ok(()));
    }

    #[test]
    fn the_empty_log_is_extended_by_any_and_distinct_counts_are_compared() {
        let (log, _) = log_with(4);
        let empty = ListLog::new([9; 32], policy(2)).publish(10);
        let mut client = Auditor::new(log.operator_key(), policy(2));
        client.observe(&empty, &[], 10).unwrap();
        client.observe(&log.publish(20), &[], 20).unwrap();
        // The same roots with another distinct count: not a head an honest operator signs.
        let mut odd = log.publish(30);
        odd.distinct += 1;
        odd.signature = SigningKey::from_bytes(&[9; 32])
            .sign(&odd.message())
            .to_bytes();
        assert!(matches!(
            client.gossip(&odd, &[]),
            Err(LogError::SplitView(..))
        ));
    }

    #[test]
    fn vouchers_bind_their_log_label_and_expiry() {
        let o = orgs();
        let h = synth::list(1, synth::Shape::Uniform, 11)[0];
        let mut log = ListLog::new([9; 32], policy(2));
        // Vouchers signed for another log do not replay into this one.
        let other = log_id(&SigningKey::from_bytes(&[8; 32]).verifying_key());
        let mut replayed = leaf(0, h, &[]);
        replayed.vouchers = [&o[0], &o[1]]
            .iter()
            .map(|g| g.vouch(&other, &h, "known", FAR))
            .collect();
        assert!(matches!(
            log.append(replayed),
            Err(LogError::Policy { got: 0, .. })
        ));
        // Nor onto another label: a voucher for "known" does not admit "protest".
        let mut relabelled = leaf(0, h, &[&o[0], &o[1]]);
        relabelled.label = "protest".into();
        assert!(log.append(relabelled).is_err());
        // An expired voucher admits no entry added after its expiry.
        let mut late = leaf(0, h, &[&o[0]]);
        late.vouchers
            .push(o[1].vouch(&lid(), &h, "known", late.added));
        assert!(matches!(
            log.append(late),
            Err(LogError::Policy { got: 1, .. })
        ));
        assert_eq!(log.append(leaf(0, h, &[&o[0], &o[1]])), Ok(0));
    }

    #[test]
    fn one_key_counts_once_and_weak_keys_are_refused() {
        let o = orgs();
        // The same key registered under a second name in a second jurisdiction.
        let alias = OrgKey {
            name: "alias".into(),
            jurisdiction: "FR".into(),
            key: o[0].public.key,
        };
        let mut both = vec![o[0].public.clone(), alias.clone()];
        assert!(matches!(
            Policy::new(2, both.clone()),
            Err(LogError::Duplicate(_))
        ));
        assert_eq!(
            Policy::new(0, vec![o[0].public.clone()]).unwrap_err(),
            LogError::NoThreshold
        );
        // Built by hand past that check, the key still counts once.
        let hand = Policy {
            k: 2,
            orgs: both.clone(),
        };
        let h = synth::list(1, synth::Shape::Uniform, 12)[0];
        let mut l = leaf(0, h, &[&o[0]]);
        let mut v = o[0].vouch(&lid(), &h, "known", FAR);
        v.org = "alias".into();
        l.vouchers.push(v);
        assert!(matches!(
            hand.check(&lid(), &l),
            Err(LogError::Policy { got: 1, .. })
        ));
        // A small-order key (the identity point) under which (R = identity, s = 0) verifies
        // non-strictly for every message: refused at registration and by the strict check.
        let mut id = [0u8; 32];
        id[0] = 1;
        let weak = VerifyingKey::from_bytes(&id).unwrap();
        let mut sig = [0u8; 64];
        sig[0] = 1;
        let msg = voucher_message(&lid(), &h, "known", FAR);
        assert!(
            weak.verify(&msg, &Signature::from_bytes(&sig)).is_ok(),
            "canary: the forgery verifies non-strictly"
        );
        both[1] = OrgKey {
            name: "weak".into(),
            jurisdiction: "FR".into(),
            key: weak,
        };
        assert!(matches!(
            Policy::new(2, both.clone()),
            Err(LogError::WeakKey(_))
        ));
        let hand = Policy { k: 2, orgs: both };
        let mut l = leaf(0, h, &[&o[0]]);
        l.vouchers.push(Voucher {
            org: "weak".into(),
            expires: FAR,
            signature: sig,
        });
        assert!(hand.check(&lid(), &l).is_err());
    }

    #[test]
    fn heads_carry_their_log_and_their_time_is_checked() {
        let (mut log, _) = log_with(5);
        let mut c = Auditor::new(log.operator_key(), policy(2));
        let day = 86_400;
        let h = log.publish(10 * day);
        let mut moved = h.clone();
        moved.log_id[0] ^= 1;
        assert_eq!(c.verify_head(&moved), Err(LogError::WrongLog { size: 5 }));
        // From the future, and stale.
        assert!(matches!(
            c.observe(&h, &[], 9 * day),
            Err(LogError::Timestamp { .. })
        ));
        assert!(matches!(
            c.observe(&h, &[], 18 * day),
            Err(LogError::Timestamp { .. })
        ));
        c.observe(&h, &[], 10 * day + 60).unwrap();
        // A larger head signed earlier than a smaller one.
        let o = orgs();
        log.append(leaf(5, Hash256([5; 4]), &[&o[0], &o[1]]))
            .unwrap();
        let back = log.publish(10 * day - 1);
        assert!(matches!(
            c.observe(&back, &log.prove_consistency(5).unwrap(), 10 * day + 60),
            Err(LogError::Timestamp { .. })
        ));
        let fwd = log.publish(10 * day + 1);
        c.observe(&fwd, &log.prove_consistency(5).unwrap(), 10 * day + 60)
            .unwrap();
    }

    #[test]
    fn a_monitor_checks_the_sorted_root_of_a_head_of_any_size() {
        let o = orgs();
        let (mut log, _) = log_with(12);
        let mut heads = vec![log.publish(1)];
        let poster = synth::list(1, synth::Shape::Uniform, 77)[0];
        log.append(leaf(12, poster, &[&o[0], &o[1]])).unwrap();
        let monitor = Auditor::new(log.operator_key(), policy(2));
        // The operator serves one user a head of a fresh size (13) whose sorted tree leaves
        // the poster out; the absence proof under it verifies for that user …
        let (lying, proof) = log.dangerous_publish_omitting(2, &poster);
        let user = Auditor::new(log.operator_key(), policy(2));
        user.check_absence(&lying, &poster, &proof).unwrap();
        // … and no head of that size was ever gossiped to compare with; the monitor, holding
        // the list, catches it.
        assert_eq!(
            monitor.audit_head(&lying, log.leaves()),
            Err(LogError::SortedRootMismatch(13))
        );
        // Honest heads pass at every size, the old one against the longer list included.
        heads.push(log.publish(3));
        for h in &heads {
            monitor.audit_head(h, log.leaves()).unwrap();
        }
        assert_eq!(
            monitor.audit_head(&heads[1], &log.leaves()[..5]),
            Err(LogError::OutOfRange(13))
        );
    }

    #[test]
    fn a_list_root_is_the_heads_sorted_root_and_proves_entries() {
        let (log, hs) = log_with(9);
        let c = SortedCommitment::new(hs.iter().copied().chain([hs[0]]));
        let head = log.publish(1);
        assert_eq!(
            c.root(),
            ListRoot {
                root: head.sorted_root,
                distinct: head.distinct
            }
        );
        let p = c.prove(&hs[4]).unwrap();
        c.root().verify(&hs[4], &p).unwrap();
        assert!(c.root().verify(&hs[5], &p).is_err());
        assert!(c.prove(&Hash256([3; 4])).is_none());
        let other = SortedCommitment::new(hs[1..].iter().copied()).root();
        assert!(other.verify(&hs[4], &p).is_err());
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
