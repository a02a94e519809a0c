//! The scheme side of the command line: `serve --scheme`, `enclave`, `matcher` and `escrow`.

use anyhow::{Context, Result, bail};
use scanlab_hashlist::HashList;
use scanlab_schemes::Matcher;
use scanlab_schemes::enclave::{Enclave, EnclaveService};
use scanlab_schemes::exceptional_access::Authority;
use scanlab_schemes::seal::KeyPair;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Which detection scheme `serve` deploys, and its configuration. Each flag is a field of the
/// scheme's typed configuration; a scheme refuses a flag it does not take, and names a flag it
/// needs.
#[derive(clap::Args)]
pub struct SchemeArgs {
    /// Detection scheme, by name or id; `scanlab serve --help` lists them.
    #[arg(long, default_value = "e2ee", help = scheme_help())]
    scheme: String,
    /// Hash list to match (CSV, JSON lines or binary). Any list works, which is the point: the
    /// list decides what is detected.
    #[arg(long)]
    list: Option<PathBuf>,
    /// Match radius in bits (default 31, PDQ's threshold).
    #[arg(long)]
    radius: Option<u32>,
    /// Where PDQ is split between device and provider: luma64 (64×64 luminance) or dct16.
    #[arg(long)]
    split: Option<String>,
    /// The escrow authority's public key file, from `scanlab escrow keygen`.
    #[arg(long)]
    escrow_pub: Option<PathBuf>,
    /// Base URL of a running `scanlab enclave`.
    #[arg(long)]
    enclave: Option<String>,
    /// The enclave's caller token file (`caller.token` in its data directory), with which the
    /// provider authenticates to it.
    #[arg(long)]
    enclave_token: Option<PathBuf>,
    /// An enclave measurement (hex) clients should accept; repeatable. Default: the attached
    /// enclave's own.
    #[arg(long)]
    allow: Vec<String>,
    /// Base URL of a running `scanlab matcher` (scheme third-party); repeated, in order, for
    /// third-party-multi's organisations.
    #[arg(long)]
    matcher: Vec<String>,
    /// The matching organisation's caller token file (`caller.token` in its data directory);
    /// repeated in the same order as --matcher.
    #[arg(long)]
    matcher_token: Vec<PathBuf>,
    /// Any other configuration field of the scheme, as KEY=VALUE (VALUE is read as JSON if it
    /// parses, else as a string); repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
}

fn scheme_help() -> String {
    let names: Vec<String> = scanlab_schemes::registry()
        .all()
        .iter()
        .map(|s| format!("{} ({})", s.name(), s.code()))
        .collect();
    format!("Detection scheme: {}", names.join(", "))
}

impl SchemeArgs {
    /// The scheme's configuration as these flags give it: only the flags given.
    pub fn config(&self) -> Result<serde_json::Value> {
        let mut c = serde_json::Map::new();
        let path = |p: &PathBuf| serde_json::Value::from(p.display().to_string());
        if let Some(p) = &self.list {
            c.insert("list".into(), path(p));
        }
        if let Some(r) = self.radius {
            c.insert("radius".into(), r.into());
        }
        if let Some(s) = &self.split {
            c.insert("split".into(), s.clone().into());
        }
        if let Some(p) = &self.escrow_pub {
            c.insert("escrow_pub".into(), path(p));
        }
        if let Some(u) = &self.enclave {
            c.insert("enclave".into(), u.clone().into());
        }
        if let Some(p) = &self.enclave_token {
            c.insert("enclave_token".into(), path(p));
        }
        // One organisation is a field, several a list: each scheme's configuration says which.
        match self.matcher.as_slice() {
            [] => {}
            [one] => drop(c.insert("matcher".into(), one.clone().into())),
            many => drop(c.insert("matcher".into(), many.to_vec().into())),
        }
        match self.matcher_token.as_slice() {
            [] => {}
            [one] => drop(c.insert("matcher_token".into(), path(one))),
            many => drop(c.insert(
                "matcher_token".into(),
                many.iter().map(path).collect::<Vec<_>>().into(),
            )),
        }
        if !self.allow.is_empty() {
            c.insert("allow".into(), self.allow.clone().into());
        }
        c.extend(parse_params(&self.params)?);
        Ok(c.into())
    }

    /// The provider half these flags describe.
    pub fn provider_half(&self) -> Result<Arc<dyn scanlab_messenger::scan::ProviderScheme>> {
        let scheme = scanlab_schemes::registry().get(&self.scheme)?;
        Ok(scheme.provider(&self.config()?)?)
    }
}

/// `--param KEY=VALUE` flags as configuration fields: the value as JSON where it parses (a
/// number, a boolean), else as a string; `-` in a key is `_`.
pub fn parse_params(params: &[String]) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut c = serde_json::Map::new();
    for kv in params {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--param {kv:?}: expected KEY=VALUE"))?;
        let v = serde_json::from_str(v).unwrap_or_else(|_| v.into());
        c.insert(k.replace('-', "_"), v);
    }
    Ok(c)
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
    let bytes = crate::files::read_input(path)?;
    let text = String::from_utf8_lossy(&bytes);
    hex::decode(text.trim()).with_context(|| format!("{} is not a hex key", path.display()))
}

