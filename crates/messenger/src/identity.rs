//! Account identities bound into MLS credentials, so that a member of a chat is the account
//! it claims to be.
//!
//! # Why
//! A `BasicCredential(name)` says nothing about who holds its signing key. A provider that
//! serves its own key package as "bob" then sits in the chat unseen: the "ghost user" that Levy
//! and Robinson (GCHQ, 2018) proposed as exceptional access. So each leaf's credential carries
//! the account's Ed25519 identity key (the key the account logs in with) and that key's
//! signature over the leaf's MLS signature key:
//!
//! ```text
//! credential = "SLID1" ‖ u16 len ‖ name ‖ identity key (32) ‖ signature (64)
//! signature  = Ed25519_identity("scanlab-mls-leaf-v1\0" ‖ u16 len ‖ name ‖ MLS signature key)
//! ```
//!
//! verified strictly (`verify_strict`, no small-order keys). A leaf whose signature does not
//! verify is refused by [`verify_credential`] whatever it claims. Which identity key is *the*
//! account's is then a question of trust, answered by the client ([`crate::client`]): the key
//! it pinned on first contact, checked against the provider's directory, and shown to users as a
//! safety number ([`safety_number`]) to compare out of band, as Signal does. First contact is
//! trust on first use: a provider that lies about a new contact's key from the start is caught
//! only when the two users compare safety numbers (or by a key-transparency monitor).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};

/// Magic of a bound credential.
pub const CREDENTIAL_MAGIC: &[u8; 5] = b"SLID1";
/// Context of the identity key's signature over a leaf's MLS signature key.
pub const LEAF_CONTEXT: &[u8] = b"scanlab-mls-leaf-v1\0";

/// An account as a leaf presents it: its name and identity key, the binding verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Account name.
    pub name: String,
    /// The account's Ed25519 identity key.
    pub key: [u8; 32],
}

/// Why a leaf's identity was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// The credential is not a bound scanlab credential.
    #[error("credential is not a bound identity: {0}")]
    Malformed(String),
    /// The identity key did not sign this leaf's MLS signature key.
    #[error("{0:?}'s credential is not signed by the identity key it names")]
    BadSignature(String),
}

fn signed_message(name: &str, mls_signature_key: &[u8]) -> Result<Vec<u8>, IdentityError> {
    let n = u16::try_from(name.len())
        .map_err(|_| IdentityError::Malformed(format!("a {}-byte name", name.len())))?;
    let mut m = Vec::with_capacity(LEAF_CONTEXT.len() + 2 + name.len() + mls_signature_key.len());
    m.extend_from_slice(LEAF_CONTEXT);
    m.extend_from_slice(&n.to_be_bytes());
    m.extend_from_slice(name.as_bytes());
    m.extend_from_slice(mls_signature_key);
    Ok(m)
}

/// The credential content for account `name` with `identity`, binding `mls_signature_key`.
pub fn credential_bytes(
    name: &str,
    identity: &SigningKey,
    mls_signature_key: &[u8],
) -> Result<Vec<u8>, IdentityError> {
    let sig = identity.sign(&signed_message(name, mls_signature_key)?);
    let mut c = Vec::with_capacity(5 + 2 + name.len() + 96);
    c.extend_from_slice(CREDENTIAL_MAGIC);
    c.extend_from_slice(&(name.len() as u16).to_be_bytes());
    c.extend_from_slice(name.as_bytes());
    c.extend_from_slice(identity.verifying_key().as_bytes());
    c.extend_from_slice(&sig.to_bytes());
    Ok(c)
}

/// The identity a credential claims, without verifying it: for a leaf already verified when
/// it entered the group.
pub fn claimed(content: &[u8]) -> Result<Identity, IdentityError> {
    parse(content).map(|(name, key, _)| Identity { name, key })
}

