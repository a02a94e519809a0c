//! One scheme deployed for the page: the evaluation's own deployment
//! ([`scanlab_eval::attacks::deploy`]: a real provider with the scheme's provider half and
//! every other party the scheme runs, each recording its view) and two real MLS clients,
//! Alice and Bob, in one chat, talking to the provider through its real router.
//!
//! A [`Deployment`] is owned by one thread ([`crate::server`]'s worker): the clients hold
//! SQLite connections and run the provider's router on their own small runtimes, so every
//! action the page asks for runs there, in order, and the page is sent a fresh
//! [`Snapshot`] after each.

use crate::DemoError;
use crate::panes::{Finding, Named, Reader, RecordRow, photo_url};
use scanlab_eval::attacks::Deployed;
use scanlab_eval::workload::{Size, Workload};
use scanlab_hashlist::{Entry, HashList};
use scanlab_messenger::client::{Client, LocalTransport};
use scanlab_messenger::{SqliteStore, Store};
use scanlab_schemes::{Registry, Scheme};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The chat's name in both clients.
pub const CHAT: &str = scanlab_eval::attacks::PAIR_CHAT;
/// Records shown per party (the newest).
pub const RECORDS_SHOWN: usize = 120;
/// List images in the gallery (the stand-in "known" list).
pub const LISTED: usize = 3;
/// Unlisted photos in the gallery.
pub const BENIGN: usize = 3;

/// What a gallery image plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// On the list (a benign stand-in, as every list in scanlab is).
    Listed,
    /// The protest poster: on no list until the poisoning attack adds it.
    Poster,
    /// On no list.
    Benign,
    /// A copy of a listed photo changed until its hash is beyond the radius (made by the
    /// evaluation's white-box evasion).
    Evading,
    /// Uploaded from the page.
    Uploaded,
}

/// One image the page can send.
#[derive(Clone)]
pub struct Item {
    /// Its id in URLs.
    pub id: String,
    /// What the page calls it.
    pub label: String,
    /// What it plays.
    pub role: Role,
    /// The bytes a client sends (JPEG as a messenger sends photos; PNG for an evading copy).
    pub bytes: Vec<u8>,
}

/// The images of the demo, drawn from the corpus with a seed, prepared as the evaluation
/// prepares them (scaled to 640 pixels, JPEG 85), and the list made of them.
pub struct Gallery {
    /// The images, listed first, then the poster, then the benign ones.
    pub items: Vec<Item>,
    /// The list as deployed: each listed photo's original hash.
    pub list: HashList,
    /// The poster's list entry, which the poisoning attack adds.
    pub poster_entry: Entry,
    /// The first listed photo's decoded pixels and its entry (what the evasion attacks).
    evade_from: (image::RgbImage, scanlab_pdq::Hash256),
}

impl Gallery {
    /// Draws the gallery from `paths` with `seed`.
    pub fn from_corpus(paths: &[PathBuf], seed: u64) -> Result<Gallery, DemoError> {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        let need = LISTED + BENIGN + 2;
        if paths.len() < need {
            return Err(DemoError::Corpus(format!(
                "{} images is too few: the demo needs {need}",
                paths.len()
            )));
        }
        let mut paths = paths.to_vec();
        paths.sort();
        paths.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        paths.truncate(need);
        let size = Size {
            list: LISTED,
            background: BENIGN,
            strengths: Vec::new(),
        };
        let w = Workload::build(&paths, &size, seed, &|| {})?;
        let mut items = Vec::new();
        let mut entries = Vec::new();
        for (i, &p) in w.list.iter().enumerate() {
            let label = format!("listed photo {}", i + 1);
            entries.push(Entry::new(i as u64 + 1, w.photos[p].original_hash, &label));
            items.push(Item {
                id: format!("listed-{}", i + 1),
                label,
                role: Role::Listed,
                bytes: w.photos[p].sent.clone(),
            });
        }
        items.push(Item {
            id: "poster".into(),
            label: "protest poster".into(),
            role: Role::Poster,
            bytes: w.photos[w.poster].sent.clone(),
        });
        for (i, &p) in w.background.iter().enumerate() {
            items.push(Item {
                id: format!("benign-{}", i + 1),
                label: format!("holiday photo {}", i + 1),
                role: Role::Benign,
                bytes: w.photos[p].sent.clone(),
            });
        }
        let first = w.list[0];
        Ok(Gallery {
            items,
            list: HashList { entries },
            poster_entry: Entry::new(
                LISTED as u64 + 1,
                w.photos[w.poster].original_hash,
                "protest poster (poisoned)",
            ),
            evade_from: (w.photos[first].rgb.clone(), w.photos[first].original_hash),
        })
    }

