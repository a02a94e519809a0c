//! The list model and its three formats.
//!
//! - **CSV**, as HMA and ThreatExchange exchange them: PDQ hex in the first column, optional
//!   metadata after it. A plain file of hex, one per line, is a valid list, and so is one of
//!   `pdq <hex>` lines (ThreatExchange's `hash` and `dataset` output). With a header row,
//!   columns are found by name (`pdq`/`hash`/`signal_value`, `id`, `label`,
//!   `vouched_by` — `;`-separated — `added` and `quality`, PDQ's 0–100).
//! - **JSON lines**, one [`Entry`] per line.
//! - **Binary**, for shipping to devices: a 64-byte header (magic, version, hash kind, count, the
//!   log root the list was published under) and then 32 bytes per hash. Metadata stays with the
//!   operator.
//!
//! Malformed input is an error naming its line. Duplicate hashes are merged (their vouchers
//! combined) and reported, never silently dropped.

use scanlab_pdq::Hash256;
use std::collections::HashMap;

/// The hash function an entry's hash comes from. Only PDQ today; the field exists so a list
/// can never be matched with the wrong function.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum HashKind {
    /// Meta's 256-bit PDQ.
    #[default]
    Pdq,
}

/// Separates voucher names inside the CSV `vouched_by` field, so a voucher name may not hold it.
pub const VOUCHER_SEP: &str = ";";

/// One list entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Stable identifier, unique within a list.
    pub id: u64,
    /// Which hash function.
    #[serde(default)]
    pub kind: HashKind,
    /// The hash.
    pub hash: Hash256,
    /// In scanlab always a stand-in category such as `known` or `poster`.
    #[serde(default)]
    pub label: String,
    /// Organisations that vouch for this entry.
    #[serde(default)]
    pub vouched_by: Vec<String>,
    /// When it was added, seconds since the Unix epoch.
    #[serde(default)]
    pub added: u64,
    /// PDQ's quality of the image the hash came from (0–100), when known: a hash of a
    /// flat or featureless image (low quality) matches unrelated images more often, so
    /// ThreatExchange and HMA drop hashes below 50. Bare-hex lists carry none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
}

/// The quality below which ThreatExchange and HMA drop PDQ hashes, and scanlab's default.
pub const MIN_QUALITY: u8 = 50;

impl Entry {
    /// A PDQ entry with no vouchers, date or quality.
    pub fn new(id: u64, hash: Hash256, label: &str) -> Entry {
        Entry {
            id,
            kind: HashKind::default(),
            hash,
            label: label.to_string(),
            vouched_by: Vec::new(),
            added: 0,
            quality: None,
        }
    }

    /// The form every parser keeps: label and voucher names trimmed, empty voucher names
    /// dropped, and a voucher name holding [`VOUCHER_SEP`] refused (the CSV form could not
    /// keep it apart). A label may hold anything else: CSV quotes it. So every list read in
    /// one format writes and reads back equal in the others.
    pub fn canonical(mut self, line: usize) -> Result<Entry, ListError> {
        if let Some(q) = self.quality.filter(|&q| q > 100) {
            return Err(ListError::Line {
                line,
                message: format!("quality {q} is over 100"),
            });
        }
        let trimmed = self.label.trim();
        if trimmed.len() != self.label.len() {
            self.label = trimmed.to_string();
        }
        let mut vouchers = Vec::with_capacity(self.vouched_by.len());
        for v in self.vouched_by {
            let v = v.trim();
            if v.contains(VOUCHER_SEP) {
                return Err(ListError::Line {
                    line,
                    message: format!(
                        "voucher name {v:?} holds {VOUCHER_SEP:?}, which separates voucher names"
                    ),
                });
            }
            if !v.is_empty() && !vouchers.iter().any(|w: &String| w == v) {
                vouchers.push(v.to_string());
            }
        }
        self.vouched_by = vouchers;
        Ok(self)
    }
}

/// A list: entries in order of addition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashList {
    /// The entries.
    pub entries: Vec<Entry>,
}

/// What an import found besides entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// `(line, earlier line)` for each hash that appeared again and was merged into the earlier
    /// entry.
    pub duplicates: Vec<(usize, usize)>,
    /// `(line, why)` for each row left out on purpose: another signal type than PDQ.
    pub skipped: Vec<(usize, String)>,
}

