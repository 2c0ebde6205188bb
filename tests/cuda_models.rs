//! The CUDA device check: every reference model on the GPU against onnxruntime's outputs.
//! fp32 within `1e-4 · max(1, max|ref|)`; fp16 with the same top-1 per row and within
//! `1e-2 · max(1, max|ref|)`, and fp16 really computing in f16 (the session's precision and
//! per-node dtypes are checked and printed); fp32 files also run in fp16 on request. Runs
//! through the library (no CLI), so `scripts/gpu-check.sh` can carry this executable to a GPU
//! machine without cargo: models then come from
//! `$EDGEFUSE_GPU_CHECK_DIR/models/<model>.{fp32,fp16}.efm` and refs from
//! `$EDGEFUSE_GPU_CHECK_DIR/refs/<model>/`. Without that variable, fp32 and fp16 models are
//! compiled from ../shared. Without a usable GPU every GPU test says it was skipped; the fp16
//! plans (what runs in f16, where the casts go) are checked without one.

#![cfg(feature = "cuda")]

mod common;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::*;
use edgefuse_runtime::cuda::{precision, CudaOptions, CudaSession, Precision};
use edgefuse_runtime::ir::Op;
use edgefuse_runtime::{DType, Model};

#[path = "common/counting.rs"]
mod counting;
use counting::{Counting, ALLOCS, COUNTING};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// GPU-check folder (models and refs), if one is given.
fn check_dir() -> Option<PathBuf> {
    std::env::var_os("EDGEFUSE_GPU_CHECK_DIR").map(PathBuf::from)
}

fn gpu_usable() -> bool {
    match edgefuse_runtime::engine::cuda_status() {
        Ok(gpu) => {
            eprintln!("GPU: {gpu}");
            true
        }
        Err(why) if std::env::var("EDGEFUSE_REQUIRE_GPU").is_ok_and(|v| v == "1") => {
            panic!("EDGEFUSE_REQUIRE_GPU=1 but no usable GPU: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: no usable GPU ({why})");
            false
        }
    }
}

/// (model file, refs root) for `model` at `precision`, or None (after saying why).
fn locate(model: &str, precision: &str) -> Option<(PathBuf, PathBuf)> {
    if let Some(dir) = check_dir() {
        let efm = dir.join("models").join(format!("{model}.{precision}.efm"));
        if !efm.exists() {
            eprintln!(
                "SKIPPED: {} not carried (see {}/MANIFEST)",
                efm.display(),
                dir.display()
            );
            return None;
        }
        return Some((efm, dir));
    }
    let models = models_dir()?;
    if precision == "fp32" {
        return Some((compiled(&models, model), models));
    }
    Some((compiled_fp16(&models, model)?, models))
}

/// `model` compiled with `--precision fp16` into the scratch folder, or None (after saying
/// why) when the compiler refuses it.
fn compiled_fp16(models: &std::path::Path, model: &str) -> Option<PathBuf> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let out = scratch_dir().join(format!("{model}.fp16.efm"));
    if out.exists() {
        return Some(out);
    }
    let r = refs(models, model);
    let mut cmd = edgefuse();
    cmd.arg("compile")
        .arg(models.join(format!("{model}.onnx")))
        .arg("-o")
        .arg(&out)
        .args(["--precision", "fp16"]);
    for (name, _, shape) in &r.inputs {
        let s: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        cmd.arg("--input").arg(format!("{name}={}", s.join("x")));
    }
    let o = cmd.output().unwrap();
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        eprintln!("SKIPPED: {model} does not compile to fp16: {}", err.trim());
        return None;
    }
    Some(out)
}

fn argmax_rows(v: &[f32], row: usize) -> Vec<usize> {
    v.chunks(row.max(1))
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &x)| if x > b.1 { (i, x) } else { b },
                )
                .0
        })
        .collect()
}

