//! The dev corpus: 395 benign, freely licensed photos from Debian packages, fetched, verified
//! and cached on demand.
//!
//! scanlab never ships images: their licences (several CC-BY-SA or GPL) would bind the repo, and
//! the hard rule is that only benign stand-ins are ever used. Instead the pinned manifest
//! (`data/dev-corpus-manifest.tsv`, one row per photo with its package, path and SHA-256) says
//! where each photo lives in Debian's archive, and [`ensure`] fetches the packages with
//! `apt-get download`, extracts just those paths with `dpkg-deb` and `tar`, checks every
//! SHA-256 and keeps the result in a cache directory. A file whose digest drifted (a Debian point
//! release replaced a package) is an error that names it, never a silent substitute.
//!
//! ```no_run
//! let dir = scanlab_corpus::default_cache_dir();
//! let corpus = scanlab_corpus::ensure(&dir, &mut |msg| eprintln!("{msg}"))?;
//! println!("{} photos in {}", corpus.entries.len(), corpus.images_dir.display());
//! # Ok::<(), scanlab_corpus::CorpusError>(())
//! ```
//!
//! # What this crate does not do
//! It does not decode or hash (see `scanlab-imaging`, `scanlab-pdq`).
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned manifest, compiled in so the binary can install the corpus anywhere.
pub const MANIFEST_TSV: &str = include_str!("../data/dev-corpus-manifest.tsv");

/// One photo of the corpus.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Debian package holding it.
    pub package: String,
    /// Package version the manifest was made from.
    pub version: String,
    /// Absolute path inside the package.
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `JPEG` or `PNG`.
    pub format: String,
    /// Licence, as the package's copyright file states it.
    pub licence: String,
}

impl Entry {
    /// The cached file name, `<package>--<path under /usr/share with / as _>`: the `file` key of
    /// `shared/golden/dev-corpus.csv`.
    pub fn file_name(&self) -> String {
        let rel = self.path.strip_prefix("/usr/share/").unwrap_or(&self.path);
        format!("{}--{}", self.package, rel.replace('/', "_"))
    }
}

/// An installed, verified corpus.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Where the photos are, each under [`Entry::file_name`].
    pub images_dir: PathBuf,
    /// The manifest rows, in manifest order.
    pub entries: Vec<Entry>,
}

impl Corpus {
    /// Paths of all photos, in manifest order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.entries
            .iter()
            .map(|e| self.images_dir.join(e.file_name()))
            .collect()
    }
}

/// Why the corpus could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorpusError {
    /// The manifest is malformed (a bug in the build, since it is compiled in).
    #[error("manifest line {line}: {message}")]
    Manifest {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A command failed.
    #[error(
        "`{command}` failed: {message}\n  the corpus needs Debian's apt-get and dpkg-deb; as root, `apt-get update` first"
    )]
    Command {
        /// The command line.
        command: String,
        /// Its stderr, or why it could not start.
        message: String,
    },
    /// A fetched file does not have the pinned digest.
    #[error(
        "{path} from {package}: SHA-256 is {got}, manifest pins {want}\n  Debian replaced the package; re-pin the manifest deliberately, do not skip the check"
    )]
    Digest {
        /// Package.
        package: String,
        /// Path in the package.
        path: String,
        /// Digest found.
        got: String,
        /// Digest pinned.
        want: String,
    },
    /// A file the manifest names is not in the package.
    #[error("{path} is missing from {package}")]
    Missing {
        /// Package.
        package: String,
        /// Path in the package.
        path: String,
    },
    /// Filesystem trouble in the cache.
    #[error("cache {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |source| CorpusError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Parses the compiled-in manifest.
pub fn manifest() -> Result<Vec<Entry>, CorpusError> {
    parse_manifest(MANIFEST_TSV)
}

/// Parses a manifest in the TSV layout of `dev-corpus-manifest.tsv`.
pub fn parse_manifest(tsv: &str) -> Result<Vec<Entry>, CorpusError> {
    let mut out = Vec::new();
    for (i, line) in tsv.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| CorpusError::Manifest {
            line: i + 1,
            message,
        };
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 9 {
            return Err(err(format!(
                "expected 9 tab-separated fields, found {}",
                f.len()
            )));
        }
        let num = |s: &str| {
            s.parse::<u32>()
                .map_err(|e| err(format!("bad number {s:?}: {e}")))
        };
        if f[3].len() != 64 || !f[3].bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(format!("bad SHA-256 {:?}", f[3])));
        }
        out.push(Entry {
            package: f[0].into(),
            version: f[1].into(),
            path: f[2].into(),
            sha256: f[3].to_ascii_lowercase(),
            width: num(f[4])?,
            height: num(f[5])?,
            format: f[6].into(),
            licence: f[8].into(),
        });
    }
    Ok(out)
}

/// `$SCANLAB_CACHE`, else `$XDG_CACHE_HOME/scanlab`, else `~/.cache/scanlab`, else
/// `./corpus-cache`: somewhere that survives between runs, so the packages download once.
pub fn default_cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("SCANLAB_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("scanlab");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".cache/scanlab");
    }
    PathBuf::from("corpus-cache")
}

fn sha256_file(path: &Path) -> Result<String, CorpusError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