/// Why a list could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// A line could not be parsed.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The binary form is damaged.
    #[error("not a scanlab binary list: {0}")]
    Binary(String),
    /// The list has no entries: a deployment with it would match nothing, silently.
    #[error("the list has no entries\n  a deployment with an empty list matches nothing")]
    Empty,
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The list formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// CSV (or plain hex lines).
    Csv,
    /// JSON lines.
    Jsonl,
    /// The compact binary form.
    Binary,
}

/// Line numbers (from 1) of csv-crate positions in `text`, counted from the bytes: the crate's
/// own count is one short per CRLF line end (and spreadsheets write CRLF). A record's position
/// is where the reader resumed, so line ends, blank lines and `#` comment lines after it are
/// skipped first. Positions come in increasing order, so counting goes on from the last one
/// (linear in the file, not quadratic); an earlier position counts again from the start.
pub struct CsvLines<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> CsvLines<'a> {
    /// A counter over `text`.
    pub fn new(text: &'a str) -> Self {
        CsvLines {
            text: text.as_bytes(),
            pos: 0,
            line: 1,
        }
    }

    /// The line that the record at `byte` starts on.
    pub fn at(&mut self, byte: u64) -> usize {
        let b = self.text;
        let mut end = (byte as usize).min(b.len());
        loop {
            match b.get(end) {
                Some(b'\r' | b'\n') => end += 1,
                Some(b'#') if end == 0 || b[end - 1] == b'\n' => {
                    end = b[end..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(b.len(), |n| end + n + 1);
                }
                _ => break,
            }
        }
        if end < self.pos {
            (self.pos, self.line) = (0, 1);
        }
        self.line += b[self.pos..end].iter().filter(|&&c| c == b'\n').count();
        self.pos = end;
        self.line
    }
}

/// Header names of a hash column, in the CSV forms scanlab, HMA and ThreatExchange write.
pub const HASH_COLUMNS: [&str; 5] = ["pdq", "hash", "pdq_hex", "signal_value", "signal_str"];

/// The hex of a hash field: the field itself, or the word after `pdq` in ThreatExchange's
/// `pdq <hex>` signal lines (`hash`, and `dataset -P` with the collaboration and category
/// after the hex).
pub fn signal_hex(field: &str) -> &str {
    let mut words = field.split_whitespace();
    match (words.next(), words.next()) {
        (Some(kind), Some(h)) if kind.eq_ignore_ascii_case("pdq") => h,
        _ => field,
    }
}

/// 16-byte magic of the binary form; the last byte is the format version.
pub const BINARY_MAGIC: &[u8; 16] = b"scanlab-hashes\0\x01";

/// The 64-byte header of a binary list of `count` hashes committing to `root`: what a writer
/// that streams the hashes (and so holds no [`HashList`]) puts first.
pub fn binary_header(count: u64, root: [u8; 32]) -> [u8; 64] {
    let mut h = [0u8; 64];
    h[..16].copy_from_slice(BINARY_MAGIC);
    h[16..20].copy_from_slice(&1u32.to_le_bytes()); // hash kind: PDQ
    h[24..32].copy_from_slice(&count.to_le_bytes());
    h[32..].copy_from_slice(&root);
    h
}

/// Whether `b` starts as a binary list does.
pub fn is_binary(b: &[u8]) -> bool {
    b.starts_with(BINARY_MAGIC)
}

/// Checks the header of a binary list and returns where its hashes are (32 bytes each, as
/// [`Hash256::to_bytes`] lays them out): what an index maps without reading the list into
/// entries.
pub fn binary_body(b: &[u8]) -> Result<std::ops::Range<usize>, ListError> {
    let bad = |m: &str| ListError::Binary(m.to_string());
    if b.len() < 64 || &b[..16] != BINARY_MAGIC {
        return Err(bad("missing magic or header (expected version 1)"));
    }
    if b[16..20] != 1u32.to_le_bytes() {
        return Err(bad("unknown hash kind"));
    }
    let n = u64::from_le_bytes(b[24..32].try_into().expect("8 bytes"));
    if !(b.len() - 64).is_multiple_of(32) || ((b.len() - 64) / 32) as u64 != n {
        return Err(bad(&format!(
            "header says {n} hashes, body holds {} bytes",
            b.len() - 64
        )));
    }
    Ok(64..b.len())
}

