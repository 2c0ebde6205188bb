//! CPU kernel for Slice: a strided copy (negative steps walk backwards). Any dtype.

use edgefuse_kernels::strided::{contiguous_strides, Strided};

use super::StridedCopy;
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Slice;
use crate::Result;

pub fn build(op: &Slice, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    let si = contiguous_strides(&x.shape);
    // An axis read at most once never takes its step, which may then be any i64 (ONNX's
    // `x[0:1:k]`); below two reads the shape check bounds |step| by the axis.
    let src: Vec<isize> = si
        .iter()
        .zip(&op.steps)
        .zip(&op.lens)
        .map(|((&s, &st), &n)| if n < 2 { 0 } else { s * st as isize })
        .collect();
    let base = if op.lens.contains(&0) {
        0
    } else {
        si.iter()
            .zip(&op.starts)
            .map(|(&s, &st)| s * st as isize)
            .sum()
    };
    let Some(layout) = Strided::new(&op.lens, [&contiguous_strides(&op.lens), &src]) else {
        return unsupported(format!("Slice of rank {}", x.rank()));
    };
    Ok(Box::new(StridedCopy {
        layout,
        base,
        elsize: x.dtype.size(),
    }))
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Op, Slice};
    use crate::Tensor;

    fn slice(x: &Tensor, starts: &[usize], steps: &[i64], lens: &[usize]) -> Tensor {
        let op = Op::Slice(Slice {
            starts: starts.to_vec(),
            steps: steps.to_vec(),
            lens: lens.to_vec(),
        });
        eval(&op, &[x]).unwrap().remove(0)
    }

    #[test]
    fn forward_backward_and_strided() {
        let x = Tensor::from_vec(&[3, 4], (0..12).map(|v| v as f32).collect()).unwrap();
        // x[1:3, 1:3]
        let got = slice(&x, &[1, 1], &[1, 1], &[2, 2]);
        assert_eq!(got.as_slice::<f32>().unwrap(), &[5.0, 6.0, 9.0, 10.0]);
        // x[::-1, ::-2]
        let got = slice(&x, &[2, 3], &[-1, -2], &[3, 2]);
        assert_eq!(
            got.as_slice::<f32>().unwrap(),
            &[11.0, 9.0, 7.0, 5.0, 3.0, 1.0]
        );
        // x[:, 0:4:3] on i64 shape data
        let xi = Tensor::from_vec(&[4], vec![1i64, 3, 224, 224]).unwrap();
        let got = slice(&xi, &[2], &[1], &[2]);
        assert_eq!(got.as_slice::<i64>().unwrap(), &[224, 224]);
        let got = slice(&xi, &[3], &[-3], &[2]);
        assert_eq!(got.as_slice::<i64>().unwrap(), &[224, 1]);
        let got = slice(&xi, &[0], &[1], &[0]);
        assert!(got.is_empty());
    }
}
