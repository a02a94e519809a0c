//! A list log kept in a directory, so the command line can append, publish and prove across
//! runs.
//!
//! ```text
//! DIR/operator.secret      the operator's Ed25519 secret key (hex; created 0600)
//! DIR/orgs.secret.json     the simulated organisations' secret keys (stand-ins, see below)
//! DIR/policy.json          k and the organisations' names, jurisdictions and public keys
//! DIR/leaves.jsonl         every leaf, in log order
//! DIR/heads.jsonl          every signed tree head published
//! ```
//!
//! In scanlab the vouching organisations are simulated: their keys live beside the log so one
//! command can play every role. A real deployment would keep each key with its organisation;
//! nothing in the log format depends on where they are.

use crate::log::{
    AbsenceProof, Auditor, ListLog, LogError, LogLeaf, OrgKey, Organisation, Policy, SignedTreeHead,
};
use ed25519_dalek::VerifyingKey;
use rand::RngCore;
use scanlab_pdq::Hash256;
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Why the log directory could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// File trouble.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file in the directory is damaged.
    #[error("{path}: {message}\n  the log directory is damaged; restore it from a copy")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The log refused an operation.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// How long the stand-in organisations' vouchers admit entries: a year, in seconds.
pub const VOUCHER_LIFETIME: u64 = 365 * 24 * 3600;

/// The policy file's form of an organisation.
#[derive(serde::Serialize, serde::Deserialize)]
struct OrgRecord {
    name: String,
    jurisdiction: String,
    public_key: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PolicyFile {
    k: usize,
    orgs: Vec<OrgRecord>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct OrgSecret {
    name: String,
    jurisdiction: String,
    secret: String,
}

/// What `prove` returns: the head it is relative to, and either kind of proof.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ProofBundle {
    /// The hash asked about.
    pub hash: Hash256,
    /// The head the proof is relative to.
    pub head: SignedTreeHead,
    /// Present when the hash is listed: the leaf, its position and the inclusion proof (hex).
    pub inclusion: Option<(LogLeaf, u64, String)>,
    /// Present when the hash is not listed.
    pub absence: Option<AbsenceProof>,
}

/// An opened log directory.
pub struct LogDir {
    dir: PathBuf,
    log: ListLog,
    orgs: Vec<Organisation>,
    heads: Vec<SignedTreeHead>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn unhex<const N: usize>(s: &str, path: &Path) -> Result<[u8; N], StoreError> {
    let bad = || StoreError::Corrupt {
        path: path.to_owned(),
        message: format!("expected {} hex characters", 2 * N),
    };
    let mut out = [0u8; N];
    hex::decode_to_slice(s.trim(), &mut out).map_err(|_| bad())?;
    Ok(out)
}

fn secret() -> Zeroizing<[u8; 32]> {
    let mut s = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(s.as_mut());
    s
}

fn write_private(path: &Path, text: &str) -> Result<(), StoreError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(text.as_bytes()).map_err(io(path))
}

impl LogDir {
    /// Creates a new log: a fresh operator key, and one stand-in organisation per
    /// `(name, jurisdiction)` with a fresh key; entries need `k` distinct jurisdictions.
    pub fn create(dir: &Path, orgs: &[(String, String)], k: usize) -> Result<LogDir, StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let op = secret();
        write_private(&dir.join("operator.secret"), &hex::encode(op.as_ref()))?;
        let mut secrets = Vec::new();
        let mut records = Vec::new();
        for (name, jurisdiction) in orgs {
            let s = secret();
            let org = Organisation::new(name, jurisdiction, *s);
            records.push(OrgRecord {
                name: name.clone(),
                jurisdiction: jurisdiction.clone(),
                public_key: hex::encode(org.public.key.as_bytes()),
            });
            secrets.push(OrgSecret {
                name: name.clone(),
                jurisdiction: jurisdiction.clone(),
                secret: hex::encode(s.as_ref()),
            });
        }
        let secrets_json =
            Zeroizing::new(serde_json::to_string_pretty(&secrets).expect("serialises"));
        write_private(&dir.join("orgs.secret.json"), &secrets_json)?;
        let p = dir.join("policy.json");
        std::fs::write(
            &p,
            serde_json::to_string_pretty(&PolicyFile { k, orgs: records }).expect("serialises"),
        )
        .map_err(io(&p))?;
        for f in ["leaves.jsonl", "heads.jsonl"] {
            std::fs::write(dir.join(f), "").map_err(io(&dir.join(f)))?;
        }
        Self::open(dir)
    }