fn parse(content: &[u8]) -> Result<(String, [u8; 32], [u8; 64]), IdentityError> {
    let bad = |m: &str| IdentityError::Malformed(m.into());
    let rest = content
        .strip_prefix(CREDENTIAL_MAGIC)
        .ok_or_else(|| bad("no SLID1 magic (an unbound basic credential?)"))?;
    let (len, rest) = rest.split_at_checked(2).ok_or_else(|| bad("truncated"))?;
    let len = u16::from_be_bytes([len[0], len[1]]) as usize;
    if rest.len() != len + 96 {
        return Err(bad("wrong length"));
    }
    let name = std::str::from_utf8(&rest[..len])
        .map_err(|_| bad("name is not UTF-8"))?
        .to_string();
    let key: [u8; 32] = rest[len..len + 32].try_into().expect("32 bytes");
    let sig: [u8; 64] = rest[len + 32..].try_into().expect("64 bytes");
    Ok((name, key, sig))
}

/// Verifies a leaf: its credential `content` names an identity key that signed the leaf's
/// `mls_signature_key`. Returns the identity it proves.
pub fn verify_credential(
    content: &[u8],
    mls_signature_key: &[u8],
) -> Result<Identity, IdentityError> {
    let (name, key, sig) = parse(content)?;
    let vk =
        VerifyingKey::from_bytes(&key).map_err(|_| IdentityError::BadSignature(name.clone()))?;
    if vk.is_weak() {
        return Err(IdentityError::BadSignature(name));
    }
    vk.verify_strict(
        &signed_message(&name, mls_signature_key)?,
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| IdentityError::BadSignature(name.clone()))?;
    Ok(Identity { name, key })
}

/// The safety number of two accounts: the same 60 digits on both devices exactly when each
/// holds the other's true identity key. Twelve groups of five digits, from SHA-256 over the
/// two `(name, key)` pairs in sorted order (SHA-512, 60 of its bytes used).
pub fn safety_number(a: &Identity, b: &Identity) -> String {
    let mut pair = [a, b];
    pair.sort_by(|x, y| (&x.name, x.key).cmp(&(&y.name, y.key)));
    let mut h = Sha512::new();
    h.update(b"scanlab-safety-number-v1\0");
    for id in pair {
        h.update((id.name.len() as u64).to_be_bytes());
        h.update(id.name.as_bytes());
        h.update(id.key);
    }
    let d = h.finalize();
    // As Signal's numeric fingerprints: each 5-byte chunk, as a big-endian number, mod 100000.
    let mut out = Vec::with_capacity(12);
    for chunk in d.chunks(5).take(12) {
        let v = chunk.iter().fold(0u64, |v, &b| v << 8 | b as u64);
        out.push(format!("{:05}", v % 100_000));
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_credential_verifies_only_for_its_own_leaf_key() {
        let id = SigningKey::from_bytes(&[3; 32]);
        let c = credential_bytes("bob", &id, b"leaf key").unwrap();
        let v = verify_credential(&c, b"leaf key").unwrap();
        assert_eq!(v.name, "bob");
        assert_eq!(&v.key, id.verifying_key().as_bytes());
        // Another leaf's key, a changed name, a bare name: all refused.
        assert!(matches!(
            verify_credential(&c, b"other key"),
            Err(IdentityError::BadSignature(_))
        ));
        let mut renamed = c.clone();
        renamed[7] = b'm';
        assert!(verify_credential(&renamed, b"leaf key").is_err());
        assert!(matches!(
            verify_credential(b"bob", b"leaf key"),
            Err(IdentityError::Malformed(_))
        ));
        assert!(verify_credential(&c[..c.len() - 1], b"leaf key").is_err());
    }

    #[test]
    fn safety_numbers_agree_on_both_sides_and_change_with_a_key() {
        let a = Identity {
            name: "alice".into(),
            key: [1; 32],
        };
        let b = Identity {
            name: "bob".into(),
            key: [2; 32],
        };
        let ghost = Identity {
            name: "bob".into(),
            key: [9; 32],
        };
        let n = safety_number(&a, &b);
        assert_eq!(n, safety_number(&b, &a));
        assert_eq!(n.len(), 12 * 5 + 11);
        assert_ne!(n, safety_number(&a, &ghost));
    }
}
