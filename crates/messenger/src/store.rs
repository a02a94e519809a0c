//! The provider's storage: accounts, key packages, per-device delivery queues, attachment
//! blobs, and the provider view. SQLite in WAL mode with `synchronous = FULL` is the embedded
//! default, so a message the provider acknowledged survives `kill -9`; the [`Store`] trait leaves
//! room for PostgreSQL.

use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The batch this operation ran in could not be committed; nothing of it was stored.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The writer thread is gone (it panicked), so nothing can be stored.
    #[error("the storage writer stopped")]
    WriterGone,
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// One message waiting in a recipient's queue.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Queued {
    /// Message id: unique, increasing, so per-group order is delivery order.
    pub id: i64,
    /// Group (chat) id, opaque to the provider.
    pub group: String,
    /// Sender's account name.
    pub sender: String,
    /// The opaque payload (an MLS message).
    pub payload: Vec<u8>,
    /// The scheme fields the sender's client half attached (JSON), delivered with the payload.
    pub fields: Option<String>,
}

/// What a record in a party's view is. Typed, so the analysis never matches on strings.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Bytes the party received (a request body).
    Received,
    /// Bytes the party sent (a response body).
    Sent,
    /// What the party computed from what it received (a hash, a verdict, a decrypted digest).
    Derived,
    /// Something that reached the party's storage from inside its own deployment rather than
    /// over its API (an enclave's forward into the review queue).
    Internal,
    /// Durable scheme state the party wrote.
    State,
}

impl RecordKind {
    /// Every kind.
    pub const ALL: [RecordKind; 5] = [
        RecordKind::Received,
        RecordKind::Sent,
        RecordKind::Derived,
        RecordKind::Internal,
        RecordKind::State,
    ];

    /// The name stored in the database and printed by the view commands.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Received => "received",
            RecordKind::Sent => "sent",
            RecordKind::Derived => "derived",
            RecordKind::Internal => "internal",
            RecordKind::State => "state",
        }
    }

    fn parse(s: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record of a party's view: bytes it received or sent, or what it derived or stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ViewRecord {
    /// Sequence number.
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What the record is.
    pub kind: RecordKind,
    /// The authenticated account the bytes came from or went to, or `None`.
    pub who: Option<String>,
    /// `METHOD /path` of the exchange (a request and its response share it); for derived and
    /// state rows, what they belong to.
    pub endpoint: String,
    /// Length of the bytes.
    pub len: i64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// The bytes themselves, except where the party's own store already holds them
    /// (attachment blobs, queue pages): then length and digest only.
    pub body: Option<Vec<u8>>,
    /// Metadata about the exchange (JSON), such as the blob and reason of a forward.
    pub extra: Option<String>,
}

impl ViewRecord {
    /// A record of `bytes`, with their true length and digest; `keep` stores the bytes too.
    pub fn of(
        kind: RecordKind,
        who: Option<String>,
        endpoint: &str,
        bytes: &[u8],
        keep: bool,
    ) -> Self {
        use sha2::Digest;
        ViewRecord {
            seq: 0,
            at_ms: crate::provider::now_ms(),
            kind,
            who,
            endpoint: endpoint.to_string(),
            len: bytes.len() as i64,
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            body: keep.then(|| bytes.to_vec()),
            extra: None,
        }
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(self.body.as_ref()?).ok()
    }
}

/// An image disclosed to the provider's human reviewers: the escalation path of a detection
/// scheme. Its plaintext is, by design, provider knowledge.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Review {
    /// Sequence number.
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who put it there: the sending account, `provider` (S1) or `enclave` (S5).
    pub submitter: String,
    /// The encrypted blob it belongs to.
    pub blob: String,
    /// Why (the scheme's match description).
    pub reason: String,
    /// The plaintext image.
    pub image: Vec<u8>,
}