    /// The item with id `id`.
    pub fn get(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == id)
    }
}

/// One message in a user's pane.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    /// `sent` or `received`.
    pub dir: &'static str,
    /// The other user.
    pub peer: String,
    /// Its text.
    pub text: Option<String>,
    /// Its image, as a `data:` URL.
    pub image: Option<String>,
    /// What happened to it (for a sent message: delivered, or the error that stopped it).
    pub note: String,
    /// Whether it failed.
    pub failed: bool,
}

/// A party's pane.
#[derive(Clone, Debug, Serialize)]
pub struct PartyPane {
    /// Its role (`provider`, `enclave`, `matcher 1`, `escrow authority`).
    pub name: String,
    /// What its pane is read with: its own keys, or a stolen one.
    pub reading: String,
    /// Records in its view (newest first, at most [`RECORDS_SHOWN`]).
    pub records: Vec<RecordRow>,
    /// Records in all.
    pub total: usize,
    /// Of those, with anything readable.
    pub readable: usize,
    /// Its review queue (the provider's), as its reviewers see it.
    pub reviews: Vec<(String, Finding)>,
    /// Accounts it can name as holding a listed image.
    pub named: Vec<Named>,
}

/// One attack's outcome, as the page lists it.
#[derive(Clone, Debug, Serialize)]
pub struct AttackNote {
    /// The attack.
    pub title: String,
    /// Its rows: `(what, outcome flag, caught by)`.
    pub rows: Vec<(String, bool, Option<String>)>,
    /// What the flag means when set, and when not (`succeeded` / `stopped`).
    pub outcome: (String, String),
}

/// A secret of the deployment, and whether the page has had it stolen.
#[derive(Clone, Debug, Serialize)]
pub struct KeyState {
    /// Who holds it.
    pub holder: String,
    /// Stolen (or compelled)?
    pub stolen: bool,
}

/// Everything the page shows.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// Bumped on every change.
    pub version: u64,
    /// The scheme deployed: `(code, name)`.
    pub scheme: (String, String),
    /// Its one-paragraph explanation.
    pub explanation: String,
    /// Every registered scheme: `(code, name)`.
    pub schemes: Vec<(String, String)>,
    /// The scheme's column of the evaluation matrix, `(criterion, cell)`, if results were
    /// given.
    pub matrix: Option<Vec<(String, String)>>,
    /// Where the matrix came from, or how to get one.
    pub matrix_source: String,
    /// The list as deployed: entry labels.
    pub list: Vec<String>,
    /// Whether the poster has been added.
    pub poisoned: bool,
    /// The images the page can send: `(id, label, role)`.
    pub gallery: Vec<(String, String, Role)>,
    /// Alice's and Bob's panes.
    pub users: BTreeMap<String, Vec<Line>>,
    /// The parties' panes: the provider first.
    pub parties: Vec<PartyPane>,
    /// The deployment's secrets.
    pub keys: Vec<KeyState>,
    /// The attacks run so far.
    pub attacks: Vec<AttackNote>,
    /// What the last action did, or why it failed.
    pub status: String,
    /// Whether the deployment has an attested enclave (the rogue-enclave attack applies).
    pub has_enclave: bool,
}

/// One scheme, deployed, with Alice and Bob.
pub struct Deployment {
    scheme: Arc<dyn Scheme>,
    d: Deployed,
    alice: Client<LocalTransport>,
    bob: Client<LocalTransport>,
    list: HashList,
    poisoned: bool,
    lines: BTreeMap<String, Vec<Line>>,
    blobs: Vec<String>,
    /// The PDQ of every photo sent: ground truth for scoring what a party read (see
    /// [`Reader`]), never shown to a party.
    sent: Vec<scanlab_pdq::Hash256>,
    stolen: Vec<String>,
    attacks: Vec<AttackNote>,
}

