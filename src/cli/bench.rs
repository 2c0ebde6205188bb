//! `edgefuse bench`: load time, first run, median and p99 latency, peak memory.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use edgefuse_runtime::{DType, Model, Tensor};
use serde_json::json;

use super::Backend;

#[derive(clap::Args)]
#[command(about = "Measure load time, first-run time, latency percentiles and peak memory")]
pub struct Args {
    /// The compiled model.
    model: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    backend: Backend,
    /// Timed iterations, after the first run and the warm-up.
    #[arg(long, default_value_t = 100, value_parser = super::positive)]
    iters: usize,
    /// Untimed runs for this many milliseconds after the first run (at least one), so the
    /// timed runs see a warmed CPU: a short run measured straight from a cold start is slower
    /// for the first tens of milliseconds on shared VMs (see BENCHMARKS.md).
    #[arg(long, default_value_t = 200)]
    warmup_ms: u64,
    /// CPU threads (default: the machine's cores, at most 8).
    #[arg(long, value_parser = super::positive)]
    threads: Option<usize>,
    /// CUDA precision: fp16 (tensor cores) or fp32 (exact); default fp16 exactly when the
    /// model's weights are stored as f16 (`compile --precision fp16`).
    #[arg(long, value_enum)]
    gpu_precision: Option<super::GpuPrecision>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also time every node and print the slowest, with their share of the run (CUDA: GPU time
    /// per node from CUDA events in a captured graph; the CUDA backend also prints the load's
    /// phases).
    #[arg(long)]
    profile: bool,
    /// CUDA: every node in its own kernel, none fused (`inspect --backend cuda` shows the
    /// fusions), to measure what fusion gains.
    #[arg(long)]
    no_fuse: bool,
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Deterministic pseudo-random inputs: values in [0, 1) for floats, small indices for integers.
fn synthetic_input(dtype: DType, shape: &[usize]) -> Tensor {
    let mut t = Tensor::zeros(dtype, shape);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    match dtype {
        DType::F32 => t
            .as_slice_mut::<f32>()
            .unwrap()
            .iter_mut()
            .for_each(|v| *v = (next() % 1000) as f32 / 1000.0),
        DType::I64 => t
            .as_slice_mut::<i64>()
            .unwrap()
            .iter_mut()
            .for_each(|v| *v = (next() % 10) as i64),
        DType::I32 => t
            .as_slice_mut::<i32>()
            .unwrap()
            .iter_mut()
            .for_each(|v| *v = (next() % 10) as i32),
        _ => t
            .bytes_mut()
            .iter_mut()
            .for_each(|v| *v = (next() % 10) as u8),
    }
    t
}

pub fn run(a: Args) -> Result<()> {
    let t0 = Instant::now();
    let model = Model::load(&a.model)?;
    let mut session = super::open_session_with(
        model.clone(),
        a.backend,
        a.threads,
        a.gpu_precision,
        a.no_fuse,
    )?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let g = model.graph();
    for (i, &id) in g.inputs.iter().enumerate() {
        let t = synthetic_input(g.tensors[id].dtype, &g.tensors[id].shape);
        session.set_input(i, t.view())?;
    }
    let t1 = Instant::now();
    session.run()?;
    let first_ms = t1.elapsed().as_secs_f64() * 1e3;
    let load_to_first_ms = t0.elapsed().as_secs_f64() * 1e3;
    let warm = Instant::now();
    loop {
        session.run()?;
        if warm.elapsed().as_millis() as u64 >= a.warmup_ms {
            break;
        }
    }
    if a.profile {
        session.set_profiling(true)?;
    }
    let mut times = Vec::with_capacity(a.iters);
    for _ in 0..a.iters.max(1) {
        let t = Instant::now();
        session.run()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let (median, p90, p99) = (pct(0.5), pct(0.9), pct(0.99));
    let peak = peak_rss_bytes();
    if a.json {
        let doc = json!({
            "model": a.model.display().to_string(), "backend": session.backend_name(), "on": session.describe(), "threads": session.threads(),
            "iters": times.len(), "load_ms": load_ms, "first_run_ms": first_ms, "load_to_first_ms": load_to_first_ms,
            "median_ms": median, "p90_ms": p90, "p99_ms": p99, "min_ms": times[0],
            "peak_rss_bytes": peak, "arena_bytes": session.arena_bytes(),
            "load_phases_ms": session.load_phases().map(|p| p.iter().map(|(n, ms)| json!([n, ms])).collect::<Vec<_>>()),
        });
        println!("{doc}");
    } else {
        println!(
            "{} on {}, {} iterations",
            a.model.display(),
            session.describe(),
            times.len()
        );
        println!("load {load_ms:.2} ms, first run {first_ms:.2} ms (load to first result {load_to_first_ms:.2} ms)");
        for (name, ms) in session.load_phases().unwrap_or_default() {
            println!("  {ms:>9.2} ms  {name}");
        }
        println!(
            "latency median {median:.3} ms, p90 {p90:.3} ms, p99 {p99:.3} ms, min {:.3} ms",
            times[0]
        );
        if let Some(p) = peak {
            println!(
                "peak resident memory {:.1} MB (arena {:.2} MB)",
                p as f64 / 1e6,
                session.arena_bytes() as f64 / 1e6
            );
        }
    }
    if let Some(p) = session.profile() {
        print_profile(&session, p);
    }
    Ok(())
}

/// The nodes by time spent, slowest first, until 99 % of the total is listed.
fn print_profile(
    session: &edgefuse_runtime::engine::Engine,
    p: &[edgefuse_runtime::cpu::NodeTime],
) {
    let g = session.profile_graph();
    let total: u64 = p.iter().map(|t| t.nanos).sum();
    let runs = p.iter().map(|t| t.calls).max().unwrap_or(0).max(1);
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(p[i].nanos));
    println!(
        "per node (mean over {runs} runs, {:.3} ms in nodes):",
        total as f64 / runs as f64 / 1e6
    );
    println!(
        "  {:>4}  {:>9}  {:>6}  {:<18} {:<32} output",
        "#", "ms", "share", "op", "name"
    );
    let mut shown = 0u64;
    for i in order {
        if shown as f64 >= 0.99 * total as f64 || p[i].nanos == 0 {
            break;
        }
        shown += p[i].nanos;
        let node = &g.nodes[i];
        let out = node
            .outputs
            .first()
            .map(|&o| format!("{:?}", g.tensors[o].shape))
            .unwrap_or_default();
        println!(
            "  {:>4}  {:>9.4}  {:>5.1}%  {:<18} {:<32} {out}",
            i,
            p[i].nanos as f64 / runs as f64 / 1e6,
            100.0 * p[i].nanos as f64 / total.max(1) as f64,
            session.profile_label(i),
            node.name.chars().take(32).collect::<String>(),
        );
    }
}
