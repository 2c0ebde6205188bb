//! `edgefuse verify`: check a bundle's signature against a trusted key and run its self-test here.

use std::path::PathBuf;

use anyhow::{Context, Result};
use edgefuse_runtime::deploy::{selftest, Bundle, PublicKey};
use edgefuse_runtime::Model;

#[derive(clap::Args)]
#[command(
    about = "Check a .efb bundle's signature with a trusted public key and run its self-test"
)]
pub struct Args {
    /// The bundle.
    bundle: PathBuf,
    /// Public key (`edgefuse.pub`) the bundle must be signed with.
    #[arg(long)]
    trust: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let trust = PublicKey::load(&a.trust)?;
    let bytes =
        std::fs::read(&a.bundle).with_context(|| format!("reading {}", a.bundle.display()))?;
    let ctx = || a.bundle.display().to_string();
    let b = Bundle::parse(&bytes).with_context(ctx)?;
    b.verify(&trust).with_context(ctx)?;
    let model = Model::from_bytes(b.model).with_context(ctx)?;
    selftest::check(&b.manifest.self_test, model).with_context(ctx)?;
    let m = &b.manifest;
    let boards = if m.boards.is_empty() {
        "any board".to_string()
    } else {
        m.boards.join(", ")
    };
    println!(
        "{}: OK: {} {} for {boards}, signed by {}, model sha256 {}, self-test passed",
        a.bundle.display(),
        m.name,
        m.version,
        m.key_id,
        m.model_sha256
    );
    Ok(())
}
