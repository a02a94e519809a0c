//! `scanlab client ...`: the messenger client on the command line.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use scanlab_messenger::client::{Client, HttpTransport};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ClientArgs {
    /// The client's home: its identity, MLS state and inbox.
    #[arg(long)]
    home: PathBuf,
    /// The provider's URL.
    #[arg(long, default_value = "http://127.0.0.1:8731")]
    server: String,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Create an identity in --home and register it at the provider.
    Register {
        /// Account name.
        name: String,
    },
    /// Create a chat, or change its members.
    Chat {
        #[command(subcommand)]
        cmd: ChatCmd,
    },
    /// Send text and/or an image to a chat.
    Send {
        /// The chat.
        chat: String,
        /// Text to send.
        #[arg(long)]
        text: Option<String>,
        /// Image file to attach (encrypted; the provider stores only ciphertext).
        #[arg(long)]
        image: Option<PathBuf>,
    },
    /// Fetch, decrypt and print waiting messages as JSON lines; images go to --home/inbox/.
    Recv,
    /// Print the safety number of this account and PEER: compare it with theirs (in person, or
    /// over another channel). Equal numbers mean neither of you was given a false key.
    SafetyNumber {
        /// The peer.
        peer: String,
    },
    /// Accept the scheme the provider now announces, after the client refused a change.
    AcceptScheme,
    /// Check the provider's key-transparency log: it must match its signed head, and list no
    /// key for this account but its own (another one means someone was given a ghost).
    /// Prints JSON; exits 1 with the evidence otherwise.
    Monitor,
    /// Report a received message (by its id, as `recv` prints it) to the provider, through
    /// the deployment's scheme; prints the provider's answer.
    Report {
        /// The message id.
        id: i64,
        /// Why.
        #[arg(long, default_value = "reported by the recipient")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum ChatCmd {
    /// Create a chat with peers (a 1:1 chat is a chat with one peer).
    Create {
        /// Chat id.
        chat: String,
        /// Peers, comma-separated.
        #[arg(long = "with", value_delimiter = ',', required = true)]
        with: Vec<String>,
    },
    /// Add a peer.
    Add {
        /// Chat id.
        chat: String,
        /// Peer.
        peer: String,
    },
    /// Remove a peer: nothing sent afterwards decrypts for them.
    Remove {
        /// Chat id.
        chat: String,
        /// Peer.
        peer: String,
    },
}

fn stored_name(home: &Path) -> Result<String> {
    let p = home.join("name");
    Ok(std::fs::read_to_string(&p)
        .with_context(|| {
            format!(
                "{} has no identity yet\n  run `scanlab client --home {} register NAME` first",
                home.display(),
                home.display()
            )
        })?
        .trim()
        .to_string())
}

pub fn run(a: ClientArgs) -> Result<ExitCode> {
    let name = match &a.verb {
        Verb::Register { name } => {
            if a.home.join("name").exists() {
                bail!(
                    "{} already holds the identity {:?}",
                    a.home.display(),
                    stored_name(&a.home)?
                );
            }
            std::fs::create_dir_all(&a.home)?;
            name.clone()
        }
        _ => stored_name(&a.home)?,
    };
    let mut client = Client::connect(&a.home, &name, HttpTransport::new(&a.server))?;
    match a.verb {
        Verb::Register { .. } => {
            std::fs::write(a.home.join("name"), &name)?;
            crate::files::note!("registered {name} at {}", a.server);
        }
        Verb::Chat {
            cmd: ChatCmd::Create { chat, with },
        } => {
            let peers: Vec<&str> = with.iter().map(String::as_str).collect();
            client.create_chat(&chat, &peers)?;
        }
        Verb::Chat {
            cmd: ChatCmd::Add { chat, peer },
        } => client.add(&chat, &[&peer])?,
        Verb::Chat {
            cmd: ChatCmd::Remove { chat, peer },
        } => client.remove(&chat, &[&peer])?,
        Verb::Send { chat, text, image } => {
            if text.is_none() && image.is_none() {
                bail!("nothing to send: give --text and/or --image");
            }
            let img = match &image {
                Some(p) => Some(crate::files::read_input(p)?),
                None => None,
            };
            install_scheme(&mut client)?;
            let id = client.send(&chat, text.as_deref(), img.as_deref())?;
            crate::files::note!("sent as message {id}");
        }
        Verb::SafetyNumber { peer } => crate::files::outln!("{}", client.safety_number(&peer)?)?,
        Verb::Monitor => crate::files::outln!("{}", serde_json::to_string(&client.monitor()?)?)?,
        Verb::AcceptScheme => {
            let info = client.accept_scheme()?;
            crate::files::note!("now pinned to {info}");
        }
        Verb::Report { id, reason } => {
            install_scheme(&mut client)?;
            let answer = client.report(id, &reason)?;
            crate::files::outln!("{answer}")?;
        }
        Verb::Recv => {
            install_scheme(&mut client)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let mut failed = 0;
            for m in client.recv()? {
                match m {
                    Ok(m) => {
                        // A change of members is said out loud: a member let in unnoticed
                        // reads everything after.
                        if let Some(c) = &m.change {
                            for n in &c.added {
                                eprintln!("scanlab: {} added {n} to chat {:?}", m.from, m.chat);
                            }
                            for n in &c.removed {
                                eprintln!("scanlab: {} removed {n} from chat {:?}", m.from, m.chat);
                            }
                        }
                        writeln!(out, "{}", serde_json::to_string(&m)?)?
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("scanlab: a message could not be decrypted: {e}");
                    }
                }
            }
            if failed > 0 {
                return Ok(ExitCode::from(2));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The provider announces its scheme; the client runs that scheme's half (S5's checks the
/// enclave's attestation first). Its durable state lives in the client's home, so it survives
/// from one command to the next.
fn install_scheme(client: &mut Client<HttpTransport>) -> Result<()> {
    let info = client.scheme_info()?;
    let half = scanlab_schemes::registry()
        .client_half(&info)
        .with_context(|| format!("the provider's scheme {}", info["name"]))?;
    client.set_scheme(half)?;
    Ok(())
}
