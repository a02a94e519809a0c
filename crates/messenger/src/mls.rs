//! The client's end-to-end encryption: MLS (RFC 9420) groups through openmls, with persistent
//! state, and Signal-style attachments.
//!
//! # Groups
//! Ciphersuite `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519` with openmls's RustCrypto
//! provider. All MLS state (signature keys, key packages, group epochs and secrets) lives in
//! `openmls_sqlite_storage` under the client's home, so a client survives restarts. A 1:1 chat is
//! a group of two. The committer merges its own commit at once; other members merge it when it
//! arrives. Welcomes carry the ratchet tree, so no tree is delivered out of band.
//!
//! # Attachments (as Signal does them)
//! The image is encrypted under a fresh random AES-256-GCM key ([`seal_attachment`]) and
//! uploaded as an opaque blob. The key, the nonce and the SHA-256 of the plaintext travel inside
//! the MLS application message ([`AttachmentRef`]); the recipient decrypts and checks the digest
//! ([`open_attachment`]). The provider sees only the blob's length.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_sqlite_storage::{Codec, SqliteStorageProvider};
use openmls_traits::OpenMlsProvider;
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use std::path::Path;
use zeroize::Zeroizing;

/// The one ciphersuite scanlab's messenger uses.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// Largest attachment accepted, before or after encryption (32 MiB).
pub const MAX_ATTACHMENT: usize = 32 << 20;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MlsError {
    /// Client state could not be read or written.
    #[error("client state: {0}")]
    State(String),
    /// Bytes that should be an MLS message are not one.
    #[error("malformed MLS message: {0}")]
    Malformed(String),
    /// openmls refused the operation (wrong epoch, not a member, bad signature, …).
    #[error("MLS: {0}")]
    Protocol(String),
    /// No group with this id on this client.
    #[error("no group {0:?} on this client")]
    UnknownGroup(String),
    /// An attachment is larger than [`MAX_ATTACHMENT`].
    #[error("attachment of {0} bytes is over the {MAX_ATTACHMENT}-byte limit")]
    TooLarge(usize),
    /// Decryption failed: wrong key, or the blob was altered.
    #[error(
        "attachment does not decrypt with this key\n  the key or the blob is wrong or was altered"
    )]
    WrongKey,
    /// The decrypted attachment does not have the digest the sender committed to.
    #[error("attachment digest mismatch: the blob is not the one the sender attached")]
    Digest,
}

fn state<E: std::fmt::Display>(e: E) -> MlsError {
    MlsError::State(e.to_string())
}

fn protocol<E: std::fmt::Debug>(e: E) -> MlsError {
    MlsError::Protocol(format!("{e:?}"))
}

/// JSON encoding of stored openmls values.
#[derive(Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    type Error = serde_json::Error;
    fn to_vec<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Self::Error> {
        serde_json::to_vec(value)
    }
    fn from_slice<T: serde::de::DeserializeOwned>(slice: &[u8]) -> Result<T, Self::Error> {
        serde_json::from_slice(slice)
    }
}

/// openmls's RustCrypto primitives with SQLite storage.
pub struct ClientProvider {
    crypto: RustCrypto,
    storage: SqliteStorageProvider<JsonCodec, Connection>,
}

impl OpenMlsProvider for ClientProvider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = SqliteStorageProvider<JsonCodec, Connection>;
    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }
    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }
    fn rand(&self) -> &Self::RandProvider {
        &self.crypto
    }
}

/// What processing an incoming message produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// An application message: the plaintext and the sender's name.
    Application {
        /// Sender's identity.
        sender: String,
        /// Decrypted bytes.
        plaintext: Vec<u8>,
    },
    /// A commit was merged (membership or keys changed); `removed_self` when it removed us.
    Commit {
        /// Whether this client is no longer a member.
        removed_self: bool,
    },
    /// A proposal was stored for a later commit.
    Proposal,
}

