//! `edgefuse agent`: the device service that receives, verifies and installs bundles.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use edgefuse_runtime::deploy::agent::{self, AgentConfig};
use edgefuse_runtime::deploy::{http, PublicKey, Store};

#[derive(clap::Args)]
#[command(
    about = "Run the device agent: accepts signed bundles over HTTP(S) and installs them A/B"
)]
pub struct Args {
    /// Address to listen on, e.g. 0.0.0.0:7443 (port 0 picks a free one; the first line printed
    /// says which).
    #[arg(long)]
    listen: String,
    /// The slot store (created if missing).
    #[arg(long)]
    store: PathBuf,
    /// Public key bundles must be signed with.
    #[arg(long)]
    trust: PathBuf,
    /// File holding the token callers must present (Authorization: Bearer).
    #[arg(long)]
    token_file: PathBuf,
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// This device's board; bundles that list boards must list it.
    #[arg(long)]
    board: Option<String>,
    /// Largest bundle accepted, in MiB (fractions allowed; at most 1048576, 1 TiB).
    #[arg(
        long,
        default_value_t = 512.0,
        value_parser = bundle_mb,
        allow_negative_numbers = true
    )]
    max_bundle_mb: f64,
    /// Seconds a connection may stay silent, and the most a request head may take.
    #[arg(
        long,
        default_value_t = 30,
        value_parser = super::positive,
        allow_negative_numbers = true
    )]
    timeout_s: usize,
}

/// `--max-bundle-mb`: a size above 0 and at most 1 TiB (NaN, infinities and 0 would refuse
/// everything or nothing).
fn bundle_mb(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1048576.0 => Ok(v),
        _ => Err(format!(
            "\"{s}\" is not a size in MiB above 0 and at most 1048576"
        )),
    }
}

pub fn run(a: Args) -> Result<()> {
    let trust = PublicKey::load(&a.trust)?;
    let token = super::target::read_token(&a.token_file)?;
    if token.len() < 16 {
        bail!(
            "--token-file {}: the token must be at least 16 characters",
            a.token_file.display()
        );
    }
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => Some(http::server_tls(c, k)?),
        _ => None,
    };
    let store = Arc::new(
        Store::open(&a.store, trust, a.board.clone())
            .with_context(|| format!("opening the store {}", a.store.display()))?,
    );
    let listener =
        TcpListener::bind(&a.listen).with_context(|| format!("--listen {}", a.listen))?;
    let addr = listener.local_addr()?;
    let st = store.status();
    println!(
        "edgefuse agent: listening on {}://{addr}, store {}, active {}",
        if tls.is_some() { "https" } else { "http" },
        a.store.display(),
        st.active_version.as_deref().unwrap_or("none")
    );
    std::io::stdout().flush()?;
    if let Some(e) = &st.last_error {
        eprintln!("edgefuse agent: {e}");
    }
    agent::serve(
        listener,
        AgentConfig {
            store,
            token,
            tls,
            max_bundle: (a.max_bundle_mb * 1048576.0) as u64,
            io_timeout: Duration::from_secs(a.timeout_s as u64),
            max_connections: 64,
        },
    )?;
    Ok(())
}
