//! CPU kernel for Where: `out = cond ? x : y` with numpy broadcasting of all three. Any value
//! dtype (moved as opaque bytes); the condition is bool.

use edgefuse_kernels::strided::{broadcast_strides, contiguous_strides, Strided};

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::Where;
use crate::tensor::{TensorView, TensorViewMut};
use crate::Result;

pub fn build(_op: &Where, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let out = &b.outputs[0].shape;
    let s = |i: usize| broadcast_strides(&b.inputs[i].shape, out);
    let Some(layout) = Strided::new(out, [&contiguous_strides(out), &s(0), &s(1), &s(2)]) else {
        return unsupported(format!("Where of rank {}", out.len()));
    };
    Ok(Box::new(WhereKernel {
        layout,
        elsize: b.inputs[1].dtype.size(),
    }))
}

struct WhereKernel {
    /// Operands: output (contiguous), condition, x, y.
    layout: Strided<4>,
    elsize: usize,
}

fn select<const E: usize>(l: &Strided<4>, out: &mut [u8], c: &[u8], x: &[u8], y: &[u8]) {
    let n = l.inner() as isize;
    let [_, sc, sx, sy] = l.inner_strides();
    l.for_rows(0, l.rows(), |r, [_, oc, ox, oy]| {
        let row = &mut out[r * n as usize * E..(r + 1) * n as usize * E];
        for (j, o) in row.chunks_exact_mut(E).enumerate() {
            let j = j as isize;
            let (src, at) = if c[(oc + j * sc) as usize] != 0 {
                (x, ox + j * sx)
            } else {
                (y, oy + j * sy)
            };
            let at = at as usize * E;
            o.copy_from_slice(&src[at..at + E]);
        }
    });
}

impl CpuKernel for WhereKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let (c, x, y) = (inputs[0].data, inputs[1].data, inputs[2].data);
        let out = &mut *outputs[0].data;
        let l = &self.layout;
        match self.elsize {
            1 => select::<1>(l, out, c, x, y),
            2 => select::<2>(l, out, c, x, y),
            4 => select::<4>(l, out, c, x, y),
            _ => select::<8>(l, out, c, x, y),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Op, Where};
    use crate::{DType, Tensor};

    #[test]
    fn broadcast_select() {
        let c = Tensor::from_bytes(DType::Bool, &[2, 1], &[1, 0]).unwrap();
        let x = Tensor::from_vec(&[3], vec![1i64, 2, 3]).unwrap();
        let y = Tensor::scalar(-1i64);
        let got = eval(&Op::Where(Where {}), &[&c, &x, &y]).unwrap();
        assert_eq!(got[0].shape, vec![2, 3]);
        assert_eq!(got[0].as_slice::<i64>().unwrap(), &[1, 2, 3, -1, -1, -1]);
        let c = Tensor::from_bytes(DType::Bool, &[3], &[0, 1, 0]).unwrap();
        let x = Tensor::from_vec(&[3], vec![1.0f32, 2.0, 3.0]).unwrap();
        let y = Tensor::from_vec(&[2, 1], vec![10.0f32, 20.0]).unwrap();
        let got = eval(&Op::Where(Where {}), &[&c, &x, &y]).unwrap();
        assert_eq!(
            got[0].as_slice::<f32>().unwrap(),
            &[10.0, 2.0, 10.0, 20.0, 2.0, 20.0]
        );
    }
}
