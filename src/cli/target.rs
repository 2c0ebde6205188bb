//! Where `flash`, `rollback` and `status` act: an agent URL (`http://` or `https://`) or a mounted
//! store (`dir:/path`) written directly with the same slot layout.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use edgefuse_runtime::deploy::client::Client;
use edgefuse_runtime::deploy::http::{self, Url};
use edgefuse_runtime::deploy::keys;
use edgefuse_runtime::deploy::{DeployResult, InstallOptions, Installed, PublicKey, Status, Store};

/// Options shared by every command that talks to targets.
#[derive(clap::Args, Clone)]
pub struct Conn {
    /// File holding the agents' token.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// PEM certificate(s) to trust for https:// agents (their certificate or CA).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Public key for dir: targets (the key the device trusts).
    #[arg(long)]
    trust: Option<PathBuf>,
    /// Seconds to wait on one agent.
    #[arg(
        long,
        default_value_t = 60,
        value_parser = super::positive,
        allow_negative_numbers = true
    )]
    timeout_s: usize,
}

/// The token in `--token-file`: one line of printable characters (it goes into a header line).
pub fn read_token(path: &std::path::Path) -> Result<String> {
    let token = keys::read_line_file(path, "token")
        .with_context(|| format!("reading --token-file {}", path.display()))?;
    if token.is_empty() {
        bail!("--token-file {}: the file is empty", path.display());
    }
    if token.chars().any(char::is_control) {
        bail!(
            "--token-file {}: the token must be one line of printable characters",
            path.display()
        );
    }
    Ok(token)
}

pub enum Target {
    Agent(Url),
    Dir(PathBuf),
}

impl Target {
    pub fn parse(s: &str) -> Result<Target> {
        if let Some(p) = s.strip_prefix("dir:") {
            if p.is_empty() {
                bail!("--to {s}: dir: needs a path, e.g. dir:/mnt/sdcard/edgefuse");
            }
            return Ok(Target::Dir(PathBuf::from(p)));
        }
        Ok(Target::Agent(Url::parse(s)?))
    }
}

/// A connection context: client for agents, trusted key for dir: targets.
pub struct Ctx {
    client: Client,
    trust: Option<PublicKey>,
}

impl Ctx {
    pub fn new(c: &Conn) -> Result<Ctx> {
        let token = c.token_file.as_deref().map(read_token).transpose()?;
        let tls = c.ca.as_deref().map(http::client_tls).transpose()?;
        let trust = c.trust.as_deref().map(PublicKey::load).transpose()?;
        Ok(Ctx {
            client: Client {
                token,
                tls,
                timeout: Duration::from_secs(c.timeout_s as u64),
            },
            trust,
        })
    }

    fn store(&self, dir: &std::path::Path) -> DeployResult<Store> {
        let trust = self.trust.ok_or_else(|| {
            edgefuse_runtime::deploy::DeployError::new(
                edgefuse_runtime::deploy::ErrorKind::BadRequest,
                format!(
                    "dir:{}: writing a store directly needs --trust PUBKEY (the key the device trusts)",
                    dir.display()
                ),
            )
        })?;
        Store::open(dir, trust, None)
    }

    pub fn install(&self, t: &Target, bundle: &[u8], downgrade: bool) -> DeployResult<Installed> {
        match t {
            Target::Agent(u) => self.client.install(u, bundle, downgrade),
            Target::Dir(d) => self.store(d)?.install(
                bundle,
                &InstallOptions {
                    allow_downgrade: downgrade,
                },
            ),
        }
    }

    pub fn rollback(&self, t: &Target) -> DeployResult<Installed> {
        match t {
            Target::Agent(u) => self.client.rollback(u),
            Target::Dir(d) => self.store(d)?.rollback(),
        }
    }

    pub fn status(&self, t: &Target) -> DeployResult<Status> {
        match t {
            Target::Agent(u) => self.client.status(u),
            Target::Dir(d) => Ok(self.store(d)?.status()),
        }
    }
}
