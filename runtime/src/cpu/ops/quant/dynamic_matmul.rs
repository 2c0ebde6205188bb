//! CPU kernel for DynamicQuantizeMatMul: X quantized to u8 per run exactly as
//! DynamicQuantizeLinear does (`dynamic_quantize::quantize_into`, onnxruntime's bytes), then the
//! integer product with the constant weights (i32 accumulation, exact) and the f32 epilogue
//! `acc·(sx·w_scale[n]) + B[n]` — the rounding steps of onnxruntime's Cast → Mul → Add.
//!
//! The weights are packed at build for the shape the plan fixes. Up to [`GEMV_ROWS`] rows of X
//! run as matrix-vector products — on AVX-512 VNNI over i8 weights all rows at once over
//! `qgemm::row_blocks` (16 weight rows per `vpdpbusd`, the epilogue of `run_dynamic`), else one
//! row at a time, `qgemm`'s own (whole weight rows per `vpdpbusd`) where it has one for these
//! weights (`QWeights::one_column_rows`: u8 weights shifted into i8), or `qgemm::gemv` over
//! weight rows widened to i16 — since a 16-column panel would waste most of its columns; more rows run as `qgemm` panels (`QWeights::run_dynamic`: VNNI, AVX2, NEON
//! dot-product or portable, as this CPU runs). Threads split the output columns of a single row,
//! the rows of a few, the output columns again for at most a panel of rows per thread (each
//! thread's into scratch, then copied into Y), and whole panels of rows past that.

use edgefuse_kernels::qgemm::gemv::gemv;
use edgefuse_kernels::qgemm::row_blocks::{Epi, RowBlocks};
use edgefuse_kernels::qgemm::{Dynamic, Epilogue, OutKind, QKernel, QWeights, Source, NR};
use rayon::prelude::*;

