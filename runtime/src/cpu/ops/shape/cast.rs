//! CPU kernel for Cast, between every pair of dtypes.
//!
//! Floats (f32, and f16 through the `half` crate) convert through f32, integers and bool through
//! i64. Float → integer truncates toward zero (then wraps into narrow types, as a C++
//! `static_cast` through a wider integer does); integer → integer wraps; → bool is `!= 0` (NaN is
//! true); f32 → f16 rounds to nearest even.

use half::f16;

use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::Cast;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

pub fn build(op: &Cast, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    Ok(Box::new(CastKernel {
        from: b.inputs[0].dtype,
        to: op.to,
    }))
}

struct CastKernel {
    from: DType,
    to: DType,
}

/// A bool element (one byte, 0 or 1), distinct from u8 as a cast target.
#[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(transparent)]
struct Bool8(u8);

/// A cast target.
trait Dst: bytemuck::Pod {
    fn from_f32(v: f32) -> Self;
    fn from_i64(v: i64) -> Self;
}

/// A cast source: converts through f32 (floats) or i64 (the rest).
trait Src: bytemuck::Pod + Sync {
    fn to<D: Dst>(self) -> D;
}

impl Dst for f32 {
    fn from_f32(v: f32) -> f32 {
        v
    }
    fn from_i64(v: i64) -> f32 {
        v as f32
    }
}
impl Dst for f16 {
    fn from_f32(v: f32) -> f16 {
        f16::from_f32(v)
    }
    fn from_i64(v: i64) -> f16 {
        f16::from_f32(v as f32)
    }
}
impl Dst for Bool8 {
    fn from_f32(v: f32) -> Bool8 {
        Bool8((v != 0.0) as u8)
    }
    fn from_i64(v: i64) -> Bool8 {
        Bool8((v != 0) as u8)
    }
}
macro_rules! int_dst {
    ($($t:ty),*) => {$(
        impl Dst for $t {
            #[inline(always)]
            fn from_f32(v: f32) -> $t {
                (v as i64) as $t
            }
            #[inline(always)]
            fn from_i64(v: i64) -> $t {
                v as $t
            }
        }
        impl Src for $t {
            #[inline(always)]
            fn to<D: Dst>(self) -> D {
                D::from_i64(self as i64)
            }
        }
    )*};
}
int_dst!(i64, i32, i8, u8);

impl Src for f32 {
    #[inline(always)]
    fn to<D: Dst>(self) -> D {
        D::from_f32(self)
    }
}
impl Src for f16 {
    #[inline(always)]
    fn to<D: Dst>(self) -> D {
        D::from_f32(self.to_f32())
    }
}

fn convert<S: Src, D: Dst>(x: &[u8], out: &mut [u8]) {
    let (x, out): (&[S], &mut [D]) = (bytemuck::cast_slice(x), bytemuck::cast_slice_mut(out));
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v.to::<D>();
    }
}

fn convert_from<S: Src>(to: DType, x: &[u8], out: &mut [u8]) {
    match to {
        DType::F32 => convert::<S, f32>(x, out),
        DType::F16 => convert::<S, f16>(x, out),
        DType::I64 => convert::<S, i64>(x, out),
        DType::I32 => convert::<S, i32>(x, out),
        DType::I8 => convert::<S, i8>(x, out),
        DType::U8 => convert::<S, u8>(x, out),
        DType::Bool => convert::<S, Bool8>(x, out),
    }
}

