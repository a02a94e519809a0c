//! The scheme side of the command line: `serve --scheme`, `enclave`, and `escrow`.

use anyhow::{Context, Result, bail};
use scanlab_hashlist::HashList;
use scanlab_schemes::enclave::{Enclave, EnclaveLink};
use scanlab_schemes::seal::KeyPair;
use scanlab_schemes::{Deployment, Matcher, SchemeId};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Which detection scheme `serve` deploys.
#[derive(clap::Args)]
pub struct SchemeArgs {
    /// Detection scheme: e2ee (S0), server-side (S1), exceptional-access (S2), device-hash (S3),
    /// partial-hash (S4), enclave (S5).
    #[arg(long, default_value = "e2ee")]
    scheme: SchemeId,
    /// Hash list to match (CSV, JSON lines or binary), for S1, S3, S4 and S5. Any list works,
    /// which is the point: the list decides what is detected.
    #[arg(long)]
    list: Option<PathBuf>,
    /// Match radius in bits (PDQ's threshold is 31).
    #[arg(long, default_value_t = scanlab_schemes::DEFAULT_RADIUS)]
    radius: u32,
    /// S4's split point: luma64 (64×64 luminance) or dct16 (16×16 DCT).
    #[arg(long, default_value = "luma64")]
    split: scanlab_schemes::Split,
    /// S2: the escrow authority's public key file, from `scanlab escrow keygen`.
    #[arg(long)]
    escrow_pub: Option<PathBuf>,
    /// S5: base URL of a running `scanlab enclave`.
    #[arg(long)]
    enclave: Option<String>,
    /// S5: an enclave measurement (hex) clients should accept; repeatable. Default: the
    /// attached enclave's own.
    #[arg(long)]
    allow: Vec<String>,
}

/// Reads a hash list file.
pub fn read_list(path: &Path) -> Result<HashList> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_list(path, &bytes)
}

/// Parses the bytes of the list file `path`, reporting merged duplicates.
fn parse_list(path: &Path, bytes: &[u8]) -> Result<HashList> {
    let (list, report) =
        HashList::read(bytes).with_context(|| format!("parsing the list {}", path.display()))?;
    if !report.duplicates.is_empty() {
        eprintln!(
            "scanlab: {}: {} duplicate entries merged",
            path.display(),
            report.duplicates.len()
        );
    }
    Ok(list)
}

fn read_hex_key(path: &Path) -> Result<Vec<u8>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    hex::decode(text.trim()).with_context(|| format!("{} is not a hex key", path.display()))
}

impl SchemeArgs {
    /// The deployment these flags describe, or `None` for plain E2EE.
    pub fn deployment(&self) -> Result<Deployment> {
        let list = match &self.list {
            Some(p) => read_list(p)?,
            // S5's provider holds no list: its enclave does (`scanlab enclave --list`).
            None if self.scheme.matches() && self.scheme != SchemeId::Enclave => bail!(
                "--scheme {} matches against a list: give --list FILE (build one with `scanlab list build`)",
                self.scheme
            ),
            None => HashList::default(),
        };
        let mut d = Deployment::new(self.scheme, list);
        d.radius = self.radius;
        d.split = self.split;
        d.allow = self.allow.clone();
        if let Some(p) = &self.escrow_pub {
            let k = read_hex_key(p)?;
            d.escrow_public = Some(
                k.try_into()
                    .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key", p.display()))?,
            );
        }
        if let Some(url) = &self.enclave {
            d.enclave = Some(EnclaveLink::Http(url.trim_end_matches('/').to_string()));
        }
        Ok(d)
    }
}

/// `scanlab enclave`: the simulated enclave as its own process.
pub fn cmd_enclave(listen: &str, list_path: &Path, radius: u32) -> Result<ExitCode> {
    let bytes =
        std::fs::read(list_path).with_context(|| format!("reading {}", list_path.display()))?;
    let list = parse_list(list_path, &bytes)?;
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    let enclave = Arc::new(Enclave::new(
        Matcher::new(list, radius)?,
        digest,
        scanlab_schemes::enclave::own_code_digest(),
    ));
    let ready = [format!("measurement {}", enclave.attestation().measurement)];
    crate::serve_http(listen, scanlab_schemes::enclave::router(enclave), &ready)?;
    Ok(ExitCode::SUCCESS)
}

/// `scanlab escrow`.
#[derive(clap::Subcommand)]
pub enum EscrowCmd {
    /// Make an escrow authority key pair: DIR/escrow.key (secret) and DIR/escrow.pub.
    Keygen {
        /// Where to write the keys.
        #[arg(long)]
        out: PathBuf,
    },
    /// Read every escrowed message (and image) from a provider's data directory.
    ///
    /// Prints JSON lines; with --out, writes the images there.
    Decrypt {
        /// The provider's data directory.
        #[arg(long)]
        data: PathBuf,
        /// The authority's secret key file.
        #[arg(long)]
        key: PathBuf,
        /// Folder for the recovered images.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn cmd_escrow(c: EscrowCmd) -> Result<ExitCode> {
    match c {
        EscrowCmd::Keygen { out } => {
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let k = KeyPair::generate();
            let secret = out.join("escrow.key");
            write_secret(&secret, &hex::encode(k.secret_bytes().as_ref()))?;
            std::fs::write(out.join("escrow.pub"), hex::encode(k.public()))?;
            eprintln!(
                "scanlab: wrote {} (keep it secret) and escrow.pub",
                secret.display()
            );
        }
        EscrowCmd::Decrypt { data, key, out } => {
            let k = KeyPair::from_secret(&zeroize::Zeroizing::new(read_hex_key(&key)?))
                .with_context(|| format!("{} is not an escrow secret key", key.display()))?;
            if !data.join("provider.sqlite").exists() {
                bail!("{} holds no provider database", data.display());
            }
            let recovered = scanlab_schemes::exceptional_access::recover(&data, &k)?;
            if let Some(dir) = &out {
                std::fs::create_dir_all(dir)?;
            }
            let stdout = std::io::stdout();
            let mut w = stdout.lock();
            let mut failed = 0;
            for r in &recovered {
                let mut line = serde_json::to_value(r)?;
                if let (Some(img), Some(dir)) = (&r.image, &out) {
                    let p = dir.join(format!("{}.img", r.seq));
                    std::fs::write(&p, img)?;
                    line["image"] = p.display().to_string().into();
                } else if let Some(img) = &r.image {
                    line["image_len"] = img.len().into();
                }
                failed += r.error.is_some() as usize;
                writeln!(w, "{line}")?;
            }
            if failed > 0 {
                eprintln!("scanlab: {failed} messages could not be opened with this key");
                return Ok(ExitCode::from(2));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
