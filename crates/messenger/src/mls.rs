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
//! # Attachments (as Signal does them), committed to their key
//! The image is encrypted under a fresh random key ([`seal_attachment`]) and uploaded as an
//! opaque blob. The key, the nonce, the SHA-256 of the plaintext, the sender and the chat
//! travel inside the MLS application message ([`AttachmentRef`]); the recipient checks that the
//! sender and chat are the message's own, decrypts, and checks the digest and the padding
//! ([`open_attachment`]). The provider sees only the blob's padded length.
//!
//! AES-GCM alone does not commit to its key: one ciphertext can be made to decrypt, with valid
//! tags, under two keys to two different files (Dodis, Grubbs, Ristenpart and Woodage, CRYPTO
//! 2018, "invisible salamanders"; Albertini, Duong, Gueron, Kölbl, Luykx and Schmieg, USENIX
//! Security 2022). Under a scanning scheme that is an evasion: the scanner is handed one key and
//! sees a benign image, the recipient another and sees the real one. So blobs use the
//! key-commitment transform of Albertini et al. (their §5): from the attachment key `K`,
//! HKDF-SHA256 (RFC 5869, info `scanlab attachment v2`) derives 64 bytes, the AES-256-GCM key
//! `K_enc` and a commitment `C`, and the blob carries `C` in its header:
//!
//! ```text
//! blob = "SLA2" ‖ C (32) ‖ AES-256-GCM(K_enc, nonce, padded plaintext, aad)
//! aad  = "SLA2" ‖ C ‖ u16 len ‖ sender ‖ u16 len ‖ chat
//! ```
//!
//! Every opener recomputes `C` from its key and compares it (in constant time) before it
//! decrypts, so a second key that opens the same blob would be a SHA-256 collision. The
//! associated data binds the blob to its sender and chat: a blob re-sent under another sender's
//! or chat's reference does not open. The blob id is not in it, because the provider assigns
//! the id after the upload; the commitment already makes the blob and its key one thing.
//! Padding is zeros up to [`padded_len`], and anything else is refused.

use crate::identity::{Identity, claimed, credential_bytes, verify_credential};
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
use std::rc::Rc;
use zeroize::Zeroizing;

/// The one ciphersuite scanlab's messenger uses.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// Largest attachment accepted, before or after encryption (32 MiB).
pub const MAX_ATTACHMENT: usize = 32 << 20;

/// MLS application messages are padded to a multiple of this many bytes (RFC 9420 §6.3.1,
/// openmls `padding_size`), so the provider sees a message's length only to 256 bytes: a
/// short "ok" and a long sentence look alike.
pub const MESSAGE_PADDING: usize = 256;

/// The private-use group-context extension (RFC 9420 §17.3, 0xF000–0xFFFF) that holds a
/// chat's title. The group id is random, so the provider learns nothing from it; the title the
/// creator chose travels inside the group context, which the welcome encrypts and every
/// commit's confirmation authenticates, so members agree on it and the provider never sees it.
pub const TITLE_EXTENSION: u16 = 0xF5C1;

/// Longest chat title, in bytes.
pub const MAX_TITLE: usize = 64;

/// Leaf capabilities: the title extension is supported, so groups may carry it (openmls
/// refuses a group-context extension some member's leaf does not list).
fn capabilities() -> Capabilities {
    Capabilities::new(
        None,
        None,
        Some(&[ExtensionType::Unknown(TITLE_EXTENSION)]),
        None,
        None,
    )
}

/// Checks a chat title: UTF-8 text of at most [`MAX_TITLE`] bytes, without control characters.
pub fn check_title(title: &str) -> Result<(), MlsError> {
    if title.is_empty() || title.len() > MAX_TITLE || title.chars().any(char::is_control) {
        return Err(MlsError::Malformed(format!(
            "a chat title is 1 to {MAX_TITLE} bytes of text without control characters, not {title:?}"
        )));
    }
    Ok(())
}

/// The clear framing of an MLS message (RFC 9420 §6): what the provider needs to route and
/// order messages without reading them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Framing {
    /// Group id.
    pub group: Vec<u8>,
    /// Epoch the message was sent in.
    pub epoch: u64,
    /// Whether it is a handshake message (commit or proposal) rather than application data.
    pub handshake: bool,
    /// The authenticated data a private message carries in the clear (empty for a public
    /// message): unverified here, authenticated by the recipients' decryption (S9 carries its
    /// franking tag there).
    pub aad: Vec<u8>,
}

/// Reads a protocol message's [`Framing`]; a welcome or key package is malformed here.
pub fn framing(message: &[u8]) -> Result<Framing, MlsError> {
    let m = MlsMessageIn::tls_deserialize_exact(message)
        .map_err(|e| MlsError::Malformed(e.to_string()))?;
    let p = m
        .try_into_protocol_message()
        .map_err(|e| MlsError::Malformed(e.to_string()))?;
    let aad = match &p {
        ProtocolMessage::PrivateMessage(m) => m.aad().to_vec(),
        ProtocolMessage::PublicMessage(_) => Vec::new(),
    };
    Ok(Framing {
        group: p.group_id().as_slice().to_vec(),
        epoch: p.epoch().as_u64(),
        handshake: p.is_handshake_message(),
        aad,
    })
}

