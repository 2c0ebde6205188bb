//! Test harness for CUDA op files: runs one op on the GPU and on the CPU reference
//! (`cpu::ops::eval`) and compares, in f32 or in f16 (against the f32 reference). Without a
//! usable GPU each test prints that it was skipped.

use super::{build, BuildCtx, Io};
use crate::cuda::device::{Device, DeviceBuffer};
use crate::ir::{Fact, Op};
use crate::tensor::{DType, TensorView};
use crate::Tensor;

/// The GPU, or None after printing why the test is skipped — unless `EDGEFUSE_REQUIRE_GPU=1`
/// (the device check and the emulated GPU set it), where a GPU that cannot be opened fails the
/// test instead of letting it pass unrun.
pub fn device() -> Option<Device> {
    match Device::open(0, None) {
        Ok(d) => Some(d),
        Err(e) if std::env::var("EDGEFUSE_REQUIRE_GPU").is_ok_and(|v| v == "1") => {
            panic!("EDGEFUSE_REQUIRE_GPU=1 but the GPU cannot be opened: {e}")
        }
        Err(e) => {
            eprintln!("skipped: no usable GPU ({e})");
            None
        }
    }
}

/// Runs `op` on `inputs` on the GPU (inputs flagged in `consts` are offered as constants) and
/// asserts every output is within `tol` (absolute, relative to max(1, |ref|)) of the CPU's.
pub fn check(op: &Op, inputs: &[Tensor], consts: &[bool], tol: f32) {
    compare(op, inputs, consts, tol, DType::F32);
}

/// Like [`check`] with the op run in f16 on the GPU (f32 inputs narrowed, as an fp16 plan
/// does), against the CPU's f32 result: what the tensor-core path must hold to.
pub fn check_f16(op: &Op, inputs: &[Tensor], consts: &[bool], tol: f32) {
    compare(op, inputs, consts, tol, DType::F16);
}

fn in_dtype(t: &Tensor, float: DType) -> Tensor {
    if t.dtype != DType::F32 || float == DType::F32 {
        return t.clone();
    }
    let cast = Op::Cast(crate::ir::ops::Cast { to: float });
    crate::cpu::ops::eval(&cast, &[t])
        .expect("CPU cast")
        .remove(0)
}

/// Like [`check`] against another op's CPU result (`reference` on `ref_inputs`): for a GPU
/// kernel that computes `op` another way than the CPU kernel does (QLstm with its weights
/// widened, against the float LSTM of those weights).
pub fn check_against(
    op: &Op,
    inputs: &[Tensor],
    consts: &[bool],
    tol: f32,
    reference: &Op,
    ref_inputs: &[Tensor],
) {
    let refs: Vec<&Tensor> = ref_inputs.iter().collect();
    let expected = crate::cpu::ops::eval(reference, &refs).expect("CPU reference");
    compare_to(op, inputs, consts, tol, DType::F32, expected);
}

fn compare(op: &Op, inputs: &[Tensor], consts: &[bool], tol: f32, float: DType) {
    // The CPU reference first, so the case itself is checked on machines without a GPU too.
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let expected = crate::cpu::ops::eval(op, &refs).expect("CPU reference");
    compare_to(op, inputs, consts, tol, float, expected);
}

