//! CPU kernel for Pad: constant (the value cast to the dtype), reflect or edge padding.
//!
//! Each output row (last axis) maps to one input row, or to none for constant padding; the row
//! is then its left padding, the copied input row, and its right padding. Any dtype.

use edgefuse_kernels::strided::{contiguous_strides, MAX_RANK};

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{Pad, PadMode};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::{Error, Result};

pub fn build(op: &Pad, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    let r = x.rank();
    let out = b.outputs[0].shape.clone();
    let empty_in = x.shape.contains(&0);
    if r > MAX_RANK + 1 || (op.mode != PadMode::Constant && empty_in && !out.contains(&0)) {
        return unsupported(format!("{:?} Pad of {:?}", op.mode, x.shape));
    }
    let v = op.value;
    let mut value = [0u8; 8];
    let elsize = x.dtype.size();
    match x.dtype {
        DType::F32 => value[..4].copy_from_slice(&v.to_le_bytes()),
        DType::F16 => value[..2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes()),
        DType::I64 => value.copy_from_slice(&(v as i64).to_le_bytes()),
        DType::I32 => value[..4].copy_from_slice(&(v as i32).to_le_bytes()),
        DType::I8 => value[0] = v as i8 as u8,
        DType::U8 => value[0] = v as u8,
        DType::Bool => value[0] = (v != 0.0) as u8,
    }
    let mut kernel = PadKernel {
        mode: op.mode,
        in_shape: x.shape.clone(),
        in_strides: contiguous_strides(&x.shape)
            .iter()
            .map(|&s| s as usize)
            .collect(),
        out_shape: out,
        begin: op.pads[..r].to_vec(),
        elsize,
        value,
        empty_in,
        columns: Vec::new(),
    };
    if r > 0 && !empty_in {
        let (w, wo, left) = (x.shape[r - 1], kernel.out_shape[r - 1], op.pads[r - 1]);
        let col = |v: usize| u32::try_from(v).map_err(|_| Error::invalid("Pad: row too wide"));
        for j in (0..left).chain(left + w..wo) {
            let src = kernel.source(j, w, left).map(col).transpose()?;
            kernel.columns.push((col(j)?, src));
        }
    }
    Ok(Box::new(kernel))
}

struct PadKernel {
    mode: PadMode,
    in_shape: Vec<usize>,
    in_strides: Vec<usize>,
    out_shape: Vec<usize>,
    begin: Vec<usize>,
    elsize: usize,
    /// The constant, as `elsize` little-endian bytes.
    value: [u8; 8],
    empty_in: bool,
    /// Each padding column of an output row and the input column it copies (None: the
    /// constant).
    columns: Vec<(u32, Option<u32>)>,
}

impl PadKernel {
    /// The input index an output index `o` reads along an axis of length `n` padded by `begin`
    /// in front, or None for constant padding.
    #[inline]
    fn source(&self, o: usize, n: usize, begin: usize) -> Option<usize> {
        let i = o as isize - begin as isize;
        let n = n as isize;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        match self.mode {
            PadMode::Constant => None,
            PadMode::Edge => Some(i.clamp(0, n - 1) as usize),
            // Reflect excludes the edge; the pad is shorter than the axis (checked by infer).
            PadMode::Reflect => Some(if i < 0 { -i } else { 2 * (n - 1) - i } as usize),
        }
    }

    /// The padding columns of one row (`dst`, `E`-byte elements) from its input row `src`.
    #[inline(always)]
    fn pad_columns<const E: usize>(&self, dst: &mut [u8], src: &[u8]) {
        let value: [u8; E] = self.value[..E].try_into().expect("E bytes");
        for &(j, i) in &self.columns {
            let v: [u8; E] = match i {
                Some(i) => src[i as usize * E..][..E].try_into().expect("E bytes"),
                None => value,
            };
            dst[j as usize * E..][..E].copy_from_slice(&v);
        }
    }

    fn fill(&self, dst: &mut [u8]) {
        for d in dst.chunks_exact_mut(self.elsize) {
            d.copy_from_slice(&self.value[..self.elsize]);
        }
    }
}