/// One messenger client: an identity and its groups, persisted under a home directory.
pub struct MlsClient {
    name: String,
    provider: ClientProvider,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

impl MlsClient {
    /// Opens the client stored in `home`, creating identity `name` on first use.
    pub fn open(home: &Path, name: &str) -> Result<Self, MlsError> {
        std::fs::create_dir_all(home).map_err(state)?;
        let conn = Connection::open(home.join("mls.sqlite")).map_err(state)?;
        let mut storage = SqliteStorageProvider::<JsonCodec, Connection>::new(conn);
        storage.run_migrations().map_err(state)?;
        let provider = ClientProvider {
            crypto: RustCrypto::default(),
            storage,
        };
        let meta = Connection::open(home.join("client.sqlite")).map_err(state)?;
        meta.execute_batch(
            "CREATE TABLE IF NOT EXISTS identity (name TEXT NOT NULL, public_key BLOB NOT NULL);",
        )
        .map_err(state)?;
        let existing: Option<(String, Vec<u8>)> = meta
            .query_row("SELECT name, public_key FROM identity", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(state)?;
        let signer = match &existing {
            Some((stored, pk)) => {
                if stored != name {
                    return Err(MlsError::State(format!(
                        "this home belongs to {stored:?}, not {name:?}"
                    )));
                }
                SignatureKeyPair::read(provider.storage(), pk, CIPHERSUITE.signature_algorithm())
                    .ok_or_else(|| MlsError::State("signature key missing from storage".into()))?
            }
            None => {
                let s =
                    SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).map_err(protocol)?;
                s.store(provider.storage()).map_err(state)?;
                meta.execute(
                    "INSERT INTO identity (name, public_key) VALUES (?1, ?2)",
                    rusqlite::params![name, s.public()],
                )
                .map_err(state)?;
                s
            }
        };
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.public().into(),
        };
        Ok(MlsClient {
            name: name.into(),
            provider,
            signer,
            credential,
        })
    }

    /// This client's account name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A fresh key package to publish (each is single-use).
    pub fn key_package(&self) -> Result<Vec<u8>, MlsError> {
        let bundle = KeyPackage::builder()
            .build(
                CIPHERSUITE,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .map_err(protocol)?;
        bundle
            .key_package()
            .tls_serialize_detached()
            .map_err(protocol)
    }

    fn load(&self, group: &str) -> Result<MlsGroup, MlsError> {
        MlsGroup::load(
            self.provider.storage(),
            &GroupId::from_slice(group.as_bytes()),
        )
        .map_err(state)?
        .ok_or_else(|| MlsError::UnknownGroup(group.into()))
    }

    /// Creates a group with id `group`, containing only this client.
    pub fn create_group(&self, group: &str) -> Result<(), MlsError> {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .build();
        MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &config,
            GroupId::from_slice(group.as_bytes()),
            self.credential.clone(),
        )
        .map_err(protocol)?;
        Ok(())
    }

