//! CPU kernel for ConvTranspose (1-D and 2-D, grouped): per group and image, one GEMM
//! `Wᵀ · X` into scratch columns, then col2im scatters them onto the bias-filled output.

use edgefuse_kernels::conv::{col2im, Window2d};
use edgefuse_kernels::gemm::{sgemm, MatRef};

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::ConvTranspose;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

struct ConvTransposeKernel {
    n: usize,
    c: usize,
    m: usize,
    group: usize,
    /// The window seen from the output: the output is the "input" plane of the equivalent
    /// convolution and X's spatial dims are its "output" positions.
    geom: Window2d,
    has_bias: bool,
}

pub fn build(op: &ConvTranspose, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    if b.inputs.iter().any(|f| f.dtype != DType::F32) {
        return unsupported("ConvTranspose on non-f32 tensors");
    }
    let (x, y) = (&b.inputs[0], &b.outputs[0]);
    let Some(geom) = Window2d::from_axes(
        &y.shape[2..],
        &op.kernel,
        &op.strides,
        &op.dilations,
        &op.pads,
        &x.shape[2..],
    ) else {
        return unsupported(format!(
            "ConvTranspose with {} spatial axes",
            op.kernel.len()
        ));
    };
    Ok(Box::new(ConvTransposeKernel {
        n: x.shape[0],
        c: x.shape[1],
        m: y.shape[1],
        group: op.group,
        geom,
        has_bias: op.has_bias,
    }))
}

impl ConvTransposeKernel {
    /// Rows of the column matrix per group: (M/group)·kh·kw.
    fn col_rows(&self) -> usize {
        self.m / self.group * self.geom.taps()
    }
}

