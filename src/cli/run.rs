//! `edgefuse run`: `.npy` inputs in, one `.npy` per output.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use edgefuse_runtime::Model;

use super::Backend;

#[derive(clap::Args)]
#[command(
    about = "Run a .efm model on .npy inputs; writes one NAME.npy per output",
    long_about = "Run a .efm model on .npy inputs and write one NAME.npy per output into --output-dir.\n\n\
    Output file names are the model's tensor names with characters outside [A-Za-z0-9_.-]\n\
    replaced by '_' (a name that would repeat an earlier output's gets -INDEX). A file already\n\
    there is replaced only when it is an array and not one of this run's inputs. A model with\n\
    a single input also accepts --input FILE.npy.\n\n\
    Example: edgefuse run mnist.efm --input image=digits.npy --output-dir out/"
)]
pub struct Args {
    /// The compiled model.
    model: PathBuf,
    /// An input, NAME=FILE.npy (repeatable).
    #[arg(long = "input", value_name = "NAME=FILE.npy", required = true)]
    inputs: Vec<String>,
    /// Directory for the output .npy files (created if missing).
    #[arg(long)]
    output_dir: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    backend: Backend,
    /// CPU threads (default: the machine's cores, at most 8).
    #[arg(long, value_parser = super::positive)]
    threads: Option<usize>,
    /// CUDA precision: fp16 (tensor cores) or fp32 (exact); default fp16 exactly when the
    /// model's weights are stored as f16 (`compile --precision fp16`).
    #[arg(long, value_enum)]
    gpu_precision: Option<super::GpuPrecision>,
}

pub fn run(a: Args) -> Result<()> {
    // Before any work: a path that is there but is no directory cannot take the outputs.
    if a.output_dir.exists() && !a.output_dir.is_dir() {
        bail!(
            "--output-dir {}: exists and is not a directory",
            a.output_dir.display()
        );
    }
    let model = Model::load(&a.model)?;
    let g = model.graph();
    let mut session = super::open_session(model.clone(), a.backend, a.threads, a.gpu_precision)?;
    let mut given = vec![false; g.inputs.len()];
    let mut input_files = Vec::new();
    for spec in &a.inputs {
        let (name, file) = match spec.split_once('=') {
            Some((n, f)) => (n.to_string(), f.to_string()),
            None if g.inputs.len() == 1 => (g.tensors[g.inputs[0]].name.clone(), spec.clone()),
            None => bail!(
                "--input {spec}: the model has {} inputs, name them: NAME=FILE.npy",
                g.inputs.len()
            ),
        };
        let Some(index) = model.input_index(&name) else {
            let names: Vec<&str> = g
                .inputs
                .iter()
                .map(|&i| g.tensors[i].name.as_str())
                .collect();
            bail!(
                "--input {name}: the model has no input named \"{name}\" (inputs: {})",
                names.join(", ")
            );
        };
        let t = crate::npy::read(std::path::Path::new(&file))?;
        input_files.extend(std::fs::canonicalize(&file));
        session
            .set_input(index, t.view())
            .with_context(|| format!("--input {name}={file}"))?;
        given[index] = true;
    }
    if let Some(missing) = given.iter().position(|g| !g) {
        bail!(
            "input \"{}\" was not given (--input {}=FILE.npy)",
            g.tensors[g.inputs[missing]].name,
            g.tensors[g.inputs[missing]].name
        );
    }
    // Before running: an output replaces only an earlier array, never an input of this run.
    let names: Vec<&str> = g
        .outputs
        .iter()
        .map(|&o| g.tensors[o].name.as_str())
        .collect();
    let paths: Vec<PathBuf> = file_stems(&names)
        .iter()
        .map(|stem| a.output_dir.join(format!("{stem}.npy")))
        .collect();
    for path in &paths {
        super::replaceable(path, b"\x93NUMPY", "--output-dir")?;
        if std::fs::canonicalize(path).is_ok_and(|p| input_files.contains(&p)) {
            bail!(
                "--output-dir: output {} would replace an input of this run; choose another \
                 directory",
                path.display()
            );
        }
    }
    session.run()?;
    std::fs::create_dir_all(&a.output_dir)
        .with_context(|| format!("creating {}", a.output_dir.display()))?;
    for (i, (&o, path)) in g.outputs.iter().zip(&paths).enumerate() {
        crate::npy::write(path, session.output(i))?;
        println!(
            "{} {:?} → {}",
            g.tensors[o].name,
            g.tensors[o].shape,
            path.display()
        );
    }
    Ok(())
}

/// Each output's file name without `.npy`: its name with characters outside `[A-Za-z0-9_.-]`
/// replaced by `_`; one that would repeat an earlier output's (`a:0` and `a_0`, an output
/// listed twice) or name no file (empty, dots only) takes `-INDEX` or `outputINDEX`, so no
/// output's file replaces another's.
fn file_stems(names: &[&str]) -> Vec<String> {
    let mut stems: Vec<String> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let mut stem = super::sanitize_name(name);
        if stem.chars().all(|c| c == '.') {
            stem = format!("output{i}");
        }
        while stems.contains(&stem) {
            stem = format!("{stem}-{i}");
        }
        stems.push(stem);
    }
    stems
}

#[cfg(test)]
mod tests {
    use super::file_stems;

    #[test]
    fn output_files_never_collide() {
        assert_eq!(
            file_stems(&["probs", "a:0", "a_0", "probs", "", "..", "x/y"]),
            ["probs", "a_0", "a_0-2", "probs-3", "output4", "output5", "x_y"]
        );
    }
}