/// What joining a group from a welcome gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    /// The group id.
    pub group: String,
    /// The title the creator gave it, if any.
    pub title: Option<String>,
    /// Who sent the welcome (its verified leaf).
    pub by: String,
    /// Every member, this client included.
    pub members: Vec<String>,
}

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
    /// The blob's key commitment is not this key's: the blob was made to open under another
    /// key (an "invisible salamander"), or it is not the reference's blob.
    #[error(
        "attachment key does not match the blob's commitment\n  the blob was made for another key; it is refused before decryption"
    )]
    Commitment,
    /// The reference names another sender or chat than the message it came in.
    #[error("attachment reference is bound to {0}, not to this message's sender and chat")]
    Binding(String),
    /// The plaintext's padding is not zeros of the expected length.
    #[error("attachment padding is not zeros up to the padded length")]
    Padding,
    /// A leaf's credential is not bound to the identity key it names.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// A leaf was refused: its identity is not the one this client trusts for its name, or the
    /// name is already a member.
    #[error("member refused: {0}")]
    Refused(String),
}

/// The client's trust decision on one verified leaf identity: `Ok` to accept it.
pub type Vet<'a> = &'a dyn Fn(&Identity) -> Result<(), MlsError>;

/// Verifies a leaf's credential against its signature key.
fn leaf_identity(credential: &Credential, signature_key: &[u8]) -> Result<Identity, MlsError> {
    Ok(verify_credential(
        credential.serialized_content(),
        signature_key,
    )?)
}

/// The name a member's (already verified) credential claims.
fn member_name(credential: &Credential) -> String {
    claimed(credential.serialized_content()).map_or_else(|_| "<unbound>".into(), |i| i.name)
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

/// openmls's RustCrypto primitives with SQLite storage. The storage provider and
/// [`MlsClient`]'s transactions share one connection (`Rc`: a client is used from one thread),
/// because a transaction belongs to a connection and openmls's storage gives its own no way out.
pub struct ClientProvider {
    crypto: RustCrypto,
    storage: SqliteStorageProvider<JsonCodec, Rc<Connection>>,
    conn: Rc<Connection>,
}

impl OpenMlsProvider for ClientProvider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = SqliteStorageProvider<JsonCodec, Rc<Connection>>;
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

/// Opens a database of client secrets (`file` under `home`): the folder made `0700` and the
/// file `0600`, so other local users cannot read them, and SQLite's `secure_delete` on, so that
/// a deleted epoch secret or key is overwritten with zeros rather than left in a free page.
/// Forward secrecy depends on the old secrets being gone, not merely unlinked from a row.
///
/// The rollback journal is truncated at commit (`journal_mode = TRUNCATE`) rather than deleted:
/// the journal's old pages are released to the file system either way, but creating and
/// unlinking a file at every commit is most of a client's commit cost on ext4. `PERSIST` would
/// leave the old pages readable in the journal, and WAL would keep them in the `-wal` file
/// until a checkpoint, so neither is used.
pub fn open_private_db(home: &Path, file: &str) -> std::io::Result<Connection> {
    std::fs::create_dir_all(home)?;
    let path = home.join(file);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700))?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    let db = Connection::open(&path).map_err(std::io::Error::other)?;
    db.pragma_update(None, "secure_delete", "ON")
        .map_err(std::io::Error::other)?;
    db.pragma_update(None, "journal_mode", "TRUNCATE")
        .map_err(std::io::Error::other)?;
    Ok(db)
}

/// Operations of one [`MlsClient`] that commit together: a SQLite savepoint, released by
/// [`Batch::commit`] and rolled back when dropped uncommitted (so also when an operation fails
/// or panics). Savepoints nest, and one of a given name refers to the innermost.
#[must_use = "a batch that is dropped is rolled back"]
pub struct Batch {
    conn: Option<Rc<Connection>>,
    name: &'static str,
}

impl Batch {
    fn open(conn: &Rc<Connection>, name: &'static str) -> Result<Batch, MlsError> {
        conn.execute_batch(&format!("SAVEPOINT {name}"))
            .map_err(state)?;
        Ok(Batch {
            conn: Some(conn.clone()),
            name,
        })
    }

    /// Commits every operation of the batch.
    pub fn commit(mut self) -> Result<(), MlsError> {
        let conn = self.conn.take().expect("a batch commits once");
        conn.execute_batch(&format!("RELEASE {}", self.name))
            .map_err(|e| {
                Self::rollback(&conn, self.name);
                state(e)
            })
    }

