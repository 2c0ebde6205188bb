//! `edgefuse keygen`: a fresh ed25519 signing key pair for bundles.

use std::path::PathBuf;

use anyhow::Result;
use edgefuse_runtime::deploy::SecretKey;

#[derive(clap::Args)]
#[command(
    about = "Write an ed25519 key pair: DIR/edgefuse.key (secret, mode 0600) and DIR/edgefuse.pub"
)]
pub struct Args {
    /// Folder for the two key files (created if missing; existing keys are never overwritten).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let key = SecretKey::generate()?;
    let (secret, public) = key.write_pair(&a.out)?;
    println!(
        "wrote {} (keep it secret) and {} (key id {}): give the .pub to agents as --trust",
        secret.display(),
        public.display(),
        key.public().id()
    );
    Ok(())
}