impl Deployment {
    /// Deploys `scheme` over `list` (with the poster's entry when `poisoned`), with Alice and
    /// Bob in one chat.
    pub fn start(
        scheme: Arc<dyn Scheme>,
        gallery: &Gallery,
        poisoned: bool,
    ) -> Result<Deployment, DemoError> {
        let mut list = gallery.list.clone();
        if poisoned {
            list.entries.push(gallery.poster_entry.clone());
        }
        let d = scanlab_eval::attacks::deploy(&*scheme, &list)?;
        let (alice, bob) = scanlab_eval::attacks::pair(&*scheme, &d)?;
        Ok(Deployment {
            scheme,
            d,
            alice,
            bob,
            list,
            poisoned,
            lines: BTreeMap::from([("alice".into(), Vec::new()), ("bob".into(), Vec::new())]),
            blobs: Vec::new(),
            sent: Vec::new(),
            stolen: Vec::new(),
            attacks: Vec::new(),
        })
    }

    /// The scheme deployed.
    pub fn scheme(&self) -> &Arc<dyn Scheme> {
        &self.scheme
    }

    /// Whether the poster is on the list.
    pub fn poisoned(&self) -> bool {
        self.poisoned
    }

    /// `from` (`alice` or `bob`) sends `text` and/or `image`; the other reads their queue.
    /// Returns what happened, for the status line.
    pub fn send(
        &mut self,
        from: &str,
        text: Option<&str>,
        image: Option<&[u8]>,
    ) -> Result<String, DemoError> {
        let to = match from {
            "alice" => "bob",
            "bob" => "alice",
            _ => return Err(DemoError::BadRequest(format!("no user {from:?}"))),
        };
        if text.is_none() && image.is_none() {
            return Err(DemoError::BadRequest("nothing to send".into()));
        }
        let (sender, receiver) = if from == "alice" {
            (&mut self.alice, &mut self.bob)
        } else {
            (&mut self.bob, &mut self.alice)
        };
        if let Some(p) = image.and_then(|b| scanlab_schemes::pdq_of(b).ok()) {
            self.sent.push(p.hash);
        }
        let sent = sender.send_detailed(CHAT, text, image);
        let (note, failed) = match &sent {
            Ok(s) => {
                if let Some(b) = &s.blob {
                    self.blobs.push(b.clone());
                }
                ("sent".to_string(), false)
            }
            Err(e) => (format!("not sent: {e}"), true),
        };
        self.lines.entry(from.into()).or_default().push(Line {
            dir: "sent",
            peer: to.into(),
            text: text.map(str::to_string),
            image: image.and_then(photo_url),
            note: note.clone(),
            failed,
        });
        let mut got = 0;
        for m in receiver.recv()? {
            match m {
                Ok(r) if r.change.is_none() => {
                    got += 1;
                    let image = match &r.image {
                        Some(p) => std::fs::read(p).ok().and_then(|b| photo_url(&b)),
                        None => None,
                    };
                    self.lines.entry(to.into()).or_default().push(Line {
                        dir: "received",
                        peer: r.from.clone(),
                        text: r.text.clone(),
                        image,
                        note: "decrypted".into(),
                        failed: false,
                    });
                }
                Ok(_) => {}
                Err(e) => self.lines.entry(to.into()).or_default().push(Line {
                    dir: "received",
                    peer: from.into(),
                    text: None,
                    image: None,
                    note: format!("refused: {e}"),
                    failed: true,
                }),
            }
        }
        // The sender's own queue too (receipts, scheme messages).
        for m in sender.recv()? {
            m?;
        }
        Ok(match (failed, got) {
            (true, _) => format!("{from}'s message was {note}"),
            (false, 0) => format!("{from} sent; {to} received nothing"),
            (false, n) => format!("{from} sent; {to} decrypted {n} message(s)"),
        })
    }

    /// The holder's key is stolen (or compelled): from now on the provider's records are read
    /// with it too.
    pub fn steal(&mut self, holder: &str) -> Result<String, DemoError> {
        if !self.d.secrets.iter().any(|s| s.holder == holder) {
            return Err(DemoError::BadRequest(format!(
                "nobody in this deployment holds a key as {holder:?}"
            )));
        }
        if !self.stolen.iter().any(|h| h == holder) {
            self.stolen.push(holder.into());
        }
        Ok(format!(
            "the {holder}'s key is stolen: the provider's records are now read with it"
        ))
    }

    /// Records the outcome of an attack run elsewhere (on its own deployments).
    pub fn note_attack(&mut self, a: AttackNote) {
        self.attacks.push(a);
    }

    /// The list deployed.
    pub fn list(&self) -> &HashList {
        &self.list
    }