use super::dynamic_quantize::quantize_into;
use super::requant::constant;
use crate::cpu::ops::nn::conv::PAR_MIN_WORK;
use crate::cpu::ops::{BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{DynamicQuantizeMatMul, OpInfo};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::{Error, Result};

/// Most rows of X run as one-column products.
pub const GEMV_ROWS: usize = 4;

/// Most threads one product takes (scratch is planned for this many, or the machine's cores
/// where it has fewer).
const MAX_LANES: usize = 8;

/// Weight columns per thread's share of a one-row product (whole cache lines of output).
const COL_BLOCK: usize = 16;

/// The weights as the chosen path reads them.
enum Weights {
    /// No products: X has no rows, or K or N is 0 (Y is then empty, or each row the bias).
    /// Nothing is packed, and nothing sized by K or N is held: a zero-sized W bounds neither.
    Empty,
    /// `[N][K]` minus their zero points, as i16, for `gemv` (a few rows of X, and no
    /// matrix-vector product of `qgemm`'s for these weights).
    Rows(Vec<i16>),
    /// i8 weights interleaved for VNNI (a few rows of X): all rows of X in one product.
    Blocks(RowBlocks),
    /// Packed for `qgemm`, one weight row per output column: panels, or one column at a time
    /// for a few rows of X where `one_column_rows` holds.
    Packed(QWeights),
}

struct DynamicMatMulKernel {
    /// Rows of X (every dimension but the last).
    rows: usize,
    k: usize,
    n: usize,
    w: Weights,
    /// Per output column: `mult` the weight scale, `add` the bias (0 without one); empty for
    /// [`Weights::Empty`].
    epi: Epilogue,
    /// Threads whose scratch is planned: [`MAX_LANES`], or the machine's cores if fewer.
    slots: usize,
}

pub fn build(op: &DynamicQuantizeMatMul, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    build_for(op, b, QKernel::detect())
}

/// [`build`] on the kernel family `kernel` (which this CPU must run).
fn build_for(
    op: &DynamicQuantizeMatMul,
    b: &BuildCtx,
    kernel: QKernel,
) -> Result<Box<dyn CpuKernel>> {
    op.infer(b.inputs)?;
    let (x, wf) = (&b.inputs[0], &b.inputs[1]);
    let (k, n) = (wf.shape[0], wf.shape[1]);
    let rows = x.shape[..x.rank() - 1].iter().product::<usize>();
    let slots = crate::cpu::cores().clamp(1, MAX_LANES);
    let f32_out = OutKind::F32 {
        lo: f32::NEG_INFINITY,
        hi: f32::INFINITY,
    };
    if rows == 0 || k == 0 || n == 0 {
        // W [0, N] or [K, 0] holds no bytes, so the file bounds neither K nor N (`Graph::validate`
        // reads a 0 as 1): build nothing in proportion to either.
        return Ok(Box::new(DynamicMatMulKernel {
            rows,
            k,
            n,
            w: Weights::Empty,
            epi: Epilogue {
                mult: vec![],
                add: vec![],
                kind: f32_out,
            },
            slots,
        }));
    }
    // From here W holds K·N bytes, so everything below is in proportion to the file.
    let wv = constant(b.consts, 1, "DynamicQuantizeMatMul weights")?;
    let bias = if op.has_bias {
        constant(b.consts, 2, "a DynamicQuantizeMatMul bias")?
            .typed::<f32>()
            .to_vec()
    } else {
        vec![0.0; n]
    };
    let per_col = |v: &[f32]| -> Vec<f32> {
        (0..n)
            .map(|c| if v.len() == 1 { v[0] } else { v[c] })
            .collect()
    };
    let zp: Vec<i32> = (0..n)
        .map(|c| op.w_zero_point[if op.w_zero_point.len() == 1 { 0 } else { c }])
        .collect();
    // W is [K, N]: weight row c (output column c) gathers column c.
    let value = |kk: usize, c: usize| -> i32 {
        let byte = wv.data[kk * n + c];
        let v = match wv.dtype {
            DType::I8 => byte as i8 as i32,
            _ => byte as i32,
        };
        v - zp[c]
    };
    let mut t = vec![0i32; n * k];
    for (c, row) in t.chunks_exact_mut(k).enumerate() {
        for (kk, d) in row.iter_mut().enumerate() {
            *d = value(kk, c);
        }
    }
    let fits_i8 = t.iter().all(|v| (-128..=127).contains(v));
    let packed = QWeights::new(kernel, &t, n, k, 0);
    let w = if rows <= GEMV_ROWS && kernel == QKernel::Avx512Vnni && fits_i8 && k < 1 << 15 {
        let ti: Vec<i8> = t.iter().map(|&v| v as i8).collect();
        Weights::Blocks(RowBlocks::new(&ti, n, k))
    } else if rows <= GEMV_ROWS && !packed.one_column_rows() && k < 1 << 15 {
        Weights::Rows(t.iter().map(|&v| v as i16).collect())
    } else {
        Weights::Packed(packed)
    };
    Ok(Box::new(DynamicMatMulKernel {
        rows,
        k,
        n,
        w,
        epi: Epilogue {
            mult: per_col(&op.w_scale),
            add: bias,
            kind: f32_out,
        },
        slots,
    }))
}

impl DynamicMatMulKernel {
    /// Bytes of X quantized (u8), and room for `RowBlocks` to read the last row's k rounded up
    /// to 4, rounded to 64 (none without products).
    fn xq_bytes(&self) -> usize {
        match self.w {
            Weights::Empty => 0,
            _ => (self.rows * self.k + 3).next_multiple_of(64),
        }
    }

    /// Bytes of the path's own scratch: X minus its zero point as i16, or a panel per lane.
    fn path_bytes(&self) -> usize {
        match &self.w {
            Weights::Empty | Weights::Blocks(_) => 0,
            Weights::Rows(_) => 2 * self.rows * self.k,
            Weights::Packed(w) => {
                let panels = w.scratch_bytes().next_multiple_of(64) * self.slots;
                // `run_panels` splits at most a panel of rows per lane by columns, through a
                // copy of Y.
                let split = if self.slots > 1 && self.rows <= NR * self.slots {
                    4 * self.rows * self.n
                } else {
                    0
                };
                panels + split
            }
        }
    }

    /// Threads worth using: one per `PAR_MIN_WORK` multiply-adds, at most the session's and
    /// the scratch's.
    fn lanes(&self, ctx: &Ctx) -> usize {
        let work = (self.rows * self.k).saturating_mul(self.n);
        ctx.threads.min(self.slots).min(work / PAR_MIN_WORK).max(1)
    }

    /// Up to [`GEMV_ROWS`] rows: `y = gemv(...) + bias` per row, written in that order so the
    /// rounding is that of a Mul then an Add.
    fn run_rows(&self, w: &[i16], xi: &[i16], sx: f32, y: &mut [f32], lanes: usize) {
        let (k, n) = (self.k, self.n);
        let cols = |w: &[i16], x: &[i16], c0: usize, y: &mut [f32]| {
            let c1 = c0 + y.len();
            gemv(w, k, x, sx, &self.epi.mult[c0..c1], y, false);
            for (v, b) in y.iter_mut().zip(&self.epi.add[c0..c1]) {
                *v += b;
            }
        };
        if lanes == 1 {
            for (x, yr) in xi.chunks_exact(k).zip(y.chunks_exact_mut(n)) {
                cols(w, x, 0, yr);
            }
        } else if self.rows == 1 {
            let chunk = n.div_ceil(lanes).next_multiple_of(COL_BLOCK);
            y.par_chunks_mut(chunk)
                .enumerate()
                .for_each(|(i, yc)| cols(&w[i * chunk * k..], xi, i * chunk, yc));
        } else {
            y.par_chunks_mut(n)
                .zip(xi.par_chunks(k))
                .for_each(|(yr, x)| cols(w, x, 0, yr));
        }
    }

    /// A few rows over `RowBlocks`, all rows of X at once: output columns split between the
    /// threads in whole blocks of 16, each thread's through a product of its own.
    fn run_blocks(&self, w: &RowBlocks, xq: &[u8], zx: i32, sx: f32, y: &mut [f32], lanes: usize) {
        let (k, n, rows) = (self.k, self.n, self.rows);
        let epi = Epi::Dynamic {
            epi: &self.epi,
            accumulate: false,
        };
        if lanes == 1 {
            w.run(xq, k, rows, zx, sx, 0..n, epi, y, n);
        } else if rows == 1 {
            let chunk = n.div_ceil(lanes).next_multiple_of(COL_BLOCK);
            y.par_chunks_mut(chunk).enumerate().for_each(|(i, yc)| {
                let c0 = i * chunk;
                w.run(xq, k, 1, zx, sx, c0..c0 + yc.len(), epi, yc, yc.len());
            });
        } else {
            y.par_chunks_mut(n)
                .enumerate()
                .for_each(|(p, yr)| w.run(&xq[p * k..], k, 1, zx, sx, 0..n, epi, yr, n));
        }
    }

    /// A few rows through `qgemm`'s matrix-vector product, one row of X at a time, each thread
    /// with its own scratch: one row's columns split between the threads, or a row each.
    fn run_columns(
        &self,
        w: &QWeights,
        xq: &[u8],
        dynx: Dynamic,
        y: &mut [f32],
        scratch: &mut [u8],
        lanes: usize,
    ) {
        let (k, n) = (self.k, self.n);
        let per = w.scratch_bytes().next_multiple_of(64);
        // Columns `c0..` (as many as `yc` holds) of row `p`.
        let part = |p: usize, c0: usize, yc: &mut [f32], sc: &mut [u8]| {
            let src = Source::Rows {
                x: &xq[p * k..(p + 1) * k],
                ld: k,
            };
            w.run_dynamic(&src, 0, 1, dynx, &self.epi, yc, 1, 1, sc, c0..c0 + yc.len());
        };
        if lanes == 1 {
            for (p, yr) in y.chunks_exact_mut(n).enumerate() {
                part(p, 0, yr, &mut scratch[..per]);
            }
        } else if self.rows == 1 {
            let chunk = n.div_ceil(lanes).next_multiple_of(COL_BLOCK);
            y.par_chunks_mut(chunk)
                .zip(scratch[..per * lanes].par_chunks_mut(per))
                .enumerate()
                .for_each(|(i, (yc, sc))| part(0, i * chunk, yc, sc));
        } else {
            // Rows shared out between the lanes, each lane's in turn on its own scratch.
            let chunk = self.rows.div_ceil(lanes);
            y.par_chunks_mut(chunk * n)
                .zip(scratch[..per * lanes].par_chunks_mut(per))
                .enumerate()
                .for_each(|(i, (yc, sc))| {
                    for (j, yr) in yc.chunks_exact_mut(n).enumerate() {
                        part(i * chunk + j, 0, yr, sc);
                    }
                });
        }
    }

    /// More rows: `qgemm` panels, whole panels of rows per thread, each with its own scratch.
    fn run_panels(
        &self,
        w: &QWeights,
        xq: &[u8],
        dynx: Dynamic,
        y: &mut [f32],
        scratch: &mut [u8],
        lanes: usize,
    ) {
        let (k, n) = (self.k, self.n);
        let per = w.scratch_bytes().next_multiple_of(64);
        let chunk = self.rows.div_ceil(lanes).next_multiple_of(NR);
        // Rows `first..` of X into `yc`, whose length says how many.
        let part = |first: usize, yc: &mut [f32], sc: &mut [u8]| {
            let r = yc.len() / n;
            let src = Source::Rows {
                x: &xq[first * k..(first + r) * k],
                ld: k,
            };
            w.run_dynamic(&src, 0, r, dynx, &self.epi, yc, 1, n, sc, 0..n);
        };
        if lanes > 1 && self.rows <= NR * lanes {
            // At most a panel of rows per lane: the weight rows (Y's columns) split between
            // the lanes instead, each lane's `[rows, width]` into its own part of `buf`, then
            // copied into Y. The same integers and epilogue per element as a whole-width run.
            let rows = self.rows;
            let width = n.div_ceil(lanes).next_multiple_of(NR);
            let (panels, buf) = scratch.split_at_mut(per * self.slots);
            let buf: &mut [f32] = bytemuck::cast_slice_mut(&mut buf[..4 * rows * n]);
            let src = Source::Rows {
                x: &xq[..rows * k],
                ld: k,
            };
            buf.par_chunks_mut(width * rows)
                .zip(panels[..per * lanes].par_chunks_mut(per))
                .enumerate()
                .for_each(|(i, (b, sc))| {
                    let (c0, wd) = (i * width, b.len() / rows);
                    w.run_dynamic(&src, 0, rows, dynx, &self.epi, b, 1, wd, sc, c0..c0 + wd);
                });
            for (i, b) in buf.chunks(width * rows).enumerate() {
                let wd = b.len() / rows;
                for (yr, br) in y.chunks_exact_mut(n).zip(b.chunks_exact(wd)) {
                    yr[i * width..i * width + wd].copy_from_slice(br);
                }
            }
        } else if lanes == 1 || chunk >= self.rows {
            part(0, y, &mut scratch[..per]);
        } else {
            y.par_chunks_mut(chunk * n)
                .zip(scratch[..per * lanes].par_chunks_mut(per))
                .enumerate()
                .for_each(|(i, (yc, sc))| part(i * chunk, yc, sc));
        }
    }
}

impl CpuKernel for DynamicMatMulKernel {
    fn scratch_bytes(&self) -> usize {
        self.xq_bytes() + self.path_bytes()
    }

    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        scratch: &mut [u8],
        ctx: &Ctx,
    ) -> Result<()> {
        let (k, n) = (self.k, self.n);
        let x = inputs[0].typed::<f32>();
        let y = outputs[0].typed::<f32>();
        if x.len() != self.rows * k
            || y.len() != self.rows * n
            || scratch.len() < self.scratch_bytes()
        {
            return Err(Error::invalid(
                "DynamicQuantizeMatMul: buffers do not match the planned shapes",
            ));
        }
        if let Weights::Empty = self.w {
            // No products: Y is empty, or (K = 0) every row is the bias.
            match inputs.get(2) {
                Some(b) if !y.is_empty() => {
                    let b = b.typed::<f32>();
                    for yr in y.chunks_exact_mut(n) {
                        yr.copy_from_slice(b);
                    }
                }
                _ => y.fill(0.0),
            }
            return Ok(());
        }
        let (xq_all, rest) = scratch.split_at_mut(self.xq_bytes());
        let xq = &mut xq_all[..x.len()];
        let (sx, zx) = quantize_into(x, xq);
        let lanes = self.lanes(ctx);
        match &self.w {
            Weights::Empty => unreachable!("returned above"),
            Weights::Blocks(w) => self.run_blocks(w, xq_all, zx, sx, y, lanes),
            Weights::Rows(w) => {
                let xi: &mut [i16] = bytemuck::try_cast_slice_mut(&mut rest[..2 * x.len()])
                    .map_err(|e| Error::invalid(format!("DynamicQuantizeMatMul scratch: {e}")))?;
                for (d, &q) in xi.iter_mut().zip(xq.iter()) {
                    *d = q as i16 - zx as i16;
                }
                self.run_rows(w, xi, sx, y, lanes);
            }
            Weights::Packed(w) => {
                let dynx = Dynamic {
                    zero_point: zx,
                    scale: sx,
                    accumulate: false,
                };
                if self.rows <= GEMV_ROWS && w.one_column_rows() {
                    self.run_columns(w, xq, dynx, y, rest, lanes);
                } else {
                    self.run_panels(w, xq, dynx, y, rest, lanes);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use edgefuse_kernels::qgemm::QKernel;

    use super::build_for;
    use crate::cpu::ops::{eval, BuildCtx, Ctx};
    use crate::ir::ops::{DynamicQuantizeLinear, DynamicQuantizeMatMul, Op};
    use crate::ir::Fact;
    use crate::tensor::AlignedBuf;
    use crate::testing::values;
    use crate::{DType, Tensor};

    /// The op on `inputs` through the kernel family `kernel`, on `threads` threads.
    fn run(
        op: &DynamicQuantizeMatMul,
        inputs: &[&Tensor],
        kernel: QKernel,
        threads: usize,
    ) -> Vec<f32> {
        let facts: Vec<Fact> = inputs
            .iter()
            .map(|t| Fact::new(t.dtype, t.shape.clone()))
            .collect();
        let out = Op::DynamicQuantizeMatMul(op.clone()).infer(&facts).unwrap();
        let views: Vec<_> = inputs.iter().map(|t| t.view()).collect();
        let consts: Vec<_> = views.iter().map(|v| Some(*v)).collect();
        let b = BuildCtx {
            inputs: &facts,
            outputs: &out,
            consts: &consts,
        };
        let kern = build_for(op, &b, kernel).unwrap();
        let mut y = Tensor::zeros(DType::F32, &out[0].shape);
        let mut scratch = AlignedBuf::zeroed(kern.scratch_bytes());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            kern.run(
                &views,
                &mut [y.view_mut()],
                scratch.as_mut_slice(),
                &Ctx { threads },
            )
        })
        .unwrap();
        y.as_slice::<f32>().unwrap().to_vec()
    }

    /// DynamicQuantizeLinear of `x`, then the i32 products, the scale and the bias in the
    /// order onnxruntime's Cast → Mul → Add round them.
    fn reference(x: &Tensor, w: &Tensor, op: &DynamicQuantizeMatMul, bias: &[f32]) -> Vec<f32> {
        let q = eval(&Op::DynamicQuantizeLinear(DynamicQuantizeLinear {}), &[x]).unwrap();
        let (xq, sx, zx) = (
            q[0].bytes(),
            q[1].as_slice::<f32>().unwrap()[0],
            q[2].bytes()[0],
        );
        let (k, n) = (w.shape[0], w.shape[1]);
        let at = |v: usize, c: usize| if v == 1 { 0 } else { c };
        let mut y = Vec::new();
        let rows: usize = x.shape[..x.shape.len() - 1].iter().product();
        for r in 0..rows {
            let row = &xq[r * k..(r + 1) * k];
            for c in 0..n {
                let zw = op.w_zero_point[at(op.w_zero_point.len(), c)];
                let acc: i64 = (0..k)
                    .map(|i| {
                        let b = w.bytes()[i * n + c];
                        let wv = if w.dtype == DType::I8 {
                            b as i8 as i64
                        } else {
                            b as i64
                        };
                        (row[i] as i64 - zx as i64) * (wv - zw as i64)
                    })
                    .sum();
                let s = sx * op.w_scale[at(op.w_scale.len(), c)];
                let v = acc as i32 as f32 * s;
                y.push(if bias.is_empty() { v } else { v + bias[c] });
            }
        }
        y
    }

    /// Every path (one row split by columns, a few rows, one panel of rows split by columns,
    /// panels of many rows split between threads), i8 and u8 weights, per-tensor and
    /// per-column parameters, with and without a bias, on every kernel family this CPU runs,
    /// on one thread and two: onnxruntime's arithmetic bit for bit.
    #[test]
    fn matches_the_quantized_chain_bit_for_bit() {
        // X's shape, K, N, W's type, per-column parameters, a bias.
        type Case<'a> = (&'a [usize], usize, usize, DType, bool, bool);
        let cases: [Case; 12] = [
            (&[1, 2000], 2000, 96, DType::I8, false, true),
            (&[3, 700], 700, 130, DType::U8, true, true),
            (&[2, 5, 330], 330, 17, DType::I8, true, false),
            (&[80, 520], 520, 70, DType::I8, false, true),
            (&[2, 40, 300], 300, 96, DType::U8, false, false),
            (&[6], 6, 3, DType::I8, true, true),
            (&[4, 0], 0, 5, DType::U8, false, true),
            (&[0, 7], 7, 3, DType::I8, true, true),
            (&[2, 9], 9, 0, DType::U8, false, false),
            // One panel of rows split by columns on two threads, unevenly (32 + 8).
            (&[12, 600], 600, 40, DType::U8, true, true),
            // At most a panel of rows per thread: 20 and 32 rows split by columns too.
            (&[20, 400], 400, 50, DType::I8, false, true),
            (&[32, 300], 300, 70, DType::U8, true, false),
        ];
        for (i, &(shape, k, n, wt, per_col, has_bias)) in cases.iter().enumerate() {
            let x = values(shape, 10 + i as u64);
            let raw: Vec<u8> = (0..k * n)
                .map(|j| ((j * 97 + i * 31) % 251) as u8)
                .collect();
            let w = Tensor::from_bytes(wt, &[k, n], &raw).unwrap();
            let count = if per_col { n } else { 1 };
            let op = DynamicQuantizeMatMul {
                w_scale: (0..count).map(|c| 0.01 + 0.003 * c as f32).collect(),
                w_zero_point: (0..count)
                    .map(|c| match wt {
                        DType::I8 => (c as i32 % 5) - 2,
                        _ => 120 + (c as i32 % 9),
                    })
                    .collect(),
                has_bias,
            };
            let bias: Vec<f32> = if has_bias {
                (0..n).map(|c| 0.25 - 0.01 * c as f32).collect()
            } else {
                vec![]
            };
            let want = reference(&x, &w, &op, &bias);
            let b = Tensor::from_vec(&[bias.len()], bias.clone()).unwrap();
            let mut inputs = vec![&x, &w];
            if has_bias {
                inputs.push(&b);
            }
            for kernel in QKernel::supported() {
                for threads in [1, 2] {
                    let got = run(&op, &inputs, kernel, threads);
                    assert_eq!(got.len(), want.len(), "case {i}");
                    for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(
                            g.to_bits(),
                            w.to_bits(),
                            "case {i}, {kernel:?}, {threads}T, [{j}]: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    /// Hostile attributes and shapes are refused with the op named, never a panic.
    #[test]
    fn refuses_what_does_not_fit() {
        let x = values(&[2, 4], 1);
        let w = Tensor::from_bytes(DType::I8, &[4, 3], &[1; 12]).unwrap();
        let bad = [
            (vec![0.5; 2], vec![0; 2], false),
            (vec![-1.0], vec![0], false),
            (vec![f32::NAN], vec![0], false),
            (vec![0.5], vec![200], false),
            (vec![0.5], vec![0], true),
        ];
        for (w_scale, w_zero_point, has_bias) in bad {
            let op = Op::DynamicQuantizeMatMul(DynamicQuantizeMatMul {
                w_scale,
                w_zero_point,
                has_bias,
            });
            let e = eval(&op, &[&x, &w]).unwrap_err().to_string();
            assert!(e.contains("DynamicQuantizeMatMul"), "{e}");
        }
        let op = Op::DynamicQuantizeMatMul(DynamicQuantizeMatMul {
            w_scale: vec![0.5],
            w_zero_point: vec![0],
            has_bias: false,
        });
        let short = values(&[2, 5], 2);
        assert!(eval(&op, &[&short, &w]).is_err());
        let wf = values(&[4, 3], 3);
        assert!(eval(&op, &[&x, &wf]).is_err());
    }
}
