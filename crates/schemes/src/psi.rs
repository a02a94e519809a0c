//! Threshold private set intersection with associated data (tPSI-AD) and synthetic vouchers:
//! the construction of Bhowmick, Boneh, Myers, Talwar and Tarbe, "The Apple PSI System"
//! (Apple, 29 July 2021), built from vetted parts. S7 ([`crate::private_match`]) runs it inside
//! the messenger.
//!
//! # Parts
//! - **Group:** ristretto255 (`curve25519-dalek`). `H` is its hash-to-group
//!   (`RistrettoPoint::from_uniform_bytes` over SHA-512 of a domain and the item: RFC 9496's
//!   map applied twice and added), so no one knows the discrete log of `H(y)`. (Deriving `H(y)`
//!   as `(y mod q)·G`, as one public implementation does, lets any client compute `α·H(y) =
//!   y·L` and read the list.)
//! - **AEAD:** ChaCha20-Poly1305 (RustCrypto) with single-use keys, and XChaCha20-Poly1305
//!   with random nonces under the per-account key. Both are random-key robust: a ciphertext
//!   made under one random key fails to open under another, except with probability about
//!   2⁻¹²⁸, which is what lets the provider trial-decrypt.
//! - **Field:** the scalar field of ristretto255 (a 252-bit prime), for the shares.
//!
//! # The construction
//! **Provider setup.** Deduplicate the list `X` (n items, each a 256-bit PDQ hash). Place it in
//! a cuckoo table `T` of `n′ = ⌈(1+ε)·n⌉` slots with two slot functions `h₁, h₂` (SHA-256 of a
//! public seed, the function's index and the item); items that cannot be placed are left out
//! and counted (Apple's ε = 0.3 encodes a large subset only; scanlab's default ε = 1.1 keeps
//! the load under ½, where two-choice cuckoo hashing places every item with high
//! probability). Pick a secret scalar `α`, publish `L = α·G` and, for every slot `j`,
//! `P_j = α·H(T[j])`, or a random point for an empty slot.
//!
//! **Device state.** A 32-byte secret seed, kept in the device's store, from which HKDF-SHA256
//! derives `s` secret polynomials `P⁽¹⁾…P⁽ˢ⁾` of degree `t − 1` over the field and a PRF key.
//! The account key is `adkey = SHA-256(domain ‖ P⁽¹⁾(0))`: `P⁽¹⁾` is a Shamir sharing of it.
//!
//! **Voucher for an image `y`** (its PDQ hash) with visual derivative `ad` (a 64×64 greyscale
//! thumbnail, padded to a fixed length):
//! - `x = PRF(y)` as a field element; the share is `(x, P⁽¹⁾(x), …, P⁽ˢ⁾(x))`;
//! - `adct = XChaCha20-Poly1305(adkey, ad)`;
//! - `rct = ChaCha20-Poly1305(rkey, x ‖ shares ‖ adct)` under a fresh random `rkey`;
//! - for `w ∈ {h₁(y), h₂(y)}`: random `β, γ`; `Q = β·H(y) + γ·G`, `S = β·P_w + γ·L`,
//!   `ct = ChaCha20-Poly1305(SHA-256(domain ‖ Q ‖ S), rkey)`. This is Naor and Reingold's
//!   random self-reduction of the DH tuple: if `T[w] = y` then `S = α·Q`; otherwise `(Q, S)`
//!   is uniformly random and `ct` hides `rkey` from everyone;
//! - the voucher is the two `(Q, ct)` pairs in random order, then `rct`.
//!
//! **Synthetic vouchers.** For a pseudorandom fraction `p` of images (a coin keyed by the
//! device secret and the image), the device sends a synthetic voucher instead:
//! one pair has `Q = r·G` and `S = r·L = α·Q`, so its outer layer opens at the provider like a
//! match, the other pair is random, and the share is pseudorandom (keyed by the device
//! secret and the image) with an `adct` under a random key. Below `t` real shares the provider cannot tell which of the opened vouchers
//! are real: `t − 1` evaluations of a degree-`t − 1` polynomial are uniformly random, exactly
//! like a synthetic share.
//!
//! **Provider, per voucher.** Compute `α·Q` for both pairs and trial-decrypt; if one opens,
//! open `rct` with the `rkey` it holds. An outer layer that opens over an inner one that does
//! not (or holds no field elements) is a tampered voucher ([`PsiError::Tampered`]), which the
//! scheme answers exactly as a non-match: any other answer would tell a client that the hash
//! it built the voucher for is listed. Neither opening is what a non-match looks like, and
//! what a voucher tampered in its outer layer looks like too: the two cannot be told apart.
//!
//! **Threshold recovery: the detectable hash function.** The opened shares are the points of
//! `s` interleaved Reed–Solomon codewords (the real ones) mixed with errors (the synthetic
//! ones). scanlab decodes them as Bleichenbacher, Kiayias and Yung (ICALP 2003) and Coppersmith
//! and Sudan (STOC 2003) decode interleaved Reed–Solomon codes, which is the detectable hash
//! function of Apple's paper: for a guessed error count `e`, solve the linear system
//! `N_j(x_i) = y_{ij}·Λ(x_i)` for a monic error locator `Λ` of degree `e` and polynomials `N_j`
//! of degree `< e + t`. It has a solution whose `Λ` vanishes exactly on the synthetic shares
//! once `r ≥ t + e/s` real shares are present (so `r ≥ t + 1` when `e ≤ s`; more synthetics
//! need more real shares). Each candidate is checked by opening the `adct`s under the
//! `adkey` it yields: a wrong candidate opens none (but with probability about 2⁻¹²⁸).
//! Recovery then decrypts the derivatives of exactly the shares whose `adct` opens under the
//! recovered key: the real ones.
//!
//! # Known weaknesses (named in the paper's analyses and since)
//! - **Duplicates count toward `t`.** Here `x = PRF(y)`, so exact copies of one image give one
//!   share and count once; a re-encoded or edited copy has another hash, another `x`, and
//!   counts again. The synthetic coin and the synthetic share are pseudorandom functions of
//!   the image too, so a repeated image repeats its share either way and shows nothing.
//! - **The threshold grows with the account.** Decoding needs `r ≥ t + e/s` real shares with
//!   `e` synthetic ones, and `e` grows as `p` times the images an account sends: with `t = 3`,
//!   `s = 2`, `p = 0.1`, an account of 1,000 images needs about 53 real matches, not 3, and a
//!   recovery attempt costs about `n⁴·s³` field operations in its `n` opened shares. Apple's
//!   answer is to choose `s` for the expected synthetic count.
//! - **The provider can stuff the table.** Nothing stops it from putting `ε·n` entries of its
//!   own choosing in the empty slots (or replacing any): the table is `α`-blinded and no client
//!   can check what is in it. Pinkas suggests certification by the list's source with
//!   zero-knowledge proofs; scanlab's list log commits to the list, not to this table.
//! - **The synthetic rate can be estimated.** The provider sees how many vouchers open per
//!   account over time: with rate `p` known, an account whose opened count runs above
//!   `p × vouchers` is likely to hold matches, below `t` too (S. J. Lewis, "Obfuscated Apples").
//! - A malicious client can send extra synthetics to break decoding (more than `s·(r − t)`),
//!   or simply withhold vouchers.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};
use zeroize::{Zeroize, Zeroizing};