    /// Adds members by their key packages. Returns the commit (for existing members) and the
    /// welcome (for the new ones).
    pub fn add(
        &self,
        group: &str,
        key_packages: &[Vec<u8>],
    ) -> Result<(Vec<u8>, Vec<u8>), MlsError> {
        let mut g = self.load(group)?;
        let kps = key_packages
            .iter()
            .map(|b| {
                let kp = KeyPackageIn::tls_deserialize_exact(b.as_slice())
                    .map_err(|e| MlsError::Malformed(e.to_string()))?;
                kp.validate(self.provider.crypto(), ProtocolVersion::Mls10)
                    .map_err(protocol)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (commit, welcome, _) = g
            .add_members(&self.provider, &self.signer, &kps)
            .map_err(protocol)?;
        g.merge_pending_commit(&self.provider).map_err(protocol)?;
        Ok((
            commit.to_bytes().map_err(protocol)?,
            welcome.to_bytes().map_err(protocol)?,
        ))
    }

    /// Removes members by name. Returns the commit for the remaining (and removed) members.
    pub fn remove(&self, group: &str, names: &[&str]) -> Result<Vec<u8>, MlsError> {
        let mut g = self.load(group)?;
        let idx: Vec<LeafNodeIndex> = g
            .members()
            .filter(|m| {
                names
                    .iter()
                    .any(|n| m.credential.serialized_content() == n.as_bytes())
            })
            .map(|m| m.index)
            .collect();
        if idx.len() != names.len() {
            return Err(MlsError::Protocol(format!(
                "not all of {names:?} are members"
            )));
        }
        let (commit, _, _) = g
            .remove_members(&self.provider, &self.signer, &idx)
            .map_err(protocol)?;
        g.merge_pending_commit(&self.provider).map_err(protocol)?;
        commit.to_bytes().map_err(protocol)
    }

    /// Joins a group from a welcome; returns the group id.
    pub fn join(&self, welcome: &[u8]) -> Result<String, MlsError> {
        let msg = MlsMessageIn::tls_deserialize_exact(welcome)
            .map_err(|e| MlsError::Malformed(e.to_string()))?;
        let MlsMessageBodyIn::Welcome(w) = msg.extract() else {
            return Err(MlsError::Malformed("not a welcome".into()));
        };
        let config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .build();
        let g = StagedWelcome::new_from_welcome(&self.provider, &config, w, None)
            .map_err(protocol)?
            .into_group(&self.provider)
            .map_err(protocol)?;
        Ok(String::from_utf8_lossy(g.group_id().as_slice()).into())
    }

    /// Encrypts an application message to the group.
    pub fn encrypt(&self, group: &str, plaintext: &[u8]) -> Result<Vec<u8>, MlsError> {
        let mut g = self.load(group)?;
        g.create_message(&self.provider, &self.signer, plaintext)
            .map_err(protocol)?
            .to_bytes()
            .map_err(protocol)
    }

    /// Processes an incoming handshake or application message for `group`.
    pub fn process(&self, group: &str, bytes: &[u8]) -> Result<Incoming, MlsError> {
        let mut g = self.load(group)?;
        let msg = MlsMessageIn::tls_deserialize_exact(bytes)
            .map_err(|e| MlsError::Malformed(e.to_string()))?;
        let pm = msg
            .try_into_protocol_message()
            .map_err(|e| MlsError::Malformed(format!("{e:?}")))?;
        let processed = g.process_message(&self.provider, pm).map_err(protocol)?;
        let sender =
            String::from_utf8_lossy(processed.credential().serialized_content()).to_string();
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => Ok(Incoming::Application {
                sender,
                plaintext: m.into_bytes(),
            }),
            ProcessedMessageContent::StagedCommitMessage(c) => {
                g.merge_staged_commit(&self.provider, *c)
                    .map_err(protocol)?;
                Ok(Incoming::Commit {
                    removed_self: !g.is_active(),
                })
            }
            ProcessedMessageContent::ProposalMessage(p) => {
                g.store_pending_proposal(self.provider.storage(), *p)
                    .map_err(protocol)?;
                Ok(Incoming::Proposal)
            }
            _ => Ok(Incoming::Proposal),
        }
    }

    /// Names of the group's members.
    pub fn members(&self, group: &str) -> Result<Vec<String>, MlsError> {
        Ok(self
            .load(group)?
            .members()
            .map(|m| String::from_utf8_lossy(m.credential.serialized_content()).into())
            .collect())
    }
}

/// What an attachment is, so that schemes fingerprint each kind its own way (PDQ for images,
/// frame hashes for video) and recipients know what they got.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Media {
    /// A still image.
    #[default]
    Image,
    /// A video.
    Video,
    /// Any other file.
    File,
}

impl Media {
    /// Whether this is the default, an image (omitted on the wire, so references to images
    /// stay as they were before media types existed).
    pub fn is_image(&self) -> bool {
        *self == Media::Image
    }
}