/// Storage operations the provider needs.
///
/// Each operation is atomic on its own. The provider runs them through
/// [`crate::commit::Db`], which wraps many of them in one transaction between [`Store::begin`]
/// and [`Store::commit`] (group commit), so an implementation must let operations nest inside
/// an open transaction (SQLite: savepoints).
pub trait Store: Send {
    /// Opens a transaction spanning the next operations.
    fn begin(&mut self) -> Result<(), StoreError>;
    /// Makes everything since [`Store::begin`] durable.
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Undoes everything since [`Store::begin`].
    fn rollback(&mut self) -> Result<(), StoreError>;
    /// Marks the start of one job inside the transaction.
    fn mark(&mut self) -> Result<(), StoreError>;
    /// Ends the job started by [`Store::mark`]: keeps its writes, or undoes them.
    fn unmark(&mut self, keep: bool) -> Result<(), StoreError>;
    /// Creates an account; false if the name is taken.
    fn register(&mut self, name: &str, identity_key: &[u8; 32]) -> Result<bool, StoreError>;
    /// The account's identity key.
    fn identity_key(&mut self, name: &str) -> Result<Option<[u8; 32]>, StoreError>;
    /// Claims epoch `epoch` of `group` for a commit: `true` for the first commit of that
    /// epoch, `false` if one was already accepted (the provider orders commits).
    fn claim_commit(&mut self, group: &str, epoch: u64) -> Result<bool, StoreError>;
    /// The accounts the provider has seen welcomed into `group` (its founder included): who
    /// may send to it. Removals are not visible to the provider, so the set only grows.
    fn group_members(&mut self, group: &str) -> Result<Vec<String>, StoreError>;
    /// Adds accounts to [`Store::group_members`].
    fn add_group_members(&mut self, group: &str, names: &[String]) -> Result<(), StoreError>;
    /// Appends a registration to the key-transparency log ([`crate::kt`]). [`Store::register`]
    /// does so for each new account.
    fn kt_append(&mut self, name: &str, identity_key: &[u8; 32]) -> Result<(), StoreError>;
    /// The key-transparency log, in order.
    fn kt_leaves(&mut self) -> Result<Vec<(String, [u8; 32])>, StoreError>;
    /// Stores a session token (its digest) for an account, issued at `issued_ms`.
    fn put_token(&mut self, token: &str, name: &str, issued_ms: i64) -> Result<(), StoreError>;
    /// The account a token (digest) belongs to, and when it was issued.
    fn token_owner(&mut self, token: &str) -> Result<Option<(String, i64)>, StoreError>;
    /// Adds key packages for an account.
    fn add_key_packages(&mut self, name: &str, packages: &[Vec<u8>]) -> Result<(), StoreError>;
    /// Removes and returns one key package of an account (each is single-use).
    fn take_key_package(&mut self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores a message (with its scheme fields, JSON) and queues it for each recipient,
    /// atomically; returns its id.
    fn enqueue(
        &mut self,
        group: &str,
        sender: &str,
        recipients: &[String],
        payload: &[u8],
        fields: Option<&str>,
    ) -> Result<i64, StoreError>;
    /// Unacknowledged messages for an account, oldest first: at most `limit` of them, and no
    /// more once their payloads pass [`MAX_PAGE_BYTES`] (at least one is always returned).
    fn pending(&mut self, name: &str, limit: usize) -> Result<Vec<Queued>, StoreError>;
    /// Acknowledges messages for an account (ids of others are ignored); returns how many.
    fn ack(&mut self, name: &str, ids: &[i64]) -> Result<usize, StoreError>;
    /// Stores a blob; returns its id.
    fn put_blob(&mut self, data: &[u8]) -> Result<String, StoreError>;
    /// A blob by id.
    fn get_blob(&mut self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Appends to the party's view.
    fn record(&mut self, r: &ViewRecord) -> Result<(), StoreError>;
    /// The whole view, in order.
    fn view(&mut self) -> Result<Vec<ViewRecord>, StoreError>;
    /// A scheme's durable state under `key`.
    fn state(&mut self, scheme: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets a scheme's durable state under `key`.
    fn set_state(&mut self, scheme: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Adds an image to the review queue; returns its id.
    fn put_review(&mut self, r: &Review) -> Result<i64, StoreError>;
    /// The review queue, in order.
    fn reviews(&mut self) -> Result<Vec<Review>, StoreError>;
}

/// The SQLite store.
pub struct SqliteStore {
    db: Connection,
}

/// A queue page stops growing once its payloads pass this many bytes, so fetching a queue
/// costs bounded memory however much a sender piles into it.
pub const MAX_PAGE_BYTES: usize = 8 << 20;

/// The file name of a party's database in its data directory.
pub fn db_file(party: &str) -> String {
    format!("{party}.sqlite")
}

/// The parties whose stores `scanlab view` recognises, in the order it looks for them.
pub const PARTIES: [&str; 5] = ["provider", "enclave", "authority", "third-party", "party"];

impl SqliteStore {
    /// Opens (creating if needed) the provider's `DIR/provider.sqlite`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_party(dir, "provider")
    }

    /// Opens an existing party store in `dir` (whichever of [`PARTIES`] is there) without
    /// creating anything: for tools that only read a view.
    pub fn open_existing(dir: &Path) -> Result<(Self, &'static str), StoreError> {
        for party in PARTIES {
            if dir.join(db_file(party)).is_file() {
                return Ok((Self::open_party(dir, party)?, party));
            }
        }
        Err(StoreError::Dir {
            path: dir.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no party database here (looked for {})",
                    PARTIES.map(db_file).join(", ")
                ),
            ),
        })
    }

    /// Opens (creating if needed) `DIR/{party}.sqlite`: every party (provider, enclave, escrow
    /// authority, third parties) keeps its view in the same format.
    pub fn open_party(dir: &Path, party: &str) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        let db = Connection::open(dir.join(db_file(party)))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on disk before the provider answers, so nothing acknowledged is lost.
        db.pragma_update(None, "synchronous", "FULL")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, identity_key BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS key_packages (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, data BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, grp TEXT NOT NULL, sender TEXT NOT NULL, payload BLOB NOT NULL, fields TEXT);
             CREATE TABLE IF NOT EXISTS queue (recipient TEXT NOT NULL, message INTEGER NOT NULL, PRIMARY KEY (recipient, message));
             CREATE TABLE IF NOT EXISTS blobs (id TEXT PRIMARY KEY, data BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS commits (grp TEXT NOT NULL, epoch INTEGER NOT NULL, PRIMARY KEY (grp, epoch));
             CREATE TABLE IF NOT EXISTS group_members (grp TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (grp, name));
             CREATE TABLE IF NOT EXISTS kt_log (idx INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, identity_key BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS provider_view (seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
                 kind TEXT NOT NULL DEFAULT 'received', who TEXT, endpoint TEXT NOT NULL, len INTEGER NOT NULL,
                 sha256 TEXT NOT NULL, body BLOB, extra TEXT);
             CREATE TABLE IF NOT EXISTS scheme_state (scheme TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                 PRIMARY KEY (scheme, key));
             CREATE TABLE IF NOT EXISTS review (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
                 submitter TEXT NOT NULL, blob TEXT NOT NULL, reason TEXT NOT NULL, image BLOB NOT NULL);",
        )?;
        // Stores written before record kinds and scheme fields existed gain the columns.
        for (table, column, decl) in [
            ("provider_view", "kind", "TEXT NOT NULL DEFAULT 'received'"),
            ("messages", "fields", "TEXT"),
            ("tokens", "issued_ms", "INTEGER NOT NULL DEFAULT 0"),
        ] {
            let has: bool = db
                .prepare(&format!(
                    "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
                ))?
                .exists([column])?;
            if !has {
                db.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
            }
        }
        Ok(SqliteStore { db })
    }
}

impl Store for SqliteStore {
    fn begin(&mut self) -> Result<(), StoreError> {
        Ok(self.db.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(self.db.execute_batch("COMMIT")?)
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        Ok(self.db.execute_batch("ROLLBACK")?)
    }

    fn mark(&mut self) -> Result<(), StoreError> {
        Ok(self.db.execute_batch("SAVEPOINT job")?)
    }

    fn unmark(&mut self, keep: bool) -> Result<(), StoreError> {
        if keep {
            Ok(self.db.execute_batch("RELEASE job")?)
        } else {
            Ok(self.db.execute_batch("ROLLBACK TO job; RELEASE job")?)
        }
    }

    fn register(&mut self, name: &str, identity_key: &[u8; 32]) -> Result<bool, StoreError> {
        let n = self.db.execute(
            "INSERT OR IGNORE INTO accounts (name, identity_key) VALUES (?1, ?2)",
            params![name, &identity_key[..]],
        )?;
        if n == 1 {
            self.kt_append(name, identity_key)?;
        }
        Ok(n == 1)
    }

    fn kt_append(&mut self, name: &str, identity_key: &[u8; 32]) -> Result<(), StoreError> {
        self.db
            .prepare_cached("INSERT INTO kt_log (name, identity_key) VALUES (?1, ?2)")?
            .execute(params![name, &identity_key[..]])?;
        Ok(())
    }

    fn kt_leaves(&mut self) -> Result<Vec<(String, [u8; 32])>, StoreError> {
        let mut st = self
            .db
            .prepare_cached("SELECT name, identity_key FROM kt_log ORDER BY idx")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (n, k) = row?;
            out.push((n, k.try_into().unwrap_or([0; 32])));
        }
        Ok(out)
    }