fn compare_to(
    op: &Op,
    inputs: &[Tensor],
    consts: &[bool],
    tol: f32,
    float: DType,
    expected: Vec<Tensor>,
) {
    let Some(dev) = device() else { return };
    // Shapes are inferred as the model's graph has them (f32); an fp16 plan then narrows
    // every f32 tensor, as `cuda::precision::lower` does.
    let f32_facts: Vec<Fact> = inputs
        .iter()
        .map(|t| Fact::new(t.dtype, t.shape.clone()))
        .collect();
    let narrow = |f: Fact| match f.dtype {
        DType::F32 => Fact::new(float, f.shape),
        _ => f,
    };
    let out_facts: Vec<Fact> = op
        .infer(&f32_facts)
        .expect("op infers its outputs")
        .into_iter()
        .map(narrow)
        .collect();
    let inputs: Vec<Tensor> = inputs.iter().map(|t| in_dtype(t, float)).collect();
    let facts: Vec<Fact> = f32_facts.into_iter().map(narrow).collect();
    let views: Vec<Option<TensorView>> = inputs
        .iter()
        .enumerate()
        .map(|(k, t)| consts.get(k).copied().unwrap_or(false).then(|| t.view()))
        .collect();
    let kernel = build(
        op,
        &BuildCtx {
            dev: &dev,
            inputs: &facts,
            outputs: &out_facts,
            consts: &views,
            fused: None,
            prologue: None,
        },
    )
    .expect("CUDA kernel builds");
    let ins: Vec<DeviceBuffer> = inputs
        .iter()
        .map(|t| DeviceBuffer::from_bytes(&dev, t.bytes()).unwrap())
        .collect();
    let outs: Vec<DeviceBuffer> = out_facts
        .iter()
        .map(|f| DeviceBuffer::zeroed(&dev, f.len() * f.dtype.size()).unwrap())
        .collect();
    let scratch = DeviceBuffer::zeroed(&dev, kernel.scratch_bytes()).unwrap();
    let in_ptrs: Vec<u64> = ins.iter().map(|b| b.ptr).collect();
    let out_ptrs: Vec<u64> = outs.iter().map(|b| b.ptr).collect();
    // Twice: kernels that keep state between launches (the LSTM sequence kernel's epoch) must
    // give the same answer again; the outputs are poisoned with NaN before the second run so
    // one it fails to write shows.
    for run in 0..2 {
        if run == 1 {
            for b in &outs {
                // SAFETY: `b` holds `b.len` bytes; the stream is idle.
                unsafe { cudarc::driver::result::memset_d8_sync(b.ptr, 0xff, b.len) }.unwrap();
            }
        }
        kernel
            .launch(
                &dev,
                &Io {
                    inputs: &in_ptrs,
                    outputs: &out_ptrs,
                    scratch: scratch.ptr,
                },
            )
            .expect("launch");
        dev.synchronize().expect("GPU run");
        for (k, ((want, f), buf)) in expected.iter().zip(&out_facts).zip(&outs).enumerate() {
            let mut got = Tensor::zeros(f.dtype, &f.shape);
            // SAFETY: `buf` holds exactly this many bytes; the stream is idle.
            unsafe { cudarc::driver::result::memcpy_dtoh_sync(got.bytes_mut(), buf.ptr) }.unwrap();
            let (w, g) = (want.to_f32_vec().unwrap(), got.to_f32_vec().unwrap());
            let scale = w.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            for (i, (a, b)) in w.iter().zip(&g).enumerate() {
                assert!(
                    (a - b).abs() <= tol * scale || (a.is_nan() && b.is_nan()),
                    "{} ({}) run {run} output {k}[{i}]: GPU {b} vs CPU {a}",
                    op.name(),
                    float.name()
                );
            }
        }
    }
    eprintln!("{} in {}: GPU matches the CPU", op.name(), float.name());
}

pub(crate) use crate::testing::values;

/// `m` run on the CPU and then on the GPU at each `(precision, fuse, tol)` of `runs`, three
/// times each (the second and third replay its CUDA graphs), every first output within
/// `tol · max(1, max|want|)` of the CPU's; `check` sees each session before it runs. Says it
/// was skipped, and returns, without a usable GPU.
pub fn session_matches_cpu(
    m: &std::sync::Arc<crate::Model>,
    x: &Tensor,
    runs: &[(crate::cuda::Precision, bool, f32)],
    check: impl Fn(&crate::cuda::CudaSession, crate::cuda::Precision, bool),
) {
    if device().is_none() {
        return;
    }
    let want = crate::cpu::Session::new(m.clone(), crate::cpu::SessionOptions::with_threads(1))
        .unwrap()
        .run_tensors(std::slice::from_ref(x))
        .unwrap()[0]
        .to_f32_vec()
        .unwrap();
    let scale = want.iter().fold(1.0f32, |a, v| a.max(v.abs()));
    for &(precision, fuse, tol) in runs {
        let opts = crate::cuda::CudaOptions {
            precision: Some(precision),
            fuse,
            ..Default::default()
        };
        let mut s = crate::cuda::CudaSession::new(m.clone(), &opts).unwrap();
        check(&s, precision, fuse);
        for run in 0..3 {
            let got = s.run_tensors(std::slice::from_ref(x)).unwrap()[0]
                .to_f32_vec()
                .unwrap();
            assert_eq!(got.len(), want.len());
            let d = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                d <= tol * scale,
                "{precision:?} fuse {fuse} run {run}: max |diff| {d} (bound {})",
                tol * scale
            );
        }
    }
}
