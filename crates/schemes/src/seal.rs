//! Sealing bytes to a public key with HPKE (RFC 9180), for the escrow authority (S2) and the
//! enclave (S5). The `hpke` crate does all the cryptography; this module fixes one suite and one
//! wire format so that the two schemes cannot disagree.
//!
//! - Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, base mode.
//! - Wire format: `enc (32 bytes) ‖ ciphertext`.
//! - `info` names the purpose (`scanlab-escrow-v1`, `scanlab-enclave-v1`) so a capsule made for
//!   one cannot be opened as the other; `aad` binds it to its context (a chat, a blob id).

use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

/// Length of the encapsulated key at the front of a capsule.
pub const ENC_LEN: usize = 32;

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// A key is not a valid X25519 key of 32 bytes.
    #[error("not an X25519 key (need 32 bytes, hex)")]
    BadKey,
    /// Wrong key, wrong context, or tampered bytes.
    #[error("cannot open: wrong key, wrong context or tampered capsule")]
    Open,
    /// Shorter than an encapsulated key.
    #[error("capsule of {0} bytes is too short")]
    Short(usize),
}

/// A recipient key pair. The secret half is zeroized on drop.
pub struct KeyPair {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl KeyPair {
    /// A fresh random key pair.
    pub fn generate() -> KeyPair {
        let (sk, pk) = Kem::gen_keypair();
        Self::from_parts(&sk, &pk)
    }

    fn from_parts(
        sk: &<Kem as hpke::Kem>::PrivateKey,
        pk: &<Kem as hpke::Kem>::PublicKey,
    ) -> KeyPair {
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&sk.to_bytes());
        let mut public = [0u8; 32];
        public.copy_from_slice(&pk.to_bytes());
        KeyPair { secret, public }
    }

    /// A key pair from its 32 secret bytes (as written by [`KeyPair::secret_bytes`]).
    pub fn from_secret(secret: &[u8]) -> Result<KeyPair, SealError> {
        let sk =
            <Kem as hpke::Kem>::PrivateKey::from_bytes(secret).map_err(|_| SealError::BadKey)?;
        let pk = Kem::sk_to_pk(&sk);
        Ok(Self::from_parts(&sk, &pk))
    }

    /// The public key.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The secret key bytes, for storing the key (handle with care).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.secret.clone()
    }

    /// Opens a capsule made by [`seal`] to this key with the same `info` and `aad`.
    pub fn open(
        &self,
        info: &[u8],
        aad: &[u8],
        capsule: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if capsule.len() < ENC_LEN {
            return Err(SealError::Short(capsule.len()));
        }
        let (enc, ct) = capsule.split_at(ENC_LEN);
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(self.secret.as_ref())
            .map_err(|_| SealError::BadKey)?;
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| SealError::Open)?;
        hpke::single_shot_open::<Aead, Kdf, Kem>(&OpModeR::Base, &sk, &enc, info, ct, aad)
            .map(Zeroizing::new)
            .map_err(|_| SealError::Open)
    }
}

/// Seals `plaintext` to `public` (32 bytes): `enc ‖ ciphertext`.
pub fn seal(
    public: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(public).map_err(|_| SealError::BadKey)?;
    let (enc, ct) =
        hpke::single_shot_seal::<Aead, Kdf, Kem>(&OpModeS::Base, &pk, info, plaintext, aad)
            .map_err(|_| SealError::BadKey)?;
    let mut out = enc.to_bytes().to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// [`seal`] with the encapsulation's randomness drawn from `seed`, so that anyone who knows the
/// seed, the key and the inputs can re-run the seal and compare capsules byte for byte. The
/// seed must be fresh and secret from whoever must not read the plaintext: it decides the
/// ephemeral key.
///
/// The randomness is ChaCha20 (`rand_chacha`) keyed by `SHA-256("scanlab-seal-seed-v1" ‖
/// len ‖ public ‖ len ‖ info ‖ len ‖ aad ‖ seed)` (lengths as u32, big-endian), not by the seed
/// itself: HPKE's key schedule leaves the associated data out, so one seed used for two
/// capsules to one key would give both the same AEAD key and nonce. Derived this way, a seed
/// reused for another binding, recipient or context still gives another ephemeral key.
pub fn seal_seeded(
    public: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    seed: &[u8; 32],
) -> Result<Vec<u8>, SealError> {
    use rand_chacha_010::rand_core::SeedableRng;
    use sha2::Digest;
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(public).map_err(|_| SealError::BadKey)?;
    let mut h = sha2::Sha256::new();
    h.update(b"scanlab-seal-seed-v1");
    for part in [public, info, aad] {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part);
    }
    h.update(seed);
    let mut rng = rand_chacha_010::ChaCha20Rng::from_seed(h.finalize().into());
    let (enc, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        &mut rng,
    )
    .map_err(|_| SealError::BadKey)?;
    let mut out = enc.to_bytes().to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Parses a 32-byte public key from hex.
pub fn public_from_hex(s: &str) -> Result<[u8; 32], SealError> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(SealError::BadKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_mismatch_fails() {
        let k = KeyPair::generate();
        let c = seal(&k.public(), b"info", b"aad", b"secret message").unwrap();
        assert_eq!(c.len(), ENC_LEN + 14 + 16);
        assert_eq!(&k.open(b"info", b"aad", &c).unwrap()[..], b"secret message");
        assert_eq!(k.open(b"other", b"aad", &c).unwrap_err(), SealError::Open);
        assert_eq!(k.open(b"info", b"other", &c).unwrap_err(), SealError::Open);
        let mut t = c.clone();
        *t.last_mut().unwrap() ^= 1;
        assert_eq!(k.open(b"info", b"aad", &t).unwrap_err(), SealError::Open);
        assert_eq!(
            KeyPair::generate().open(b"info", b"aad", &c).unwrap_err(),
            SealError::Open
        );
        assert_eq!(
            k.open(b"info", b"aad", &c[..10]).unwrap_err(),
            SealError::Short(10)
        );
        let again = KeyPair::from_secret(k.secret_bytes().as_ref()).unwrap();
        assert_eq!(again.public(), k.public());
        assert!(seal(&[1u8; 5], b"", b"", b"x").is_err());
    }

    #[test]
    fn a_seeded_seal_repeats_exactly_and_a_reused_seed_gives_another_ephemeral_key() {
        let k = KeyPair::generate();
        let seed = [5u8; 32];
        let a = seal_seeded(&k.public(), b"i", b"binding one", b"same words", &seed).unwrap();
        assert_eq!(
            a,
            seal_seeded(&k.public(), b"i", b"binding one", b"same words", &seed).unwrap(),
            "who knows the seed re-runs it byte for byte"
        );
        // The same seed under another binding: another encapsulation, so no shared AEAD key
        // and nonce between the two capsules.
        let b = seal_seeded(&k.public(), b"i", b"binding two", b"same words", &seed).unwrap();
        assert_ne!(a[..ENC_LEN], b[..ENC_LEN]);
        assert_eq!(
            k.open(b"i", b"binding two", &b).unwrap().as_slice(),
            b"same words"
        );
    }
}