impl CpuKernel for PadKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].data;
        let out = &mut *outputs[0].data;
        let e = self.elsize;
        let r = self.in_shape.len();
        if r == 0 {
            out.copy_from_slice(x);
            return Ok(());
        }
        if out.is_empty() {
            return Ok(());
        }
        if self.empty_in {
            // Only constant padding reaches here with an empty input.
            self.fill(out);
            return Ok(());
        }
        let (w, wo, left) = (
            self.in_shape[r - 1],
            self.out_shape[r - 1],
            self.begin[r - 1],
        );
        let outer = &self.out_shape[..r - 1];
        let rows: usize = outer.iter().product();
        let mut idx = [0usize; MAX_RANK];
        for row in 0..rows {
            let dst = &mut out[row * wo * e..(row + 1) * wo * e];
            // Map the row's outer index to an input row.
            let mut src = Some(0usize);
            for (a, &i) in idx[..r - 1].iter().enumerate() {
                src = match (src, self.source(i, self.in_shape[a], self.begin[a])) {
                    (Some(s), Some(i)) => Some(s + i * self.in_strides[a]),
                    _ => None,
                };
            }
            match src {
                None => self.fill(dst),
                Some(s) => {
                    let src = &x[s * e..(s + w) * e];
                    dst[left * e..(left + w) * e].copy_from_slice(src);
                    // Only the padding columns, each one element of a fixed size (a
                    // `copy_from_slice` of `e` bytes per element was a `memcpy` call), from
                    // the table made at build (per element, the source column's arithmetic
                    // and the size's dispatch were most of Silero's STFT padding).
                    match e {
                        4 => self.pad_columns::<4>(dst, src),
                        8 => self.pad_columns::<8>(dst, src),
                        2 => self.pad_columns::<2>(dst, src),
                        1 => self.pad_columns::<1>(dst, src),
                        _ => unreachable!("element sizes are 1, 2, 4 or 8 bytes"),
                    }
                }
            }
            // Advance the odometer over the outer axes.
            for a in (0..r - 1).rev() {
                idx[a] += 1;
                if idx[a] < outer[a] {
                    break;
                }
                idx[a] = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Op, Pad, PadMode};
    use crate::{DType, Tensor};

    fn pad(x: &Tensor, pads: &[usize], mode: PadMode, value: f32) -> Tensor {
        let op = Op::Pad(Pad {
            pads: pads.to_vec(),
            mode,
            value,
        });
        eval(&op, &[x]).unwrap().remove(0)
    }

    /// [[1, 2, 3], [4, 5, 6]]
    fn x() -> Tensor {
        Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap()
    }

    #[test]
    fn constant() {
        let got = pad(&x(), &[1, 2, 0, 1], PadMode::Constant, 9.0);
        assert_eq!(got.shape, vec![3, 6]);
        #[rustfmt::skip]
        let want = [
            9.0, 9.0, 9.0, 9.0, 9.0, 9.0,
            9.0, 9.0, 1.0, 2.0, 3.0, 9.0,
            9.0, 9.0, 4.0, 5.0, 6.0, 9.0,
        ];
        assert_eq!(got.as_slice::<f32>().unwrap(), &want);
        let xi = Tensor::from_vec(&[2], vec![7i64, 8]).unwrap();
        let got = pad(&xi, &[1, 2], PadMode::Constant, -1.5);
        assert_eq!(got.as_slice::<i64>().unwrap(), &[-1, 7, 8, -1, -1]);
        let xb = Tensor::from_bytes(DType::Bool, &[1], &[0]).unwrap();
        assert_eq!(
            pad(&xb, &[1, 1], PadMode::Constant, 2.0).bytes(),
            &[1, 0, 1]
        );
    }

    #[test]
    fn reflect() {
        let got = pad(&x(), &[1, 2, 1, 2], PadMode::Reflect, 0.0);
        assert_eq!(got.shape, vec![4, 7]);
        #[rustfmt::skip]
        let want = [
            6.0, 5.0, 4.0, 5.0, 6.0, 5.0, 4.0,
            3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0,
            6.0, 5.0, 4.0, 5.0, 6.0, 5.0, 4.0,
            3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0,
        ];
        assert_eq!(got.as_slice::<f32>().unwrap(), &want);
    }

    #[test]
    fn edge() {
        let got = pad(&x(), &[0, 1, 2, 2], PadMode::Edge, 0.0);
        assert_eq!(got.shape, vec![4, 6]);
        #[rustfmt::skip]
        let want = [
            1.0, 1.0, 2.0, 3.0, 3.0, 3.0,
            4.0, 4.0, 5.0, 6.0, 6.0, 6.0,
            4.0, 4.0, 5.0, 6.0, 6.0, 6.0,
            4.0, 4.0, 5.0, 6.0, 6.0, 6.0,
        ];
        assert_eq!(got.as_slice::<f32>().unwrap(), &want);
    }
}
