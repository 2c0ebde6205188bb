//! Test harness for CUDA op files: runs one op on the GPU and on the CPU reference
//! (`cpu::ops::eval`) and compares. Without a usable GPU each test prints that it was skipped.

use super::{build, BuildCtx, Io};
use crate::cuda::device::{Device, DeviceBuffer};
use crate::ir::{Fact, Op};
use crate::tensor::TensorView;
use crate::Tensor;

/// The GPU, or None after printing why the test is skipped.
pub fn device() -> Option<Device> {
    match Device::open(0, None) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: no usable GPU ({e})");
            None
        }
    }
}

/// Runs `op` on `inputs` on the GPU (inputs flagged in `consts` are offered as constants) and
/// asserts every output is within `tol` (absolute, relative to max(1, |ref|)) of the CPU's.
pub fn check(op: &Op, inputs: &[Tensor], consts: &[bool], tol: f32) {
    let Some(dev) = device() else { return };
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let expected = crate::cpu::ops::eval(op, &refs).expect("CPU reference");
    let facts: Vec<Fact> = inputs
        .iter()
        .map(|t| Fact::new(t.dtype, t.shape.clone()))
        .collect();
    let out_facts: Vec<Fact> = expected
        .iter()
        .map(|t| Fact::new(t.dtype, t.shape.clone()))
        .collect();
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
        },
    )
    .expect("CUDA kernel builds");
    let ins: Vec<DeviceBuffer> = inputs
        .iter()
        .map(|t| DeviceBuffer::from_bytes(&dev, t.bytes()).unwrap())
        .collect();
    let outs: Vec<DeviceBuffer> = expected
        .iter()
        .map(|t| DeviceBuffer::zeroed(&dev, t.bytes().len()).unwrap())
        .collect();
    let scratch = DeviceBuffer::zeroed(&dev, kernel.scratch_bytes()).unwrap();
    let in_ptrs: Vec<u64> = ins.iter().map(|b| b.ptr).collect();
    let out_ptrs: Vec<u64> = outs.iter().map(|b| b.ptr).collect();
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
    for (k, (want, buf)) in expected.iter().zip(&outs).enumerate() {
        let mut got = Tensor::zeros(want.dtype, &want.shape);
        // SAFETY: `buf` holds exactly this many bytes; the stream is idle.
        unsafe { cudarc::driver::result::memcpy_dtoh_sync(got.bytes_mut(), buf.ptr) }.unwrap();
        let (w, g) = (want.to_f32_vec().unwrap(), got.to_f32_vec().unwrap());
        let scale = w.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in w.iter().zip(&g).enumerate() {
            assert!(
                (a - b).abs() <= tol * scale || (a.is_nan() && b.is_nan()),
                "{} output {k}[{i}]: GPU {b} vs CPU {a}",
                op.name()
            );
        }
    }
}

/// Deterministic values in [-1, 1).
pub fn values(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let v = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    Tensor::from_vec(shape, v).unwrap()
}