/// A compressed ristretto point.
pub const POINT_LEN: usize = 32;
/// A field element.
pub const SCALAR_LEN: usize = 32;
/// An outer pair: `Q` and `rkey` wrapped (32 bytes and a 16-byte tag).
pub const PAIR_LEN: usize = POINT_LEN + 32 + 16;
/// The padded visual derivative (a length prefix and a 64×64 greyscale JPEG).
pub const DERIVATIVE_LEN: usize = 4096;
/// The derivative's ciphertext: nonce, padded derivative, tag.
pub const ADCT_LEN: usize = 24 + DERIVATIVE_LEN + 16;
/// Most polynomials a share may interleave.
pub const MAX_S: usize = 16;
/// Largest threshold.
pub const MAX_T: usize = 1024;

/// Why a PSI operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PsiError {
    /// A voucher, share or table that does not parse.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The voucher's outer layer opened and its inner layer did not: it was changed.
    #[error("the voucher's outer layer opened but its inner layer did not: tampered")]
    Tampered,
    /// The table does not have the size its parameters announce.
    #[error("table: {0}")]
    Table(String),
    /// A voucher the provider has already processed.
    #[error("replayed voucher")]
    Replayed,
    /// Parameters out of range.
    #[error("parameters: {0}")]
    Params(String),
}

/// The public threshold parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Threshold {
    /// Real matches needed (with no synthetic vouchers among them; see the module doc).
    pub t: usize,
    /// Interleaved polynomials per share: how many synthetic vouchers per real share above
    /// `t` decoding tolerates.
    pub s: usize,
}

impl Threshold {
    /// Checks the ranges.
    pub fn check(&self) -> Result<(), PsiError> {
        if self.t == 0 || self.t > MAX_T || self.s == 0 || self.s > MAX_S {
            return Err(PsiError::Params(format!(
                "t = {} must be 1..={MAX_T} and s = {} 1..={MAX_S}",
                self.t, self.s
            )));
        }
        Ok(())
    }

    /// The share's length: `x` and `s` evaluations.
    pub fn share_len(&self) -> usize {
        SCALAR_LEN * (1 + self.s)
    }

    /// The voucher's length: two pairs, then the inner layer and its tag.
    pub fn voucher_len(&self) -> usize {
        2 * PAIR_LEN + self.share_len() + ADCT_LEN + 16
    }
}

fn h2g(item: &[u8; 32]) -> RistrettoPoint {
    let d: [u8; 64] = Sha512::new()
        .chain_update(b"scanlab-psi-hash-to-group-v1")
        .chain_update(item)
        .finalize()
        .into();
    RistrettoPoint::from_uniform_bytes(&d)
}

fn random_scalar(rng: &mut impl RngCore) -> Scalar {
    let mut b = Zeroizing::new([0u8; 64]);
    rng.fill_bytes(b.as_mut());
    Scalar::from_bytes_mod_order_wide(&b)
}

fn random_point(rng: &mut impl RngCore) -> RistrettoPoint {
    let mut b = [0u8; 64];
    rng.fill_bytes(&mut b);
    RistrettoPoint::from_uniform_bytes(&b)
}

/// The item's two slots, always distinct (so a real voucher has exactly one pair that can
/// open, as a synthetic one does): `h₁` uniform, `h₂` uniform over the other slots.
fn slots_of(seed: &[u8; 32], item: &[u8; 32], slots: usize) -> [usize; 2] {
    let d = Sha256::new()
        .chain_update(b"scanlab-psi-slot-v2")
        .chain_update(seed)
        .chain_update(item)
        .finalize();
    let word = |i: usize| u64::from_le_bytes(d[i..i + 8].try_into().expect("8 bytes"));
    let n = slots as u64;
    let h1 = word(0) % n;
    let h2 = (h1 + 1 + word(8) % (n - 1)) % n;
    [h1 as usize, h2 as usize]
}

fn outer_key(q: &CompressedRistretto, s: &RistrettoPoint) -> ChaCha20Poly1305 {
    let k: [u8; 32] = Sha256::new()
        .chain_update(b"scanlab-psi-outer-v1")
        .chain_update(q.as_bytes())
        .chain_update(s.compress().as_bytes())
        .finalize()
        .into();
    ChaCha20Poly1305::new(&k.into())
}

const ZERO_NONCE: [u8; 12] = [0; 12];

/// A cuckoo table's slots: the item in each, if any.
type Slots = Vec<Option<[u8; 32]>>;

/// Cuckoo placement of `items` in `slots` slots under `seed`: the table and how many items
/// found no slot.
fn place(items: &[[u8; 32]], seed: &[u8; 32], slots: usize) -> (Slots, usize) {
    let mut table: Slots = vec![None; slots];
    let mut left_out = 0;
    for item in items {
        let mut cur = *item;
        let mut at = slots_of(seed, &cur, slots)[0];
        let mut placed = false;
        for _ in 0..500 {
            match table[at].replace(cur) {
                None => {
                    placed = true;
                    break;
                }
                Some(evicted) => {
                    cur = evicted;
                    let [a, b] = slots_of(seed, &cur, slots);
                    at = if a == at { b } else { a };
                }
            }
        }
        left_out += usize::from(!placed);
    }
    (table, left_out)
}

