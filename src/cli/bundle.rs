//! `edgefuse bundle`: sign a `.efm` into a `.efb` with a manifest and a self-test made by running
//! the model on the CPU.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use edgefuse_runtime::deploy::bundle::{self, Manifest};
use edgefuse_runtime::deploy::{selftest, SecretKey};
use edgefuse_runtime::Model;

#[derive(clap::Args)]
#[command(about = "Sign a .efm into a .efb bundle (manifest, self-test, ed25519 signature)")]
pub struct Args {
    /// The compiled model.
    model: PathBuf,
    /// Secret key from `edgefuse keygen`.
    #[arg(long)]
    key: PathBuf,
    /// Semantic version of this model (agents refuse anything not newer than what they run).
    #[arg(long)]
    version: String,
    /// Board this model is meant for (repeatable; none means any board).
    #[arg(long = "board", value_name = "NAME")]
    boards: Vec<String>,
    /// Model name in the manifest (default: the file name without extension).
    #[arg(long)]
    name: Option<String>,
    /// Seed of the synthetic self-test input.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Output bundle.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    super::replaceable(&a.output, bundle::MAGIC, "-o")?;
    let key = SecretKey::load(&a.key)?;
    bundle::parse_version(&a.version)?;
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
    let model = Model::from_bytes(&bytes)?;
    let self_test = selftest::generate(model, a.seed)
        .with_context(|| format!("{}: making the self-test", a.model.display()))?;
    let name = a.name.unwrap_or_else(|| {
        a.model
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned())
    });
    let manifest = Manifest {
        format: 1,
        name,
        version: a.version,
        boards: a.boards,
        model_sha256: String::new(),
        model_size: 0,
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        key_id: String::new(),
        self_test,
    };
    let out = bundle::build(manifest, &bytes, &key)?;
    // Written beside and renamed into place: an earlier bundle survives a failed write.
    edgefuse_runtime::format::write_file(&a.output, &out)?;
    let b = bundle::Bundle::parse(&out)?;
    println!(
        "wrote {}: {} {} ({} bytes, model sha256 {}, key {})",
        a.output.display(),
        b.manifest.name,
        b.manifest.version,
        out.len(),
        &b.manifest.model_sha256[..16],
        b.manifest.key_id
    );
    Ok(())
}