/// What the recipient needs to fetch and check an attachment; travels inside the MLS message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttachmentRef {
    /// Blob id at the provider.
    pub blob: String,
    /// AES-256-GCM key, hex.
    pub key: String,
    /// 96-bit nonce, hex.
    pub nonce: String,
    /// SHA-256 of the plaintext, hex.
    pub sha256: String,
    /// Plaintext length.
    pub len: usize,
    /// What the attachment is.
    #[serde(default, skip_serializing_if = "Media::is_image")]
    pub media: Media,
}

/// The padded size of an attachment of `len` bytes: the next step of a geometric ladder with
/// ratio 1.05 (Signal pads attachments the same way), so the ciphertext's size says little
/// more than the plaintext's order of magnitude, and forwarded copies of a file are not
/// linkable by exact size alone.
pub fn padded_len(len: usize) -> usize {
    let mut p = 541usize;
    while p < len {
        p = p + p / 20 + 1;
    }
    p
}

/// Encrypts an attachment under a fresh random key, padded to [`padded_len`]. Returns the
/// ciphertext to upload and the reference (without the blob id, which the upload assigns).
pub fn seal_attachment(plaintext: &[u8]) -> Result<(Vec<u8>, AttachmentRef), MlsError> {
    if plaintext.len() > MAX_ATTACHMENT {
        return Err(MlsError::TooLarge(plaintext.len()));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), key.as_mut());
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).expect("32-byte key");
    let mut padded = Zeroizing::new(Vec::with_capacity(padded_len(plaintext.len())));
    padded.extend_from_slice(plaintext);
    padded.resize(padded_len(plaintext.len()), 0);
    let ct = cipher
        .encrypt(Nonce::from_slice(&nonce), padded.as_slice())
        .map_err(|_| MlsError::WrongKey)?;
    Ok((
        ct,
        AttachmentRef {
            blob: String::new(),
            key: hex::encode(key.as_ref()),
            nonce: hex::encode(nonce),
            sha256: hex::encode(Sha256::digest(plaintext)),
            len: plaintext.len(),
            media: Media::Image,
        },
    ))
}

