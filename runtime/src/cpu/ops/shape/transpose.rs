//! CPU kernel for Transpose: a strided copy planned at build time.
//!
//! Merging axes turns NCHW→NHWC and NHWC→NCHW into batches of 2-D transposes, which
//! `edgefuse_kernels::movement` copies tile by tile; perms that keep the last axis copy whole
//! rows. Any dtype (elements are moved as opaque bytes).

use edgefuse_kernels::strided::{contiguous_strides, Strided};

use super::StridedCopy;
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel};
use crate::ir::ops::Transpose;
use crate::Result;

pub fn build(op: &Transpose, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    let out = &b.outputs[0].shape;
    let si = contiguous_strides(&x.shape);
    let src: Vec<isize> = op.perm.iter().map(|&p| si[p]).collect();
    let Some(layout) = Strided::new(out, [&contiguous_strides(out), &src]) else {
        return unsupported(format!("Transpose of rank {}", x.rank()));
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
    use crate::ir::ops::{Op, Transpose};
    use crate::{DType, Tensor};

    fn transpose(x: &Tensor, perm: &[usize]) -> Tensor {
        let op = Op::Transpose(Transpose {
            perm: perm.to_vec(),
        });
        eval(&op, &[x]).unwrap().remove(0)
    }

    /// Naive reference: out[idx] = x[idx permuted back].
    fn reference(shape: &[usize], perm: &[usize]) -> Vec<i64> {
        let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let n: usize = shape.iter().product();
        (0..n)
            .map(|flat| {
                let mut rem = flat;
                let mut idx = vec![0; out.len()];
                for i in (0..out.len()).rev() {
                    idx[i] = rem % out[i];
                    rem /= out[i];
                }
                let mut src = vec![0; shape.len()];
                for (i, &p) in perm.iter().enumerate() {
                    src[p] = idx[i];
                }
                src.iter().zip(shape).fold(0, |a, (&i, &d)| a * d + i) as i64
            })
            .collect()
    }

    #[test]
    fn perms_match_reference() {
        let cases: [(&[usize], &[usize]); 6] = [
            (&[3, 5], &[1, 0]),
            (&[2, 3, 4], &[2, 0, 1]),
            (&[2, 3, 4], &[0, 2, 1]),
            (&[2, 5, 6, 7], &[0, 2, 3, 1]),
            (&[2, 6, 7, 5], &[0, 3, 1, 2]),
            (&[2, 3, 4, 5], &[3, 2, 1, 0]),
        ];
        for (shape, perm) in cases {
            let n: usize = shape.iter().product();
            let x = Tensor::from_vec(shape, (0..n as i64).collect()).unwrap();
            let got = transpose(&x, perm);
            assert_eq!(
                got.as_slice::<i64>().unwrap(),
                &reference(shape, perm)[..],
                "{perm:?}"
            );
            // The same movement on 1- and 2-byte elements.
            let xb = Tensor::from_bytes(
                DType::U8,
                shape,
                &(0..n).map(|v| v as u8).collect::<Vec<_>>(),
            )
            .unwrap();
            let want: Vec<u8> = reference(shape, perm).iter().map(|&v| v as u8).collect();
            assert_eq!(transpose(&xb, perm).bytes(), &want[..]);
            let xh = Tensor::from_vec(
                shape,
                (0..n).map(|v| half::f16::from_f32(v as f32)).collect(),
            )
            .unwrap();
            let want: Vec<half::f16> = reference(shape, perm)
                .iter()
                .map(|&v| half::f16::from_f32(v as f32))
                .collect();
            assert_eq!(
                transpose(&xh, perm).as_slice::<half::f16>().unwrap(),
                &want[..]
            );
        }
    }
}
