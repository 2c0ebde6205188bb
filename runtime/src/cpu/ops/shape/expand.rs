//! CPU kernel for Expand: a strided copy with stride 0 on broadcast axes. Any dtype.

use edgefuse_kernels::strided::{broadcast_strides, contiguous_strides, Strided};

use super::StridedCopy;
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Expand;
use crate::Result;

pub fn build(op: &Expand, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    let out = &b.outputs[0].shape;
    let src = broadcast_strides(&x.shape, out);
    let Some(layout) = Strided::new(out, [&contiguous_strides(out), &src]) else {
        return unsupported(format!("Expand to rank {}", op.shape.len()));
    };
    Ok(Box::new(StridedCopy {
        layout,
        base: 0,
        elsize: x.dtype.size(),
    }))
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Expand, Op};
    use crate::Tensor;

    #[test]
    fn broadcasts_rows_and_columns() {
        let x = Tensor::from_vec(&[3, 1], vec![1.0f32, 2.0, 3.0]).unwrap();
        let got = eval(
            &Op::Expand(Expand {
                shape: vec![2, 3, 2],
            }),
            &[&x],
        )
        .unwrap();
        assert_eq!(
            got[0].as_slice::<f32>().unwrap(),
            &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
        );
        let r = Tensor::from_vec(&[2], vec![7i64, 8]).unwrap();
        let got = eval(&Op::Expand(Expand { shape: vec![2, 2] }), &[&r]).unwrap();
        assert_eq!(got[0].as_slice::<i64>().unwrap(), &[7, 8, 7, 8]);
    }
}