    fn rollback(conn: &Connection, name: &str) {
        let _ = conn.execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"));
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            Self::rollback(&conn, self.name);
        }
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
        /// The message's authenticated data, verified by its decryption.
        aad: Vec<u8>,
    },
    /// A commit was merged (membership or keys changed); `removed_self` when it removed us.
    Commit {
        /// Whether this client is no longer a member.
        removed_self: bool,
        /// The member who committed.
        by: String,
        /// Names that joined with this commit.
        added: Vec<String>,
        /// Names that left with this commit.
        removed: Vec<String>,
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
    /// Opens the client stored in `home`, creating identity `name` on first use. Its leaves'
    /// credentials are bound to the account's `identity` key (see [`crate::identity`]).
    pub fn open(
        home: &Path,
        name: &str,
        identity: &ed25519_dalek::SigningKey,
    ) -> Result<Self, MlsError> {
        let mut conn = open_private_db(home, "mls.sqlite").map_err(state)?;
        // Migrations need the connection to themselves, before it is shared.
        let mut migrating = SqliteStorageProvider::<JsonCodec, &mut Connection>::new(&mut conn);
        migrating.run_migrations().map_err(state)?;
        let conn = Rc::new(conn);
        let provider = ClientProvider {
            crypto: RustCrypto::default(),
            storage: SqliteStorageProvider::new(conn.clone()),
            conn,
        };
        let meta = open_private_db(home, "client.sqlite").map_err(state)?;
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
            credential: BasicCredential::new(credential_bytes(name, identity, signer.public())?)
                .into(),
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
        self.atomic(|| {
            let bundle = KeyPackage::builder()
                .leaf_node_capabilities(capabilities())
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
        })
    }

    /// Runs `op` as one SQLite transaction (a savepoint, so calls may nest): every key, secret
    /// and epoch an MLS operation writes is stored together or, if it fails, not at all. Without
    /// this each of openmls's writes commits on its own, so a failure (or a refused commit, or a
    /// crash) half-way through processing a message leaves a group state that belongs to no
    /// epoch, and every write pays its own journal sync.
    fn atomic<R>(&self, op: impl FnOnce() -> Result<R, MlsError>) -> Result<R, MlsError> {
        let tx = Batch::open(&self.provider.conn, "mls_op")?;
        let r = op()?;
        tx.commit()?;
        Ok(r)
    }

    /// Opens a transaction around several operations (a queue page's messages): they commit
    /// together at [`Batch::commit`], and each still rolls back alone if it fails. Dropping the
    /// batch uncommitted undoes all of them.
    pub fn batch(&self) -> Result<Batch, MlsError> {
        Batch::open(&self.provider.conn, "mls_batch")
    }

    fn load(&self, group: &str) -> Result<MlsGroup, MlsError> {
        MlsGroup::load(
            self.provider.storage(),
            &GroupId::from_slice(group.as_bytes()),
        )
        .map_err(state)?
        .ok_or_else(|| MlsError::UnknownGroup(group.into()))
    }

    /// Creates a group with id `group`, containing only this client, titled `title` (kept in
    /// the encrypted group context, [`TITLE_EXTENSION`]).
    pub fn create_group(&self, group: &str, title: Option<&str>) -> Result<(), MlsError> {
        self.atomic(|| {
            let mut ext = Vec::new();
            if let Some(t) = title {
                check_title(t)?;
                ext.push(Extension::Unknown(
                    TITLE_EXTENSION,
                    UnknownExtension(t.as_bytes().to_vec()),
                ));
            }
            let config = MlsGroupCreateConfig::builder()
                .capabilities(capabilities())
                .with_group_context_extensions(Extensions::from_vec(ext).map_err(protocol)?)
                .ciphersuite(CIPHERSUITE)
                .use_ratchet_tree_extension(true)
                .padding_size(MESSAGE_PADDING)
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
        })
    }

    /// Adds members by their key packages. Each leaf's identity is verified and put to `vet`,
    /// and a name already in the group (or twice among the new) is refused, before anything
    /// is committed. Returns the commit (for existing members) and the welcome (for the new
    /// ones). The commit stays pending: merge it ([`MlsClient::merge_pending`]) once the
    /// provider has accepted it as the one commit of this epoch, or drop it
    /// ([`MlsClient::clear_pending`]) if another member's came first.
    pub fn add(
        &self,
        group: &str,
        key_packages: &[Vec<u8>],
        vet: Vet,
    ) -> Result<(Vec<u8>, Vec<u8>), MlsError> {
        self.atomic(|| {
            let mut g = self.load(group)?;
            let mut names: Vec<String> = g.members().map(|m| member_name(&m.credential)).collect();
            let kps = key_packages
                .iter()
                .map(|b| {
                    let kp = KeyPackageIn::tls_deserialize_exact(b.as_slice())
                        .map_err(|e| MlsError::Malformed(e.to_string()))?;
                    let kp = kp
                        .validate(self.provider.crypto(), ProtocolVersion::Mls10)
                        .map_err(protocol)?;
                    let leaf = kp.leaf_node();
                    let id = leaf_identity(leaf.credential(), leaf.signature_key().as_slice())?;
                    admit(&mut names, &id, vet)?;
                    Ok(kp)
                })
                .collect::<Result<Vec<_>, MlsError>>()?;
            let (commit, welcome, _) = g
                .add_members(&self.provider, &self.signer, &kps)
                .map_err(protocol)?;
            Ok((
                commit.to_bytes().map_err(protocol)?,
                welcome.to_bytes().map_err(protocol)?,
            ))
        })
    }

    /// Removes members by name. Returns the commit for the remaining (and removed) members,
    /// pending as [`MlsClient::add`]'s is.
    pub fn remove(&self, group: &str, names: &[&str]) -> Result<Vec<u8>, MlsError> {
        self.atomic(|| {
            let mut g = self.load(group)?;
            let idx: Vec<LeafNodeIndex> = g
                .members()
                .filter(|m| names.iter().any(|n| member_name(&m.credential) == *n))
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
            commit.to_bytes().map_err(protocol)
        })
    }

    /// Deletes a group and its secrets from this client's state.
    pub fn delete_group(&self, group: &str) -> Result<(), MlsError> {
        self.atomic(|| {
            let mut g = self.load(group)?;
            g.delete(self.provider.storage()).map_err(state)
        })
    }

    /// Merges this client's pending commit: the provider accepted it.
    pub fn merge_pending(&self, group: &str) -> Result<(), MlsError> {
        self.atomic(|| {
            self.load(group)?
                .merge_pending_commit(&self.provider)
                .map_err(protocol)
        })
    }

    /// Drops this client's pending commit: another commit of the same epoch came first.
    pub fn clear_pending(&self, group: &str) -> Result<(), MlsError> {
        self.atomic(|| {
            self.load(group)?
                .clear_pending_commit(self.provider.storage())
                .map_err(state)
        })
    }

    /// The title in the group's context, if it has one (and it is a valid title).
    pub fn title(&self, group: &str) -> Result<Option<String>, MlsError> {
        Ok(title_of(self.load(group)?.extensions()))
    }

    /// Joins a group from a welcome. Every member's identity is verified and put to `vet`,
    /// and duplicate names are refused, before the group is stored.
    pub fn join(&self, welcome: &[u8], vet: Vet) -> Result<Joined, MlsError> {
        self.atomic(|| {
            let msg = MlsMessageIn::tls_deserialize_exact(welcome)
                .map_err(|e| MlsError::Malformed(e.to_string()))?;
            let MlsMessageBodyIn::Welcome(w) = msg.extract() else {
                return Err(MlsError::Malformed("not a welcome".into()));
            };
            let config = MlsGroupJoinConfig::builder()
                .use_ratchet_tree_extension(true)
                .padding_size(MESSAGE_PADDING)
                .build();
            let staged = StagedWelcome::new_from_welcome(&self.provider, &config, w, None)
                .map_err(protocol)?;
            let mut names = Vec::new();
            for m in staged.members() {
                let id = leaf_identity(&m.credential, &m.signature_key)?;
                if id.name == self.name && m.signature_key != self.signer.public() {
                    return Err(MlsError::Refused(format!(
                        "another leaf claims to be this account, {:?}",
                        self.name
                    )));
                }
                admit(&mut names, &id, vet)?;
            }
            let by = member_name(staged.welcome_sender().map_err(protocol)?.credential());
            let title = title_of(staged.group_context().extensions());
            let g = staged.into_group(&self.provider).map_err(protocol)?;
            Ok(Joined {
                group: String::from_utf8_lossy(g.group_id().as_slice()).into(),
                title,
                by,
                members: names,
            })
        })
    }

    /// Encrypts an application message to the group.
    pub fn encrypt(&self, group: &str, plaintext: &[u8]) -> Result<Vec<u8>, MlsError> {
        self.encrypt_with_aad(group, &[], plaintext)
    }

    /// Encrypts an application message to the group with `aad` as its authenticated data
    /// (RFC 9420 §6.3.1): sent in the clear, bound to the ciphertext and the sender's
    /// signature, so the provider reads it and recipients know the sender meant it.
    pub fn encrypt_with_aad(
        &self,
        group: &str,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, MlsError> {
        self.atomic(|| {
            let mut g = self.load(group)?;
            g.set_aad(aad.to_vec());
            g.create_message(&self.provider, &self.signer, plaintext)
                .map_err(protocol)?
                .to_bytes()
                .map_err(protocol)
        })
    }

    /// Processes an incoming handshake or application message for `group`. A commit's new and
    /// updated leaves are verified and put to `vet` before it is merged: an added name must be
    /// new to the group, and an updated leaf must keep its owner's identity.
    pub fn process(&self, group: &str, bytes: &[u8], vet: Vet) -> Result<Incoming, MlsError> {
        self.atomic(|| {
            let mut g = self.load(group)?;
            let msg = MlsMessageIn::tls_deserialize_exact(bytes)
                .map_err(|e| MlsError::Malformed(e.to_string()))?;
            let pm = msg
                .try_into_protocol_message()
                .map_err(|e| MlsError::Malformed(format!("{e:?}")))?;
            let processed = g.process_message(&self.provider, pm).map_err(protocol)?;
            let sender = member_name(processed.credential());
            let aad = processed.aad().to_vec();
            match processed.into_content() {
                ProcessedMessageContent::ApplicationMessage(m) => Ok(Incoming::Application {
                    sender,
                    plaintext: m.into_bytes(),
                    aad,
                }),
                ProcessedMessageContent::StagedCommitMessage(c) => {
                    let mut names: Vec<String> =
                        g.members().map(|m| member_name(&m.credential)).collect();
                    for a in c.add_proposals() {
                        let leaf = a.add_proposal().key_package().leaf_node();
                        let id = leaf_identity(leaf.credential(), leaf.signature_key().as_slice())?;
                        admit(&mut names, &id, vet)?;
                    }
                    let updated = c
                        .update_proposals()
                        .map(|u| u.update_proposal().leaf_node().clone())
                        .chain(c.update_path_leaf_node().cloned());
                    for leaf in updated {
                        let id = leaf_identity(leaf.credential(), leaf.signature_key().as_slice())?;
                        let same = g.members().any(|m| {
                            claimed(m.credential.serialized_content()).is_ok_and(|c| c == id)
                        });
                        if !same {
                            return Err(MlsError::Refused(format!(
                                "an update gives {:?} an identity key it did not have",
                                id.name
                            )));
                        }
                    }
                    let before: Vec<String> =
                        g.members().map(|m| member_name(&m.credential)).collect();
                    g.merge_staged_commit(&self.provider, *c)
                        .map_err(protocol)?;
                    let after: Vec<String> =
                        g.members().map(|m| member_name(&m.credential)).collect();
                    Ok(Incoming::Commit {
                        removed_self: !g.is_active(),
                        by: sender,
                        added: after
                            .iter()
                            .filter(|n| !before.contains(n))
                            .cloned()
                            .collect(),
                        removed: before.into_iter().filter(|n| !after.contains(n)).collect(),
                    })
                }
                ProcessedMessageContent::ProposalMessage(p) => {
                    g.store_pending_proposal(self.provider.storage(), *p)
                        .map_err(protocol)?;
                    Ok(Incoming::Proposal)
                }
                _ => Ok(Incoming::Proposal),
            }
        })
    }

    /// Names of the group's members.
    pub fn members(&self, group: &str) -> Result<Vec<String>, MlsError> {
        Ok(self
            .load(group)?
            .members()
            .map(|m| member_name(&m.credential))
            .collect())
    }

    /// The group's members with their identity keys, each leaf verified again.
    pub fn identities(&self, group: &str) -> Result<Vec<Identity>, MlsError> {
        self.load(group)?
            .members()
            .map(|m| leaf_identity(&m.credential, &m.signature_key))
            .collect()
    }
}

/// The title in a group context's extensions, if valid.
fn title_of(ext: &Extensions<GroupContext>) -> Option<String> {
    ext.unknown(TITLE_EXTENSION)
        .and_then(|u| String::from_utf8(u.0.clone()).ok())
        .filter(|t| check_title(t).is_ok())
}

/// Admits a verified leaf to a group whose members are `names`: refused if the name is taken,
/// or if `vet` refuses the identity.
fn admit(names: &mut Vec<String>, id: &Identity, vet: Vet) -> Result<(), MlsError> {
    if names.contains(&id.name) {
        return Err(MlsError::Refused(format!(
            "{:?} is already a member",
            id.name
        )));
    }
    vet(id)?;
    names.push(id.name.clone());
    Ok(())
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

/// The file-name extension of a received attachment's real type, read from its first bytes
/// (the sender's claimed name is not trusted): `jpg`, `png`, `gif`, `webp`, `bmp`, `tif`, or
/// `bin` when it is none of these. Saving under the real type lets a viewer open the file,
/// and never lets a sender choose an extension such as `.html` or `.exe`.
pub fn file_extension(bytes: &[u8]) -> &'static str {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => "jpg",
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => "png",
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => "gif",
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => "webp",
        [b'B', b'M', ..] => "bmp",
        [b'I', b'I', 0x2A, 0x00, ..] | [b'M', b'M', 0x00, 0x2A, ..] => "tif",
        _ => "bin",
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
    /// The sender the blob is bound to (in its associated data).
    #[serde(default)]
    pub sender: String,
    /// The chat the blob is bound to (in its associated data).
    #[serde(default)]
    pub chat: String,
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

/// The blob header's magic: format version 2, key-committed.
pub const BLOB_MAGIC: &[u8; 4] = b"SLA2";

/// Bytes a blob adds to its padded plaintext: magic, commitment, GCM tag.
pub const BLOB_OVERHEAD: usize = 4 + 32 + 16;

/// `(K_enc, C)` from the attachment key (see the module docs); public so that auditors and
/// tests can rebuild a blob's parts.
pub fn attachment_keys(key: &[u8; 32]) -> (Zeroizing<[u8; 32]>, [u8; 32]) {
    let mut okm = Zeroizing::new([0u8; 64]);
    hkdf::Hkdf::<Sha256>::new(None, key)
        .expand(b"scanlab attachment v2", okm.as_mut())
        .expect("64 bytes is a valid HKDF-SHA256 length");
    let mut enc = Zeroizing::new([0u8; 32]);
    enc.copy_from_slice(&okm[..32]);
    let mut commit = [0u8; 32];
    commit.copy_from_slice(&okm[32..]);
    (enc, commit)
}

/// The associated data of a blob with commitment `commit` from `sender` in `chat`.
pub fn attachment_aad(commit: &[u8; 32], sender: &str, chat: &str) -> Result<Vec<u8>, MlsError> {
    let mut aad = Vec::with_capacity(40 + sender.len() + chat.len());
    aad.extend_from_slice(BLOB_MAGIC);
    aad.extend_from_slice(commit);
    for part in [sender, chat] {
        let n = u16::try_from(part.len())
            .map_err(|_| MlsError::Binding(format!("a {}-byte name", part.len())))?;
        aad.extend_from_slice(&n.to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    Ok(aad)
}

/// Encrypts an attachment from `sender` in `chat` under a fresh random key, padded to
/// [`padded_len`] and committed to its key (see the module docs). Returns the blob to upload
/// and the reference (without the blob id, which the upload assigns).
pub fn seal_attachment(
    plaintext: &[u8],
    sender: &str,
    chat: &str,
) -> Result<(Vec<u8>, AttachmentRef), MlsError> {
    if plaintext.len() > MAX_ATTACHMENT {
        return Err(MlsError::TooLarge(plaintext.len()));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), key.as_mut());
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
    let (enc, commit) = attachment_keys(&key);
    let aad = attachment_aad(&commit, sender, chat)?;
    let cipher = Aes256Gcm::new_from_slice(enc.as_ref()).expect("32-byte key");
    let mut padded = Zeroizing::new(Vec::with_capacity(padded_len(plaintext.len())));
    padded.extend_from_slice(plaintext);
    padded.resize(padded_len(plaintext.len()), 0);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            aes_gcm::aead::Payload {
                msg: padded.as_slice(),
                aad: &aad,
            },
        )
        .map_err(|_| MlsError::WrongKey)?;
    let mut blob = Vec::with_capacity(36 + ct.len());
    blob.extend_from_slice(BLOB_MAGIC);
    blob.extend_from_slice(&commit);
    blob.extend_from_slice(&ct);
    Ok((
        blob,
        AttachmentRef {
            blob: String::new(),
            key: hex::encode(key.as_ref()),
            nonce: hex::encode(nonce),
            sha256: hex::encode(Sha256::digest(plaintext)),
            len: plaintext.len(),
            sender: sender.into(),
            chat: chat.into(),
            media: Media::Image,
        },
    ))
}

/// Checks that `r` is bound to the message it arrived in (the MLS sender and the chat), as a
/// recipient must before [`open_attachment`]: otherwise a member could pass off another's
/// attachment as their own, or one chat's as another's.
pub fn check_binding(r: &AttachmentRef, sender: &str, chat: &str) -> Result<(), MlsError> {
    if r.sender != sender || r.chat != chat {
        return Err(MlsError::Binding(format!(
            "sender {:?} in chat {:?}",
            r.sender, r.chat
        )));
    }
    Ok(())
}

/// Opens an attachment blob: checks the key commitment first, then decrypts with the
/// reference's sender and chat as associated data, then checks the padding and the digest.
pub fn open_attachment(blob: &[u8], r: &AttachmentRef) -> Result<Vec<u8>, MlsError> {
    if blob.len() > padded_len(MAX_ATTACHMENT) + BLOB_OVERHEAD {
        return Err(MlsError::TooLarge(blob.len()));
    }
    let key = Zeroizing::new(hex::decode(&r.key).map_err(|_| MlsError::WrongKey)?);
    let nonce = hex::decode(&r.nonce).map_err(|_| MlsError::WrongKey)?;
    let (Ok(key), 12) = (<[u8; 32]>::try_from(key.as_slice()), nonce.len()) else {
        return Err(MlsError::WrongKey);
    };
    let key = Zeroizing::new(key);
    if blob.len() < BLOB_OVERHEAD || &blob[..4] != BLOB_MAGIC {
        return Err(MlsError::Malformed(
            "not a version-2 attachment blob".into(),
        ));
    }
    let (enc, commit) = attachment_keys(&key);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&commit[..], &blob[4..36])) {
        return Err(MlsError::Commitment);
    }
    let aad = attachment_aad(&commit, &r.sender, &r.chat)?;
    let cipher = Aes256Gcm::new_from_slice(enc.as_ref()).map_err(|_| MlsError::WrongKey)?;
    let mut pt = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                aes_gcm::aead::Payload {
                    msg: &blob[36..],
                    aad: &aad,
                },
            )
            .map_err(|_| MlsError::WrongKey)?,
    );
    if r.len > MAX_ATTACHMENT || pt.len() != padded_len(r.len) {
        return Err(MlsError::Padding);
    }
    if pt[r.len..].iter().any(|&b| b != 0) {
        return Err(MlsError::Padding);
    }
    pt.truncate(r.len);
    if hex::encode(Sha256::digest(pt.as_slice())) != r.sha256 {
        return Err(MlsError::Digest);
    }
    Ok(std::mem::take(&mut *pt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
    }

    fn any(_: &Identity) -> Result<(), MlsError> {
        Ok(())
    }

    #[test]
    fn three_members_add_remove_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let home = |n: &str| dir.path().join(n);
        let alice = MlsClient::open(&home("alice"), "alice", &key(1)).unwrap();
        let bob = MlsClient::open(&home("bob"), "bob", &key(2)).unwrap();
        let carol = MlsClient::open(&home("carol"), "carol", &key(3)).unwrap();
        alice.create_group("chat", Some("Book club")).unwrap();
        let (_commit, welcome) = alice
            .add(
                "chat",
                &[bob.key_package().unwrap(), carol.key_package().unwrap()],
                &any,
            )
            .unwrap();
        alice.merge_pending("chat").unwrap();
        for c in [&bob, &carol] {
            let j = c.join(&welcome, &any).unwrap();
            assert_eq!(j.group, "chat");
            assert_eq!(
                j.title.as_deref(),
                Some("Book club"),
                "the title travels inside"
            );
            assert_eq!(j.by, "alice");
            assert_eq!(j.members, ["alice", "bob", "carol"]);
        }
        assert!(
            !welcome.windows(9).any(|w| w == b"Book club"),
            "the welcome encrypts the title"
        );
        assert_eq!(bob.title("chat").unwrap().as_deref(), Some("Book club"));
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
                c.process("chat", &m, &any).unwrap(),
                Incoming::Application {
                    sender: "alice".into(),
                    plaintext: b"hello both".to_vec(),
                    aad: Vec::new()
                }
            );
        }

        // Alice removes Carol; Bob merges the commit; Carol learns she is out.
        let commit = alice.remove("chat", &["carol"]).unwrap();
        alice.merge_pending("chat").unwrap();
        assert_eq!(
            bob.process("chat", &commit, &any).unwrap(),
            Incoming::Commit {
                removed_self: false,
                by: "alice".into(),
                added: vec![],
                removed: vec!["carol".into()],
            }
        );
        assert!(
            !commit.windows(9).any(|w| w == b"Book club"),
            "a commit does not show the title"
        );
        assert!(matches!(
            carol.process("chat", &commit, &any).unwrap(),
            Incoming::Commit {
                removed_self: true,
                ..
            }
        ));
        let secret = alice.encrypt("chat", b"only bob").unwrap();
        assert!(
            carol.process("chat", &secret, &any).is_err(),
            "a removed member cannot decrypt"
        );

        // Bob's client restarts from disk and keeps up.
        drop(bob);
        let bob = MlsClient::open(&home("bob"), "bob", &key(2)).unwrap();
        assert_eq!(
            bob.process("chat", &secret, &any).unwrap(),
            Incoming::Application {
                sender: "alice".into(),
                plaintext: b"only bob".to_vec(),
                aad: Vec::new()
            }
        );
        assert!(
            MlsClient::open(&home("bob"), "mallory", &key(2)).is_err(),
            "a home has one identity"
        );
    }

    #[test]
    fn message_lengths_are_padded_to_256_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let alice = MlsClient::open(&dir.path().join("a"), "alice", &key(1)).unwrap();
        let bob = MlsClient::open(&dir.path().join("b"), "bob", &key(2)).unwrap();
        alice.create_group("chat", None).unwrap();
        let (_, welcome) = alice
            .add("chat", &[bob.key_package().unwrap()], &any)
            .unwrap();
        alice.merge_pending("chat").unwrap();
        bob.join(&welcome, &any).unwrap();
        let len = |n: usize| alice.encrypt("chat", &vec![b'x'; n]).unwrap().len();
        // Within one 256-byte step (the content holds the sender's 64-byte signature too) the
        // ciphertext length does not move; across one it does.
        assert_eq!(len(1), len(150));
        assert_eq!(
            len(400) - len(150),
            256,
            "a canary: padding does not hide everything"
        );
        let m = alice.encrypt("chat", b"ok").unwrap();
        assert_eq!(
            bob.process("chat", &m, &any).unwrap(),
            Incoming::Application {
                sender: "alice".into(),
                plaintext: b"ok".to_vec(),
                aad: Vec::new()
            },
            "padding is stripped on receipt"
        );
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let alice = MlsClient::open(dir.path(), "alice", &key(1)).unwrap();
        alice.create_group("g", None).unwrap();
        assert!(matches!(
            alice.process("g", b"\x00\x01garbage", &any),
            Err(MlsError::Malformed(_))
        ));
        assert!(matches!(
            alice.process("nope", b"", &any),
            Err(MlsError::UnknownGroup(_))
        ));
        assert!(matches!(
            alice.join(b"junk", &any),
            Err(MlsError::Malformed(_))
        ));
        assert!(matches!(framing(b"junk"), Err(MlsError::Malformed(_))));
        for bad in ["", "a\nb", &"x".repeat(MAX_TITLE + 1)] {
            assert!(matches!(
                alice.create_group("h", Some(bad)),
                Err(MlsError::Malformed(_))
            ));
        }
    }

    #[test]
    fn attachments_check_key_and_digest() {
        let img = vec![42u8; 5000];
        let (ct, r) = seal_attachment(&img, "alice", "chat").unwrap();
        assert!(!ct.windows(64).any(|w| w == &img[..64]));
        assert_eq!(open_attachment(&ct, &r).unwrap(), img);
        let mut wrong = r.clone();
        wrong.key = hex::encode([1u8; 32]);
        assert!(matches!(
            open_attachment(&ct, &wrong),
            Err(MlsError::Commitment)
        ));
        // Bound to its sender and chat: the same blob under another's name does not open.
        for (sender, chat) in [("mallory", "chat"), ("alice", "other")] {
            let mut moved = r.clone();
            (moved.sender, moved.chat) = (sender.into(), chat.into());
            assert!(matches!(
                open_attachment(&ct, &moved),
                Err(MlsError::WrongKey)
            ));
            assert!(check_binding(&r, sender, chat).is_err());
        }
        check_binding(&r, "alice", "chat").unwrap();
        let mut tampered = ct.clone();
        tampered[100] ^= 1;
        assert!(matches!(
            open_attachment(&tampered, &r),
            Err(MlsError::WrongKey)
        ));
        let mut header = ct.clone();
        header[10] ^= 1;
        assert!(matches!(
            open_attachment(&header, &r),
            Err(MlsError::Commitment)
        ));
        let mut lie = r.clone();
        lie.sha256 = hex::encode([0u8; 32]);
        assert!(matches!(open_attachment(&ct, &lie), Err(MlsError::Digest)));
        assert!(matches!(
            seal_attachment(&vec![0u8; MAX_ATTACHMENT + 1], "alice", "chat"),
            Err(MlsError::TooLarge(_))
        ));
        // A claimed length beyond the padded plaintext is refused, not a panic.
        let mut long = r.clone();
        long.len = ct.len() + 1;
        assert!(matches!(
            open_attachment(&ct, &long),
            Err(MlsError::Padding)
        ));
        // A shorter claimed length leaves non-zero bytes where the padding should be.
        let mut short = r.clone();
        short.len = img.len() - 1;
        assert!(matches!(
            open_attachment(&ct, &short),
            Err(MlsError::Padding)
        ));
    }

    #[test]
    fn attachments_are_named_by_their_real_type() {
        assert_eq!(file_extension(&[0xFF, 0xD8, 0xFF, 0xE0, 0]), "jpg");
        assert_eq!(file_extension(b"\x89PNG\r\n\x1a\n...."), "png");
        assert_eq!(file_extension(b"GIF89a...."), "gif");
        assert_eq!(file_extension(b"RIFF\0\0\0\0WEBPVP8 "), "webp");
        assert_eq!(file_extension(b"II*\0...."), "tif");
        // A file that claims nothing known, or too short to tell, is `bin`.
        assert_eq!(file_extension(b"<html><script>"), "bin");
        assert_eq!(file_extension(b"RIFF\0\0\0\0WAVE"), "bin");
        assert_eq!(file_extension(&[0xFF, 0xD8]), "bin");
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
        let (a, _) = seal_attachment(&[1u8; 100_000], "a", "c").unwrap();
        let (b, _) = seal_attachment(&[2u8; 100_050], "a", "c").unwrap();
        assert_eq!(a.len(), b.len());
    }
}