    fn identity_key(&mut self, name: &str) -> Result<Option<[u8; 32]>, StoreError> {
        let k: Option<Vec<u8>> = self
            .db
            .prepare_cached("SELECT identity_key FROM accounts WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        Ok(k.and_then(|k| k.try_into().ok()))
    }

    fn claim_commit(&mut self, group: &str, epoch: u64) -> Result<bool, StoreError> {
        let n = self
            .db
            .prepare_cached("INSERT OR IGNORE INTO commits (grp, epoch) VALUES (?1, ?2)")?
            .execute(params![group, epoch as i64])?;
        Ok(n == 1)
    }

    fn group_members(&mut self, group: &str) -> Result<Vec<String>, StoreError> {
        let mut q = self
            .db
            .prepare_cached("SELECT name FROM group_members WHERE grp = ?1 ORDER BY name")?;
        let names = q
            .query_map([group], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(names)
    }

    fn add_group_members(&mut self, group: &str, names: &[String]) -> Result<(), StoreError> {
        let mut q = self
            .db
            .prepare_cached("INSERT OR IGNORE INTO group_members (grp, name) VALUES (?1, ?2)")?;
        for n in names {
            q.execute(params![group, n])?;
        }
        Ok(())
    }

    fn put_token(&mut self, token: &str, name: &str, issued_ms: i64) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO tokens (token, name, issued_ms) VALUES (?1, ?2, ?3)",
            params![token, name, issued_ms],
        )?;
        Ok(())
    }