    /// Reads the policy file (what a client needs besides the operator key).
    pub fn read_policy(path: &Path) -> Result<Policy, StoreError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let pf: PolicyFile = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let mut orgs = Vec::new();
        for o in pf.orgs {
            let key =
                VerifyingKey::from_bytes(&unhex::<32>(&o.public_key, path)?).map_err(|e| {
                    StoreError::Corrupt {
                        path: path.to_owned(),
                        message: e.to_string(),
                    }
                })?;
            orgs.push(OrgKey {
                name: o.name,
                jurisdiction: o.jurisdiction,
                key,
            });
        }
        Policy::new(pf.k, orgs).map_err(|e| StoreError::Corrupt {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Opens an existing log, replaying its leaves (each re-checked against the policy).
    pub fn open(dir: &Path) -> Result<LogDir, StoreError> {
        let policy = Self::read_policy(&dir.join("policy.json"))?;
        let op_path = dir.join("operator.secret");
        let op = Zeroizing::new(unhex::<32>(
            &std::fs::read_to_string(&op_path).map_err(io(&op_path))?,
            &op_path,
        )?);
        let sec_path = dir.join("orgs.secret.json");
        let text = Zeroizing::new(std::fs::read_to_string(&sec_path).map_err(io(&sec_path))?);
        let secrets: Vec<OrgSecret> =
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                path: sec_path.clone(),
                message: e.to_string(),
            })?;
        let mut orgs = Vec::new();
        for s in secrets {
            let key = Zeroizing::new(unhex::<32>(&s.secret, &sec_path)?);
            orgs.push(Organisation::new(&s.name, &s.jurisdiction, *key));
        }
        let mut log = ListLog::new(*op, policy);
        let lp = dir.join("leaves.jsonl");
        for (i, line) in std::fs::read_to_string(&lp)
            .map_err(io(&lp))?
            .lines()
            .enumerate()
        {
            let leaf: LogLeaf = serde_json::from_str(line).map_err(|e| StoreError::Corrupt {
                path: lp.clone(),
                message: format!("line {}: {e}", i + 1),
            })?;
            log.append(leaf)?;
        }
        let hp = dir.join("heads.jsonl");
        let mut heads = Vec::new();
        for (i, line) in std::fs::read_to_string(&hp)
            .map_err(io(&hp))?
            .lines()
            .enumerate()
        {
            heads.push(serde_json::from_str(line).map_err(|e| StoreError::Corrupt {
                path: hp.clone(),
                message: format!("line {}: {e}", i + 1),
            })?);
        }
        Ok(LogDir {
            dir: dir.to_owned(),
            log,
            orgs,
            heads,
        })
    }

    /// The operator's public key (hex), which clients pin.
    pub fn operator_key_hex(&self) -> String {
        hex::encode(self.log.operator_key().as_bytes())
    }

    /// The in-memory log.
    pub fn log(&self) -> &ListLog {
        &self.log
    }