#[cfg(test)]
mod storage_tests {
    use super::*;

    #[test]
    fn client_secrets_are_private_and_deleted_ones_are_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let db = open_private_db(&home, "x.sqlite").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&home), 0o700);
            assert_eq!(mode(&home.join("x.sqlite")), 0o600);
        }
        let marker = "epoch-secret-5f1e2d3c4b5a69788796a5b4c3d2e1f0";
        db.execute_batch("CREATE TABLE s (v TEXT)").unwrap();
        db.execute("INSERT INTO s VALUES (?1)", [marker]).unwrap();
        db.execute("DELETE FROM s", []).unwrap();
        drop(db);
        let bytes = std::fs::read(home.join("x.sqlite")).unwrap();
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "a deleted secret is still in the file"
        );
        // Canary: without secure_delete the deleted row stays readable in the file.
        let plain = Connection::open(home.join("y.sqlite")).unwrap();
        plain.pragma_update(None, "secure_delete", "OFF").unwrap();
        plain.execute_batch("CREATE TABLE s (v TEXT)").unwrap();
        plain
            .execute("INSERT INTO s VALUES (?1)", [marker])
            .unwrap();
        plain.execute("DELETE FROM s", []).unwrap();
        drop(plain);
        let bytes = std::fs::read(home.join("y.sqlite")).unwrap();
        assert!(bytes.windows(marker.len()).any(|w| w == marker.as_bytes()));
    }

    /// The rollback journal holds the pages a transaction changes, old secrets included; it
    /// must be empty once the transaction commits.
    #[test]
    fn the_journal_keeps_no_old_secret_after_commit() {
        let dir = tempfile::tempdir().unwrap();
        let marker = "old-epoch-secret-0a1b2c3d4e5f60718293a4b5c6d7e8f9";
        let journal_after = |db: Connection, path: &Path| {
            db.execute_batch("CREATE TABLE s (v TEXT)").unwrap();
            db.execute("INSERT INTO s VALUES (?1)", [marker]).unwrap();
            db.execute("UPDATE s SET v = 'new'", []).unwrap();
            let journal = std::fs::read(path.with_extension("sqlite-journal")).unwrap_or_default();
            drop(db);
            journal
                .windows(marker.len())
                .any(|w| w == marker.as_bytes())
        };
        let home = dir.path().join("home");
        let db = open_private_db(&home, "x.sqlite").unwrap();
        assert!(!journal_after(db, &home.join("x.sqlite")));
        // Canary: a persisted journal keeps the page with the old secret.
        let path = dir.path().join("p.sqlite");
        let persist = Connection::open(&path).unwrap();
        persist.pragma_update(None, "secure_delete", "ON").unwrap();
        persist
            .pragma_update(None, "journal_mode", "PERSIST")
            .unwrap();
        assert!(journal_after(persist, &path));
    }

    /// An MLS operation that fails leaves nothing of what it wrote.
    #[test]
    fn a_failed_operation_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let c = MlsClient::open(&dir.path().join("c"), "carol", &key).unwrap();
        let count = |c: &MlsClient| -> i64 {
            c.provider
                .conn
                .query_row("SELECT count(*) FROM openmls_key_packages", [], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        c.key_package().unwrap();
        assert_eq!(count(&c), 1);
        let failed: Result<(), MlsError> = c.atomic(|| {
            c.key_package()?;
            // Canary: the nested operation's write is there until the outer one fails.
            assert_eq!(count(&c), 2);
            Err(MlsError::State("failed after writing".into()))
        });
        assert!(failed.is_err());
        assert_eq!(count(&c), 1);
        c.create_group("g", None).unwrap();
        assert!(c.create_group("g", None).is_err());
        assert_eq!(c.members("g").unwrap(), vec!["carol".to_string()]);
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn any(_: &Identity) -> Result<(), MlsError> {
        Ok(())
    }

    #[test]
    fn a_leaf_bound_to_another_identity_key_or_a_taken_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = |n: &str| dir.path().join(n);
        let bob_key = SigningKey::from_bytes(&[2; 32]);
        let alice =
            MlsClient::open(&home("alice"), "alice", &SigningKey::from_bytes(&[1; 32])).unwrap();
        let bob = MlsClient::open(&home("bob"), "bob", &bob_key).unwrap();
        // A ghost: a key package that says "bob", made by someone without Bob's identity key.
        let ghost =
            MlsClient::open(&home("ghost"), "bob", &SigningKey::from_bytes(&[66; 32])).unwrap();
        alice.create_group("chat", None).unwrap();
        let trusted = *bob_key.verifying_key().as_bytes();
        let pinned = move |id: &Identity| {
            if id.name == "bob" && id.key != trusted {
                return Err(MlsError::Refused("not the bob we know".into()));
            }
            Ok(())
        };
        let err = alice
            .add("chat", &[ghost.key_package().unwrap()], &pinned)
            .unwrap_err();
        assert!(matches!(err, MlsError::Refused(_)), "{err}");
        assert_eq!(
            alice.members("chat").unwrap(),
            vec!["alice"],
            "nothing was committed"
        );
        let (_, welcome) = alice
            .add("chat", &[bob.key_package().unwrap()], &pinned)
            .unwrap();
        alice.merge_pending("chat").unwrap();
        bob.join(&welcome, &any).unwrap();
        // A second "bob" leaf is refused even when the vetting would take it.
        let bob2 = MlsClient::open(&home("bob2"), "bob", &bob_key).unwrap();
        let err = alice
            .add("chat", &[bob2.key_package().unwrap()], &any)
            .unwrap_err();
        assert!(matches!(err, MlsError::Refused(_)), "{err}");
        let ids = alice.identities("chat").unwrap();
        assert_eq!(ids[1].key, trusted);
    }
}