impl HashList {
    /// The hashes alone, in entry order (what an index is built from).
    pub fn hashes(&self) -> Vec<Hash256> {
        self.entries.iter().map(|e| e.hash).collect()
    }

    /// Adds an entry, or merges it into an existing one with the same hash; returns the index
    /// of the entry that now holds it and whether it was new.
    pub fn add(&mut self, e: Entry, seen: &mut HashMap<Hash256, usize>) -> (usize, bool) {
        if let Some(&i) = seen.get(&e.hash) {
            let old = &mut self.entries[i];
            for v in e.vouched_by {
                if !old.vouched_by.contains(&v) {
                    old.vouched_by.push(v);
                }
            }
            // The same hash from two images: the better image's quality stands for it.
            old.quality = old.quality.max(e.quality);
            return (i, false);
        }
        seen.insert(e.hash, self.entries.len());
        self.entries.push(e);
        (self.entries.len() - 1, true)
    }

    /// Reads any of the three formats, guessing from the first bytes.
    pub fn read(bytes: &[u8]) -> Result<(HashList, ImportReport), ListError> {
        if bytes.starts_with(&BINARY_MAGIC[..15]) {
            // The binary form is held to the same rule as the text forms: no empty list.
            let list = Self::from_binary(bytes)?.0;
            if list.entries.is_empty() {
                return Err(ListError::Empty);
            }
            return Ok((list, ImportReport::default()));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| ListError::Line {
            // The line the first bad byte is on, not line 1.
            line: 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            message: format!("not UTF-8: {e}"),
        })?;
        // A byte-order mark (as spreadsheet programs write) is not part of the first field.
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let (list, report) = if text.trim_start().starts_with('{') {
            Self::from_jsonl(text)?
        } else {
            Self::from_csv(text)?
        };
        if list.entries.is_empty() {
            return Err(ListError::Empty);
        }
        Ok((list, report))
    }

    /// Refuses an explicit id given to two different hashes: entries are named by id in
    /// reviews and proofs, so two of them under one id could not be told apart.
    fn check_id(
        ids: &mut HashMap<u64, usize>,
        id: u64,
        line: usize,
        merged: bool,
    ) -> Result<(), ListError> {
        match ids.get(&id) {
            Some(&earlier) if !merged => Err(ListError::Line {
                line,
                message: format!("duplicate id {id} (also on line {earlier})"),
            }),
            Some(_) => Ok(()),
            None => {
                ids.insert(id, line);
                Ok(())
            }
        }
    }

