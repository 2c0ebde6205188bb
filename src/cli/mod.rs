//! Command-line interface: argument parsing and one module per subcommand.
//! The contract (names, flags, output files) is fixed in DESIGN.md; tests call it.

mod agent;
mod bench;
mod boards;
mod bundle;
mod classify;
#[cfg(feature = "compiler")]
mod compile;
mod flash;
mod inspect;
mod keygen;
mod rollback;
mod run;
mod status;
mod target;
mod verify;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "edgefuse",
    version,
    about = "Compile ONNX CNNs and LSTMs into one portable .efm file, and run it on edge devices.",
    long_about = "Compile ONNX CNNs and LSTMs into one portable .efm file, and run it on edge devices.\n\n\
        Typical use:\n  \
        edgefuse compile model.onnx -o model.efm          # on the host\n  \
        edgefuse inspect model.efm                        # what is inside\n  \
        edgefuse run model.efm --input x=x.npy --output-dir out/\n  \
        edgefuse bench model.efm                          # latency and memory\n  \
        edgefuse classify model.efm --source /dev/video0  # camera → labels"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[cfg(feature = "compiler")]
    Compile(compile::Args),
    Inspect(inspect::Args),
    Run(run::Args),
    Bench(bench::Args),
    Classify(classify::Args),
    Boards(boards::Args),
    Keygen(keygen::Args),
    Bundle(bundle::Args),
    Verify(verify::Args),
    Agent(agent::Args),
    Flash(flash::Args),
    Rollback(rollback::Args),
    Status(status::Args),
}

/// Parses the command line and runs the subcommand.
pub fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    let networked = matches!(
        cli.command,
        Command::Agent(_) | Command::Flash(_) | Command::Rollback(_) | Command::Status(_)
    );
    if !networked {
        quiet_on_closed_pipe();
    }
    match cli.command {
        #[cfg(feature = "compiler")]
        Command::Compile(a) => compile::run(a)?,
        Command::Inspect(a) => inspect::run(a)?,
        Command::Run(a) => run::run(a)?,
        Command::Bench(a) => bench::run(a)?,
        Command::Classify(a) => classify::run(a)?,
        Command::Boards(a) => boards::run(a)?,
        Command::Keygen(a) => keygen::run(a)?,
        Command::Bundle(a) => bundle::run(a)?,
        Command::Verify(a) => verify::run(a)?,
        Command::Agent(a) => agent::run(a)?,
        Command::Flash(a) => flash::run(a)?,
        Command::Rollback(a) => rollback::run(a)?,
        Command::Status(a) => status::run(a)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A report printed into a pipe whose reader has gone (`edgefuse inspect M | head`) ends the
/// process quietly, by SIGPIPE as `cat` and `grep` do, rather than by `println!` panicking
/// with a backtrace. Rust starts programs with SIGPIPE ignored; the commands that talk to
/// agents over the network keep it so, and report a dropped connection as an error.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with a valid signal and the default action, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Parses `NAME=VALUE`.
#[cfg_attr(not(feature = "compiler"), allow(dead_code))]
pub(crate) fn split_assignment(s: &str, what: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.is_empty() && !v.is_empty() => Ok((n.to_string(), v.to_string())),
        _ => Err(format!("expected NAME={what}, got \"{s}\"")),
    }
}

/// Parses a shape written `1x3x224x224` (or with commas).
#[cfg_attr(not(feature = "compiler"), allow(dead_code))]
pub(crate) fn parse_shape(s: &str) -> Result<Vec<usize>, String> {
    s.split(['x', ',', 'X'])
        .map(|d| {
            d.trim()
                .parse::<usize>()
                .map_err(|_| format!("\"{s}\" is not a shape like 1x3x224x224"))
        })
        .collect()
}