impl CpuKernel for CastKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let (x, out) = (inputs[0].data, &mut *outputs[0].data);
        if self.from == self.to {
            out.copy_from_slice(x);
            return Ok(());
        }
        match self.from {
            DType::F32 => convert_from::<f32>(self.to, x, out),
            DType::F16 => convert_from::<f16>(self.to, x, out),
            DType::I64 => convert_from::<i64>(self.to, x, out),
            DType::I32 => convert_from::<i32>(self.to, x, out),
            DType::I8 => convert_from::<i8>(self.to, x, out),
            // u8 and bool bytes convert alike.
            DType::U8 | DType::Bool => convert_from::<u8>(self.to, x, out),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use crate::cpu::ops::eval;
    use crate::ir::ops::{Cast, Op};
    use crate::{DType, Tensor};

    fn cast(x: &Tensor, to: DType) -> Tensor {
        eval(&Op::Cast(Cast { to }), &[x]).unwrap().remove(0)
    }

    #[test]
    fn float_to_int_truncates() {
        let x = Tensor::from_vec(&[5], vec![1.9f32, -1.9, 0.5, -0.0, 300.0]).unwrap();
        assert_eq!(
            cast(&x, DType::I64).as_slice::<i64>().unwrap(),
            &[1, -1, 0, 0, 300]
        );
        assert_eq!(
            cast(&x, DType::I32).as_slice::<i32>().unwrap(),
            &[1, -1, 0, 0, 300]
        );
        assert_eq!(
            cast(&x, DType::I8).as_slice::<i8>().unwrap(),
            &[1, -1, 0, 0, 44]
        );
        assert_eq!(cast(&x, DType::U8).bytes(), &[1, 255, 0, 0, 44]);
        assert_eq!(cast(&x, DType::Bool).bytes(), &[1, 1, 1, 0, 1]);
    }

    #[test]
    fn f16_round_trip() {
        let x = Tensor::from_vec(&[3], vec![1.0f32, 0.1, 65504.0]).unwrap();
        let h = cast(&x, DType::F16);
        let hv = h.as_slice::<f16>().unwrap();
        assert_eq!(hv, &[f16::ONE, f16::from_f32(0.1), f16::MAX]);
        let back = cast(&h, DType::F32);
        assert_eq!(
            back.as_slice::<f32>().unwrap(),
            &[1.0, f16::from_f32(0.1).to_f32(), 65504.0]
        );
        assert_eq!(
            cast(&h, DType::I64).as_slice::<i64>().unwrap(),
            &[1, 0, 65504]
        );
        let i = Tensor::from_vec(&[2], vec![-3i32, 7]).unwrap();
        assert_eq!(
            cast(&i, DType::F16).as_slice::<f16>().unwrap(),
            &[f16::from_f32(-3.0), f16::from_f32(7.0)]
        );
    }

    #[test]
    fn integers_and_bool() {
        let x = Tensor::from_vec(&[4], vec![-1i64, 0, 2, 300]).unwrap();
        assert_eq!(
            cast(&x, DType::I32).as_slice::<i32>().unwrap(),
            &[-1, 0, 2, 300]
        );
        assert_eq!(cast(&x, DType::U8).bytes(), &[255, 0, 2, 44]);
        assert_eq!(cast(&x, DType::Bool).bytes(), &[1, 0, 1, 1]);
        assert_eq!(
            cast(&x, DType::F32).as_slice::<f32>().unwrap(),
            &[-1.0, 0.0, 2.0, 300.0]
        );
        let b = Tensor::from_bytes(DType::Bool, &[2], &[1, 0]).unwrap();
        assert_eq!(cast(&b, DType::I64).as_slice::<i64>().unwrap(), &[1, 0]);
        assert_eq!(cast(&b, DType::F32).as_slice::<f32>().unwrap(), &[1.0, 0.0]);
        let u = Tensor::from_bytes(DType::U8, &[2], &[200, 3]).unwrap();
        assert_eq!(cast(&u, DType::I8).as_slice::<i8>().unwrap(), &[-56, 3]);
        let s = Tensor::from_vec(&[2], vec![-56i8, 3]).unwrap();
        assert_eq!(cast(&s, DType::I32).as_slice::<i32>().unwrap(), &[-56, 3]);
        // Every pair builds and runs.
        let all = [
            DType::F32,
            DType::F16,
            DType::I64,
            DType::I32,
            DType::I8,
            DType::U8,
            DType::Bool,
        ];
        for from in all {
            let t = Tensor::zeros(from, &[3]);
            for to in all {
                assert_eq!(cast(&t, to).dtype, to);
            }
        }
    }
}