/// Decrypts an attachment blob and checks its digest.
pub fn open_attachment(blob: &[u8], r: &AttachmentRef) -> Result<Vec<u8>, MlsError> {
    if blob.len() > padded_len(MAX_ATTACHMENT) + 16 {
        return Err(MlsError::TooLarge(blob.len()));
    }
    let key = Zeroizing::new(hex::decode(&r.key).map_err(|_| MlsError::WrongKey)?);
    let nonce = hex::decode(&r.nonce).map_err(|_| MlsError::WrongKey)?;
    if key.len() != 32 || nonce.len() != 12 {
        return Err(MlsError::WrongKey);
    }
    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| MlsError::WrongKey)?;
    let mut pt = cipher
        .decrypt(Nonce::from_slice(&nonce), blob)
        .map_err(|_| MlsError::WrongKey)?;
    if r.len > pt.len() {
        return Err(MlsError::Digest);
    }
    pt.truncate(r.len);
    if hex::encode(Sha256::digest(&pt)) != r.sha256 {
        return Err(MlsError::Digest);
    }
    Ok(pt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_members_add_remove_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let home = |n: &str| dir.path().join(n);
        let alice = MlsClient::open(&home("alice"), "alice").unwrap();
        let bob = MlsClient::open(&home("bob"), "bob").unwrap();
        let carol = MlsClient::open(&home("carol"), "carol").unwrap();
        alice.create_group("chat").unwrap();
        let (_commit, welcome) = alice
            .add(
                "chat",
                &[bob.key_package().unwrap(), carol.key_package().unwrap()],
            )
            .unwrap();
        assert_eq!(bob.join(&welcome).unwrap(), "chat");
        assert_eq!(carol.join(&welcome).unwrap(), "chat");
        assert_eq!(
            alice.members("chat").unwrap(),
            vec!["alice", "bob", "carol"]
        );

        let m = alice.encrypt("chat", b"hello both").unwrap();
        assert!(
            !m.windows(10).any(|w| w == b"hello both"),
            "ciphertext hides the text"
        );
        for c in [&bob, &carol] {
            assert_eq!(
                c.process("chat", &m).unwrap(),
                Incoming::Application {
                    sender: "alice".into(),
                    plaintext: b"hello both".to_vec()
                }
            );
        }

        // Alice removes Carol; Bob merges the commit; Carol learns she is out.
        let commit = alice.remove("chat", &["carol"]).unwrap();
        assert_eq!(
            bob.process("chat", &commit).unwrap(),
            Incoming::Commit {
                removed_self: false
            }
        );
        assert_eq!(
            carol.process("chat", &commit).unwrap(),
            Incoming::Commit { removed_self: true }
        );
        let secret = alice.encrypt("chat", b"only bob").unwrap();
        assert!(
            carol.process("chat", &secret).is_err(),
            "a removed member cannot decrypt"
        );

        // Bob's client restarts from disk and keeps up.
        drop(bob);
        let bob = MlsClient::open(&home("bob"), "bob").unwrap();
        assert_eq!(
            bob.process("chat", &secret).unwrap(),
            Incoming::Application {
                sender: "alice".into(),
                plaintext: b"only bob".to_vec()
            }
        );
        assert!(
            MlsClient::open(&home("bob"), "mallory").is_err(),
            "a home has one identity"
        );
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let alice = MlsClient::open(dir.path(), "alice").unwrap();
        alice.create_group("g").unwrap();
        assert!(matches!(
            alice.process("g", b"\x00\x01garbage"),
            Err(MlsError::Malformed(_))
        ));
        assert!(matches!(
            alice.process("nope", b""),
            Err(MlsError::UnknownGroup(_))
        ));
        assert!(matches!(alice.join(b"junk"), Err(MlsError::Malformed(_))));
    }

    #[test]
    fn attachments_check_key_and_digest() {
        let img = vec![42u8; 5000];
        let (ct, r) = seal_attachment(&img).unwrap();
        assert!(!ct.windows(64).any(|w| w == &img[..64]));
        assert_eq!(open_attachment(&ct, &r).unwrap(), img);
        let mut wrong = r.clone();
        wrong.key = hex::encode([1u8; 32]);
        assert!(matches!(
            open_attachment(&ct, &wrong),
            Err(MlsError::WrongKey)
        ));
        let mut tampered = ct.clone();
        tampered[10] ^= 1;
        assert!(matches!(
            open_attachment(&tampered, &r),
            Err(MlsError::WrongKey)
        ));
        let mut lie = r.clone();
        lie.sha256 = hex::encode([0u8; 32]);
        assert!(matches!(open_attachment(&ct, &lie), Err(MlsError::Digest)));
        assert!(matches!(
            seal_attachment(&vec![0u8; MAX_ATTACHMENT + 1]),
            Err(MlsError::TooLarge(_))
        ));
        // A claimed length beyond the padded plaintext is refused, not a panic.
        let mut long = r.clone();
        long.len = ct.len() + 1;
        assert!(matches!(open_attachment(&ct, &long), Err(MlsError::Digest)));
    }

    #[test]
    fn padding_hides_exact_sizes_within_five_percent_steps() {
        assert_eq!(padded_len(0), 541);
        let mut prev = 0;
        for len in [
            1usize,
            540,
            541,
            542,
            10_000,
            123_457,
            1 << 20,
            MAX_ATTACHMENT,
        ] {
            let p = padded_len(len);
            assert!(p >= len && p <= len + len / 20 + 542, "{len} -> {p}");
            assert!(p >= prev);
            prev = p;
        }
        // Files a few bytes apart usually share a bucket, so size alone rarely tells them apart.
        assert_eq!(padded_len(100_000), padded_len(100_050));
        let (a, _) = seal_attachment(&[1u8; 100_000]).unwrap();
        let (b, _) = seal_attachment(&[2u8; 100_050]).unwrap();
        assert_eq!(a.len(), b.len());
    }
}