    /// Parses CSV (see the module docs) with the `csv` crate, so quoted fields (a label with a
    /// comma, a quote or a line break in it) read back as written.
    pub fn from_csv(text: &str) -> Result<(HashList, ImportReport), ListError> {
        let mut list = HashList::default();
        let mut report = ImportReport::default();
        let mut seen = HashMap::new();
        let mut lines_of = Vec::new();
        // Column positions: hash, id, label, vouched_by, added, quality, signal type.
        let mut cols: [Option<usize>; 7] = [Some(0), None, Some(1), None, None, None, None];
        let mut first = true;
        let mut ids = HashMap::new();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut record = csv::StringRecord::new();
        let mut lines = CsvLines::new(text);
        loop {
            let at = lines.at(reader.position().byte());
            match reader.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let line = e.position().map_or(at, |p| lines.at(p.byte()));
                    return Err(ListError::Line {
                        line,
                        message: e.to_string(),
                    });
                }
            }
            let line = record.position().map_or(at, |p| lines.at(p.byte()));
            let f: Vec<&str> = record.iter().collect();
            if f.iter().all(|c| c.is_empty()) {
                continue;
            }
            let err = |message: String| ListError::Line { line, message };
            if first {
                first = false;
                let find = |names: &[&str]| {
                    f.iter()
                        .position(|c| names.contains(&c.to_ascii_lowercase().as_str()))
                };
                const KNOWN: [&str; 14] = [
                    "pdq",
                    "hash",
                    "pdq_hex",
                    "signal_value",
                    "signal_str",
                    "signal_type",
                    "id",
                    "label",
                    "category",
                    "vouched_by",
                    "vouchers",
                    "added",
                    "added_at",
                    "quality",
                ];
                // A header names at least one known column; a first line that names none is
                // data, and a bad hash on it is reported as a bad hash.
                if Hash256::from_hex(f[0]).is_err() && find(&KNOWN).is_some() {
                    cols = [
                        find(&HASH_COLUMNS),
                        find(&["id"]),
                        find(&["label", "category"]),
                        find(&["vouched_by", "vouchers"]),
                        find(&["added", "added_at"]),
                        find(&["quality"]),
                        find(&["signal_type"]),
                    ];
                    if cols[0].is_none() {
                        return Err(err(
                            "header has no hash column (pdq, hash, pdq_hex, signal_value or \
                             signal_str)"
                                .into(),
                        ));
                    }
                    continue;
                }
            }
            let get = |k: usize| {
                cols[k]
                    .and_then(|c| f.get(c).copied())
                    .filter(|s| !s.is_empty())
            };
            // ThreatExchange's CSV export (`dataset -P --csv`) holds every signal type; only
            // PDQ rows are hashes of this list, and the others are reported, not read as PDQ.
            if let Some(t) = get(6).filter(|t| !t.eq_ignore_ascii_case("pdq")) {
                report
                    .skipped
                    .push((line, format!("signal type {t:?} is not pdq")));
                continue;
            }
            let hex = get(0).ok_or_else(|| err("no hash".into()))?;
            let hex = signal_hex(hex);
            let hash = Hash256::from_hex(hex).map_err(|e| err(format!("{e}: {hex:?}")))?;
            let id = match get(1) {
                Some(s) => s.parse().map_err(|_| err(format!("bad id {s:?}")))?,
                None => list.entries.len() as u64,
            };
            let added = match get(4) {
                Some(s) => s
                    .parse()
                    .map_err(|_| err(format!("bad added time {s:?}")))?,
                None => 0,
            };
            let quality = match get(5) {
                Some(s) => Some(s.parse().map_err(|_| err(format!("bad quality {s:?}")))?),
                None => None,
            };
            let entry = Entry {
                id,
                kind: HashKind::Pdq,
                hash,
                label: get(2).unwrap_or("").to_string(),
                vouched_by: get(3)
                    .map(|s| s.split(VOUCHER_SEP).map(str::to_string).collect())
                    .unwrap_or_default(),
                added,
                quality,
            }
            .canonical(line)?;
            let explicit = cols[1].is_some().then_some(entry.id);
            let (at, new) = list.add(entry, &mut seen);
            if let Some(id) = explicit {
                Self::check_id(&mut ids, id, line, !new)?;
            }
            if new {
                lines_of.push(line);
            } else {
                report.duplicates.push((line, lines_of[at]));
            }
        }
        Ok((list, report))
    }

    /// Parses JSON lines.
    pub fn from_jsonl(text: &str) -> Result<(HashList, ImportReport), ListError> {
        let mut list = HashList::default();
        let mut report = ImportReport::default();
        let mut seen = HashMap::new();
        let mut lines_of = Vec::new();
        let mut ids = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let e: Entry = serde_json::from_str::<Entry>(line)
                .map_err(|e| ListError::Line {
                    line: i + 1,
                    message: e.to_string(),
                })?
                .canonical(i + 1)?;
            let id = e.id;
            let (at, new) = list.add(e, &mut seen);
            Self::check_id(&mut ids, id, i + 1, !new)?;
            if new {
                lines_of.push(i + 1);
            } else {
                report.duplicates.push((i + 1, lines_of[at]));
            }
        }
        Ok((list, report))
    }

    /// CSV with a header row: `pdq,id,label,vouched_by,added,quality` (quality empty when
    /// unknown), written by the `csv` crate: a
    /// field with a comma, a quote or a line break is quoted, so every list that
    /// [`HashList::read`] accepts reads back equal.
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let row = w.write_record(["pdq", "id", "label", "vouched_by", "added", "quality"]);
        row.expect("writing to memory cannot fail");
        for e in &self.entries {
            let fields = [
                e.hash.to_hex(),
                e.id.to_string(),
                e.label.clone(),
                e.vouched_by.join(VOUCHER_SEP),
                e.added.to_string(),
                e.quality.map(|q| q.to_string()).unwrap_or_default(),
            ];
            w.write_record(&fields)
                .expect("writing to memory cannot fail");
        }
        let bytes = w.into_inner().expect("writing to memory cannot fail");
        String::from_utf8(bytes).expect("the fields are UTF-8")
    }

    /// ThreatExchange's signal lines, `pdq <hex>` one per entry: what its local-file
    /// collaboration (`threatexchange config collab edit local_file`) loads, and what its
    /// `hash` command prints. Metadata does not travel in this form.
    pub fn to_threatexchange(&self) -> String {
        self.entries
            .iter()
            .map(|e| format!("pdq {}\n", e.hash.to_hex()))
            .collect()
    }

    /// JSON lines.
    pub fn to_jsonl(&self) -> String {
        self.entries
            .iter()
            .map(|e| serde_json::to_string(e).expect("entries serialise") + "\n")
            .collect()
    }

    /// The binary form, committing to `root` (all zeros when the list is not logged).
    pub fn to_binary(&self, root: [u8; 32]) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + 32 * self.entries.len());
        b.extend_from_slice(&binary_header(self.entries.len() as u64, root));
        for e in &self.entries {
            b.extend_from_slice(&e.hash.to_bytes());
        }
        b
    }

    /// A list of these hashes, with ids their positions and no metadata (as the binary form
    /// reads back).
    pub fn from_hashes(hashes: &[Hash256]) -> HashList {
        HashList {
            entries: hashes
                .iter()
                .enumerate()
                .map(|(i, h)| Entry {
                    id: i as u64,
                    kind: HashKind::Pdq,
                    hash: *h,
                    label: String::new(),
                    vouched_by: Vec::new(),
                    added: 0,
                    quality: None,
                })
                .collect(),
        }
    }

    /// Reads the binary form: the list (ids are positions) and the log root it carries.
    pub fn from_binary(b: &[u8]) -> Result<(HashList, [u8; 32]), ListError> {
        let body = binary_body(b)?;
        let root: [u8; 32] = b[32..64].try_into().expect("32 bytes");
        let entries = b[body]
            .chunks_exact(32)
            .enumerate()
            .map(|(i, c)| Entry {
                id: i as u64,
                kind: HashKind::Pdq,
                hash: Hash256::from_bytes(c.try_into().expect("32 bytes")),
                label: String::new(),
                vouched_by: Vec::new(),
                added: 0,
                quality: None,
            })
            .collect();
        Ok((HashList { entries }, root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    const B: &str = "30a10efd71cc3d429013d48d0ffffc52e34e0e17ada952a9d29685211ea9e5af";

    #[test]
    fn parser_gaps_found_in_review_are_closed() {
        // A non-UTF-8 byte is reported on its own line.
        let mut bytes = format!("{A}\n{B}\n").into_bytes();
        bytes.extend(b"\xff\xfe\n");
        match HashList::read(&bytes) {
            Err(ListError::Line { line: 3, .. }) => {}
            other => panic!("{other:?}"),
        }
        // A byte-order mark is stripped, with or without a header.
        let (l, _) = HashList::read(format!("\u{FEFF}pdq,label\n{A},x\n").as_bytes()).unwrap();
        assert_eq!(l.entries[0].label, "x");
        let (l, _) = HashList::read(format!("\u{FEFF}{A}\n").as_bytes()).unwrap();
        assert_eq!(l.entries.len(), 1);
        // A bad hash on line 1 is a bad hash, not a header without a hash column.
        let bad = format!("zz{}\n{B}\n", &A[2..]);
        let e = HashList::read(bad.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("line 1:") && !e.contains("header"), "{e}");
        // Two hashes under one id are refused; the same hash twice is merged as before.
        let dup = format!("pdq,id\n{A},7\n{B},7\n");
        let e = HashList::read(dup.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("duplicate id 7") && e.contains("line 2"), "{e}");
        assert!(HashList::read(format!("pdq,id\n{A},7\n{A},7\n").as_bytes()).is_ok());
        // An empty list is an error, in every text form.
        for empty in ["", "# nothing\n", "pdq,label\n"] {
            assert!(
                matches!(HashList::read(empty.as_bytes()), Err(ListError::Empty)),
                "{empty:?}"
            );
        }
    }

    #[test]
    fn threatexchange_signal_lines_are_a_list() {
        // `threatexchange hash photo` and `threatexchange dataset` print `pdq <hex>`; this
        // used to fail as a header without a hash column.
        let text = format!("pdq {A}\nPDQ  {B}\n");
        let (l, _) = HashList::read(text.as_bytes()).unwrap();
        assert_eq!(
            l.hashes(),
            [Hash256::from_hex(A).unwrap(), Hash256::from_hex(B).unwrap()]
        );
        // Another signal type is not taken for a PDQ hash.
        let e = HashList::read(format!("md5 {A}\n").as_bytes()).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn threatexchange_csv_export_is_a_list_of_its_pdq_rows() {
        // `threatexchange dataset -P --csv`: CRLF, every signal type, category as the label.
        let text = format!(
            "signal_type,signal_str,collab,category,tags\r\npdq,{A},My Hashes,INVESTIGATION_SEED,\r\n\
             raw_text,hello,My Hashes,INVESTIGATION_SEED,\r\npdq,{B},My Hashes,HARMFUL,a b\r\n"
        );
        let (l, r) = HashList::read(text.as_bytes()).unwrap();
        assert_eq!(
            l.hashes(),
            [Hash256::from_hex(A).unwrap(), Hash256::from_hex(B).unwrap()]
        );
        assert_eq!(l.entries[1].label, "HARMFUL");
        assert_eq!(
            r.skipped,
            [(3, "signal type \"raw_text\" is not pdq".to_string())]
        );
        // And `dataset -P` lines, with the collaboration and category after the hash.
        let (l, _) =
            HashList::read(format!("pdq {A} 'My Hashes' INVESTIGATION_SEED\n").as_bytes()).unwrap();
        assert_eq!(l.hashes(), [Hash256::from_hex(A).unwrap()]);
        // What scanlab writes for ThreatExchange reads back.
        assert_eq!(
            HashList::read(l.to_threatexchange().as_bytes())
                .unwrap()
                .0
                .hashes(),
            l.hashes()
        );
    }

    #[test]
    fn plain_hex_lines_are_a_list() {
        let (l, r) = HashList::read(format!("{A}\n\n# comment\n{B}\n").as_bytes()).unwrap();
        assert_eq!(l.entries.len(), 2);
        assert_eq!(l.entries[1].hash.to_hex(), B);
        assert!(r.duplicates.is_empty());
    }

    #[test]
    fn header_columns_are_found_by_name_and_duplicates_merge() {
        let csv =
            format!("label,pdq,vouched_by\nknown,{A},orgA\nposter,{B},orgB\nknown,{A},orgC\n");
        let (l, r) = HashList::from_csv(&csv).unwrap();
        assert_eq!(l.entries.len(), 2);
        assert_eq!(l.entries[0].vouched_by, vec!["orgA", "orgC"]);
        assert_eq!(r.duplicates, vec![(4, 2)]);
    }

    #[test]
    fn lines_after_comments_and_blank_lines_are_numbered_right() {
        let e = HashList::from_csv(&format!("{A}\n# note\n\n{A}00\n")).unwrap_err();
        assert!(e.to_string().starts_with("line 4:"), "{e}");
        // And counting stays linear: a 200,000-line list reads in well under a second.
        let big: String = (0..200_000u32)
            .map(|i| format!("{:064x}\r\n", i as u128 + 1))
            .collect();
        let t = std::time::Instant::now();
        let (l, _) = HashList::from_csv(&big).unwrap();
        assert_eq!(l.entries.len(), 200_000);
        assert!(t.elapsed().as_secs_f64() < 5.0, "{:?}", t.elapsed());
    }

    #[test]
    fn lines_are_numbered_right_with_crlf_line_ends() {
        // The csv crate's own line count was one short per CRLF line.
        let text = format!("pdq,label\r\n{A},a\r\n{A}00,b\r\n");
        let e = HashList::from_csv(&text).unwrap_err();
        assert!(e.to_string().starts_with("line 3:"), "{e}");
        let text = format!("{A}\r\n{B}\r\n{A}\r\n");
        assert_eq!(HashList::from_csv(&text).unwrap().1.duplicates, [(3, 1)]);
    }

    #[test]
    fn malformed_lines_name_their_number() {
        let err = HashList::from_csv(&format!("{A}\n{}\n", &A[..60])).unwrap_err();
        assert!(matches!(err, ListError::Line { line: 2, .. }), "{err}");
        let err = HashList::from_jsonl("{\"id\":1}\n").unwrap_err();
        assert!(matches!(err, ListError::Line { line: 1, .. }));
    }

    #[test]
    fn all_formats_round_trip() {
        let csv =
            format!("pdq,id,label,vouched_by,added\n{A},7,known,a;b,100\n{B},9,poster,,200\n");
        let (l, _) = HashList::from_csv(&csv).unwrap();
        assert_eq!(HashList::from_csv(&l.to_csv()).unwrap().0, l);
        assert_eq!(HashList::read(l.to_jsonl().as_bytes()).unwrap().0, l);
        let bin = l.to_binary([7; 32]);
        assert_eq!(bin.len(), 64 + 2 * 32);
        let (back, root) = HashList::from_binary(&bin).unwrap();
        assert_eq!(root, [7; 32]);
        assert_eq!(back.hashes(), l.hashes());
        assert!(HashList::from_binary(&bin[..bin.len() - 1]).is_err());
    }

    #[test]
    fn labels_with_commas_quotes_and_line_breaks_round_trip() {
        // The label that read back as label `cat` and voucher `dog` before the CSV was quoted.
        let mut l = HashList::default();
        let mut seen = HashMap::new();
        for (i, label) in [
            "cat, dog",
            "say \"hi\"",
            "two\nlines",
            "# not a comment",
            "",
        ]
        .into_iter()
        .enumerate()
        {
            let mut hash = Hash256::from_hex(A).unwrap();
            hash.0[0] ^= i as u64 + 1;
            let entry = Entry {
                id: i as u64,
                kind: HashKind::Pdq,
                hash,
                label: label.into(),
                vouched_by: vec!["org A".into(), "org,B".into()],
                added: 5,
                quality: Some(i as u8),
            };
            l.add(entry, &mut seen);
        }
        let csv = l.to_csv();
        assert_eq!(HashList::read(csv.as_bytes()).unwrap().0, l, "{csv}");
        assert_eq!(HashList::read(l.to_jsonl().as_bytes()).unwrap().0, l);
    }

    #[test]
    fn an_empty_binary_list_is_refused_like_an_empty_text_list() {
        // What the fuzzer found: a binary list of no entries was read as a list, and the CSV it
        // wrote (a header alone) was refused as empty.
        let found = b"scanlab-hashes\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00ched_by\x22,\x0a";
        assert!(matches!(HashList::read(found), Err(ListError::Empty)));
        let empty = HashList::default().to_binary([0; 32]);
        assert!(matches!(HashList::read(&empty), Err(ListError::Empty)));
    }

    #[test]
    fn a_voucher_name_that_csv_cannot_keep_is_refused_with_its_line() {
        let line = format!("{{\"id\":1,\"hash\":\"{A}\",\"vouched_by\":[\"a;b\"]}}");
        let err = HashList::read(format!("\n{line}\n").as_bytes()).unwrap_err();
        assert!(matches!(err, ListError::Line { line: 2, .. }), "{err}");
        // Padding and empty names are dropped the same way in every format.
        let line = format!(
            "{{\"id\":1,\"hash\":\"{A}\",\"label\":\" x \",\"vouched_by\":[\" a \",\"\"]}}"
        );
        let (l, _) = HashList::read(line.as_bytes()).unwrap();
        assert_eq!(
            (l.entries[0].label.as_str(), &l.entries[0].vouched_by[..]),
            ("x", &["a".to_string()][..])
        );
    }
}
