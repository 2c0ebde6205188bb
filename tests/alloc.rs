//! No heap allocation per inference: a counting global allocator around `Session::run`.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::{Model, Tensor};

#[path = "common/counting.rs"]
mod counting;
use counting::{Counting, ALLOCS, COUNTING};

/// More than rayon's injector block (63 jobs), so a per-run queue allocation would show.
const RUNS: usize = 70;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counter is the process's: the tests here take turns, or one's compile would count in
/// the other's window.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn inference_allocates_nothing() {
    let _turn = one_at_a_time();
    let Some(models) = models_dir() else { return };
    // Sessions with a thread pool stay alive (see `outlive_the_process`): a dropped pool's
    // threads exit in the background, and their exit could allocate inside the next model's
    // counting window, which is not an inference's allocation.
    let mut keep = Vec::new();
    for case in CASES {
        let efm = compiled(&models, case.model);
        let r = refs(&models, case.model);
        let inputs: Vec<Tensor> = r
            .inputs
            .iter()
            .map(|(_, f, _)| edgefuse::npy::read(f).unwrap())
            .collect();
        check_runs(case.model, &efm, &inputs, &mut keep);
    }
    // Int8 LSTM weights: QLstm's dynamic quantization and QGather run from the plan's scratch.
    let r = refs(&models, "seed_lstm_textgen");
    let efm = scratch_dir().join("seed_lstm_textgen-alloc-int8.efm");
    let o = edgefuse()
        .arg("compile")
        .arg(models.join("seed_lstm_textgen.onnx"))
        .arg("-o")
        .arg(&efm)
        .args(["--precision", "int8", "--calibrate"])
        .arg(&r.inputs[0].1)
        .arg("--input")
        .arg(format!(
            "{}={}",
            r.inputs[0].0,
            r.inputs[0]
                .2
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x")
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let inputs = vec![edgefuse::npy::read(&r.inputs[0].1).unwrap()];
    check_runs("seed_lstm_textgen int8", &efm, &inputs, &mut keep);
    outlive_the_process(keep);
}

/// Sessions with a thread pool are never dropped: the next test's counting window opens as soon
/// as this one returns, and a dropped pool's threads exiting in the background (crossbeam's
/// epoch hands each thread's garbage to the global queue as it exits) allocate inside it — once
/// in about a dozen runs.
fn outlive_the_process(sessions: Vec<Session>) {
    std::mem::forget(sessions);
}

/// Runs `efm` with 1 and 2 threads and asserts that `RUNS` inferences allocate nothing.
fn check_runs(name: &str, efm: &std::path::Path, inputs: &[Tensor], keep: &mut Vec<Session>) {
    for threads in [1, 2] {
        let model = Model::load(efm).unwrap();
        let mut s = Session::new(model, SessionOptions::with_threads(threads)).unwrap();
        for (i, t) in inputs.iter().enumerate() {
            s.set_input(i, t.view()).unwrap();
        }
        s.run().unwrap(); // warm-up: thread pools and lazily initialised state
        s.run().unwrap();
        ALLOCS.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        for _ in 0..RUNS {
            s.run().unwrap();
        }
        COUNTING.store(false, Ordering::SeqCst);
        let n = ALLOCS.load(Ordering::SeqCst);
        eprintln!(
            "{name} with {threads} thread(s), batch in {} part(s): {n} allocations in {RUNS} runs",
            s.parts()
        );
        assert_eq!(
            n, 0,
            "{name} allocated {n} times in {RUNS} inferences with {threads} thread(s)"
        );
        if threads > 1 {
            keep.push(s);
        }
    }
}

/// Ops no reference model has, from the operator cases of `tests/ops` (compiled here, zero
/// inputs): normalisations, ArgMax, TopK (its sort in scratch), CumSum, GatherElements, Tile and
/// DepthToSpace, ReduceLogSumExp (its sums in scratch), integer ReduceSumSquare (its exact sums
/// in scratch), linear and cubic Resize, PRelu, Selu, Xor, DynamicQuantizeMatMul (X quantized in
/// scratch; one row, a few, and panels of many), DynamicQuantizeConv (X quantized in scratch;
/// 1×1, batched, shifted, depthwise, an activation after the epilogue).
#[cfg(feature = "compiler")]
#[test]
fn newer_operators_allocate_nothing() {
    use edgefuse_compiler::{compile_onnx, CompileOptions};
    let _turn = one_at_a_time();
    let dir = repo_root().join("tests/ops");
    let mut keep = Vec::new();
    for case in [
        "normalization/layernorm_broadcast_scale",
        "normalization/instancenorm_4d",
        "normalization/lpnorm_p1_axis0",
        "indexing/argmax_axis1",
        "indexing/topk_ties_lower_index_first",
        "indexing/cumsum_axis1_excl1_rev1",
        "indexing/gatherelements_axis2_fed_int32",
        "indexing/tile_some_axes",
        "indexing/depthtospace_crd",
        "reduce_norms/logsumexp_attr_axes_opset13",
        "reduce_norms/sumsquare_int32_saturates",
        "resize/resize_linear_half_pixel_up2",
        "resize/resize_cubic_half_pixel_up2_excl0_a075",
        "elementwise_more/prelu_per_channel",
        "elementwise_more/selu_default",
        "elementwise_more/xor_broadcast",
        "dynamic/dynamic_int8_row_per_tensor_bias",
        "dynamic/dynamic_int8_rows_per_channel_u8",
        "dynamic/dynamic_int8_3d_many_rows_no_bias",
        "dynamic/dynamic_conv_pointwise_relu",
        "dynamic/dynamic_conv_batch_small_planes",
        "dynamic/dynamic_conv_stride1_padded_u8",
        "dynamic/dynamic_conv_depthwise_wide_tf_pad",
        "dynamic/dynamic_conv_sigmoid",
    ] {
        let (bytes, _) = compile_onnx(
            &dir.join(format!("{case}.onnx")),
            &CompileOptions::default(),
        )
        .unwrap();
        let efm = scratch_dir().join(format!("{}.efm", case.replace('/', "-")));
        std::fs::write(&efm, bytes).unwrap();
        let model = Model::load(&efm).unwrap();
        let g = model.graph();
        let inputs: Vec<Tensor> = g
            .inputs
            .iter()
            .map(|&i| Tensor::zeros(g.tensors[i].dtype, &g.tensors[i].shape))
            .collect();
        check_runs(case, &efm, &inputs, &mut keep);
    }
    outlive_the_process(keep);
}
