//! CPU kernel for Resize (f32): nearest with every ONNX `nearest_mode`, N-linear and cubic
//! (`cubic.rs`), under every supported `coordinate_transformation_mode`.
//!
//! Build maps each output index of each axis to its source: one input index for nearest (rounded
//! by the mode, then clamped), or two neighbours and their weights for linear (the source
//! coordinate clamped to [0, len − 1] first, as onnxruntime does). Axes whose map is the identity
//! cost nothing at run time; linear interpolates along at most [`MAX_LERP_OUTER`] axes besides
//! the last. Linear and cubic share the walk over output rows and their corner rows
//! (`grid.rs`), with two taps per axis or four.

use edgefuse_kernels::strided::{contiguous_strides, MAX_RANK};

use crate::cpu::ops::{unsupported, BuildCtx, CpuKernel, Ctx};
use crate::ir::ops::{NearestMode, Resize, ResizeCoord, ResizeMode};
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::Result;

mod cubic;
mod grid;

use grid::{Grid, Taps};

/// Interpolated axes allowed besides the last (2³ = 8 corner rows per output row).
const MAX_LERP_OUTER: usize = 3;

/// The source coordinate of output index `x` (ONNX `coordinate_transformation_mode`), in f32 like
/// onnxruntime.
fn source_coord(coord: ResizeCoord, x: usize, scale: f32, len_in: usize, len_out: usize) -> f32 {
    let x = x as f32;
    match coord {
        ResizeCoord::HalfPixel => (x + 0.5) / scale - 0.5,
        ResizeCoord::PytorchHalfPixel => {
            if len_out > 1 {
                (x + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        ResizeCoord::AlignCorners => {
            if len_out == 1 {
                0.0
            } else {
                x * (len_in as f32 - 1.0) / (len_out as f32 - 1.0)
            }
        }
        ResizeCoord::Asymmetric => x / scale,
        ResizeCoord::TfHalfPixelForNn => (x + 0.5) / scale,
        ResizeCoord::HalfPixelSymmetric => {
            let adjustment = len_out as f32 / (scale * len_in as f32);
            let offset = len_in as f32 / 2.0 * (1.0 - adjustment);
            offset + (x + 0.5) / scale - 0.5
        }
    }
}

/// Axis `a`'s scale: the ONNX one, or out/in where none is recorded.
fn axis_scale(op: &Resize, a: usize, n_in: usize, n_out: usize) -> f32 {
    match op.scales.get(a) {
        Some(&s) if s > 0.0 => s,
        _ => n_out as f32 / n_in as f32,
    }
}

/// [`source_coord`], except that an axis scaled by exactly 1 keeps its indices under every rule,
/// as onnxruntime's does (tf_half_pixel_for_nn would otherwise shift it by half a pixel).
fn axis_coord(coord: ResizeCoord, x: usize, scale: f32, len_in: usize, len_out: usize) -> f32 {
    if len_in == len_out && scale == 1.0 {
        x as f32
    } else {
        source_coord(coord, x, scale, len_in, len_out)
    }
}

/// The input index nearest to coordinate `c` under `mode`, clamped to [0, len − 1].
fn nearest(mode: NearestMode, c: f32, len: usize) -> usize {
    let half_way = c == c.trunc() + 0.5;
    let i = match mode {
        NearestMode::RoundPreferFloor if half_way => c.floor(),
        NearestMode::RoundPreferCeil if half_way => c.ceil(),
        NearestMode::RoundPreferFloor | NearestMode::RoundPreferCeil => c.round(),
        NearestMode::Floor => c.floor(),
        NearestMode::Ceil => c.ceil(),
    };
    (i.max(0.0) as usize).min(len - 1)
}

pub fn build(op: &Resize, b: &BuildCtx) -> Result<Box<dyn CpuKernel>> {
    let x = &b.inputs[0];
    let r = x.rank();
    let out = op.out_shape.clone();
    if x.dtype != DType::F32 || r == 0 || r > MAX_RANK + 1 {
        return unsupported(format!("Resize of {} rank {r}", x.dtype));
    }
    if out.contains(&0) {
        return Ok(Box::new(ResizeKernel::empty(out)));
    }
    if x.shape.contains(&0) {
        return unsupported("Resize of an empty input to a non-empty output");
    }
    if let ResizeMode::Cubic { a, exclude_outside } = op.mode {
        return cubic::build(op, &x.shape, a, exclude_outside);
    }
    let strides = contiguous_strides(&x.shape);
    let mut taps: Vec<Vec<Taps<2>>> = Vec::with_capacity(r);
    for a in 0..r {
        let (n_in, n_out) = (x.shape[a], out[a]);
        let scale = axis_scale(op, a, n_in, n_out);
        let stride = strides[a] as usize;
        let axis = (0..n_out)
            .map(|o| {
                let c = axis_coord(op.coord, o, scale, n_in, n_out);
                match op.mode {
                    ResizeMode::Nearest(m) => {
                        let i = nearest(m, c, n_in) * stride;
                        Taps {
                            off: [i, i],
                            w: [1.0, 0.0],
                        }
                    }
                    ResizeMode::Linear | ResizeMode::Cubic { .. } => {
                        let c = c.clamp(0.0, (n_in - 1) as f32);
                        let i0 = (c as usize).min(n_in - 1);
                        let i1 = (i0 + 1).min(n_in - 1);
                        let w1 = if i1 == i0 { 0.0 } else { c - i0 as f32 };
                        Taps {
                            off: [i0 * stride, i1 * stride],
                            w: [1.0 - w1, w1],
                        }
                    }
                }
            })
            .collect();
        taps.push(axis);
    }
    let lerp: Vec<bool> = taps
        .iter()
        .map(|t| t.iter().any(|t| t.w[1] != 0.0))
        .collect();
    let outer_lerp = lerp[..r - 1].iter().filter(|&&l| l).count();
    if outer_lerp > MAX_LERP_OUTER {
        return unsupported(format!("linear Resize along {} axes", outer_lerp + 1));
    }
    Ok(Box::new(ResizeKernel {
        grid: Grid {
            out_shape: out,
            taps,
            interp: lerp,
        },
    }))
}

/// Nearest and linear: two taps per axis (nearest's second weighs nothing).
struct ResizeKernel {
    grid: Grid<2, true>,
}

impl ResizeKernel {
    fn empty(out_shape: Vec<usize>) -> ResizeKernel {
        ResizeKernel {
            grid: Grid {
                out_shape,
                taps: Vec::new(),
                interp: Vec::new(),
            },
        }
    }
}

impl CpuKernel for ResizeKernel {
    fn run(
        &self,
        inputs: &[TensorView],
        outputs: &mut [TensorViewMut],
        _scratch: &mut [u8],
        _ctx: &Ctx,
    ) -> Result<()> {
        let x = inputs[0].typed::<f32>();
        let out = outputs[0].typed::<f32>();
        if self.grid.last_interp() {
            self.grid.run(x, out, |src, t| {
                t.w[0] * src[t.off[0]] + t.w[1] * src[t.off[1]]
            });
        } else {
            self.grid.run(x, out, |src, t| src[t.off[0]]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::ops::eval;
    use crate::ir::ops::{NearestMode, Op, Resize, ResizeCoord, ResizeMode};
    use crate::Tensor;

    fn resize(x: &Tensor, mode: ResizeMode, coord: ResizeCoord, out: &[usize]) -> Vec<f32> {
        let scales = x
            .shape
            .iter()
            .zip(out)
            .map(|(&i, &o)| o as f32 / i as f32)
            .collect();
        let op = Op::Resize(Resize {
            mode,
            coord,
            scales,
            out_shape: out.to_vec(),
        });
        eval(&op, &[x]).unwrap()[0]
            .as_slice::<f32>()
            .unwrap()
            .to_vec()
    }

    /// [[1, 2], [3, 4]] as [1, 1, 2, 2].
    fn x22() -> Tensor {
        Tensor::from_vec(&[1, 1, 2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap()
    }

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() < 1e-6, "[{i}] {g} vs {w}\n{got:?}");
        }
    }

    #[test]
    fn linear_half_pixel_2x2_to_4x4() {
        // Source coords: (x + 0.5)/2 - 0.5 = -0.25, 0.25, 0.75, 1.25 → clamped 0, .25, .75, 1.
        let got = resize(
            &x22(),
            ResizeMode::Linear,
            ResizeCoord::HalfPixel,
            &[1, 1, 4, 4],
        );
        #[rustfmt::skip]
        let want = [
            1.0, 1.25, 1.75, 2.0,
            1.5, 1.75, 2.25, 2.5,
            2.5, 2.75, 3.25, 3.5,
            3.0, 3.25, 3.75, 4.0,
        ];
        close(&got, &want);
    }

    #[test]
    fn linear_align_corners_2x2_to_4x4() {
        // Source coords: x/3 → 0, 1/3, 2/3, 1.
        let got = resize(
            &x22(),
            ResizeMode::Linear,
            ResizeCoord::AlignCorners,
            &[1, 1, 4, 4],
        );
        let t = 1.0 / 3.0;
        let row = |a: f32| [a, a + t, a + 2.0 * t, a + 1.0];
        let want: Vec<f32> = [1.0, 1.0 + 2.0 * t, 1.0 + 4.0 * t, 3.0]
            .iter()
            .flat_map(|&a| row(a))
            .collect();
        close(&got, &want);
    }

    #[test]
    fn linear_asymmetric_2x2_to_4x4() {
        // Source coords: x/2 → 0, .5, 1, 1.5 → clamped to 1.
        let got = resize(
            &x22(),
            ResizeMode::Linear,
            ResizeCoord::Asymmetric,
            &[1, 1, 4, 4],
        );
        #[rustfmt::skip]
        let want = [
            1.0, 1.5, 2.0, 2.0,
            2.0, 2.5, 3.0, 3.0,
            3.0, 3.5, 4.0, 4.0,
            3.0, 3.5, 4.0, 4.0,
        ];
        close(&got, &want);
    }

    #[test]
    fn nearest_modes_2x2_to_4x4() {
        use NearestMode::*;
        // Asymmetric: x/2 = 0, .5, 1, 1.5.
        let row = |m| {
            resize(
                &x22(),
                ResizeMode::Nearest(m),
                ResizeCoord::Asymmetric,
                &[1, 1, 4, 4],
            )[..4]
                .to_vec()
        };
        assert_eq!(row(RoundPreferFloor), vec![1.0, 1.0, 2.0, 2.0]);
        assert_eq!(row(RoundPreferCeil), vec![1.0, 2.0, 2.0, 2.0]);
        assert_eq!(row(Floor), vec![1.0, 1.0, 2.0, 2.0]);
        assert_eq!(row(Ceil), vec![1.0, 2.0, 2.0, 2.0]);
        // Half pixel: -0.25, 0.25, 0.75, 1.25 → 0, 0, 1, 1 under round_prefer_floor.
        let got = resize(
            &x22(),
            ResizeMode::Nearest(RoundPreferFloor),
            ResizeCoord::HalfPixel,
            &[1, 1, 4, 4],
        );
        #[rustfmt::skip]
        let want = [
            1.0, 1.0, 2.0, 2.0,
            1.0, 1.0, 2.0, 2.0,
            3.0, 3.0, 4.0, 4.0,
            3.0, 3.0, 4.0, 4.0,
        ];
        assert_eq!(got, want);
        // Align corners: 0, 1/3, 2/3, 1 → 0, 0, 1, 1.
        let got = resize(
            &x22(),
            ResizeMode::Nearest(RoundPreferFloor),
            ResizeCoord::AlignCorners,
            &[1, 1, 4, 4],
        );
        assert_eq!(got, want);
        // Downsampling 4 → 2 with tf_half_pixel_for_nn: (x + .5)·2 = 1, 3.
        let x = Tensor::from_vec(&[4], vec![10.0f32, 11.0, 12.0, 13.0]).unwrap();
        let got = resize(
            &x,
            ResizeMode::Nearest(Floor),
            ResizeCoord::TfHalfPixelForNn,
            &[2],
        );
        assert_eq!(got, vec![11.0, 13.0]);
    }

    #[test]
    fn cubic_matches_onnx_example() {
        // ONNX's test_resize_upsample_scales_cubic: 1..=16 as 4×4, scales 2, half pixel,
        // a = -0.75; its first output row.
        let x = Tensor::from_vec(&[1, 1, 4, 4], (1..=16).map(|v| v as f32).collect()).unwrap();
        let mode = ResizeMode::Cubic {
            a: -0.75,
            exclude_outside: false,
        };
        let got = resize(&x, mode, ResizeCoord::HalfPixel, &[1, 1, 8, 8]);
        let want = [
            0.47265625, 0.76953125, 1.2460938, 1.875, 2.28125, 2.9101562, 3.3867188, 3.6835938,
        ];
        close(&got[..8], &want);
        // exclude_outside: the taps past the edge weigh nothing (onnxruntime's values).
        let mode = ResizeMode::Cubic {
            a: -0.75,
            exclude_outside: true,
        };
        let got = resize(&x, mode, ResizeCoord::HalfPixel, &[1, 1, 8, 8]);
        let want = [
            0.31818193, 0.6276902, 1.0998285, 1.7514205, 2.1576705, 2.8092623, 3.2814007, 3.5909085,
        ];
        close(&got[..8], &want);
    }

    #[test]
    fn cubic_with_absurd_scales_does_not_panic() {
        // A hostile file: source coordinates at ±inf and NaN.
        let x = Tensor::from_vec(&[3], vec![1.0f32, 2.0, 3.0]).unwrap();
        for scale in [1e-45f32, -1e-45, f32::NAN] {
            for exclude_outside in [false, true] {
                let op = Op::Resize(Resize {
                    mode: ResizeMode::Cubic {
                        a: -0.75,
                        exclude_outside,
                    },
                    coord: ResizeCoord::Asymmetric,
                    scales: vec![scale],
                    out_shape: vec![2],
                });
                let _ = eval(&op, &[&x]);
            }
        }
    }

    #[test]
    fn axes_of_scale_one_keep_their_indices() {
        // tf_half_pixel_for_nn + ceil maps index i to ceil(i + 0.5) = i + 1 on an axis of scale
        // 1; onnxruntime (and so exporters) leave such an axis alone.
        let x = Tensor::from_vec(&[2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        let got = resize(
            &x,
            ResizeMode::Nearest(NearestMode::Ceil),
            ResizeCoord::TfHalfPixelForNn,
            &[2, 4],
        );
        // Columns: ceil((j + 0.5) / 2) = 1, 1, 2, 2, clamped to 1; rows unchanged.
        assert_eq!(got, vec![2.0, 2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0]);
    }

    /// Linear over three axes sums each output's four corner rows with the outermost axis's
    /// taps varying fastest (`grid::Grid`): the kernel's results bit for bit. The other order
    /// gives other last bits on these values, so a change of order shows here.
    #[test]
    fn linear_sums_corner_rows_outermost_axis_fastest() {
        let (shape, out) = ([3, 4, 5], [5, 7, 9]);
        let x = crate::testing::values(&shape, 7);
        let got = resize(&x, ResizeMode::Linear, ResizeCoord::AlignCorners, &out);
        let xs = x.as_slice::<f32>().unwrap();
        // The kernel's taps along one axis: (i0, i1, w0, w1).
        let tap = |n_in: usize, n_out: usize, o: usize| {
            let c = o as f32 * (n_in as f32 - 1.0) / (n_out as f32 - 1.0);
            let c = c.clamp(0.0, (n_in - 1) as f32);
            let i0 = (c as usize).min(n_in - 1);
            let i1 = (i0 + 1).min(n_in - 1);
            let w1 = if i1 == i0 { 0.0 } else { c - i0 as f32 };
            ([i0, i1], [1.0 - w1, w1])
        };
        let (mut fastest, mut slowest) = (Vec::new(), Vec::new());
        for i in 0..out[0] {
            for j in 0..out[1] {
                for k in 0..out[2] {
                    let ((a, wa), (b, wb), (c, wc)) = (
                        tap(shape[0], out[0], i),
                        tap(shape[1], out[1], j),
                        tap(shape[2], out[2], k),
                    );
                    let row = |p: usize, q: usize| {
                        let src = &xs[(a[p] * shape[1] + b[q]) * shape[2]..];
                        wc[0] * src[c[0]] + wc[1] * src[c[1]]
                    };
                    let sum = |order: [(usize, usize); 4]| {
                        order
                            .iter()
                            .fold(0.0f32, |acc, &(p, q)| acc + wa[p] * wb[q] * row(p, q))
                    };
                    fastest.push(sum([(0, 0), (1, 0), (0, 1), (1, 1)]).to_bits());
                    slowest.push(sum([(0, 0), (0, 1), (1, 0), (1, 1)]).to_bits());
                }
            }
        }
        let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, fastest);
        assert_ne!(fastest, slowest, "the two orders agree on these values");
    }

    #[test]
    fn trilinear_matches_separable_reference() {
        let x = Tensor::from_vec(&[2, 2, 2], (0..8).map(|v| (v * v) as f32).collect()).unwrap();
        let got = resize(
            &x,
            ResizeMode::Linear,
            ResizeCoord::AlignCorners,
            &[3, 3, 3],
        );
        // Align corners 2 → 3: coordinates 0, .5, 1 on every axis.
        let v = |i: usize, j: usize, k: usize| ((i * 4 + j * 2 + k) * (i * 4 + j * 2 + k)) as f32;
        let lerp1 = |f: &dyn Fn(usize) -> f32, c: usize| match c {
            0 => f(0),
            1 => 0.5 * (f(0) + f(1)),
            _ => f(1),
        };
        let mut want = Vec::new();
        for a in 0..3 {
            for b in 0..3 {
                for c in 0..3 {
                    want.push(lerp1(&|i| lerp1(&|j| lerp1(&|k| v(i, j, k), c), b), a));
                }
            }
        }
        close(&got, &want);
    }
}