    /// Appends `hash`, vouched for by the named stand-in organisations for a year from
    /// `added` ([`VOUCHER_LIFETIME`]); the policy decides.
    pub fn append(
        &mut self,
        hash: Hash256,
        label: &str,
        vouch: &[String],
        added: u64,
    ) -> Result<u64, StoreError> {
        let mut vouchers = Vec::new();
        for name in vouch {
            let org = self
                .orgs
                .iter()
                .find(|o| &o.public.name == name)
                .ok_or_else(|| StoreError::Corrupt {
                    path: self.dir.join("orgs.secret.json"),
                    message: format!("no organisation named {name:?}"),
                })?;
            vouchers.push(org.vouch(
                &self.log.log_id(),
                &hash,
                label,
                added.saturating_add(VOUCHER_LIFETIME),
            ));
        }
        let leaf = LogLeaf {
            id: self.log.leaves().len() as u64,
            hash,
            label: label.into(),
            added,
            vouchers,
        };
        let idx = self.log.append(leaf.clone())?;
        let lp = self.dir.join("leaves.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&lp)
            .map_err(io(&lp))?;
        writeln!(f, "{}", serde_json::to_string(&leaf).expect("serialises")).map_err(io(&lp))?;
        Ok(idx)
    }

    /// Signs and records a head for the current version.
    pub fn publish(&mut self, timestamp: u64) -> Result<SignedTreeHead, StoreError> {
        let sth = self.log.publish(timestamp);
        let hp = self.dir.join("heads.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&hp)
            .map_err(io(&hp))?;
        writeln!(f, "{}", serde_json::to_string(&sth).expect("serialises")).map_err(io(&hp))?;
        self.heads.push(sth.clone());
        Ok(sth)
    }

    /// A proof, relative to the current version, that `hash` is or is not listed.
    pub fn prove(&self, hash: &Hash256, timestamp: u64) -> Result<ProofBundle, StoreError> {
        let head = self
            .heads
            .last()
            .filter(|h| h.size == self.log.leaves().len() as u64)
            .cloned()
            .unwrap_or_else(|| self.log.publish(timestamp));
        let inclusion = match self.log.leaves().iter().position(|l| l.hash == *hash) {
            Some(i) => Some((
                self.log.leaves()[i].clone(),
                i as u64,
                hex::encode(&self.log.prove_inclusion(i as u64)?),
            )),
            None => None,
        };
        let absence = if inclusion.is_none() {
            self.log.prove_absence(hash)
        } else {
            None
        };
        Ok(ProofBundle {
            hash: *hash,
            head,
            inclusion,
            absence,
        })
    }
}

/// Verifies a [`ProofBundle`] as a client that pins `operator_key` (hex) and `policy`: returns
/// whether the hash is listed, or the reason the proof does not hold.
pub fn verify_bundle(
    operator_key: &str,
    policy: Policy,
    b: &ProofBundle,
) -> Result<bool, StoreError> {
    let here = Path::new("operator key");
    let key = VerifyingKey::from_bytes(&unhex::<32>(operator_key, here)?).map_err(|e| {
        StoreError::Corrupt {
            path: here.to_owned(),
            message: e.to_string(),
        }
    })?;
    let auditor = Auditor::new(key, policy);
    match (&b.inclusion, &b.absence) {
        (Some((leaf, idx, proof)), None) => {
            let proof = hex::decode(proof)
                .ok()
                .ok_or(LogError::Proof("inclusion"))?;
            if leaf.hash != b.hash {
                return Err(LogError::Proof("inclusion").into());
            }
            auditor.check_leaf(&b.head, leaf, *idx, &proof)?;
            Ok(true)
        }
        (None, Some(p)) => {
            auditor.check_absence(&b.head, &b.hash, p)?;
            Ok(false)
        }
        _ => Err(LogError::Proof("bundle").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;

    #[test]
    fn a_log_directory_survives_reopening_and_its_proofs_verify() {
        let dir = std::env::temp_dir().join(format!("scanlab-logdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let orgs = [
            ("a".to_string(), "US".to_string()),
            ("b".to_string(), "UK".to_string()),
        ];
        let mut d = LogDir::create(&dir, &orgs, 2).unwrap();
        let hs = synth::list(5, synth::Shape::Uniform, 3);
        for h in &hs {
            d.append(*h, "known", &["a".into(), "b".into()], 1).unwrap();
        }
        assert!(matches!(
            d.append(hs[0], "known", &["a".into()], 1),
            Err(StoreError::Log(LogError::Policy { .. }))
        ));
        d.publish(2).unwrap();
        let d = LogDir::open(&dir).unwrap();
        assert_eq!(d.log().leaves().len(), 5);
        let policy = LogDir::read_policy(&dir.join("policy.json")).unwrap();
        let key = d.operator_key_hex();
        let listed = d.prove(&hs[2], 3).unwrap();
        assert!(verify_bundle(&key, policy.clone(), &listed).unwrap());
        let other = synth::list(1, synth::Shape::Uniform, 99)[0];
        let absent = d.prove(&other, 3).unwrap();
        assert!(!verify_bundle(&key, policy.clone(), &absent).unwrap());
        // A bundle claiming absence for a listed hash fails.
        let mut lie = absent.clone();
        lie.hash = hs[2];
        assert!(verify_bundle(&key, policy, &lie).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