/// The published table: `L = α·G`, the cuckoo seed, and one blinded point per slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// `α·G`.
    pub l: CompressedRistretto,
    /// The slot functions' seed.
    pub seed: [u8; 32],
    /// `α·H(T[j])`, or a random point for an empty slot.
    pub points: Vec<CompressedRistretto>,
}

/// The provider's secret: `α`.
pub struct ProviderKey {
    alpha: Scalar,
}

impl Drop for ProviderKey {
    fn drop(&mut self) {
        self.alpha.zeroize();
    }
}

/// What a setup placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Distinct items.
    pub items: usize,
    /// Items the cuckoo table could not place (not matchable).
    pub left_out: usize,
}

impl Table {
    /// Builds the blinded table of `items` with `ε = epsilon` (slots `⌈(1+ε)·n⌉`, at least 8),
    /// and the provider's key. `α·H(·)` runs on every core.
    pub fn build(
        items: &[[u8; 32]],
        epsilon: f64,
        rng: &mut impl RngCore,
    ) -> Result<(Table, ProviderKey, Setup), PsiError> {
        if !(0.0..=8.0).contains(&epsilon) {
            return Err(PsiError::Params(format!("ε = {epsilon} must be 0..=8")));
        }
        let mut distinct: Vec<[u8; 32]> = items.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let slots = (((1.0 + epsilon) * distinct.len() as f64).ceil() as usize).max(8);
        // A placement that leaves items out is retried with a fresh seed (rehashing, as cuckoo
        // hashing prescribes), keeping the best of a few: below load ½ a retry almost always
        // places everything.
        let mut best: Option<([u8; 32], Slots, usize)> = None;
        for _ in 0..8 {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            let (table, left_out) = place(&distinct, &seed, slots);
            if best.as_ref().is_none_or(|b| left_out < b.2) {
                best = Some((seed, table, left_out));
            }
            // Only a near miss is worth another seed: far above load ½ every seed leaves
            // items out.
            if left_out == 0 || left_out > (distinct.len() / 100).max(8) {
                break;
            }
        }
        let (seed, table, left_out) = best.expect("one attempt");
        let alpha = random_scalar(rng);
        let key = ProviderKey { alpha };
        let fillers: Vec<[u8; 64]> = table
            .iter()
            .map(|_| {
                let mut b = [0u8; 64];
                rng.fill_bytes(&mut b);
                b
            })
            .collect();
        use rayon::prelude::*;
        let points = table
            .par_iter()
            .zip(fillers.par_iter())
            .map(|(e, f)| match e {
                Some(item) => (h2g(item) * alpha).compress(),
                None => RistrettoPoint::from_uniform_bytes(f).compress(),
            })
            .collect();
        let l = (&alpha * RISTRETTO_BASEPOINT_TABLE).compress();
        Ok((
            Table { l, seed, points },
            key,
            Setup {
                items: distinct.len(),
                left_out,
            },
        ))
    }

    /// The table as published: `L ‖ seed ‖ points`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 32 * self.points.len());
        out.extend_from_slice(self.l.as_bytes());
        out.extend_from_slice(&self.seed);
        for p in &self.points {
            out.extend_from_slice(p.as_bytes());
        }
        out
    }

    /// Reads a published table, which must have exactly `slots` slots (the announced size).
    ///
    /// Every point is checked to decode (and `L` not to be the identity) here, once: a table
    /// with a bad point at chosen slots would otherwise make a device fail exactly on images
    /// that hash there, which tells the provider something of those images.
    pub fn from_bytes(b: &[u8], slots: usize) -> Result<Table, PsiError> {
        let want = slots.checked_mul(32).and_then(|n| n.checked_add(64));
        if slots < 8 || want != Some(b.len()) {
            return Err(PsiError::Table(format!(
                "{} bytes, not the 64 + 32 × {slots} of the announced slots",
                b.len()
            )));
        }
        let point = |c: &[u8]| CompressedRistretto(c.try_into().expect("32 bytes"));
        let t = Table {
            l: point(&b[..32]),
            seed: b[32..64].try_into().expect("32 bytes"),
            points: b[64..].chunks_exact(32).map(point).collect(),
        };
        use curve25519_dalek::traits::Identity;
        match t.l.decompress() {
            Some(l) if l != RistrettoPoint::identity() => {}
            _ => return Err(PsiError::Table("L is not a point of the group".into())),
        }
        use rayon::prelude::*;
        if let Some(j) = t
            .points
            .par_iter()
            .position_any(|p| p.decompress().is_none())
        {
            return Err(PsiError::Table(format!("slot {j} is not a point")));
        }
        Ok(t)
    }

    /// Bytes of the published table.
    pub fn len_bytes(&self) -> usize {
        64 + 32 * self.points.len()
    }
}

/// A device's secret state: the seed of its polynomials and PRF key. It persists on the
/// device; losing it starts a new account key (old shares then never combine with new ones).
pub struct Device {
    seed: Zeroizing<[u8; 32]>,
    th: Threshold,
    polys: Vec<Vec<Scalar>>,
}

impl Drop for Device {
    fn drop(&mut self) {
        for p in &mut self.polys {
            p.iter_mut().for_each(Zeroize::zeroize);
        }
    }
}

fn kdf(seed: &[u8; 32], label: &[u8], out: &mut [u8]) {
    hkdf::Hkdf::<Sha256>::new(Some(b"scanlab-psi-device-v1"), seed)
        .expand(label, out)
        .expect("short output");
}

fn wide(seed: &[u8; 32], label: &[u8]) -> Scalar {
    let mut b = Zeroizing::new([0u8; 64]);
    kdf(seed, label, b.as_mut());
    Scalar::from_bytes_mod_order_wide(&b)
}

fn eval(poly: &[Scalar], x: &Scalar) -> Scalar {
    poly.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c)
}