/// Whether an output file may be replaced: it does not exist, is empty, or begins with `head`
/// (a file of the kind the command writes: an earlier compiled model, bundle, report or
/// array). Anything else — the model being read given as the output, a photograph — is
/// refused, naming `option`, before any work starts.
pub(crate) fn replaceable(path: &std::path::Path, head: &[u8], option: &str) -> anyhow::Result<()> {
    use std::io::Read;
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            anyhow::bail!("{option} {}: a directory, not a file", path.display())
        }
        // A device, pipe or socket (`/dev/null`): the file is written beside and renamed into
        // place, which would replace the node itself.
        Ok(m) if !m.is_file() => anyhow::bail!(
            "{option} {}: not a regular file (a device, pipe or socket)",
            path.display()
        ),
        _ => {}
    }
    let Ok(f) = std::fs::File::open(path) else {
        return Ok(());
    };
    let mut start = Vec::with_capacity(head.len());
    f.take(head.len() as u64).read_to_end(&mut start)?;
    if start.is_empty() || start == head {
        return Ok(());
    }
    anyhow::bail!(
        "{option} {}: the file exists and is not one this command writes; refusing to replace \
         it (remove it or choose another path)",
        path.display()
    )
}

/// A count that must be at least 1 (`--threads`, `--iters`, `--top`, `--frames`, `--timeout-s`):
/// 0 is refused rather than quietly taken as 1 or as nothing.
pub(crate) fn positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("\"{s}\" is not a whole number")),
    }
}

/// The CPU thread count: `--threads`, else the machine's cores (at most 8).
pub(crate) fn session_options(threads: Option<usize>) -> edgefuse_runtime::cpu::SessionOptions {
    let mut o = edgefuse_runtime::cpu::SessionOptions::default();
    if let Some(t) = threads {
        o.threads = t.max(1);
    }
    o
}

/// Backend selection shared by `run`, `bench` and `classify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// CUDA when this build has it and a GPU is usable, else CPU (says which on stderr).
    Auto,
    Cpu,
    Cuda,
}

impl From<Backend> for edgefuse_runtime::engine::Backend {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Auto => Self::Auto,
            Backend::Cpu => Self::Cpu,
            Backend::Cuda => Self::Cuda,
        }
    }
}

/// `--gpu-precision`: what the CUDA backend computes float tensors in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum GpuPrecision {
    Fp32,
    Fp16,
}

/// Fails early, in one line, when `--backend cuda` cannot work here.
#[allow(dead_code)]
pub(crate) fn check_backend(b: Backend) -> Result<()> {
    if b == Backend::Cuda {
        if let Err(why) = edgefuse_runtime::engine::cuda_status() {
            anyhow::bail!("--backend cuda: {why}");
        }
    }
    Ok(())
}

/// Reads a labels file: one label per line, control characters written as escapes.
pub(crate) fn read_labels(path: &std::path::Path) -> Result<Vec<String>> {
    use anyhow::Context;
    let mut labels: Vec<String> = std::fs::read_to_string(path)
        .with_context(|| format!("reading labels {}", path.display()))?
        .lines()
        .map(|l| edgefuse_runtime::format::printable(l.trim_end()).into_owned())
        .collect();
    // Blank lines at the end are an editor's, not classes; blank lines inside keep their place.
    while labels.last().is_some_and(String::is_empty) {
        labels.pop();
    }
    Ok(labels)
}

/// Opens `model` on the chosen backend: the one place `run`, `bench` and `classify` pick it.
/// With `auto`, says on stderr which backend was picked and why.
pub(crate) fn open_session(
    model: std::sync::Arc<edgefuse_runtime::Model>,
    backend: Backend,
    threads: Option<usize>,
    gpu_precision: Option<GpuPrecision>,
) -> Result<edgefuse_runtime::engine::Engine> {
    open_session_with(model, backend, threads, gpu_precision, false)
}

/// [`open_session`], with CUDA's fusions off when `no_fuse` (`bench --no-fuse`).
pub(crate) fn open_session_with(
    model: std::sync::Arc<edgefuse_runtime::Model>,
    backend: Backend,
    threads: Option<usize>,
    gpu_precision: Option<GpuPrecision>,
    no_fuse: bool,
) -> Result<edgefuse_runtime::engine::Engine> {
    let opts = edgefuse_runtime::engine::EngineOptions {
        cpu: session_options(threads),
        fp16: gpu_precision.map(|p| p == GpuPrecision::Fp16),
        no_fuse,
        ..Default::default()
    };
    let (engine, note) = edgefuse_runtime::engine::Engine::open(model, backend.into(), &opts)?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    Ok(engine)
}

/// Output file stem for a tensor name: characters outside [A-Za-z0-9_.-] become '_'.
pub fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