    fn token_owner(&mut self, token: &str) -> Result<Option<(String, i64)>, StoreError> {
        Ok(self
            .db
            .query_row(
                "SELECT name, issued_ms FROM tokens WHERE token = ?1",
                [token],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn add_key_packages(&mut self, name: &str, packages: &[Vec<u8>]) -> Result<(), StoreError> {
        let tx = self.db.savepoint()?;
        for p in packages {
            tx.execute(
                "INSERT INTO key_packages (name, data) VALUES (?1, ?2)",
                params![name, p],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn take_key_package(&mut self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.savepoint()?;
        let row: Option<(i64, Vec<u8>)> = tx
            .query_row(
                "SELECT id, data FROM key_packages WHERE name = ?1 ORDER BY id LIMIT 1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, _)) = &row {
            tx.execute("DELETE FROM key_packages WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(row.map(|(_, d)| d))
    }

    fn enqueue(
        &mut self,
        group: &str,
        sender: &str,
        recipients: &[String],
        payload: &[u8],
        fields: Option<&str>,
    ) -> Result<i64, StoreError> {
        let tx = self.db.savepoint()?;
        tx.prepare_cached(
            "INSERT INTO messages (grp, sender, payload, fields) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![group, sender, payload, fields])?;
        let id = tx.last_insert_rowid();
        {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO queue (recipient, message) VALUES (?1, ?2)",
            )?;
            for r in recipients {
                st.execute(params![r, id])?;
            }
        }
        tx.commit()?;
        Ok(id)
    }

    fn pending(&mut self, name: &str, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let mut st = self.db.prepare_cached(
            "SELECT m.id, m.grp, m.sender, m.payload, m.fields FROM queue q JOIN messages m ON m.id = q.message
             WHERE q.recipient = ?1 ORDER BY m.id LIMIT ?2",
        )?;
        let rows = st.query_map(params![name, limit as i64], |r| {
            Ok(Queued {
                id: r.get(0)?,
                group: r.get(1)?,
                sender: r.get(2)?,
                payload: r.get(3)?,
                fields: r.get(4)?,
            })
        })?;
        let (mut out, mut bytes) = (Vec::new(), 0usize);
        for q in rows {
            let q = q?;
            bytes += q.payload.len() + q.fields.as_ref().map_or(0, String::len);
            out.push(q);
            if bytes >= MAX_PAGE_BYTES {
                break;
            }
        }
        Ok(out)
    }

    fn ack(&mut self, name: &str, ids: &[i64]) -> Result<usize, StoreError> {
        let tx = self.db.savepoint()?;
        let mut n = 0;
        for id in ids {
            n += tx
                .prepare_cached("DELETE FROM queue WHERE recipient = ?1 AND message = ?2")?
                .execute(params![name, id])?;
        }
        tx.commit()?;
        Ok(n)
    }

    fn put_blob(&mut self, data: &[u8]) -> Result<String, StoreError> {
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut id);
        let id = hex::encode(id);
        self.db.execute(
            "INSERT INTO blobs (id, data) VALUES (?1, ?2)",
            params![id, data],
        )?;
        Ok(id)
    }

    fn get_blob(&mut self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .query_row("SELECT data FROM blobs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?)
    }

    fn record(&mut self, r: &ViewRecord) -> Result<(), StoreError> {
        self.db.prepare_cached(
            "INSERT INTO provider_view (at_ms, kind, who, endpoint, len, sha256, body, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![r.at_ms, r.kind.as_str(), r.who, r.endpoint, r.len, r.sha256, r.body, r.extra])?;
        Ok(())
    }

    fn view(&mut self) -> Result<Vec<ViewRecord>, StoreError> {
        let mut st = self.db.prepare(
            "SELECT seq, at_ms, kind, who, endpoint, len, sha256, body, extra FROM provider_view ORDER BY seq",
        )?;
        let rows = st.query_map([], |r| {
            let kind: String = r.get(2)?;
            Ok(ViewRecord {
                seq: r.get(0)?,
                at_ms: r.get(1)?,
                kind: RecordKind::parse(&kind).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        2,
                        rusqlite::types::Type::Text,
                        format!("unknown record kind {kind:?}").into(),
                    )
                })?,
                who: r.get(3)?,
                endpoint: r.get(4)?,
                len: r.get(5)?,
                sha256: r.get(6)?,
                body: r.get(7)?,
                extra: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn state(&mut self, scheme: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .prepare_cached("SELECT value FROM scheme_state WHERE scheme = ?1 AND key = ?2")?
            .query_row(params![scheme, key], |r| r.get(0))
            .optional()?)
    }

    fn set_state(&mut self, scheme: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.db
            .prepare_cached(
                "INSERT INTO scheme_state (scheme, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (scheme, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![scheme, key, value])?;
        Ok(())
    }

    fn put_review(&mut self, r: &Review) -> Result<i64, StoreError> {
        self.db
            .prepare_cached(
                "INSERT INTO review (at_ms, submitter, blob, reason, image) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![r.at_ms, r.submitter, r.blob, r.reason, r.image])?;
        Ok(self.db.last_insert_rowid())
    }

    fn reviews(&mut self) -> Result<Vec<Review>, StoreError> {
        let mut st = self
            .db
            .prepare("SELECT id, at_ms, submitter, blob, reason, image FROM review ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok(Review {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                submitter: r.get(2)?,
                blob: r.get(3)?,
                reason: r.get(4)?,
                image: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