/// The account key a Shamir secret (the constant of the first polynomial) opens.
fn adkey_of(secret: &Scalar) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(
        Sha256::new()
            .chain_update(b"scanlab-psi-adkey-v1")
            .chain_update(secret.as_bytes())
            .finalize()
            .into(),
    )
}

impl Device {
    /// The device state from its stored seed.
    pub fn from_seed(seed: [u8; 32], th: Threshold) -> Result<Device, PsiError> {
        th.check()?;
        let polys = (0..th.s)
            .map(|j| {
                (0..th.t)
                    .map(|k| wide(&seed, format!("poly {j} coefficient {k}").as_bytes()))
                    .collect()
            })
            .collect();
        Ok(Device {
            seed: Zeroizing::new(seed),
            th,
            polys,
        })
    }

    /// The stored seed.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    fn x_of(&self, item: &[u8; 32]) -> Scalar {
        let mut label = b"share x ".to_vec();
        label.extend_from_slice(item);
        wide(&self.seed, &label)
    }

    fn adct(&self, derivative: &[u8], rng: &mut impl RngCore) -> Result<Vec<u8>, PsiError> {
        let key = adkey_of(&self.polys[0][0]);
        seal_derivative(&key, derivative, rng)
    }

    /// A real voucher for `item` with `derivative` (at most [`DERIVATIVE_LEN`] − 2 bytes).
    pub fn voucher(
        &self,
        table: &Table,
        item: &[u8; 32],
        derivative: &[u8],
        rng: &mut impl RngCore,
    ) -> Result<Vec<u8>, PsiError> {
        self.voucher_for(table, item, item, derivative, rng)
    }

    /// A real voucher for table item `item` whose share is the one of `image` (its full hash):
    /// the fuzzy variant sends one voucher per bucket of an image, and all of them carry the
    /// same share, so one image counts once however many of its buckets match.
    pub fn voucher_for(
        &self,
        table: &Table,
        item: &[u8; 32],
        image: &[u8; 32],
        derivative: &[u8],
        rng: &mut impl RngCore,
    ) -> Result<Vec<u8>, PsiError> {
        let x = self.x_of(image);
        let mut inner = Zeroizing::new(x.to_bytes().to_vec());
        for p in &self.polys {
            inner.extend_from_slice(eval(p, &x).as_bytes());
        }
        inner.extend_from_slice(&self.adct(derivative, rng)?);
        let l = table
            .l
            .decompress()
            .ok_or_else(|| PsiError::Table("L is not a point".into()))?;
        let hy = h2g(item);
        let mut pairs = Vec::with_capacity(2);
        for w in slots_of(&table.seed, item, table.points.len()) {
            let p = table.points[w]
                .decompress()
                .ok_or_else(|| PsiError::Table("a slot is not a point".into()))?;
            let (beta, gamma) = (random_scalar(rng), random_scalar(rng));
            let q = (hy * beta + &gamma * RISTRETTO_BASEPOINT_TABLE).compress();
            let s = p * beta + l * gamma;
            pairs.push((q, s));
        }
        Ok(assemble(pairs, &inner, rng))
    }

    /// Whether this device sends a synthetic voucher for `image` at rate `p`: a pseudorandom
    /// coin of the image under the device's secret, the same every time the image is sent,
    /// so a repeated image shows the provider nothing (a fresh coin per send would: a real
    /// share repeats its `x`, a fresh synthetic one does not).
    pub fn is_synthetic(&self, image: &[u8; 32], p: f64) -> bool {
        let mut label = b"synthetic coin ".to_vec();
        label.extend_from_slice(image);
        let mut b = [0u8; 8];
        kdf(&self.seed, &label, &mut b);
        p > 0.0 && ((u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// A synthetic voucher for `image`: its outer layer opens at the provider, and its share
    /// is pseudorandom under the device's secret (the same for every send of the image, like
    /// a real share, and unrelated to the polynomials).
    pub fn synthetic(
        &self,
        table: &Table,
        image: &[u8; 32],
        rng: &mut impl RngCore,
    ) -> Result<Vec<u8>, PsiError> {
        let l = table
            .l
            .decompress()
            .ok_or_else(|| PsiError::Table("L is not a point".into()))?;
        let mut inner = Zeroizing::new(Vec::with_capacity(self.th.share_len() + ADCT_LEN));
        for k in 0..=self.th.s {
            let mut label = format!("synthetic share {k} ").into_bytes();
            label.extend_from_slice(image);
            inner.extend_from_slice(wide(&self.seed, &label).as_bytes());
        }
        let mut junk_key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(junk_key.as_mut());
        inner.extend_from_slice(&seal_derivative(&junk_key, &[], rng)?);
        let r = random_scalar(rng);
        let opens = ((&r * RISTRETTO_BASEPOINT_TABLE).compress(), l * r);
        let other = (random_point(rng).compress(), random_point(rng));
        Ok(assemble(vec![opens, other], &inner, rng))
    }
}

fn seal_derivative(key: &[u8; 32], d: &[u8], rng: &mut impl RngCore) -> Result<Vec<u8>, PsiError> {
    if d.len() > DERIVATIVE_LEN - 2 {
        return Err(PsiError::Params(format!(
            "derivative of {} bytes, over {}",
            d.len(),
            DERIVATIVE_LEN - 2
        )));
    }
    let mut padded = Zeroizing::new(vec![0u8; DERIVATIVE_LEN]);
    padded[..2].copy_from_slice(&(d.len() as u16).to_le_bytes());
    padded[2..2 + d.len()].copy_from_slice(d);
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(&nonce.into(), padded.as_slice())
        .map_err(|_| PsiError::Params("sealing the derivative".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_derivative(key: &[u8; 32], adct: &[u8]) -> Option<Vec<u8>> {
    if adct.len() != ADCT_LEN {
        return None;
    }
    let nonce: [u8; 24] = adct[..24].try_into().ok()?;
    let padded = Zeroizing::new(
        XChaCha20Poly1305::new(key.into())
            .decrypt(&nonce.into(), &adct[24..])
            .ok()?,
    );
    let n = u16::from_le_bytes([padded[0], padded[1]]) as usize;
    (n <= DERIVATIVE_LEN - 2).then(|| padded[2..2 + n].to_vec())
}

/// The two pairs in random order (each wrapping a fresh `rkey`), then the inner layer.
fn assemble(
    mut pairs: Vec<(CompressedRistretto, RistrettoPoint)>,
    inner: &[u8],
    rng: &mut impl RngCore,
) -> Vec<u8> {
    if rng.next_u32() & 1 == 1 {
        pairs.swap(0, 1);
    }
    let mut rkey = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(rkey.as_mut());
    let mut out = Vec::with_capacity(2 * PAIR_LEN + inner.len() + 16);
    for (q, s) in &pairs {
        out.extend_from_slice(q.as_bytes());
        let wrapped = outer_key(q, s)
            .encrypt(
                &ZERO_NONCE.into(),
                Payload {
                    msg: rkey.as_slice(),
                    aad: q.as_bytes(),
                },
            )
            .expect("in memory");
        out.extend_from_slice(&wrapped);
    }
    let rct = ChaCha20Poly1305::new(rkey.as_ref().into())
        .encrypt(&ZERO_NONCE.into(), inner)
        .expect("in memory");
    out.extend_from_slice(&rct);
    out
}

/// An opened voucher's share.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Share {
    /// `x`, 32 bytes little-endian.
    #[serde(with = "hex::serde")]
    pub x: Vec<u8>,
    /// `P⁽¹⁾(x) … P⁽ˢ⁾(x)`.
    pub y: Vec<String>,
    /// The derivative's ciphertext, hex.
    #[serde(with = "hex::serde")]
    pub adct: Vec<u8>,
}

fn scalar(b: &[u8]) -> Option<Scalar> {
    Option::from(Scalar::from_canonical_bytes(b.try_into().ok()?))
}

impl ProviderKey {
    /// Opens a voucher: `Ok(None)` when neither pair opens (a non-match, or an outer layer
    /// tampered with: indistinguishable), the share when one does.
    pub fn open(&self, th: &Threshold, voucher: &[u8]) -> Result<Option<Share>, PsiError> {
        if voucher.len() != th.voucher_len() {
            return Err(PsiError::Malformed(format!(
                "a voucher of {} bytes, not {}",
                voucher.len(),
                th.voucher_len()
            )));
        }
        let mut rkey = None;
        for pair in voucher[..2 * PAIR_LEN].chunks_exact(PAIR_LEN) {
            let q = CompressedRistretto(pair[..32].try_into().expect("32 bytes"));
            let point = q
                .decompress()
                .ok_or_else(|| PsiError::Malformed("Q is not a point".into()))?;
            let s = point * self.alpha;
            if let Ok(k) = outer_key(&q, &s).decrypt(
                &ZERO_NONCE.into(),
                Payload {
                    msg: &pair[32..],
                    aad: q.as_bytes(),
                },
            ) {
                rkey = Some(Zeroizing::new(k));
            }
        }
        let Some(rkey) = rkey else { return Ok(None) };
        let key: Zeroizing<[u8; 32]> =
            Zeroizing::new(rkey.as_slice().try_into().map_err(|_| PsiError::Tampered)?);
        let inner = ChaCha20Poly1305::new(key.as_ref().into())
            .decrypt(&ZERO_NONCE.into(), &voucher[2 * PAIR_LEN..])
            .map_err(|_| PsiError::Tampered)?;
        let n = th.share_len();
        let x = inner[..32].to_vec();
        // An opened inner layer that no honest device makes is tampering too (a different
        // error here would tell the client its voucher opened).
        scalar(&x).ok_or(PsiError::Tampered)?;
        let y = inner[32..n]
            .chunks_exact(32)
            .map(|c| scalar(c).map(|_| hex::encode(c)).ok_or(PsiError::Tampered))
            .collect::<Result<_, _>>()?;
        Ok(Some(Share {
            x,
            y,
            adct: inner[n..].to_vec(),
        }))
    }
}

/// What threshold recovery found.
pub struct Recovered {
    /// The account key.
    pub adkey: Zeroizing<[u8; 32]>,
    /// Indices of the real shares, and each one's derivative.
    pub real: Vec<(usize, Vec<u8>)>,
}

/// Opens a share's derivative with a recovered account key.
pub fn open_with(adkey: &[u8; 32], share: &Share) -> Option<Vec<u8>> {
    open_derivative(adkey, &share.adct)
}

/// Solves `a·v = b` over the field (Gaussian elimination; free unknowns set to 0); `None` when
/// the system is inconsistent.
fn solve(mut a: Vec<Vec<Scalar>>, mut b: Vec<Scalar>, unknowns: usize) -> Option<Vec<Scalar>> {
    let rows = a.len();
    let mut pivots = Vec::new();
    let mut r = 0;
    for c in 0..unknowns {
        let Some(p) = (r..rows).find(|&i| a[i][c] != Scalar::ZERO) else {
            continue;
        };
        a.swap(r, p);
        b.swap(r, p);
        let inv = a[r][c].invert();
        a[r][c..].iter_mut().for_each(|v| *v *= inv);
        b[r] *= inv;
        let pivot_row = a[r].clone();
        let pivot_b = b[r];
        for (i, (row, bi)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
            if i != r && row[c] != Scalar::ZERO {
                let f = row[c];
                for (x, p) in row[c..].iter_mut().zip(&pivot_row[c..]) {
                    *x -= f * p;
                }
                *bi -= f * pivot_b;
            }
        }
        pivots.push(c);
        r += 1;
        if r == rows {
            break;
        }
    }
    if b[r..].iter().any(|v| *v != Scalar::ZERO) {
        return None;
    }
    let mut v = vec![Scalar::ZERO; unknowns];
    for (i, &c) in pivots.iter().enumerate() {
        v[c] = b[i];
    }
    Some(v)
}

/// Lagrange interpolation at 0 of the points `(xs[i], ys[i])`.
fn at_zero(xs: &[Scalar], ys: &[Scalar]) -> Option<Scalar> {
    let mut acc = Scalar::ZERO;
    for (i, (xi, yi)) in xs.iter().zip(ys).enumerate() {
        let (mut num, mut den) = (Scalar::ONE, Scalar::ONE);
        for (j, xj) in xs.iter().enumerate() {
            if i != j {
                num *= xj;
                den *= xj - xi;
            }
        }
        if den == Scalar::ZERO {
            return None;
        }
        acc += yi * num * den.invert();
    }
    Some(acc)
}

/// Threshold recovery over an account's opened shares (real and synthetic mixed): the
/// account key and the derivatives of exactly the real shares, or `None` while there are too
/// few real ones. Shares with equal `x` must have been merged (the provider keeps the first).
pub fn recover(shares: &[Share], th: &Threshold) -> Option<Recovered> {
    let (t, s) = (th.t, th.s);
    let n = shares.len();
    if n < t {
        return None;
    }
    let parsed: Vec<(Scalar, Vec<Scalar>)> = shares
        .iter()
        .map(|sh| {
            let x = scalar(&sh.x)?;
            let y =
                sh.y.iter()
                    .map(|h| scalar(&hex::decode(h).ok()?))
                    .collect::<Option<Vec<_>>>()?;
            (y.len() == s).then_some((x, y))
        })
        .collect::<Option<_>>()?;
    // e synthetic among n need n − e ≥ t + e/s real shares.
    let max_e = (s * (n - t)) / (s + 1);
    for e in 0..=max_e {
        let unknowns = e + s * (e + t);
        let mut a = Vec::with_capacity(n * s);
        let mut b = Vec::with_capacity(n * s);
        for (x, ys) in &parsed {
            let powers: Vec<Scalar> = std::iter::successors(Some(Scalar::ONE), |p| Some(p * x))
                .take(e + t + 1)
                .collect();
            for (j, y) in ys.iter().enumerate() {
                let mut row = vec![Scalar::ZERO; unknowns];
                for m in 0..e {
                    row[m] = -(y * powers[m]);
                }
                let base = e + j * (e + t);
                row[base..base + e + t].copy_from_slice(&powers[..e + t]);
                a.push(row);
                b.push(y * powers[e]);
            }
        }
        let Some(v) = solve(a, b, unknowns) else {
            continue;
        };
        // The error locator Λ(x) = x^e + Σ λ_m x^m: the real shares are where it does not vanish.
        let locator = |x: &Scalar| {
            let mut acc = Scalar::ONE;
            for m in (0..e).rev() {
                acc = acc * x + v[m];
            }
            // Horner from the monic top: x^e + λ_{e−1}x^{e−1} + … + λ_0.
            acc
        };
        let real: Vec<usize> = (0..n)
            .filter(|&i| locator(&parsed[i].0) != Scalar::ZERO)
            .collect();
        if real.len() < t {
            continue;
        }
        let xs: Vec<Scalar> = real[..t].iter().map(|&i| parsed[i].0).collect();
        let ys: Vec<Scalar> = real[..t].iter().map(|&i| parsed[i].1[0]).collect();
        let Some(mut secret) = at_zero(&xs, &ys) else {
            continue;
        };
        let adkey = adkey_of(&secret);
        secret.zeroize();
        // The key decides which shares are real, not the locator: a degenerate solution can
        // put a real share among its roots.
        let opened: Vec<(usize, Vec<u8>)> = (0..n)
            .filter_map(|i| open_derivative(&adkey, &shares[i].adct).map(|d| (i, d)))
            .collect();
        if opened.len() >= t {
            return Some(Recovered {
                adkey,
                real: opened,
            });
        }
    }
    None
}

/// The distinguisher experiment: below `t`, can the provider tell a real share from a
/// synthetic one from the bytes it opened? Each of five features of a share (the mean byte
/// and the top byte of `x` and of `P⁽¹⁾(x)`, and the first byte of the derivative's
/// ciphertext) gets the threshold rule that best separates `n` real shares from `n`
/// synthetic ones (each real share from its own account, so no account holds two); the
/// feature and rule that do best are then scored on `n` fresh shares of each kind. With
/// `broken` the synthetic shares are made wrong on purpose (their `P⁽¹⁾(x)` drawn below
/// 2²⁴⁸, so their top byte is 0): the canary the rule must catch.
#[derive(Clone, Debug, PartialEq)]
pub struct Distinguished {
    /// The feature the training half chose.
    pub feature: &'static str,
    /// Correct guesses on the fresh shares.
    pub correct: usize,
    /// Fresh shares guessed (half real).
    pub guesses: usize,
}

/// Runs the distinguisher experiment with `n` shares of each kind per half, seeded.
pub fn distinguisher(n: usize, seed: u64, broken: bool) -> Distinguished {
    use rand::SeedableRng;
    let th = Threshold { t: 3, s: 2 };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let item = |rng: &mut rand_chacha::ChaCha8Rng| {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        b
    };
    let list: Vec<[u8; 32]> = (0..64).map(|_| item(&mut rng)).collect();
    let (table, key, _) = Table::build(&list, 1.1, &mut rng).expect("table");
    let mut draw = |real: bool, rng: &mut rand_chacha::ChaCha8Rng| -> Share {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let d = Device::from_seed(seed, th).expect("device");
        let v = if real {
            d.voucher(
                &table,
                &list[rng.next_u32() as usize % list.len()],
                b"d",
                rng,
            )
        } else {
            d.synthetic(&table, &item(rng), rng)
        }
        .expect("voucher");
        let mut share = key.open(&th, &v).expect("opens").expect("a match");
        if broken && !real {
            let mut y = [0u8; 32];
            rng.fill_bytes(&mut y[..31]);
            share.y[0] = hex::encode(y);
        }
        share
    };
    type Feature = fn(&Share) -> f64;
    let features: [(&'static str, Feature); 5] = [
        ("mean byte of x", |s| {
            s.x.iter().map(|&v| v as f64).sum::<f64>() / 32.0
        }),
        ("top byte of x", |s| s.x[31] as f64),
        ("mean byte of P1(x)", |s| {
            let y = hex::decode(&s.y[0]).unwrap_or_default();
            y.iter().map(|&v| v as f64).sum::<f64>() / y.len().max(1) as f64
        }),
        ("top byte of P1(x)", |s| {
            hex::decode(&s.y[0])
                .ok()
                .and_then(|y| y.last().copied())
                .unwrap_or(0) as f64
        }),
        ("first byte of the derivative's ciphertext", |s| {
            s.adct.first().copied().unwrap_or(0) as f64
        }),
    ];
    let sample = |draw: &mut dyn FnMut(bool, &mut rand_chacha::ChaCha8Rng) -> Share,
                  rng: &mut rand_chacha::ChaCha8Rng| {
        let mut v: Vec<(Share, bool)> = Vec::with_capacity(2 * n);
        for i in 0..2 * n {
            let real = i % 2 == 0;
            v.push((draw(real, rng), real));
        }
        v
    };
    let train = sample(&mut draw, &mut rng);
    let test = sample(&mut draw, &mut rng);
    // Best (feature, threshold, direction) on the training half.
    let mut best = (0usize, 0.0f64, true, 0usize);
    for (fi, (_, f)) in features.iter().enumerate() {
        let mut vals: Vec<f64> = train.iter().map(|(s, _)| f(s)).collect();
        vals.sort_by(f64::total_cmp);
        vals.dedup();
        for &cut in &vals {
            for above_is_real in [true, false] {
                let ok = train
                    .iter()
                    .filter(|(s, real)| ((f(s) > cut) == above_is_real) == *real)
                    .count();
                if ok > best.3 {
                    best = (fi, cut, above_is_real, ok);
                }
            }
        }
    }
    let (fi, cut, dir, _) = best;
    let f = features[fi].1;
    Distinguished {
        feature: features[fi].0,
        correct: test
            .iter()
            .filter(|(s, real)| ((f(s) > cut) == dir) == *real)
            .count(),
        guesses: test.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(seed)
    }

    fn item(r: &mut rand_chacha::ChaCha8Rng) -> [u8; 32] {
        let mut b = [0u8; 32];
        r.fill_bytes(&mut b);
        b
    }

    fn items(n: usize, seed: u64) -> Vec<[u8; 32]> {
        let mut r = rng(seed);
        (0..n)
            .map(|_| {
                let mut b = [0u8; 32];
                r.fill_bytes(&mut b);
                b
            })
            .collect()
    }

    const TH: Threshold = Threshold { t: 3, s: 2 };

    fn setup() -> (Table, ProviderKey, Vec<[u8; 32]>, Device) {
        let list = items(40, 1);
        let (table, key, setup) = Table::build(&list, 1.1, &mut rng(2)).unwrap();
        assert_eq!(setup.left_out, 0);
        let device = Device::from_seed([9; 32], TH).unwrap();
        (table, key, list, device)
    }

    #[test]
    fn every_item_of_a_small_list_is_placed_and_apples_slack_leaves_some_out() {
        // Small tables fail a placement now and then; a fresh seed fixes it (this failed,
        // about one run in ten, before placements were retried).
        for n in 1..60 {
            for seed in 0..5 {
                let (_, _, s) = Table::build(&items(n, 100 + seed), 1.1, &mut rng(seed)).unwrap();
                assert_eq!(s.left_out, 0, "n = {n}, seed {seed}");
            }
        }
        let (_, _, s) = Table::build(&items(20_000, 3), 0.3, &mut rng(3)).unwrap();
        assert!(s.left_out > 200, "{s:?}");
    }

    #[test]
    fn a_listed_item_opens_an_unlisted_one_does_not() {
        let (table, key, list, device) = setup();
        let mut r = rng(3);
        for item in &list[..10] {
            let v = device.voucher(&table, item, b"thumb", &mut r).unwrap();
            assert_eq!(v.len(), TH.voucher_len());
            assert!(key.open(&TH, &v).unwrap().is_some());
        }
        for item in items(10, 77) {
            let v = device.voucher(&table, &item, b"thumb", &mut r).unwrap();
            assert!(key.open(&TH, &v).unwrap().is_none());
        }
        // Another provider's key opens nothing of this table's.
        let (_, other, _) = Table::build(&list, 1.1, &mut rng(5)).unwrap();
        let v = device.voucher(&table, &list[0], b"thumb", &mut r).unwrap();
        assert!(other.open(&TH, &v).unwrap().is_none());
        // Synthetic vouchers always open.
        for _ in 0..5 {
            let v = device.synthetic(&table, &[0xAB; 32], &mut r).unwrap();
            assert!(key.open(&TH, &v).unwrap().is_some());
        }
    }

    #[test]
    fn nothing_below_t_exactly_the_real_derivatives_at_t_with_synthetics_mixed_in() {
        let (table, key, list, device) = setup();
        let mut r = rng(4);
        let mut shares = Vec::new();
        let synth = |shares: &mut Vec<Share>, r: &mut rand_chacha::ChaCha8Rng| {
            let v = device.synthetic(&table, &item(r), r).unwrap();
            shares.push(key.open(&TH, &v).unwrap().unwrap());
        };
        synth(&mut shares, &mut r);
        for (i, item) in list[..TH.t].iter().enumerate() {
            let v = device
                .voucher(&table, item, format!("derivative {i}").as_bytes(), &mut r)
                .unwrap();
            shares.push(key.open(&TH, &v).unwrap().unwrap());
            synth(&mut shares, &mut r);
            if i + 1 < TH.t {
                assert!(recover(&shares, &TH).is_none(), "below t: {} real", i + 1);
            }
        }
        // t real and t synthetic: r ≥ t + e/s does not hold (3 < 3 + 3/2).
        assert!(recover(&shares, &TH).is_none());
        // Three more real ones and one more synthetic: 6 ≥ 3 + 5/2.
        for item in &list[TH.t..TH.t + 3] {
            let v = device.voucher(&table, item, b"more", &mut r).unwrap();
            shares.push(key.open(&TH, &v).unwrap().unwrap());
        }
        synth(&mut shares, &mut r);
        let got = recover(&shares, &TH).expect("recovers");
        let mut ds: Vec<Vec<u8>> = got.real.iter().map(|(_, d)| d.clone()).collect();
        ds.sort();
        let mut want: Vec<Vec<u8>> = (0..TH.t)
            .map(|i| format!("derivative {i}").into_bytes())
            .chain([b"more".to_vec(), b"more".to_vec(), b"more".to_vec()])
            .collect();
        want.sort();
        assert_eq!(ds, want, "exactly the real derivatives");
    }

    #[test]
    fn no_synthetics_recovers_at_exactly_t() {
        let (table, key, list, device) = setup();
        let mut r = rng(6);
        let shares: Vec<Share> = list[..TH.t]
            .iter()
            .map(|i| {
                let v = device.voucher(&table, i, b"d", &mut r).unwrap();
                key.open(&TH, &v).unwrap().unwrap()
            })
            .collect();
        assert!(recover(&shares[..TH.t - 1], &TH).is_none());
        assert_eq!(recover(&shares, &TH).unwrap().real.len(), TH.t);
    }

    #[test]
    fn tampering_and_wrong_sizes_are_typed_errors() {
        let (table, key, list, device) = setup();
        let mut r = rng(7);
        let v = device.voucher(&table, &list[0], b"d", &mut r).unwrap();
        // The inner layer changed: the outer opens, the inner does not.
        let mut t = v.clone();
        let at = t.len() - 40;
        t[at] ^= 1;
        assert_eq!(key.open(&TH, &t), Err(PsiError::Tampered));
        // Truncated.
        assert!(matches!(
            key.open(&TH, &v[1..]),
            Err(PsiError::Malformed(_))
        ));
        // A Q that is no point.
        let mut t = v.clone();
        t[..32].copy_from_slice(&[0xff; 32]);
        t[PAIR_LEN..PAIR_LEN + 32].copy_from_slice(&[0xff; 32]);
        assert!(matches!(key.open(&TH, &t), Err(PsiError::Malformed(_))));
        // A table of the wrong size.
        let bytes = table.to_bytes();
        let slots = table.points.len();
        assert!(matches!(
            Table::from_bytes(&bytes[..bytes.len() - 32], slots),
            Err(PsiError::Table(_))
        ));
        assert_eq!(Table::from_bytes(&bytes, slots).unwrap(), table);
        // A slot that is no point (a trap for images that hash there), or a huge slot count.
        let mut bad = bytes.clone();
        bad[64 + 32 * 5..64 + 32 * 6].copy_from_slice(&[0xff; 32]);
        assert!(matches!(
            Table::from_bytes(&bad, slots),
            Err(PsiError::Table(_))
        ));
        assert!(matches!(
            Table::from_bytes(&bytes, usize::MAX / 16),
            Err(PsiError::Table(_))
        ));
        assert!(matches!(
            Threshold { t: 0, s: 1 }.check(),
            Err(PsiError::Params(_))
        ));
    }

    #[test]
    fn the_distinguisher_is_at_chance_on_real_shares_and_catches_broken_synthetics() {
        let d = distinguisher(300, 1, false);
        let acc = d.correct as f64 / d.guesses as f64;
        // 600 guesses: chance is 0.5 ± 0.04 (95%).
        assert!((acc - 0.5).abs() < 0.06, "{d:?}");
        let canary = distinguisher(300, 1, true);
        assert!(canary.correct * 100 >= canary.guesses * 95, "{canary:?}");
        assert_eq!(canary.feature, "top byte of P1(x)");
    }

    #[test]
    fn a_repeated_image_repeats_its_share_whether_real_or_synthetic() {
        let (table, key, list, device) = setup();
        let mut r = rng(12);
        let share = |v: Vec<u8>| key.open(&TH, &v).unwrap().unwrap();
        let a = share(device.synthetic(&table, &list[0], &mut r).unwrap());
        let b = share(device.synthetic(&table, &list[0], &mut r).unwrap());
        assert_eq!((a.x.clone(), a.y.clone()), (b.x, b.y));
        let c = share(device.synthetic(&table, &list[1], &mut r).unwrap());
        assert_ne!(a.x, c.x);
        // The coin is the image's: the same for every send, at about the rate asked.
        let coins: Vec<bool> = items(4000, 5)
            .iter()
            .map(|i| device.is_synthetic(i, 0.1))
            .collect();
        let rate = coins.iter().filter(|&&c| c).count() as f64 / coins.len() as f64;
        assert!((rate - 0.1).abs() < 0.02, "{rate}");
        assert!(
            items(50, 5)
                .iter()
                .all(|i| device.is_synthetic(i, 0.1) == device.is_synthetic(i, 0.1))
        );
        assert!(!device.is_synthetic(&list[0], 0.0));
    }

    #[test]
    fn a_share_below_t_looks_like_a_synthetic_one() {
        // The y values of fewer than t real shares are uniform: each byte's mean over many
        // shares is about 127.5 for both kinds (a coarse check; the argument is in the doc).
        let (table, key, _list, _) = setup();
        let mut r = rng(8);
        let mut real_mean = 0f64;
        let mut synth_mean = 0f64;
        let n = 200;
        for i in 0..n {
            let d = Device::from_seed([i as u8; 32], TH).unwrap();
            let list = items(1, 1000 + i);
            let (t2, k2, _) = Table::build(&list, 1.1, &mut rng(i)).unwrap();
            let v = d.voucher(&t2, &list[0], b"d", &mut r).unwrap();
            let sh = k2.open(&TH, &v).unwrap().unwrap();
            real_mean += hex::decode(&sh.y[0]).unwrap()[..31]
                .iter()
                .map(|&b| b as f64)
                .sum::<f64>()
                / 31.0;
            let v = d.synthetic(&table, &item(&mut r), &mut r).unwrap();
            let sh = key.open(&TH, &v).unwrap().unwrap();
            synth_mean += hex::decode(&sh.y[0]).unwrap()[..31]
                .iter()
                .map(|&b| b as f64)
                .sum::<f64>()
                / 31.0;
        }
        let (a, b) = (real_mean / n as f64, synth_mean / n as f64);
        assert!(
            (a - 127.5).abs() < 6.0 && (b - 127.5).abs() < 6.0,
            "{a} {b}"
        );
    }
}