/// Runs `model` compiled at `precision` (`fp32` or `fp16`, the file), on the GPU at `run_as`
/// (None: the session's default, which follows the file's stored weights).
fn check(model: &str, precision: &str, run_as: Option<Precision>) {
    if !gpu_usable() {
        return;
    }
    let Some((efm, refs_root)) = locate(model, precision) else {
        return;
    };
    let r = refs(&refs_root, model);
    let m: Arc<Model> = Model::load(&efm).unwrap();
    let opts = CudaOptions {
        precision: run_as,
        ..CudaOptions::default()
    };
    let mut s = CudaSession::new(m.clone(), &opts).unwrap();
    // By default, fp16 exactly when the file stores f16 weights (an int8 file compiled with
    // `--precision fp16` has none, and runs as compiled).
    let want = run_as.unwrap_or(Precision::of(m.graph()));
    if precision == "fp16" && run_as.is_none() && want == Precision::F32 {
        eprintln!("{model} fp16: the file stores no f16 weights; it runs in fp32");
    }
    assert_eq!(
        s.precision(),
        want,
        "{model} {precision}: session precision"
    );
    let label = format!("{model} {precision} (ran as {})", s.precision().name());
    let on_cpu: Vec<String> = m
        .graph()
        .nodes
        .iter()
        .zip(s.placements())
        .filter(|(_, p)| !p.is_gpu())
        .map(|(n, p)| format!("{} ({p:?})", n.name))
        .collect();
    let count = |d: DType| s.node_dtypes().iter().filter(|&&x| x == Some(d)).count();
    let (f16_nodes, f32_nodes) = (count(DType::F16), count(DType::F32));
    let fused = s.absorbed().iter().flatten().count();
    let casts = s.device_graph().nodes.len() + fused - m.graph().nodes.len();
    eprintln!(
        "{label}: {} nodes ({f16_nodes} compute in f16, {f32_nodes} in f32, {casts} casts \
         inserted, {fused} fused into the kernel before them), on the CPU: {on_cpu:?}",
        m.graph().nodes.len()
    );
    if want == Precision::F16 {
        let kept: Vec<&str> = m
            .graph()
            .nodes
            .iter()
            .zip(s.node_dtypes())
            .filter(|(_, d)| **d == Some(DType::F32))
            .map(|(n, _)| n.name.as_str())
            .collect();
        eprintln!("{label}: kept in f32: {kept:?}");
        assert!(f16_nodes > 0, "{label}: no node computes in f16");
    }
    // Never tighter than the CPU's own golden bound (an int8 model's refs simulate it in f32).
    let golden = CASES
        .iter()
        .find(|c| c.model == model)
        .map_or(0.0, |c| c.tol);
    let tol = golden.max(if s.precision() == Precision::F32 {
        1e-4
    } else {
        1e-2
    });
    // The int8 ops mirror the CPU kernels' arithmetic: in fp32 the GPU must give the CPU's answer.
    let int8 = m.graph().nodes.iter().any(|n| n.op.name().starts_with('Q'));
    let cpu_outputs = (int8 && s.precision() == Precision::F32).then(|| {
        let mut c = edgefuse_runtime::cpu::Session::new(m.clone(), Default::default()).unwrap();
        for (name, file, _) in &r.inputs {
            let i = m.input_index(name).unwrap();
            c.set_input(i, edgefuse::npy::read(file).unwrap().view())
                .unwrap();
        }
        c.run().unwrap();
        (0..m.graph().outputs.len())
            .map(|o| {
                let v = c.output(o);
                edgefuse_runtime::Tensor::from_bytes(v.dtype, v.shape, v.data)
                    .unwrap()
                    .to_f32_vec()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    });
    for (name, file, _) in &r.inputs {
        let t = edgefuse::npy::read(file).unwrap();
        let i = m
            .input_index(name)
            .unwrap_or_else(|| panic!("{model}: no input {name}"));
        let t = if m.graph().tensors[m.graph().inputs[i]].dtype == DType::F16 {
            let v: Vec<half::f16> = t
                .to_f32_vec()
                .unwrap()
                .into_iter()
                .map(half::f16::from_f32)
                .collect();
            edgefuse_runtime::Tensor::from_vec(&t.shape, v).unwrap()
        } else {
            t
        };
        s.set_input(i, t.view()).unwrap();
    }
    s.run().unwrap();
    // Again, counting: a replayed graph must give the same answer and allocate nothing. (Tests
    // run with --test-threads=1 in gpu-check, so other tests do not count here.)
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..20 {
        s.run().unwrap();
    }
    COUNTING.store(false, Ordering::SeqCst);
    let allocs = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(
        allocs, 0,
        "{label}: {allocs} host allocations in 20 GPU inferences"
    );
    for (name, file, shape) in &r.outputs {
        let want = edgefuse::npy::read(file).unwrap();
        let o = m
            .output_index(name)
            .unwrap_or_else(|| panic!("{model}: no output {name}"));
        let got = s.output(o);
        assert_eq!(got.shape, &shape[..], "{model} output {name} shape");
        let got = edgefuse_runtime::Tensor::from_bytes(got.dtype, got.shape, got.data)
            .unwrap()
            .to_f32_vec()
            .unwrap();
        let want = want.to_f32_vec().unwrap();
        if let Some(cpu) = &cpu_outputs {
            let (d, _) = max_diff(&got, &cpu[o]);
            eprintln!("{label} {name}: max |GPU - CPU| {d:.3e} (int8 ops, same arithmetic)");
            assert!(
                d <= 1e-6,
                "{label} {name}: the GPU's int8 result differs from the CPU's by {d:e}"
            );
        }
        let (d, mx) = max_diff(&got, &want);
        let bound = tol * mx.max(1.0);
        eprintln!("{label} {name}: max |diff| {d:.3e}, bound {bound:.3e}");
        assert!(
            d <= bound,
            "{label} output {name}: max |diff| {d:e} exceeds {bound:e}"
        );
        if s.precision() == Precision::F16 {
            let row = *shape.last().unwrap_or(&1);
            assert_eq!(
                argmax_rows(&got, row),
                argmax_rows(&want, row),
                "{label} {name}: top-1 differs"
            );
        }
    }
}

macro_rules! cases {
    ($($model:ident),*) => {
        mod fp32 { $( #[test] fn $model() { super::check(stringify!($model), "fp32", None); } )* }
        mod fp16 { $( #[test] fn $model() { super::check(stringify!($model), "fp16", None); } )* }
        /// An fp32 file run in fp16 on request (`CudaOptions::precision`).
        mod fp32_as_fp16 {
            $( #[test] fn $model() {
                super::check(stringify!($model), "fp32", Some(super::Precision::F16));
            } )*
        }
    };
}

cases!(
    seed_cnn_mnist,
    seed_cnn_fashion,
    seed_lstm_textgen,
    efficientnet_lite0,
    mobilenet_v2_int8_qdq,
    silero_vad_16k_sequence,
    ddddocr_crnn
);

/// Asserts `ops::build_gate` accepts every GPU node of `l`'s device graph.
fn passes_the_build_gate(l: &precision::Lowered, label: &str) {
    let g = &l.graph;
    for (k, n) in g.nodes.iter().enumerate() {
        if !l.node_origin[k].is_none_or(|j| l.placements[j].is_gpu()) {
            continue;
        }
        let facts = |ids: &[usize]| -> Vec<edgefuse_runtime::ir::Fact> {
            ids.iter().map(|&t| g.tensors[t].fact()).collect()
        };
        let gate = edgefuse_runtime::cuda::ops::build_gate(
            &n.op,
            &facts(&n.inputs),
            &facts(&n.outputs),
            l.fused[k].as_ref(),
            l.prologue[k].as_ref(),
        );
        if let Err(why) = gate {
            panic!(
                "{label}: device node {k} ({}) refused at build: {why}",
                n.name
            );
        }
    }
}

/// The fp16 plan of every reference model, decided without a GPU (what a GPU run will
/// compute in, and where the casts go): EfficientNet-Lite0, the fp16 speed target, runs whole
/// in f16 on the GPU with one cast in and one out.
#[test]
fn fp16_plans_of_the_reference_models() {
    let Some(models) = models_dir() else { return };
    for model in [
        "seed_cnn_mnist",
        "seed_lstm_textgen",
        "efficientnet_lite0",
        "mobilenet_v2_int8_qdq",
        "silero_vad_16k_sequence",
        "ddddocr_crnn",
    ] {
        let Some(efm) = compiled_fp16(&models, model) else {
            continue;
        };
        let m = Model::load(&efm).unwrap();
        let g = m.graph();
        if Precision::of(g) != Precision::F16 {
            eprintln!("{model}: no f16 weights in its fp16 file (int8); fp32 by default");
        }
        let l = precision::lower(g, Precision::F16);
        // Every node the lowerings make is one its kernel's build accepts (else a GPU would
        // quietly send it back to f32, unfused, or to the CPU).
        passes_the_build_gate(&l, &format!("{model} fp16"));
        passes_the_build_gate(
            &precision::lower(g, Precision::F32),
            &format!("{model} fp32"),
        );
        let casts = l.node_origin.iter().filter(|o| o.is_none()).count();
        // Per op and where it runs: the nodes not computing in f16 on the GPU.
        let mut kept = std::collections::BTreeMap::<String, usize>::new();
        for ((n, d), p) in g.nodes.iter().zip(&l.node_dtype).zip(&l.placements) {
            if *d != Some(DType::F16) || !p.is_gpu() {
                let dt = d.map_or("int".to_string(), |d| d.name().to_string());
                *kept
                    .entry(format!("{} {dt} on {}", n.op.name(), p.name()))
                    .or_default() += 1;
            }
        }
        eprintln!(
            "{model} fp16 plan: {} nodes, {casts} casts; not f16 on the GPU: {kept:?}",
            g.nodes.len()
        );
        for (k, n) in l.graph.nodes.iter().enumerate() {
            if l.node_origin[k].is_none() {
                assert!(matches!(n.op, Op::Cast(_)), "{model}: inserted {}", n.name);
            }
        }
        // The API boundary: the model's dtypes, but f16 on the device where the host converts
        // (small inputs and outputs, `precision::HOST_CAST_MAX`).
        let io = |ids: &[usize], g: &edgefuse_runtime::ir::Graph, host: &[bool]| -> Vec<DType> {
            ids.iter()
                .zip(host)
                .map(|(&t, &h)| if h { DType::F32 } else { g.tensors[t].dtype })
                .collect()
        };
        let none = vec![false; 16];
        assert_eq!(
            io(&l.graph.inputs, &l.graph, &l.host_inputs),
            io(&g.inputs, g, &none),
            "{model}"
        );
        assert_eq!(
            io(&l.graph.outputs, &l.graph, &l.host_outputs),
            io(&g.outputs, g, &none),
            "{model}"
        );
        for (&t, &h) in l
            .graph
            .inputs
            .iter()
            .zip(&l.host_inputs)
            .chain(l.graph.outputs.iter().zip(&l.host_outputs))
        {
            assert!(!h || l.graph.tensors[t].dtype == DType::F16, "{model}");
        }
        eprintln!(
            "{model} fp16: converted on the host: inputs {:?}, outputs {:?}",
            l.host_inputs, l.host_outputs
        );
        if model == "efficientnet_lite0" {
            assert!(kept.is_empty(), "{model}: {kept:?}");
            // No cast kernel: the input (150528 values) narrowed by the stem's pre-padding
            // (`Prologue::narrow`), the output widened by the host.
            assert_eq!(casts, 0, "{model}: edge casts");
            let stem = l.node_origin.iter().position(|&o| o == Some(0)).unwrap();
            assert!(
                l.prologue[stem].as_ref().is_some_and(|p| p.narrow),
                "{model}"
            );
            assert_eq!(l.host_outputs, [true], "{model}");
            // Fifteen of its sixteen projections (1×1, bias only) run on cuDNN and leave their
            // bias to their readers (block 5's, 3.8 M products, runs on the direct kernel, the
            // bias inside), and the nine with a residual add to it in place.
            let carried = l.bias_carried.iter().filter(|&&c| c).count();
            assert_eq!(carried, 15, "{model}: biases carried");
            assert_eq!(l.in_place.len(), 9, "{model}: in-place residuals");
            let plan =
                edgefuse_runtime::cpu::plan::plan_in_place(&l.graph, 0, &l.in_place).unwrap();
            let shared = l
                .in_place
                .iter()
                .filter(|&&(o, i)| plan.slots[o] == plan.slots[i])
                .count();
            assert_eq!(
                shared, 9,
                "{model}: residuals sharing memory with the output"
            );
            // What the device holds: the f16 weights, not also their f32 originals.
            let consts = l.constants(|o| m.constant(o)).unwrap();
            let bytes: usize = consts.iter().flatten().map(|c| c.len()).sum();
            let f32_bytes: usize = g
                .tensors
                .iter()
                .filter(|t| t.weight.is_some())
                .map(|t| t.byte_len())
                .sum();
            eprintln!(
                "{model} fp16: {bytes} bytes of constants on the device ({f32_bytes} in f32)"
            );
            assert!(
                bytes * 100 <= f32_bytes * 51,
                "{model}: {bytes} of {f32_bytes}"
            );
        }
    }
}

/// Carried biases (`cuda::carry`) computed from the model's constants give the model's values:
/// the f32 device graph with every bias-only convolution's bias carried, run by the CPU's
/// kernels, against onnxruntime's outputs. (On the GPU only cuDNN's convolutions carry them;
/// here every one that can does, so the arithmetic is checked without a GPU.)
#[test]
fn carried_biases_keep_the_reference_outputs() {
    let Some(models) = models_dir() else { return };
    for model in [
        "efficientnet_lite0",
        "ddddocr_crnn",
        "silero_vad_16k_sequence",
    ] {
        let m = Model::load(compiled(&models, model)).unwrap();
        let g = m.graph();
        let mut l = precision::lower_fusing(g, Precision::F32, &[], &vec![true; g.nodes.len()]);
        edgefuse_runtime::cuda::carry::carry_biases_where(&mut l, &[], |_, _, _| true);
        let carried = l.bias_carried.iter().filter(|&&c| c).count();
        eprintln!("{model}: {carried} biases carried");
        if model == "efficientnet_lite0" {
            assert_eq!(carried, 16, "{model}");
        }
        let cm = l.cpu_model(&m).unwrap();
        let r = refs(&models, model);
        let mut c = edgefuse_runtime::cpu::Session::new(cm.clone(), Default::default()).unwrap();
        for (name, file, _) in &r.inputs {
            let i = cm.input_index(name).unwrap();
            c.set_input(i, edgefuse::npy::read(file).unwrap().view())
                .unwrap();
        }
        c.run().unwrap();
        for (o, (_, file, _)) in r.outputs.iter().enumerate() {
            let want = edgefuse::npy::read(file).unwrap().to_f32_vec().unwrap();
            let v = c.output(o);
            let got = edgefuse_runtime::Tensor::from_bytes(v.dtype, v.shape, v.data)
                .unwrap()
                .to_f32_vec()
                .unwrap();
            let scale = want.iter().fold(1f32, |a, x| a.max(x.abs()));
            let d = want
                .iter()
                .zip(&got)
                .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
            eprintln!(
                "{model} output {o}: max |diff| {d:.2e} (bound {:.2e})",
                1e-4 * scale
            );
            assert!(d <= 1e-4 * scale, "{model} output {o}: {d}");
        }
    }
}

/// `--backend cuda` without a GPU is one line on stderr and a non-zero exit, never a panic;
/// `--backend auto` runs on the CPU and says so.
#[test]
fn backend_flags_without_a_gpu() {
    if edgefuse_runtime::engine::cuda_status().is_ok() {
        eprintln!("SKIPPED: a GPU is present; this test is for machines without one");
        return;
    }
    let Some(models) = models_dir() else { return };
    let efm = compiled(&models, "seed_cnn_mnist");
    let o = edgefuse()
        .arg("bench")
        .arg(&efm)
        .args(["--backend", "cuda", "--iters", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("--backend cuda"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let o = edgefuse()
        .arg("bench")
        .arg(&efm)
        .args(["--backend", "auto", "--iters", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("backend: cpu"), "{err}");
}

/// The host's share of an fp16 CUDA load, no GPU needed: mapping and checking the file
/// (`Model::load`), the lowering, and the device's constants prepared (`Lowered::constants`),
/// medians of 7, printed. Not a timed test: `cargo test --profile ci --features cuda --test
/// cuda_models -- --ignored host_side_load_costs --nocapture`.
#[test]
#[ignore]
fn host_side_load_costs() {
    let Some(models) = models_dir() else { return };
    let Some(efm) = compiled_fp16(&models, "efficientnet_lite0") else {
        return;
    };
    let mut times: Vec<[f64; 3]> = Vec::new();
    for _ in 0..7 {
        let t = std::time::Instant::now();
        let m = Model::load(&efm).unwrap();
        let load = t.elapsed().as_secs_f64() * 1e3;
        let t = std::time::Instant::now();
        let l = precision::lower(m.graph(), Precision::F16);
        let lower = t.elapsed().as_secs_f64() * 1e3;
        let t = std::time::Instant::now();
        let c = l.constants(|o| m.stored_constant(o)).unwrap();
        let consts = t.elapsed().as_secs_f64() * 1e3;
        assert!(c.iter().flatten().count() > 0);
        times.push([load, lower, consts]);
    }
    let median = |i: usize| {
        let mut v: Vec<f64> = times.iter().map(|t| t[i]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    eprintln!(
        "efficientnet_lite0 fp16, host side of a CUDA load (medians of 7): Model::load {:.2} ms, \
         lowering {:.2} ms, device constants {:.2} ms",
        median(0),
        median(1),
        median(2)
    );
}
