//! CPU kernel for DequantizeLinear: y = (x − zero_point) · scale from u8, i8 or i32, per tensor or
//! per channel along an axis. The difference is taken in i32 and converted to f32 before the
//! multiplication, as onnxruntime does.

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::DequantizeLinear;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

pub fn build(op: &DequantizeLinear, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    let zp = b.inputs.get(2).map(|f| f.dtype);
    let ok = matches!(x.dtype, DType::U8 | DType::I8 | DType::I32)
        && b.inputs[1].dtype == DType::F32
        && zp.is_none_or(|z| z == x.dtype);
    if !ok {
        return unsupported(format!("DequantizeLinear of {}", x.dtype));
    }
    let (outer, channels, inner) = match op.axis {
        Some(a) => (
            x.shape[..a].iter().product(),
            x.shape[a],
            x.shape[a + 1..].iter().product(),
        ),
        None => (1, 1, x.len()),
    };
    Ok(Box::new(DequantizeKernel {
        from: x.dtype,
        outer,
        channels,
        inner,
    }))
}

struct DequantizeKernel {
    from: DType,
    outer: usize,
    channels: usize,
    /// Elements sharing one scale, per outer index and channel.
    inner: usize,
}

impl DequantizeKernel {
    fn typed<T: bytemuck::Pod + Into<i64>>(
        &self,
        x: &[T],
        zp: Option<&[T]>,
        scale: &[f32],
        out: &mut [f32],
    ) {
        let mut at = 0;
        for _ in 0..self.outer {
            for c in 0..self.channels {
                let s = scale[c];
                let z = zp.map_or(0, |z| z[c].into() as i32);
                let (xs, os) = (&x[at..at + self.inner], &mut out[at..at + self.inner]);
                for (o, &v) in os.iter_mut().zip(xs) {
                    *o = ((v.into() as i32).wrapping_sub(z)) as f32 * s;
                }
                at += self.inner;
            }
        }
    }
}

impl CpuKernel for DequantizeKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let scale = inputs[1].typed::<f32>();
        let out = outputs[0].typed::<f32>();
        let (x, zp) = (&inputs[0], inputs.get(2));
        match self.from {
            DType::U8 => self.typed(x.typed::<u8>(), zp.map(|z| z.typed::<u8>()), scale, out),
            DType::I8 => self.typed(x.typed::<i8>(), zp.map(|z| z.typed::<i8>()), scale, out),
            _ => self.typed(x.typed::<i32>(), zp.map(|z| z.typed::<i32>()), scale, out),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{DequantizeLinear, Op};
    use crate::{DType, Tensor};

    fn dq(x: &Tensor, s: &Tensor, zp: Option<&Tensor>, axis: Option<usize>) -> Vec<f32> {
        let op = Op::DequantizeLinear(DequantizeLinear { axis });
        let mut ins = vec![x, s];
        ins.extend(zp);
        eval(&op, &ins).unwrap()[0]
            .as_slice::<f32>()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn per_tensor_and_per_axis() {
        let x = Tensor::from_bytes(DType::U8, &[4], &[0, 128, 255, 130]).unwrap();
        let zp = Tensor::from_bytes(DType::U8, &[], &[128]).unwrap();
        let s = Tensor::scalar(0.5f32);
        assert_eq!(dq(&x, &s, Some(&zp), None), vec![-64.0, 0.0, 63.5, 1.0]);
        assert_eq!(dq(&x, &s, None, None), vec![0.0, 64.0, 127.5, 65.0]);
        let x = Tensor::from_vec(&[2, 2], vec![-128i8, 127, 5, -5]).unwrap();
        let s = Tensor::from_vec(&[2], vec![1.0f32, 0.25]).unwrap();
        let zp = Tensor::from_vec(&[2], vec![0i8, -5]).unwrap();
        assert_eq!(
            dq(&x, &s, Some(&zp), Some(0)),
            vec![-128.0, 127.0, 2.5, 0.0]
        );
        assert_eq!(dq(&x, &s, Some(&zp), Some(1)), vec![-128.0, 33.0, 5.0, 0.0]);
        let x = Tensor::from_vec(&[2], vec![1000i32, -7]).unwrap();
        assert_eq!(
            dq(&x, &Tensor::scalar(0.01f32), None, None),
            vec![1000.0 * 0.01, -7.0 * 0.01]
        );
    }
}