impl CpuKernel for ConvTransposeKernel {
    fn scratch_bytes(&self) -> usize {
        // Columns span X's spatial positions, the window's "output" side.
        self.col_rows() * self.geom.out_size() * 4
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let w = inputs[1].typed::<f32>();
        let bias = if self.has_bias {
            Some(inputs[2].typed::<f32>())
        } else {
            None
        };
        let y = outputs[0].typed::<f32>();
        if y.is_empty() {
            return Ok(());
        }
        let g = &self.geom;
        // X planes are the window's outputs, Y planes its inputs.
        let (xsz, ysz) = (g.out_size(), g.in_size());
        let (cg, mg) = (self.c / self.group, self.m / self.group);
        let rows = self.col_rows();
        let col: &mut [f32] = bytemuck::cast_slice_mut(&mut scratch[..self.scratch_bytes()]);
        for n in 0..self.n {
            for grp in 0..self.group {
                let xg = &x[(n * self.c + grp * cg) * xsz..][..cg * xsz];
                // W is [C, M/group, kh, kw]: group grp's slice is a cg × rows matrix.
                let wg = &w[grp * cg * rows..][..cg * rows];
                sgemm(
                    rows,
                    xsz,
                    cg,
                    MatRef::transposed(wg, rows, cg),
                    MatRef::row_major(xg, cg, xsz),
                    col,
                    xsz,
                    0.0,
                    1.0,
                    ctx.threads,
                );
                let yg = &mut y[(n * self.m + grp * mg) * ysz..][..mg * ysz];
                for (j, yp) in yg.chunks_exact_mut(ysz).enumerate() {
                    yp.fill(bias.map_or(0.0, |b| b[grp * mg + j]));
                }
                col2im(g, mg, col, yg);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::ops::nn::conv::tests::{assert_close, run_op, tensor};
    use crate::ir::Op;
    use crate::Tensor;

    /// Scatter form of the definition: every input element adds its weighted kernel.
    fn naive(
        op: &ConvTranspose,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        out: &[usize],
    ) -> Vec<f32> {
        let (xs, ws) = (x.as_slice::<f32>().unwrap(), w.as_slice::<f32>().unwrap());
        let one_d = op.kernel.len() == 1;
        let lift = |v: &[usize], one| if one_d { vec![one, v[0]] } else { v.to_vec() };
        let (sp, k, s, d) = (
            lift(&x.shape[2..], 1),
            lift(&op.kernel, 1),
            lift(&op.strides, 1),
            lift(&op.dilations, 1),
        );
        let p = if one_d {
            vec![0, op.pads[0], 0, op.pads[1]]
        } else {
            op.pads.clone()
        };
        let o = lift(&out[2..], 1);
        let (n, c, m) = (x.shape[0], x.shape[1], out[1]);
        let (cg, mg) = (c / op.group, m / op.group);
        let mut y = vec![0.0f32; n * m * o[0] * o[1]];
        for ni in 0..n {
            for mi in 0..m {
                let bv = b.map_or(0.0, |b| b.as_slice::<f32>().unwrap()[mi]);
                y[(ni * m + mi) * o[0] * o[1]..][..o[0] * o[1]].fill(bv);
            }
            for ci in 0..c {
                let grp = ci / cg;
                for iy in 0..sp[0] {
                    for ix in 0..sp[1] {
                        let xv = xs[((ni * c + ci) * sp[0] + iy) * sp[1] + ix];
                        for mj in 0..mg {
                            let mi = grp * mg + mj;
                            for ki in 0..k[0] {
                                for kj in 0..k[1] {
                                    let oy = (iy * s[0] + ki * d[0]) as isize - p[0] as isize;
                                    let ox = (ix * s[1] + kj * d[1]) as isize - p[1] as isize;
                                    if oy < 0
                                        || ox < 0
                                        || oy >= o[0] as isize
                                        || ox >= o[1] as isize
                                    {
                                        continue;
                                    }
                                    let wv = ws[((ci * mg + mj) * k[0] + ki) * k[1] + kj];
                                    y[((ni * m + mi) * o[0] + oy as usize) * o[1] + ox as usize] +=
                                        xv * wv;
                                }
                            }
                        }
                    }
                }
            }
        }
        y
    }

    #[test]
    fn conv_transpose_matches_scatter_definition() {
        // (name, x shape, M/group, group, kernel, strides, pads, dilations, output_padding, bias)
        type Case = (
            &'static str,
            Vec<usize>,
            usize,
            usize,
            Vec<usize>,
            Vec<usize>,
            Vec<usize>,
            Vec<usize>,
            Vec<usize>,
            bool,
        );
        let cases: Vec<Case> = vec![
            (
                "2d stride 2",
                vec![1, 3, 4, 5],
                2,
                1,
                vec![3, 3],
                vec![2, 2],
                vec![0; 4],
                vec![1, 1],
                vec![0, 0],
                true,
            ),
            (
                "2d padded output_padding",
                vec![2, 4, 5, 4],
                3,
                1,
                vec![4, 4],
                vec![2, 2],
                vec![1, 1, 1, 1],
                vec![1, 1],
                vec![1, 1],
                false,
            ),
            (
                "2d grouped dilated",
                vec![1, 4, 3, 3],
                3,
                2,
                vec![3, 2],
                vec![1, 2],
                vec![1, 0, 2, 1],
                vec![2, 1],
                vec![0, 1],
                true,
            ),
            (
                "2d depthwise upsample",
                vec![1, 4, 4, 4],
                1,
                4,
                vec![2, 2],
                vec![2, 2],
                vec![0; 4],
                vec![1, 1],
                vec![0, 0],
                true,
            ),
            (
                "1d",
                vec![2, 3, 7],
                5,
                1,
                vec![4],
                vec![3],
                vec![1, 2],
                vec![1],
                vec![1],
                true,
            ),
            (
                "1d grouped stride 1",
                vec![1, 6, 9],
                2,
                3,
                vec![3],
                vec![1],
                vec![1, 1],
                vec![2],
                vec![0],
                false,
            ),
        ];
        for (i, (name, xs, mg, group, kernel, strides, pads, dilations, output_padding, bias)) in
            cases.into_iter().enumerate()
        {
            let op = ConvTranspose {
                kernel: kernel.clone(),
                strides,
                pads,
                dilations,
                output_padding,
                group,
                has_bias: bias,
            };
            let x = tensor(&xs, i as u64);
            let mut ws = vec![xs[1], mg];
            ws.extend(&kernel);
            let w = tensor(&ws, 50 + i as u64);
            let b = tensor(&[mg * group], 90 + i as u64);
            let mut inputs = vec![&x, &w];
            if bias {
                inputs.push(&b);
            }
            let got = crate::cpu::ops::eval(&Op::ConvTranspose(op.clone()), &inputs).unwrap();
            let want = naive(&op, &x, &w, bias.then_some(&b), &got[0].shape);
            assert_close(got[0].as_slice::<f32>().unwrap(), &want, name);
            let got = run_op(&Op::ConvTranspose(op), &inputs, 2);
            assert_close(got[0].as_slice::<f32>().unwrap(), &want, name);
        }
    }
}