fn run(cmd: &mut Command) -> Result<(), CorpusError> {
    let command = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| CorpusError::Command {
        command: command.clone(),
        message: e.to_string(),
    })?;
    if !out.status.success() {
        let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(CorpusError::Command { command, message });
    }
    Ok(())
}

/// Installs (or just verifies) the dev corpus under `cache/dev-corpus`, reporting each step
/// through `status`. Fast when already cached: only digests are checked.
pub fn ensure(cache: &Path, status: &mut dyn FnMut(&str)) -> Result<Corpus, CorpusError> {
    let entries = manifest()?;
    let images_dir = cache.join("dev-corpus/images");
    let debs = cache.join("dev-corpus/debs");
    std::fs::create_dir_all(&images_dir).map_err(io(&images_dir))?;
    // Which photos are missing or wrong?
    let stamp = images_dir.join(".verified");
    let stamp_ok = std::fs::read_to_string(&stamp).ok().as_deref() == Some(&stamp_text(&entries));
    let mut todo: BTreeSet<&str> = BTreeSet::new();
    for e in &entries {
        let p = images_dir.join(e.file_name());
        let ok = p.exists() && (stamp_ok || sha256_file(&p)? == e.sha256);
        if !ok {
            todo.insert(&e.package);
        }
    }
    if todo.is_empty() {
        std::fs::write(&stamp, stamp_text(&entries)).map_err(io(&stamp))?;
        return Ok(Corpus {
            images_dir,
            entries,
        });
    }
    std::fs::create_dir_all(&debs).map_err(io(&debs))?;
    let mut updated = false;
    for pkg in todo {
        let deb = find_deb(&debs, pkg)?;
        let deb = match deb {
            Some(d) => d,
            None => {
                status(&format!("downloading {pkg}"));
                let mut r = run(Command::new("apt-get")
                    .arg("download")
                    .arg(pkg)
                    .current_dir(&debs));
                if r.is_err() && !updated {
                    // A fresh machine has no package lists yet.
                    status("apt-get update");
                    updated = true;
                    if run(Command::new("apt-get").arg("update").arg("-qq")).is_ok() {
                        r = run(Command::new("apt-get")
                            .arg("download")
                            .arg(pkg)
                            .current_dir(&debs));
                    }
                }
                r?;
                find_deb(&debs, pkg)?.ok_or_else(|| CorpusError::Missing {
                    package: pkg.into(),
                    path: "(the .deb)".into(),
                })?
            }
        };
        status(&format!("extracting {pkg}"));
        let staging = cache.join("dev-corpus/staging");
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(io(&staging))?;
        let members: Vec<String> = entries
            .iter()
            .filter(|e| e.package == pkg)
            .map(|e| format!(".{}", e.path))
            .collect();
        let script = "dpkg-deb --fsys-tarfile \"$0\" | tar -x -C \"$1\" -f - \"${@:2}\"";
        run(Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg(&deb)
            .arg(&staging)
            .args(&members))?;
        for e in entries.iter().filter(|e| e.package == pkg) {
            let src = staging.join(e.path.trim_start_matches('/'));
            if !src.exists() {
                return Err(CorpusError::Missing {
                    package: e.package.clone(),
                    path: e.path.clone(),
                });
            }
            let got = sha256_file(&src)?;
            if got != e.sha256 {
                return Err(CorpusError::Digest {
                    package: e.package.clone(),
                    path: e.path.clone(),
                    got,
                    want: e.sha256.clone(),
                });
            }
            let dst = images_dir.join(e.file_name());
            std::fs::copy(&src, &dst).map_err(io(&dst))?;
        }
        let _ = std::fs::remove_dir_all(&staging);
    }
    std::fs::write(&stamp, stamp_text(&entries)).map_err(io(&stamp))?;
    Ok(Corpus {
        images_dir,
        entries,
    })
}

/// What the `.verified` stamp records: the manifest's digests, so a changed manifest re-verifies.
fn stamp_text(entries: &[Entry]) -> String {
    let mut h = Sha256::new();
    for e in entries {
        h.update(e.file_name().as_bytes());
        h.update(e.sha256.as_bytes());
    }
    hex::encode(h.finalize())
}

fn find_deb(dir: &Path, pkg: &str) -> Result<Option<PathBuf>, CorpusError> {
    let prefix = format!("{pkg}_");
    for ent in std::fs::read_dir(dir).map_err(io(dir))? {
        let ent = ent.map_err(io(dir))?;
        let name = ent.file_name().to_string_lossy().to_string();
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            return Ok(Some(ent.path()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_and_names_match_golden_keys() {
        let m = manifest().unwrap();
        assert_eq!(m.len(), 395);
        assert_eq!(
            m[0].file_name(),
            "endless-sky-data--games_endless-sky_images_land_badlands0.jpg"
        );
        let names: BTreeSet<String> = m.iter().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), m.len(), "file names are unique");
    }

    #[test]
    fn malformed_manifest_lines_are_reported_with_their_number() {
        let bad = "header\npkg\t1\t/p\tzz\t1\t1\tJPEG\t1\tlic\n";
        match parse_manifest(bad) {
            Err(CorpusError::Manifest { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }
}
