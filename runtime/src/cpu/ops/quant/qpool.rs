//! CPU kernel for QPool: max or average over windows of a u8/i8 tensor, requantized from the
//! input's scale to the output's. Max works on the integers (quantization is monotonic);
//! average sums `q − zp` exactly in i32 and divides in f32.

use edgefuse_kernels::conv::Window2d;
use edgefuse_kernels::pool::{max_pool_u8, windows_all_nonempty};
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
    /// Max pooling where every window has an input tap: the byte max in the u8 domain, then
    /// this table (requantization is monotonic, so it commutes with max) to the output byte.
    /// Max pooling as a byte max, remapped through `max_table` unless that is the identity.
    max_bytes: bool,
    max_table: Option<Box<[u8; 256]>>,
    /// One window over each whole, unpadded plane (GlobalAveragePool).
    global_avg: bool,
}

impl QPoolKernel {
    /// The output byte for an input value `u` (u8 domain): the general path's arithmetic.
    fn requant(&self, real: f32) -> u8 {
        let v = round_even((real * self.ratio).clamp(-300.0, 300.0)) + self.out.zp as f32;
        (v.clamp(0.0, 255.0) as u8) ^ self.out.xor
    }
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
    let mut k = QPoolKernel {
        planes: x.shape[0] * x.shape[1],
        geom,
        kind: p.kind,
        count_include_pad: p.count_include_pad,
        x: Domain::new(x.dtype, &op.x),
        out: Domain::new(y.dtype, &op.out),
        ratio: op.x.scale / op.out.scale,
        max_bytes: false,
        max_table: None,
        global_avg: p.kind == PoolKind::Avg
            && (geom.kh, geom.kw, geom.oh, geom.ow) == (geom.ih, geom.iw, 1, 1)
            && (geom.pt, geom.pl, geom.pb, geom.pr) == (0, 0, 0, 0),
    };
    if k.kind == PoolKind::Max && windows_all_nonempty(&geom) {
        let mut t = Box::new([0u8; 256]);
        for (u, o) in t.iter_mut().enumerate() {
            *o = k.requant((u as i32 - k.x.zp) as f32);
        }
        // Same scale and zero point in and out (max pooling keeps its input's): no table.
        let identity = t.iter().enumerate().all(|(u, &o)| o == u as u8 ^ k.x.xor);
        k.max_table = (!identity).then_some(t);
        k.max_bytes = true;
    }
    Ok(Box::new(k))
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
        if self.max_bytes {
            for (xp, yp) in x.chunks_exact(isz).zip(y.chunks_exact_mut(osz)) {
                max_pool_u8(g, xp, self.x.xor, yp);
                match &self.max_table {
                    Some(t) => yp.iter_mut().for_each(|v| *v = t[*v as usize]),
                    // The pool compares and writes in the u8 domain; back to the tensor's bytes.
                    None => yp.iter_mut().for_each(|v| *v ^= self.x.xor),
                }
            }
            return Ok(());
        }
        let zx = self.x.zp;
        if self.global_avg {
            // The same arithmetic as the general loop below: an exact integer sum, one division.
            for (xp, o) in x.chunks_exact(isz).zip(y.iter_mut()) {
                let raw: u32 = xp.iter().map(|&b| (b ^ self.x.xor) as u32).sum();
                let sum = raw as i32 - zx * isz as i32;
                *o = self.requant(sum as f32 / isz as f32);
            }
            return Ok(());
        }
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
                    y[p * osz + oy * g.ow + ox] = self.requant(real);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::ops::eval;
    use crate::ir::ops::{Pool, QScale};
    use crate::ir::Op;
    use crate::tensor::DType;
    use crate::Tensor;

    /// Dequantize, take the max over the in-bounds taps, requantize: the definition.
    fn naive_max(op: &QPool, x: &Tensor, dtype: DType) -> Vec<u8> {
        let (c, h, w) = (x.shape[1], x.shape[2], x.shape[3]);
        let p = &op.pool;
        let real = |b: u8| match dtype {
            DType::I8 => (b as i8 as i32 - op.x.zero_point) as f32 * op.x.scale,
            _ => (b as i32 - op.x.zero_point) as f32 * op.x.scale,
        };
        let oh = (h + p.pads[0] + p.pads[2] - p.kernel[0]) / p.strides[0] + 1;
        let ow = (w + p.pads[1] + p.pads[3] - p.kernel[1]) / p.strides[1] + 1;
        let mut out = Vec::new();
        for ch in 0..x.shape[0] * c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut m = f32::MIN;
                    for ki in 0..p.kernel[0] {
                        for kj in 0..p.kernel[1] {
                            let iy = (oy * p.strides[0] + ki) as isize - p.pads[0] as isize;
                            let ix = (ox * p.strides[1] + kj) as isize - p.pads[1] as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                let b = x.bytes()[(ch * h + iy as usize) * w + ix as usize];
                                m = m.max(real(b));
                            }
                        }
                    }
                    let q = (m / op.out.scale).round_ties_even() + op.out.zero_point as f32;
                    out.push(match dtype {
                        DType::I8 => q.clamp(-128.0, 127.0) as i8 as u8,
                        _ => q.clamp(0.0, 255.0) as u8,
                    });
                }
            }
        }
        out
    }

    #[test]
    fn max_pool_table_path_matches_the_definition() {
        for (dtype, zx, zy) in [(DType::U8, 7, 130), (DType::I8, -3, 5)] {
            for (kernel, strides, pads) in [
                ([2, 2], [2, 2], [0, 0, 0, 0]),
                ([3, 3], [2, 2], [1, 1, 1, 1]),
                ([3, 3], [1, 1], [0, 1, 2, 0]),
            ] {
                let op = QPool {
                    pool: Pool {
                        kind: PoolKind::Max,
                        kernel: kernel.to_vec(),
                        strides: strides.to_vec(),
                        pads: pads.to_vec(),
                        dilations: vec![1, 1],
                        ceil_mode: false,
                        count_include_pad: false,
                    },
                    x: QScale {
                        scale: 0.05,
                        zero_point: zx,
                    },
                    out: QScale {
                        scale: 0.07,
                        zero_point: zy,
                    },
                };
                let mut x = Tensor::zeros(dtype, &[2, 3, 7, 9]);
                for (i, b) in x.bytes_mut().iter_mut().enumerate() {
                    *b = (i * 97 % 256) as u8;
                }
                let got = eval(&Op::QPool(op.clone()), &[&x]).unwrap();
                let want = naive_max(&op, &x, dtype);
                assert_eq!(
                    got[0].bytes(),
                    &want[..],
                    "{dtype:?} {kernel:?} {strides:?} {pads:?}"
                );
            }
        }
    }
}
