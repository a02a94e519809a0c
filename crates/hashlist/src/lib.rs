//! Hash lists and exact matching against them.
//!
//! Every matching scheme compares an image's hash with a list of "known" hashes. Real lists hold
//! millions (NCMEC shared over 3.5M by 2019), so matching must be exact and fast at that size;
//! and the letter's central warning is that whoever controls the list decides what is detected.
//! In scanlab the list is always built from benign stand-in images.
//!
//! - [`HashList`] and [`Entry`]: the model, with CSV (HMA / ThreatExchange style), JSON-lines
//!   and compact binary forms ([`list`]).
//! - [`MihIndex`]: exact Hamming-range search by multi-index hashing, property-tested against
//!   [`LinearIndex`] ([`index`]).
//! - [`ListLog`] and [`Auditor`]: the auditable list, an RFC 6962 transparency log with signed
//!   tree heads, inclusion, consistency and absence proofs, split-view detection by gossip,
//!   and k-of-n admission by organisations in distinct jurisdictions ([`log`]).
//!
//! ```
//! use scanlab_hashlist::{HashList, MihIndex};
//! let (list, _) = HashList::read(b"f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22\n")?;
//! let index = MihIndex::build(&list.hashes())?;
//! let hits = index.query(&list.entries[0].hash, 31)?;
//! assert_eq!(hits[0].distance, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What this crate does not do
//! It does not hash images (`scanlab-pdq`) or decide what a match means (the schemes).
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod index;
pub mod list;
pub mod log;
pub mod store;
pub mod synth;

pub use index::{Hit, IndexError, LinearIndex, MihIndex};
pub use list::{Entry, Format, HashKind, HashList, ImportReport, ListError};
pub use log::{
    AbsenceProof, Auditor, EntryProof, ListLog, ListRoot, LogError, LogLeaf, Organisation, Policy,
    SignedTreeHead, SortedCommitment, Voucher,
};
