//! An "invisible salamander" (Dodis, Grubbs, Ristenpart and Woodage, CRYPTO 2018): one
//! AES-256-GCM ciphertext whose tag is valid under two keys, so that it decrypts to two
//! different files. Built here for real, against the very keys and associated data of two
//! version-2 attachments, to show two things:
//!
//! - the canary: plain AES-GCM accepts the blob under both keys (so a scanner handed one key and
//!   a recipient handed the other would see different images, and a test of the fix that did
//!   not build a real collision could pass for the wrong reason);
//! - the fix: [`open_attachment`] refuses the second key on the commitment, before decrypting.
//!
//! The construction is GCM's own algebra (NIST SP 800-38D): the tag is
//! `GHASH_H(A, C) ⊕ E_K(J0)`, linear in each ciphertext block, so one free block can be solved
//! for so that both keys' tags agree. This is attack code in a test, not a primitive we use.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use scanlab_messenger::mls::{
    AttachmentRef, BLOB_MAGIC, MlsError, attachment_aad, attachment_keys, open_attachment,
    padded_len,
};

/// Multiplication in GF(2^128) with GCM's bit order (SP 800-38D, algorithm 1).
fn gmul(x: u128, y: u128) -> u128 {
    let r = 0xE1u128 << 120;
    let (mut z, mut v) = (0u128, y);
    for i in 0..128 {
        if (x >> (127 - i)) & 1 == 1 {
            z ^= v;
        }
        v = if v & 1 == 1 { (v >> 1) ^ r } else { v >> 1 };
    }
    z
}

fn gpow(mut x: u128, mut e: u128) -> u128 {
    let mut acc = 1u128 << 127; // the field's one, in GCM's bit order
    while e > 0 {
        if e & 1 == 1 {
            acc = gmul(acc, x);
        }
        x = gmul(x, x);
        e >>= 1;
    }
    acc
}

fn ginv(x: u128) -> u128 {
    gpow(x, u128::MAX - 1) // x^(2^128 - 2)
}

fn aes_block(key: &[u8; 32], block: [u8; 16]) -> u128 {
    use aes_gcm::aes::Aes256;
    use aes_gcm::aes::cipher::{BlockEncrypt, KeyInit as _};
    let mut b = block.into();
    Aes256::new(key.into()).encrypt_block(&mut b);
    u128::from_be_bytes(b.into())
}

fn blocks(bytes: &[u8]) -> Vec<u128> {
    bytes
        .chunks(16)
        .map(|c| {
            let mut b = [0u8; 16];
            b[..c.len()].copy_from_slice(c);
            u128::from_be_bytes(b)
        })
        .collect()
}

/// GHASH over `aad` and `ct` as GCM computes it, with hash key `h`.
fn ghash(h: u128, aad: &[u8], ct: &[u8]) -> u128 {
    let mut y = 0u128;
    let len = ((aad.len() as u128 * 8) << 64) | (ct.len() as u128 * 8);
    for x in blocks(aad).into_iter().chain(blocks(ct)).chain([len]) {
        y = gmul(y ^ x, h);
    }
    y
}

/// A ciphertext (tag appended) valid under both `(k1, aad1)` and `(k2, aad2)` with `nonce`.
fn salamander(
    k1: &[u8; 32],
    aad1: &[u8],
    k2: &[u8; 32],
    aad2: &[u8],
    nonce: [u8; 12],
    len: usize,
) -> Vec<u8> {
    assert!(len.is_multiple_of(16) && len >= 32);
    let mut j0 = [0u8; 16];
    j0[..12].copy_from_slice(&nonce);
    j0[15] = 1;
    let (h1, h2) = (aes_block(k1, [0; 16]), aes_block(k2, [0; 16]));
    let (e1, e2) = (aes_block(k1, j0), aes_block(k2, j0));
    // Any ciphertext, with its first block free: solve for it.
    let mut ct: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    ct[..16].fill(0);
    let n_ct = len / 16;
    // The first ciphertext block's coefficient in GHASH is H^(n + 1): after it come n - 1
    // more ciphertext blocks and the length block.
    let (p1, p2) = (gpow(h1, n_ct as u128 + 1), gpow(h2, n_ct as u128 + 1));
    // tag_i = X·p_i ⊕ G_i ⊕ e_i, with G_i the GHASH of everything else (X = 0 in ct).
    let (g1, g2) = (ghash(h1, aad1, &ct), ghash(h2, aad2, &ct));
    let x = gmul(g1 ^ g2 ^ e1 ^ e2, ginv(p1 ^ p2));
    ct[..16].copy_from_slice(&x.to_be_bytes());
    let tag = ghash(h1, aad1, &ct) ^ e1;
    assert_eq!(tag, ghash(h2, aad2, &ct) ^ e2, "the two tags agree");
    ct.extend_from_slice(&tag.to_be_bytes());
    ct
}

#[test]
fn one_blob_under_two_keys_is_refused_on_its_commitment() {
    let (key1, key2) = ([0x11u8; 32], [0x22u8; 32]);
    let nonce = [7u8; 12];
    let (enc1, c1) = attachment_keys(&key1);
    let (enc2, c2) = attachment_keys(&key2);
    let len = 1000;
    let padded = padded_len(len);
    let padded16 = padded.next_multiple_of(16);
    let aad1 = attachment_aad(&c1, "mallory", "chat").unwrap();
    let aad2 = attachment_aad(&c2, "mallory", "chat").unwrap();
    let ct = salamander(&enc1, &aad1, &enc2, &aad2, nonce, padded16);

    // The canary: AES-GCM, with no commitment, opens this ciphertext under both keys.
    let open = |k: &[u8; 32], aad: &[u8]| {
        Aes256Gcm::new_from_slice(k)
            .unwrap()
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad })
    };
    let (m1, m2) = (open(&enc1, &aad1).unwrap(), open(&enc2, &aad2).unwrap());
    assert_ne!(m1, m2, "two keys, two different plaintexts, one ciphertext");

    // As a blob: the header commits to key 1. The reference that hands a scanner key 2 is
    // refused before any decryption, whatever the rest of the reference says.
    let blob = [&BLOB_MAGIC[..], &c1, &ct].concat();
    let reference = |key: &[u8; 32], plain: &[u8]| AttachmentRef {
        blob: "b".into(),
        key: hex::encode(key),
        nonce: hex::encode(nonce),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&plain[..len])),
        len,
        sender: "mallory".into(),
        chat: "chat".into(),
        media: Default::default(),
    };
    assert!(matches!(
        open_attachment(&blob, &reference(&key2, &m2)),
        Err(MlsError::Commitment)
    ));
    // Key 1 passes the commitment and decrypts (its plaintext is not a padded file, so the
    // padding check, not the commitment, refuses it): one blob, at most one key.
    assert!(matches!(
        open_attachment(&blob, &reference(&key1, &m1)),
        Err(MlsError::Padding)
    ));
    // Swapping the header to key 2's commitment moves the refusal to key 1.
    let blob2 = [&BLOB_MAGIC[..], &c2, &ct].concat();
    assert!(matches!(
        open_attachment(&blob2, &reference(&key1, &m1)),
        Err(MlsError::Commitment)
    ));
}
