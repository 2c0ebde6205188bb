//! Per-node CPU timing of a compiled model, without the compiler in the build: the quick loop
//! for kernel work. `cargo run --release -p edgefuse-runtime --example profile_efm -- M.efm [THREADS] [ITERS] [TOP]`
//! (`edgefuse bench --profile` prints the same table from the full CLI). `EDGEFUSE_BATCH_SPLIT=0`
//! turns the batch split off (see `cpu::SessionOptions::batch_split`).

use std::sync::Arc;

use std::time::Instant;

use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::{Model, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        return Err("usage: profile_efm MODEL.efm [THREADS] [ITERS] [TOP]".into());
    };
    let threads = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let iters: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(50);
    let top: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(12);
    let model: Arc<Model> = Model::load(path)?;
    // `EDGEFUSE_BATCH_SPLIT=0`: split every layer between the threads, never the batch.
    let opts = SessionOptions {
        batch_split: std::env::var("EDGEFUSE_BATCH_SPLIT").map_or(true, |v| v != "0"),
        ..SessionOptions::with_threads(threads)
    };
    let mut s = Session::new(model.clone(), opts)?;
    let g = model.graph();
    for (i, &id) in g.inputs.iter().enumerate() {
        let t = Tensor::zeros(g.tensors[id].dtype, &g.tensors[id].shape);
        s.set_input(i, t.view())?;
    }
    s.run()?;
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        s.run()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{path}: {threads} thread(s), batch in {} part(s), median {:.3} ms, min {:.3} ms",
        s.parts(),
        times[iters / 2],
        times[0]
    );
    s.set_profiling(true);
    for _ in 0..iters {
        s.run()?;
    }
    let p = s.profile().unwrap_or(&[]);
    let total: u64 = p.iter().map(|t| t.nanos).sum();
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(p[i].nanos));
    for &i in order.iter().take(top) {
        let n = &g.nodes[i];
        let out = n
            .outputs
            .first()
            .map(|&o| format!("{:?}", g.tensors[o].shape))
            .unwrap_or_default();
        println!(
            "  {:>4} {:>8.4} ms {:>5.1}%  {:<10} {out} {}",
            i,
            p[i].nanos as f64 / iters as f64 / 1e6,
            100.0 * p[i].nanos as f64 / total.max(1) as f64,
            n.op.name(),
            n.name
        );
    }
    Ok(())
}
