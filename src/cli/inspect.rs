//! `edgefuse inspect`: what a `.efm` holds — ops, tensors, precisions, placement, memory, provenance.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::{DType, Model};
use serde_json::json;

#[derive(clap::Args)]
#[command(about = "Show what a .efm file holds: ops, tensors, precision, memory, provenance")]
pub struct Args {
    /// The compiled model.
    model: PathBuf,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// Show each node's placement on this backend: `cuda` lists which nodes have CUDA kernels
    /// and which fall back to the CPU (decided from the file alone; no GPU needed).
    #[arg(long, value_enum, default_value = "cpu")]
    backend: super::Backend,
    /// With `--backend cuda`: the precision to show placement for (default: fp16 exactly when
    /// the weights are stored as f16); each node's type is then the one it computes in.
    #[arg(long, value_enum)]
    gpu_precision: Option<super::GpuPrecision>,
}

/// Per node: where it runs on `backend`, why when a CUDA run keeps it on the CPU, the float
/// dtype a CUDA run computes it in, and what of it another node's CUDA kernel runs (fused);
/// plus the CUDA precision, when CUDA is shown.
type Placed = (Vec<NodePlace>, Option<&'static str>);

#[derive(Clone)]
struct NodePlace {
    on: &'static str,
    why: Option<String>,
    dtype: Option<DType>,
    /// The node whose kernel runs this one.
    inside: Option<usize>,
    /// The node whose kernel runs this one's bias and activation.
    epilogue_in: Option<usize>,
    /// Whether this one's bias is added by its readers.
    bias_carried: bool,
}

fn placements(
    g: &edgefuse_runtime::ir::Graph,
    backend: super::Backend,
    gpu_precision: Option<super::GpuPrecision>,
) -> Result<Placed> {
    let cuda = match backend {
        super::Backend::Cpu => false,
        super::Backend::Cuda => true,
        super::Backend::Auto => edgefuse_runtime::engine::cuda_status().is_ok(),
    };
    if !cuda {
        let cpu = NodePlace {
            on: "cpu",
            why: None,
            dtype: None,
            inside: None,
            epilogue_in: None,
            bias_carried: false,
        };
        return Ok((vec![cpu; g.nodes.len()], None));
    }
    #[cfg(feature = "cuda")]
    {
        use edgefuse_runtime::cuda::{precision, Placement, Precision};
        let p = match gpu_precision {
            Some(super::GpuPrecision::Fp16) => Precision::F16,
            Some(super::GpuPrecision::Fp32) => Precision::F32,
            None => Precision::of(g),
        };
        let nodes = precision::placements(g, p)
            .into_iter()
            .map(|p| {
                let (on, why) = match p.placement {
                    Placement::Gpu => ("cuda", None),
                    Placement::Cpu(why) => ("cpu", Some(why)),
                };
                NodePlace {
                    on,
                    why,
                    dtype: p.dtype,
                    inside: p.inside,
                    epilogue_in: p.epilogue_in,
                    bias_carried: p.bias_carried,
                }
            })
            .collect();
        Ok((nodes, Some(p.name())))
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = gpu_precision;
        anyhow::bail!(
            "--backend cuda: this build of edgefuse has no CUDA backend (build with --features cuda)"
        )
    }
}

pub fn run(a: Args) -> Result<()> {
    let model = Model::load(&a.model)?;
    let g = model.graph();
    let meta = model.meta();
    let plan =
        Session::new(model.clone(), SessionOptions::with_threads(1)).map(|s| s.plan().clone());
    let (placed, cuda_precision) = placements(g, a.backend, a.gpu_precision)?;
    let cuts =
        edgefuse_runtime::cpu::batch_cut_thread_counts(g, edgefuse_runtime::cpu::max_threads());
    let mut op_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &g.nodes {
        *op_counts.entry(n.op.name()).or_default() += 1;
    }
    let io = |ids: &[usize]| -> Vec<serde_json::Value> {
        ids.iter().map(|&i| json!({"name": g.tensors[i].name, "dtype": g.tensors[i].dtype, "shape": g.tensors[i].shape})).collect()
    };
    let nodes: Vec<serde_json::Value> = g
        .nodes
        .iter()
        .enumerate()
        .map(|(k, n)| {
            let out = &g.tensors[n.outputs[0]];
            json!({"index": k, "name": n.name, "op": n.op.name(), "backend": placed[k].on, "fallback_reason": placed[k].why,
                   "precision": placed[k].dtype.unwrap_or(out.dtype), "fused_into": placed[k].inside,
                   "epilogue_in": placed[k].epilogue_in, "bias_carried": placed[k].bias_carried, "output_shape": out.shape, "attrs": n.op})
        })
        .collect();
    let (arena, unshared) = match &plan {
        Ok(p) => (Some(p.arena_bytes()), Some(p.unshared_bytes)),
        Err(_) => (None, None),
    };
    if a.json {
        let doc = json!({
            "file": a.model.display().to_string(),
            "format_version": format!("{}.{}", model.version().0, model.version().1),
            "file_bytes": model.file_len(),
            "weight_bytes": model.weights_len(),
            "arena_bytes": arena,
            "arena_bytes_without_reuse": unshared,
            "cuda_precision": cuda_precision,
            "inputs": io(&g.inputs),
            "outputs": io(&g.outputs),
            "op_counts": op_counts,
            "nodes": nodes,
            "provenance": meta.provenance,
            "labels": meta.labels.as_ref().map(|l| l.len()),
            "preprocess": meta.preprocess.as_ref().map(|p| p.to_string()),
            "plan_error": plan.as_ref().err().map(|e| e.to_string()),
            "batch_cut_threads": cuts.as_ref().ok(),
            "batch_cut_refused": cuts.as_ref().err(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let p = &meta.provenance;
    println!(
        "{}  (.efm {}.{}, {:.2} MB, weights {:.2} MB)",
        a.model.display(),
        model.version().0,
        model.version().1,
        model.file_len() as f64 / 1e6,
        model.weights_len() as f64 / 1e6
    );
    println!(
        "source     {} (sha256 {}…)",
        p.source,
        &p.source_sha256.get(..16).unwrap_or("")
    );
    println!("compiler   {}, precision {}", p.compiler, p.precision);
    for &i in &g.inputs {
        println!(
            "input      {} {} {:?}",
            g.tensors[i].name, g.tensors[i].dtype, g.tensors[i].shape
        );
    }
    for &o in &g.outputs {
        println!(
            "output     {} {} {:?}",
            g.tensors[o].name, g.tensors[o].dtype, g.tensors[o].shape
        );
    }
    match &plan {
        Ok(pl) => println!(
            "memory     arena {:.2} MB (without reuse {:.2} MB), scratch {:.2} MB",
            pl.arena_bytes() as f64 / 1e6,
            pl.unshared_bytes as f64 / 1e6,
            pl.scratch_bytes as f64 / 1e6
        ),
        Err(e) => println!("memory     cannot plan on this CPU backend: {e}"),
    }
    match &cuts {
        Ok(t) => {
            let t: Vec<String> = t.iter().map(usize::to_string).collect();
            println!(
                "threads    the batch is cut between {} CPU threads (each runs the whole graph on its share); other counts split every layer",
                t.join(", ")
            );
        }
        Err(why) => println!("threads    every layer split between the CPU threads ({why})"),
    }
    if !p.rules_fired.is_empty() {
        let rules: Vec<String> = p
            .rules_fired
            .iter()
            .map(|(r, n)| format!("{r} ×{n}"))
            .collect();
        println!("rewrites   {}", rules.join(", "));
    }
    if let Some(c) = &p.calibration {
        println!(
            "int8       {} calibration on {} samples; {} of {} layers int8",
            c.method, c.samples, c.layers_int8, c.layers_total
        );
        if let (Some(m), Some(f), Some(q)) = (&c.metric, c.fp32, c.int8) {
            println!(
                "accuracy   {m} on {} samples: fp32 {f:.2}, int8 {q:.2} (drop {:.2}{})",
                c.validate_samples,
                f - q,
                c.max_drop
                    .map(|d| format!(", allowed {d}"))
                    .unwrap_or_default()
            );
        }
        for (layer, why) in &c.fallback {
            println!("kept fp32  {layer}: {why}");
        }
    }
    let f16 = g
        .tensors
        .iter()
        .filter(|t| t.weight.is_some_and(|w| w.stored.is_some()))
        .count();
    if f16 > 0 {
        println!("weights    {f16} tensors stored as f16, widened to f32 on the CPU, used as f16 by CUDA");
    }
    if let Some(p) = &meta.preprocess {
        match &p.preset {
            Some(name) => println!("preprocess {name}: {p}"),
            None => println!("preprocess {p}"),
        }
    }
    if let Some(l) = &meta.labels {
        println!(
            "labels     {} (first: {})",
            l.len(),
            l.first().map(String::as_str).unwrap_or("")
        );
    }
    let counts: Vec<String> = op_counts.iter().map(|(o, n)| format!("{o} ×{n}")).collect();
    if a.backend != super::Backend::Cpu {
        let on_cpu = placed.iter().filter(|p| p.on == "cpu").count();
        println!(
            "placement  {} of {} nodes on cuda, {on_cpu} on the cpu{}",
            g.nodes.len() - on_cpu,
            g.nodes.len(),
            cuda_precision
                .map(|p| format!(", cuda precision {p}"))
                .unwrap_or_default()
        );
    }
    println!("ops        {} nodes: {}", g.nodes.len(), counts.join(", "));
    println!();
    println!(
        "{:>4}  {:<18} {:<28} {:<5} {:<5} output",
        "#", "op", "name", "on", "type"
    );
    for (k, n) in g.nodes.iter().enumerate() {
        let out = &g.tensors[n.outputs[0]];
        let name: String = n.name.chars().take(28).collect();
        println!(
            "{k:>4}  {:<18} {:<28} {:<5} {:<5} {:?}{}",
            n.op.name(),
            name,
            placed[k].on,
            placed[k].dtype.unwrap_or(out.dtype).name(),
            out.shape,
            match (&placed[k].why, placed[k].inside, placed[k].epilogue_in) {
                (Some(why), _, _) => format!("  ({why})"),
                (None, Some(a), _) => format!("  (inside #{a}'s kernel)"),
                (None, None, Some(r)) => format!("  (bias and activation in #{r}'s kernel)"),
                (None, None, None) if placed[k].bias_carried => {
                    "  (bias added by its readers)".to_string()
                }
                (None, None, None) => String::new(),
            }
        );
    }
    Ok(())
}