    /// The snapshot of everything, for the page.
    pub fn snapshot(&self, registry: &Registry) -> Result<Snapshot, DemoError> {
        let radius = scanlab_schemes::DEFAULT_RADIUS;
        let provider = &self.d.provider;
        let mut blobs = BTreeMap::new();
        for id in &self.blobs {
            if let Some(b) = provider.blob(id)? {
                blobs.insert(id.clone(), b);
            }
        }
        let stolen: Vec<&scanlab_schemes::Secret> = self
            .d
            .secrets
            .iter()
            .filter(|s| self.stolen.contains(&s.holder))
            .collect();
        let mut parties = Vec::new();
        let view = provider.view()?;
        let reviews = provider.reviews()?;
        let reader = Reader::new(&blobs, stolen.clone(), &self.list, &self.sent, radius);
        parties.push(pane(
            "provider",
            match stolen.len() {
                0 => "its own records; it holds no key but the users' attachment keys it is given"
                    .into(),
                _ => format!(
                    "its own records, read with the stolen key of the {}",
                    self.stolen.join(", the ")
                ),
            },
            &reader,
            &view,
            &reviews,
        ));
        for p in &self.d.parties {
            let (mut store, _) = SqliteStore::open_existing(&p.data)?;
            let pview = store.view()?;
            let own: Vec<&scanlab_schemes::Secret> = self
                .d
                .secrets
                .iter()
                .filter(|s| s.holder == p.name)
                .collect();
            let reading = match own.len() {
                0 => "its own records".to_string(),
                _ => "its own records, with its own key".to_string(),
            };
            let reader = Reader::new(&blobs, own, &self.list, &self.sent, radius);
            parties.push(pane(&p.name, reading, &reader, &pview, &[]));
        }
        // A key holder with no view of its own (an escrow authority): what its key opens is
        // what it gets once handed the provider's records.
        for s in &self.d.secrets {
            if self.d.parties.iter().any(|p| p.name == s.holder) {
                continue;
            }
            let reader = Reader::new(&blobs, vec![s], &self.list, &self.sent, radius);
            let mut p = pane(
                &s.holder,
                "receives nothing over the network; shown is what its key opens in the provider's records, as when the provider hands them over under compulsion".into(),
                &reader,
                &view,
                &[],
            );
            p.records.retain(|r| r.finding.what != "nothing");
            parties.push(p);
        }
        Ok(Snapshot {
            version: 0,
            scheme: (self.scheme.code().into(), self.scheme.name().into()),
            explanation: self.scheme.explanation().into(),
            schemes: registry
                .all()
                .iter()
                .map(|s| (s.code().to_string(), s.name().to_string()))
                .collect(),
            matrix: None,
            matrix_source: String::new(),
            list: self.list.entries.iter().map(|e| e.label.clone()).collect(),
            poisoned: self.poisoned,
            gallery: Vec::new(),
            users: self.lines.clone(),
            parties,
            keys: self
                .d
                .secrets
                .iter()
                .map(|s| KeyState {
                    holder: s.holder.clone(),
                    stolen: self.stolen.contains(&s.holder),
                })
                .collect(),
            attacks: self.attacks.clone(),
            status: String::new(),
            has_enclave: self.d.parties.iter().any(|p| p.name == "enclave"),
        })
    }
}

fn pane(
    name: &str,
    reading: String,
    reader: &Reader,
    view: &[scanlab_messenger::ViewRecord],
    reviews: &[scanlab_messenger::Review],
) -> PartyPane {
    let records = reader.rows(view, usize::MAX);
    let readable = records
        .iter()
        .filter(|r| r.finding.what != "nothing")
        .count();
    let total = records.len();
    PartyPane {
        name: name.into(),
        reading,
        records: records.into_iter().take(RECORDS_SHOWN).collect(),
        total,
        readable,
        reviews: reviews
            .iter()
            .map(|rv| {
                (
                    format!("from {}: {}", rv.submitter, rv.reason),
                    reader.review(rv),
                )
            })
            .collect(),
        named: reader.named(view, reviews),
    }
}

/// The evaluation's white-box evasion of the first listed photo, as PNG (so what the device
/// hashes is what the attack made), or why it failed.
pub fn evading_copy(g: &Gallery) -> Result<(Vec<u8>, u32), DemoError> {
    let (rgb, listed) = &g.evade_from;
    let out = scanlab_attack::whitebox::evade(
        rgb,
        listed,
        scanlab_schemes::DEFAULT_RADIUS,
        scanlab_attack::Budget::Large,
    )
    .map_err(|e| DemoError::Attack(e.to_string()))?;
    let mut png = std::io::Cursor::new(Vec::new());
    out.image
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| DemoError::Attack(e.to_string()))?;
    Ok((png.into_inner(), out.distance))
}
