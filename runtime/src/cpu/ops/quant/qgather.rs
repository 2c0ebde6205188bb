//! CPU kernel for QGather: rows of an i8 table, each widened and multiplied by its row scale.
//! i64 or i32 indices, negative ones counting from the end; an index out of range is an error
//! naming it, never a panic.

use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{OpInfo, QGather};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::{Error, Result};

pub fn build(op: &QGather, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    op.infer(b.inputs)?;
    let x = &b.inputs[0];
    Ok(Box::new(QGatherKernel {
        scale: op.scale.clone(),
        rows: x.shape[0],
        row: x.shape[1..].iter().product(),
        indices: b.inputs[1].len(),
    }))
}

struct QGatherKernel {
    scale: Vec<f32>,
    rows: usize,
    /// Elements per row.
    row: usize,
    indices: usize,
}

impl QGatherKernel {
    fn gather(
        &self,
        x: &[u8],
        out: &mut [f32],
        idx: impl Iterator<Item = i64> + Clone,
    ) -> Result<()> {
        let n = self.rows as i64;
        if let Some(bad) = idx.clone().find(|&i| i < -n || i >= n) {
            return Err(Error::invalid(format!(
                "QGather index {bad} is out of range for a table of {n} rows"
            )));
        }
        let len = self.row;
        for (i, dst) in idx.zip(out.chunks_exact_mut(len.max(1))) {
            let r = if i < 0 { i + n } else { i } as usize;
            let s = self.scale[r];
            for (d, &q) in dst.iter_mut().zip(&x[r * len..(r + 1) * len]) {
                *d = q as i8 as f32 * s;
            }
        }
        Ok(())
    }
}

impl CpuKernel for QGatherKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let (x, idx) = (&inputs[0], &inputs[1]);
        let out = &mut outputs[0];
        if x.data.len() != self.rows * self.row
            || idx.len() != self.indices
            || out.dtype != DType::F32
            || out.data.len() != 4 * self.indices * self.row
        {
            return Err(Error::invalid(
                "QGather: buffers do not match the planned shapes",
            ));
        }
        let out = out.typed::<f32>();
        match idx.dtype {
            DType::I64 => self.gather(x.data, out, idx.typed::<i64>().iter().copied()),
            _ => self.gather(x.data, out, idx.typed::<i32>().iter().map(|&i| i as i64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Op, QGather};
    use crate::{DType, Tensor};

    #[test]
    fn rows_are_widened_and_scaled() {
        let q: Vec<u8> = [1i8, -2, 127, -128, 0, 5]
            .iter()
            .map(|&v| v as u8)
            .collect();
        let x = Tensor::from_bytes(DType::I8, &[3, 2], &q).unwrap();
        let op = Op::QGather(QGather {
            scale: vec![0.5, 0.25, 2.0],
        });
        let i = Tensor::from_vec(&[2], vec![2i64, -2]).unwrap();
        let got = eval(&op, &[&x, &i]).unwrap();
        assert_eq!(got[0].shape, vec![2, 2]);
        assert_eq!(
            got[0].as_slice::<f32>().unwrap(),
            &[0.0, 10.0, 31.75, -32.0]
        );
        let bad = Tensor::from_vec(&[1], vec![3i32]).unwrap();
        let err = eval(&op, &[&x, &bad]).unwrap_err();
        assert!(err.to_string().contains("index 3"), "{err}");
    }
}
