//! Softmax / LogSoftmax over one axis. Innermost axis: `reduce_softmax_rows_*`, one block per
//! row; otherwise `reduce_softmax_strided_*`, one thread per (outer, inner) column.

use cudarc::driver::CudaFunction;

use crate::cuda::device::{arg, Device};
use crate::cuda::ops::{check_float, float_suffix, BuildCtx, CudaKernel, Io, Support};
use crate::ir::ops::Softmax;
use crate::ir::Fact;
use crate::Result;

pub fn supports(inputs: &[Fact], _outputs: &[Fact]) -> Support {
    check_float(&inputs[0])
}

struct SoftmaxKernel {
    f: CudaFunction,
    outer: i64,
    len: i64,
    inner: i64,
    log: i32,
}

pub fn build(op: &Softmax, b: &BuildCtx) -> Result<Box<dyn CudaKernel>> {
    let x = &b.inputs[0];
    let s = float_suffix(x.dtype).unwrap();
    let inner = x.shape[op.axis + 1..].iter().product::<usize>() as i64;
    let kind = if inner == 1 { "rows" } else { "strided" };
    Ok(Box::new(SoftmaxKernel {
        f: b.dev.function(&format!("reduce_softmax_{kind}_{s}"))?,
        outer: x.shape[..op.axis].iter().product::<usize>() as i64,
        len: x.shape[op.axis] as i64,
        inner,
        log: op.log as i32,
    }))
}

impl CudaKernel for SoftmaxKernel {
    fn launch(&self, dev: &Device, io: &Io) -> Result<()> {
        let (x, y) = (io.inputs[0], io.outputs[0]);
        if self.inner == 1 {
            let grid = self.outer.clamp(1, 65_535) as u32;
            // SAFETY: (const T* x, T* y, i64 rows, i64 len, int log); 256 threads per block,
            // a multiple of 32 as the block reduction requires.
            unsafe {
                dev.launch_grid(
                    &self.f,
                    grid,
                    256,
                    &mut [
                        arg(&x),
                        arg(&y),
                        arg(&self.outer),
                        arg(&self.len),
                        arg(&self.log),
                    ],
                )
            }
        } else {
            // SAFETY: (const T* x, T* y, i64 outer, i64 len, i64 inner, int log).
            unsafe {
                dev.launch(
                    &self.f,
                    (self.outer * self.inner) as usize,
                    &mut [
                        arg(&x),
                        arg(&y),
                        arg(&self.outer),
                        arg(&self.len),
                        arg(&self.inner),
                        arg(&self.log),
                    ],
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cuda::ops::testing::{check, check_f16, values};
    use crate::ir::ops::Softmax;
    use crate::ir::Op;

    #[test]
    fn softmax_matches_the_cpu() {
        // Rows past 8 elements per thread (2048) are read three times instead of cached.
        check(
            &Op::Softmax(Softmax {
                axis: 1,
                log: false,
            }),
            &[values(&[2, 3000], 2)],
            &[false],
            1e-6,
        );
        let x = values(&[3, 1000], 1);
        check(
            &Op::Softmax(Softmax {
                axis: 1,
                log: false,
            }),
            std::slice::from_ref(&x),
            &[false],
            1e-6,
        );
        check(
            &Op::Softmax(Softmax { axis: 1, log: true }),
            std::slice::from_ref(&x),
            &[false],
            1e-5,
        );
        // f16 in and out, max and sum in f32.
        check_f16(
            &Op::Softmax(Softmax { axis: 1, log: true }),
            &[x],
            &[false],
            1e-2,
        );
        check(
            &Op::Softmax(Softmax {
                axis: 1,
                log: false,
            }),
            &[values(&[2, 5, 7], 2)],
            &[false],
            1e-6,
        );
    }
}
