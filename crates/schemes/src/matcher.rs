//! Matching a hash against the deployment's list: the multi-index (exact, any radius up to
//! 64) from the hash-list crate, and the entry that matched. Whatever list the deployment is
//! handed, this matches; nothing here knows or checks what the entries depict.

use crate::SchemeError;
use scanlab_hashlist::{Entry, EntryProof, HashList, ListRoot, MihIndex, SortedCommitment};
use scanlab_pdq::Hash256;

/// PDQ's recommended match threshold, the default radius.
pub const DEFAULT_RADIUS: u32 = 31;

/// A match: the closest list entry within the radius.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MatchInfo {
    /// The entry's id.
    pub entry: u64,
    /// The entry's label (in scanlab, a stand-in category).
    pub label: String,
    /// Hamming distance to it.
    pub distance: u32,
    /// The entry's hash: the evidence a device checks before it discloses on a provider's
    /// word (S3, S4). Not serialised with the match record.
    #[serde(skip)]
    pub hash: scanlab_pdq::Hash256,
}

impl MatchInfo {
    /// The review reason every scheme records for this match.
    pub fn reason(&self) -> String {
        format!(
            "list entry {} ({}) at distance {}",
            self.entry, self.label, self.distance
        )
    }
}

/// A list, its index, and its sorted-tree commitment (the [`ListRoot`] a deployment announces,
/// under which it proves a matched entry to the device).
pub struct Matcher {
    entries: Vec<Entry>,
    index: MihIndex,
    commitment: SortedCommitment,
    radius: u32,
}

impl Matcher {
    /// Indexes `list` for queries at `radius`.
    pub fn new(list: HashList, radius: u32) -> Result<Matcher, SchemeError> {
        if radius > scanlab_hashlist::index::MAX_RADIUS {
            return Err(SchemeError::Config(format!(
                "radius {radius} is over 64; PDQ's threshold is 31"
            )));
        }
        let index =
            MihIndex::build(&list.hashes()).map_err(|e| SchemeError::Config(e.to_string()))?;
        Ok(Matcher {
            commitment: SortedCommitment::new(list.hashes()),
            entries: list.entries,
            index,
            radius,
        })
    }

    /// The closest entry within the radius, if any.
    pub fn check(&self, h: &Hash256) -> Option<MatchInfo> {
        let hits = self.index.query(h, self.radius).ok()?;
        let best = hits.iter().min_by_key(|h| (h.distance, h.position))?;
        let e = &self.entries[best.position as usize];
        Some(MatchInfo {
            entry: e.id,
            label: e.label.clone(),
            distance: best.distance,
            hash: e.hash,
        })
    }

    /// The commitment to the list, which the scheme announces.
    pub fn list_root(&self) -> ListRoot {
        self.commitment.root()
    }

    /// The proof that a listed hash is in the announced list.
    pub fn prove(&self, hash: &Hash256) -> Option<EntryProof> {
        self.commitment.prove(hash)
    }

    /// The list's distinct hashes in the commitment's sorted order: a position in it is the
    /// same for every holder of the same list, whatever order its file had.
    pub fn sorted(&self) -> &[Hash256] {
        self.commitment.sorted()
    }

    /// The radius.
    pub fn radius(&self) -> u32 {
        self.radius
    }

    /// Number of list entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The default radius, for serde defaults of scheme configurations.
pub(crate) fn default_radius() -> u32 {
    DEFAULT_RADIUS
}