/// `scanlab enclave`: the simulated enclave as its own process.
pub fn cmd_enclave(listen: &str, list_path: &Path, radius: u32, data: &Path) -> Result<ExitCode> {
    let bytes = crate::files::read_input(list_path)?;
    let list = parse_list(list_path, &bytes)?;
    let enclave = Arc::new(Enclave::new(
        Matcher::new(list, radius)?,
        scanlab_schemes::enclave::own_code_digest(),
    ));
    let ready = [
        format!(
            "measurement {}",
            hex::encode(enclave.measured().measurement())
        ),
        format!(
            "caller token {}",
            data.join(scanlab_schemes::enclave::CALLER_TOKEN_FILE)
                .display()
        ),
    ];
    let (service, _token) = EnclaveService::open(enclave, data)
        .with_context(|| format!("opening the enclave's view in {}", data.display()))?;
    crate::serve_http(listen, scanlab_schemes::enclave::router(service), &ready)?;
    Ok(ExitCode::SUCCESS)
}

/// `scanlab matcher`: scheme S8's matching organisation as its own process. Its HPKE key
/// persists in `DATA/matcher.key` (0600), so clients that pinned it keep working across
/// restarts; its caller token is fresh at every start.
///
/// With `multi`, it is one of scheme third-party-multi's organisations instead, which
/// answers point-function keys with shares.
pub fn cmd_matcher(
    listen: &str,
    list_path: &Path,
    radius: u32,
    data: &Path,
    multi: bool,
) -> Result<ExitCode> {
    use scanlab_schemes::third_party::{KEY_FILE, Organisation, OrganisationService};
    use scanlab_schemes::third_party_multi as m;
    let bytes = crate::files::read_input(list_path)?;
    let list = parse_list(list_path, &bytes)?;
    let secret = scanlab_schemes::load_or_create_secret(&data.join(KEY_FILE))?;
    let keys = Arc::new(KeyPair::from_secret(secret.as_ref())?);
    let matcher = Matcher::new(list, radius)?;
    let (key, router) = if multi {
        let org = Arc::new(m::Organisation::new(matcher, keys));
        let key = org.params().key;
        let (service, _token) = OrganisationService::open(org, data)
            .with_context(|| format!("opening the organisation's view in {}", data.display()))?;
        (key, m::router(service))
    } else {
        let org = Arc::new(Organisation::new(matcher, keys));
        let key = org.params().key;
        let (service, _token) = OrganisationService::open(org, data)
            .with_context(|| format!("opening the organisation's view in {}", data.display()))?;
        (key, scanlab_schemes::third_party::router(service))
    };
    let ready = [
        format!("key {key}"),
        format!(
            "caller token {}",
            data.join(scanlab_schemes::party::CALLER_TOKEN_FILE)
                .display()
        ),
    ];
    crate::serve_http(listen, router, &ready)?;
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
    /// Prints JSON lines; with --out, writes the images there. What the authority is handed and
    /// what it opens are recorded in its own view (`scanlab view --data VIEW`).
    Decrypt {
        /// The provider's data directory.
        #[arg(long)]
        data: PathBuf,
        /// The authority's secret key file.
        #[arg(long)]
        key: PathBuf,
        /// The authority's own data directory, where its view is kept (default: the folder
        /// of the key file).
        #[arg(long)]
        view: Option<PathBuf>,
        /// Folder for the recovered images.
        #[arg(long)]
        out: Option<PathBuf>,
        /// What `scanlab client monitor` printed for any account (the provider's id and a
        /// key-transparency head that client verified). With it, a message counts as signed
        /// only under a key that head's log holds for its sender, so the provider's copy of
        /// its own database is not taken on trust.
        #[arg(long)]
        kt_anchor: Option<PathBuf>,
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
        EscrowCmd::Decrypt {
            data,
            key,
            view,
            out,
            kt_anchor,
        } => {
            let k = KeyPair::from_secret(&zeroize::Zeroizing::new(read_hex_key(&key)?))
                .with_context(|| format!("{} is not an escrow secret key", key.display()))?;
            if !data.join("provider.sqlite").exists() {
                bail!("{} holds no provider database", data.display());
            }
            let view = view.unwrap_or_else(|| {
                key.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf()
            });
            let mut authority = Authority::open(k, &view)?;
            if let Some(a) = &kt_anchor {
                let (log, head) = read_anchor(a).with_context(|| {
                    format!("{} is not `scanlab client monitor` output", a.display())
                })?;
                authority = authority.with_key_transparency(log, head);
            }
            let recovered = authority.recover(&data)?;
            if let Some(dir) = &out {
                std::fs::create_dir_all(dir)?;
            }
            let stdout = std::io::stdout();
            let mut w = stdout.lock();
            let mut failed = 0;
            for r in &recovered {
                let mut line = serde_json::to_value(r)?;
                if let (Some(img), Some(dir)) = (&r.image, &out) {
                    let p = dir.join(format!(
                        "{}.{}",
                        r.seq,
                        scanlab_messenger::mls::file_extension(img)
                    ));
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

/// The provider's log key and head from `scanlab client monitor` output.
fn read_anchor(
    path: &Path,
) -> Result<(ed25519_dalek::VerifyingKey, scanlab_messenger::kt::KtHead)> {
    let v: serde_json::Value = serde_json::from_slice(&crate::files::read_input(path)?)?;
    let head = serde_json::from_value(v["head"].clone())?;
    let id: [u8; 32] = hex::decode(v["provider"].as_str().unwrap_or_default())?
        .try_into()
        .map_err(|_| anyhow::anyhow!("the provider id is not 32 bytes"))?;
    Ok((ed25519_dalek::VerifyingKey::from_bytes(&id)?, head))
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
