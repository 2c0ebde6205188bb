//! Broadcasting binary arithmetic: `elementwise_binary_{f32,f16}`, one thread per output element
//! walking the output index into both operands' strides (0 where broadcast).

use cudarc::driver::CudaFunction;

use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{
    check_float, check_rank, float_suffix, strides, BuildCtx, CudaKernel, Dims, Io, Support,
};
use crate::ir::ops::{Binary, BinaryOp, OpInfo};
use crate::ir::Fact;
use crate::Result;

fn code(op: BinaryOp) -> Option<i32> {
    Some(match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Pow => 4,
        BinaryOp::Max => 5,
        BinaryOp::Min => 6,
        _ => return None,
    })
}

pub fn supports(op: &Binary, inputs: &[Fact], outputs: &[Fact]) -> Support {
    check_float(&inputs[0])?;
    if inputs[1].dtype != inputs[0].dtype {
        return Err(format!(
            "{} with {} and {}",
            op.name(),
            inputs[0].dtype,
            inputs[1].dtype
        ));
    }
    check_rank(outputs[0].rank())?;
    code(op.op)
        .map(|_| ())
        .ok_or_else(|| format!("{:?} (no CUDA form)", op.op))
}

/// Strides of `shape` inside an output of rank `rank` (left-padded), 0 on broadcast axes.
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Dims {
    let pad = out.len() - shape.len();
    let own = strides(shape);
    Dims::from((0..out.len()).map(|k| {
        if k < pad || shape[k - pad] == 1 && out[k] != 1 {
            0
        } else {
            own[k - pad]
        }
    }))
}

struct BinaryKernel {
    f: CudaFunction,
    n: i64,
    op: i32,
    rank: i32,
    dims: Dims,
    sa: Dims,
    sb: Dims,
}

pub fn build(op: &Binary, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let s = float_suffix(b.inputs[0].dtype).expect("checked by supports");
    let out = &b.outputs[0].shape;
    Ok(Box::new(BinaryKernel {
        f: b.dev.function(&format!("elementwise_binary_{s}"))?,
        n: b.outputs[0].len() as i64,
        op: code(op.op).expect("checked by supports"),
        rank: out.len() as i32,
        dims: Dims::from(out.iter().map(|&d| d as i64)),
        sa: broadcast_strides(&b.inputs[0].shape, out),
        sb: broadcast_strides(&b.inputs[1].shape, out),
    }))
}

impl CudaKernel for BinaryKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let (act, p0, p1) = (0i32, 0.0f32, 0.0f32);
        // SAFETY: (const T* a, const T* b, T* y, i64 n, int op, int rank, Dims dims, Dims sa,
        // Dims sb, int act, float p0, float p1); strides stay inside a and b by construction.
        unsafe {
            dev.launch(
                &self.f,
                self.n as usize,
                &mut [
                    arg(&io.inputs[0]),
                    arg(&io.inputs[1]),
                    arg(&io.outputs[0]),
                    arg(&self.n),
                    arg(&self.op),
                    arg(&self.rank),
                    arg(&self.dims),
                    arg(&self.sa),
                    arg(&self.sb),
                    arg(&act),
                    arg(&p0),
                    arg(&p1),
                ],
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, values};
    use crate::ir::ops::{Binary, BinaryOp};
    use crate::ir::Op;

    #[test]
    fn broadcasting_arithmetic_matches_the_cpu() {
        let a = values(&[2, 3, 4], 1);
        for (b, op) in [
            (values(&[2, 3, 4], 2), BinaryOp::Add),
            (values(&[3, 1], 3), BinaryOp::Mul),
            (values(&[4], 4), BinaryOp::Sub),
            (values(&[1], 5), BinaryOp::Max),
        ] {
            check(
                &Op::Binary(Binary { op }),
                &[a.clone(), b],
                &[false, true],
                1e-6,
            );
        }
    }
}
