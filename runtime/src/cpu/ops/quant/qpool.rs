//! CPU kernel for QPool: max or average over windows of a u8/i8 tensor, requantized from the
//! input's scale to the output's. Max works on the integers (quantization is monotonic);
//! average sums `q − zp` exactly in i32 and divides in f32.

use edgefuse_kernels::conv::Window2d;
use edgefuse_kernels::qgemm::round_even;

use super::requant::Domain;
use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{PoolKind, QPool};
use crate::tensor::{TensorView, TensorViewMut};
use crate::Result;

struct QPoolKernel {
    planes: usize,
    geom: Window2d,
    kind: PoolKind,
    count_include_pad: bool,
    x: Domain,
    out: Domain,
    /// Input units to output units: `sx / sy`.
    ratio: f32,
}

pub fn build(op: &QPool, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let (x, y) = (&b.inputs[0], &b.outputs[0]);
    let p = &op.pool;
    let Some(geom) = Window2d::from_axes(
        &x.shape[2..],
        &p.kernel,
        &p.strides,
        &p.dilations,
        &p.pads,
        &y.shape[2..],
    ) else {
        return unsupported(format!("QPool with {} spatial axes", p.kernel.len()));
    };
    Ok(Box::new(QPoolKernel {
        planes: x.shape[0] * x.shape[1],
        geom,
        kind: p.kind,
        count_include_pad: p.count_include_pad,
        x: Domain::new(x.dtype, &op.x),
        out: Domain::new(y.dtype, &op.out),
        ratio: op.x.scale / op.out.scale,
    }))
}

impl CpuKernel for QPoolKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let g = &self.geom;
        let (isz, osz) = (g.in_size(), g.out_size());
        let (x, y) = (inputs[0].data, &mut *outputs[0].data);
        let (zx, zy) = (self.x.zp, self.out.zp as f32);
        for p in 0..self.planes {
            let plane = &x[p * isz..(p + 1) * isz];
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let (y0, x0) = (
                        (oy * g.sh) as isize - g.pt as isize,
                        (ox * g.sw) as isize - g.pl as isize,
                    );
                    let (mut sum, mut max, mut valid, mut padded) = (0i32, i32::MIN, 0i32, 0i32);
                    for ki in 0..g.kh {
                        let iy = y0 + (ki * g.dh) as isize;
                        for kj in 0..g.kw {
                            let ix = x0 + (kj * g.dw) as isize;
                            if iy >= -(g.pt as isize)
                                && iy < (g.ih + g.pb) as isize
                                && ix >= -(g.pl as isize)
                                && ix < (g.iw + g.pr) as isize
                            {
                                padded += 1;
                            }
                            if iy >= 0 && ix >= 0 && (iy as usize) < g.ih && (ix as usize) < g.iw {
                                let v = (plane[iy as usize * g.iw + ix as usize] ^ self.x.xor)
                                    as i32
                                    - zx;
                                sum += v;
                                max = max.max(v);
                                valid += 1;
                            }
                        }
                    }
                    let real = match self.kind {
                        PoolKind::Max if valid > 0 => max as f32,
                        PoolKind::Max => 0.0,
                        PoolKind::Avg => {
                            let div = if self.count_include_pad {
                                padded
                            } else {
                                valid
                            };
                            sum as f32 / div.max(1) as f32
                        }
                    };
                    let v = round_even((real * self.ratio).clamp(-300.0, 300.0)) + zy;
                    y[p * osz + oy * g.ow + ox] = (v.clamp(0.0, 255.0) as u8) ^ self.out.xor;
                }
            }
        }
        Ok(())
    }
}
