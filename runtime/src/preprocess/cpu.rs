//! The fused CPU step: frame bytes in, model input out, in one pass. For each output row it
//! gathers only the source pixels the resampling taps name, converts them to RGB (`pixel`),
//! accumulates them with the tap weights, normalises, and stores in the input's layout and
//! element type. Rows are split across threads with `rayon::join` inside a resident pool worker
//! (`cpu::worker`, so entering the pool allocates nothing); every buffer is sized when the frame
//! size changes, so a stream of same-sized frames allocates nothing (MJPEG decoding aside).

use std::ops::Range;

use half::f16;

use super::geometry::{Axis, Geometry};
use super::pixel::{self, Quant, Store};
use super::spec::{Color, Layout, PreprocessSpec};
use crate::capture::decode::Decoder;
use crate::capture::{Frame, PixelFormat};
use crate::cpu::worker::Worker;
use crate::ir::TensorInfo;
use crate::{DType, Error, Result};

/// Shape and element type of the model input the step writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub dtype: DType,
    pub quant: Quant,
}

impl Target {
    /// The target for a model input of rank 4 (`[1, C, H, W]` or `[1, H, W, C]` per the layout).
    pub fn for_input(spec: &PreprocessSpec, info: &TensorInfo) -> Result<Target> {
        let s = &info.shape;
        let bad = |why: &str| {
            Error::invalid(format!(
                "input \"{}\" {} {:?}: {why}",
                info.name, info.dtype, info.shape
            ))
        };
        if s.len() != 4 || s[0] != 1 {
            return Err(bad(
                "preprocessing needs a [1, C, H, W] or [1, H, W, C] input",
            ));
        }
        let (c, h, w) = match spec.layout {
            Layout::Nchw => (s[1], s[2], s[3]),
            Layout::Nhwc => (s[3], s[1], s[2]),
        };
        // The loader checked the parameters (`Graph::validate`); per-channel ones are the model's
        // business, which preprocessing does not do.
        let quant = match &info.quant {
            None => Quant::default(),
            Some(q) if q.scale.len() == 1 && q.zero_point.len() == 1 => Quant {
                scale: q.scale[0],
                zero_point: q.zero_point[0] as f32,
            },
            Some(q) => {
                return Err(bad(&format!(
                    "preprocessing quantizes per tensor, and this input has {} scales",
                    q.scale.len()
                )))
            }
        };
        let target = Target {
            width: w,
            height: h,
            channels: c,
            dtype: info.dtype,
            quant,
        };
        target.check(spec).map_err(|e| bad(&e.to_string()))?;
        Ok(target)
    }

    /// Checks the step can write this target from `spec`: the spec's channels and crop, a size
    /// of at least 1x1, an element type it writes, for f16 normalised values within its range,
    /// and for integer types a quantization with a positive finite scale and a zero point in
    /// the type's range.
    pub fn check(&self, spec: &PreprocessSpec) -> Result<()> {
        let bad = |why: String| {
            Err(Error::invalid(format!(
                "preprocess target {}x{}, {} channels, {}: {why}",
                self.width, self.height, self.channels, self.dtype
            )))
        };
        if self.channels != spec.channels() {
            return bad(format!(
                "the preprocessing (color={}, layout={}) makes {} channels",
                match spec.color {
                    Color::Gray => "gray",
                    Color::Rgb => "rgb",
                    Color::Bgr => "bgr",
                },
                if spec.layout == Layout::Nchw {
                    "nchw"
                } else {
                    "nhwc"
                },
                spec.channels()
            ));
        }
        if self.width == 0 || self.height == 0 {
            return bad("an empty size".into());
        }
        if let Some((cw, ch)) = spec
            .crop
            .filter(|&(w, h)| (w as usize, h as usize) != (self.width, self.height))
        {
            return bad(format!("the preprocessing crops {cw}x{ch}"));
        }
        let range = match self.dtype {
            DType::F32 => return Ok(()),
            DType::F16 => {
                // The spec keeps 0..255 and the pad finite in f32; f16 ends at 65504.
                for c in 0..self.channels {
                    let (m, s) = spec.mean_std(c);
                    let (scale, bias) = pixel::norm_coeffs(m, s);
                    for (k, v) in [0.0, 255.0, spec.pad].into_iter().enumerate() {
                        if (v * scale + bias).abs() > f16::MAX.to_f32() {
                            let what = if k == 2 {
                                "the pad".to_string()
                            } else {
                                format!("pixel value {v}")
                            };
                            return bad(format!(
                                "mean={m:?}, std={s:?} (channel {c}): {what} normalises beyond f16's range"
                            ));
                        }
                    }
                }
                return Ok(());
            }
            DType::U8 => 0.0..=255.0,
            DType::I8 => -128.0..=127.0,
            _ => return bad("preprocessing writes f32, f16, u8 or i8 inputs only".into()),
        };
        let q = self.quant;
        if !(q.scale.is_finite() && q.scale > 0.0) {
            return bad(format!(
                "quantization scale {} is not positive and finite",
                q.scale
            ));
        }
        if !range.contains(&q.zero_point) {
            return bad(format!(
                "zero point {} is outside {}",
                q.zero_point, self.dtype
            ));
        }
        Ok(())
    }

    pub fn byte_len(&self) -> usize {
        self.width * self.height * self.channels * self.dtype.size()
    }
}

/// Per-thread buffers, one output row wide.
struct Scratch {
    raw: [Vec<f32>; 3],
    acc: [Vec<f32>; 3],
}

/// A preprocessing step ready to run: the spec, the target, and the tap tables for the
/// current frame size (rebuilt when it changes).
pub struct CpuPreprocessor {
    spec: PreprocessSpec,
    target: Target,
    geometry: Option<Geometry>,
    scratch: Vec<Scratch>,
    threads: usize,
    pool: Option<Worker>,
    decoder: Decoder,
    /// `x * scale + bias` per output channel, and the padding value per output channel.
    scale: [f32; 3],
    bias: [f32; 3],
}

impl CpuPreprocessor {
    pub fn new(spec: PreprocessSpec, target: Target) -> Result<CpuPreprocessor> {
        spec.validate()?;
        target.check(&spec)?;
        let mut scale = [1.0; 3];
        let mut bias = [0.0; 3];
        for c in 0..target.channels.min(3) {
            let (m, s) = spec.mean_std(c);
            (scale[c], bias[c]) = pixel::norm_coeffs(m, s);
        }
        Ok(CpuPreprocessor {
            spec,
            target,
            geometry: None,
            scratch: Vec::new(),
            threads: crate::cpu::cores().clamp(1, 8),
            pool: None,
            decoder: Decoder::default(),
            scale,
            bias,
        })
    }

    /// Threads used per frame (default: the machine's cores, at most 8).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
        self.scratch.clear();
        self.pool = None;
    }

    pub fn spec(&self) -> &PreprocessSpec {
        &self.spec
    }
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Preprocesses one frame into `out` (the model input's bytes, aligned for its element
    /// type). A bad frame (short, wrong size, corrupt JPEG) is an error for that frame only.
    pub fn run(&mut self, frame: &Frame, out: &mut [u8]) -> Result<()> {
        frame.check()?;
        if out.len() != self.target.byte_len() {
            return Err(Error::invalid(format!(
                "preprocess: output buffer is {} bytes, the input needs {}",
                out.len(),
                self.target.byte_len()
            )));
        }
        let frame = if frame.format == PixelFormat::Mjpeg {
            self.decoder.decode(frame)?
        } else {
            frame
        };
        let (w, h) = (frame.width, frame.height);
        if self.geometry.as_ref().map(|g| g.src) != Some((w, h)) {
            self.geometry = Some(Geometry::new(
                &self.spec,
                w,
                h,
                self.target.width,
                self.target.height,
            )?);
        }
        if self.scratch.len() != self.threads || self.scratch[0].acc[0].len() != self.target.width {
            let row = || [0, 1, 2].map(|_| vec![0f32; self.target.width]);
            self.scratch = (0..self.threads)
                .map(|_| Scratch {
                    raw: row(),
                    acc: row(),
                })
                .collect();
        }
        let ctx = Ctx {
            frame,
            geo: self.geometry.as_ref().expect("set above"),
            spec: &self.spec,
            t: self.target,
            scale: self.scale,
            bias: self.bias,
        };
        if self.threads > 1 && self.pool.is_none() {
            crate::cpu::check_threads(self.threads)?;
            let w = Worker::new(self.threads).map_err(|e| {
                Error::invalid(format!(
                    "preprocess: cannot start {} threads: {e}",
                    self.threads
                ))
            })?;
            self.pool = Some(w);
        }
        let scratch = &mut self.scratch;
        let mut result = Ok(());
        let mut job = || result = ctx.write(out, scratch);
        match &self.pool {
            Some(w) => {
                if !w.run(&mut job) {
                    return Err(Error::invalid(
                        "preprocess: the worker thread stopped after a panic",
                    ));
                }
            }
            None => job(),
        }
        result
    }
}

/// Everything one frame's rows need, shared by the threads.
struct Ctx<'a> {
    frame: &'a Frame,
    geo: &'a Geometry,
    spec: &'a PreprocessSpec,
    t: Target,
    scale: [f32; 3],
    bias: [f32; 3],
}

impl Ctx<'_> {
    /// Elements of one output row in each part: NCHW has one plane per channel, NHWC one part.
    fn row_len(&self) -> usize {
        match self.spec.layout {
            Layout::Nchw => self.t.width,
            Layout::Nhwc => self.t.width * self.t.channels,
        }
    }

    /// Writes the frame into `out`, typed as the target's element type.
    fn write(&self, out: &mut [u8], scratch: &mut [Scratch]) -> Result<()> {
        let misaligned = || {
            Error::invalid("preprocess: output buffer is not aligned for the input's element type")
        };
        match self.t.dtype {
            DType::F32 => self.start(
                bytemuck::try_cast_slice_mut::<u8, f32>(out).map_err(|_| misaligned())?,
                scratch,
            ),
            DType::F16 => self.start(
                bytemuck::try_cast_slice_mut::<u8, f16>(out).map_err(|_| misaligned())?,
                scratch,
            ),
            DType::U8 => self.start(out, scratch),
            DType::I8 => self.start(bytemuck::cast_slice_mut::<u8, i8>(out), scratch),
            other => {
                return Err(Error::invalid(format!(
                    "preprocess: cannot write {other} inputs"
                )))
            }
        }
        Ok(())
    }

    fn start<T: Store>(&self, out: &mut [T], scratch: &mut [Scratch]) {
        let plane = self.t.width * self.t.height;
        let (p0, rest) = out.split_at_mut(if self.spec.layout == Layout::Nchw {
            plane
        } else {
            out.len()
        });
        let (p1, p2) = rest.split_at_mut(rest.len().min(plane));
        self.rows(0..self.t.height, [p0, p1, p2], scratch);
    }

    /// Splits rows (and the matching slices of each output part) across the scratch buffers.
    fn rows<T: Store>(&self, rows: Range<usize>, parts: [&mut [T]; 3], scratch: &mut [Scratch]) {
        if scratch.len() <= 1 || rows.len() < 8 {
            let mut parts = parts;
            for (k, oy) in rows.enumerate() {
                self.row(oy, k, &mut parts, &mut scratch[0]);
            }
            return;
        }
        let half = scratch.len() / 2;
        let mid = rows.start + rows.len() * half / scratch.len();
        let (sa, sb) = scratch.split_at_mut(half);
        let at = (mid - rows.start) * self.row_len();
        let [a0, a1, a2] = parts.map(|p| {
            let n = at.min(p.len());
            p.split_at_mut(n)
        });
        rayon::join(
            || self.rows(rows.start..mid, [a0.0, a1.0, a2.0], sa),
            || self.rows(mid..rows.end, [a0.1, a1.1, a2.1], sb),
        );
    }

    /// Output row `oy`, written at row `k` of `parts`.
    fn row<T: Store>(&self, oy: usize, k: usize, parts: &mut [&mut [T]; 3], s: &mut Scratch) {
        let w = self.t.width;
        let (gx, gy) = (&self.geo.x, &self.geo.y);
        let cols = gx.inside.clone();
        for a in &mut s.acc {
            a[..w].fill(self.spec.pad);
        }
        if gy.inside.contains(&oy) {
            for a in &mut s.acc {
                a[cols.clone()].fill(0.0);
            }
            for ky in 0..gy.taps {
                let wy = gy.w[ky * gy.n + oy];
                if wy == 0.0 {
                    continue;
                }
                let sy = gy.idx[ky * gy.n + oy] as usize;
                for kx in 0..gx.taps {
                    self.gather(sy, gx, kx, cols.clone(), &mut s.raw);
                    let wx = &gx.w[kx * gx.n..][cols.clone()];
                    let [r0, r1, r2] = &s.raw;
                    let [a0, a1, a2] = &mut s.acc;
                    let n = cols.len();
                    let (a0, a1, a2) = (
                        &mut a0[cols.clone()],
                        &mut a1[cols.clone()],
                        &mut a2[cols.clone()],
                    );
                    for j in 0..n {
                        let f = wy * wx[j];
                        a0[j] += f * r0[j];
                        a1[j] += f * r1[j];
                        a2[j] += f * r2[j];
                    }
                }
            }
        }
        self.store(k, parts, &s.acc);
    }

    /// Gathers tap `kx` of columns `cols` on source row `sy` as RGB in 0..255 into `raw[c][..n]`.
    fn gather(&self, sy: usize, gx: &Axis, kx: usize, cols: Range<usize>, raw: &mut [Vec<f32>; 3]) {
        let f = self.frame;
        let d = &f.data[..];
        let xs = &gx.idx[kx * gx.n..][cols];
        let n = xs.len();
        let [r, g, b] = raw;
        let (r, g, b) = (&mut r[..n], &mut g[..n], &mut b[..n]);
        let line = sy * f.stride;
        match f.format {
            PixelFormat::Yuyv | PixelFormat::Uyvy => {
                let (yo, uo, vo) = if f.format == PixelFormat::Yuyv {
                    (0, 1, 3)
                } else {
                    (1, 0, 2)
                };
                let row = &d[line..line + f.format.min_stride(f.width)];
                for (j, &x) in xs.iter().enumerate() {
                    let x = x as usize;
                    let pair = (x & !1) * 2;
                    r[j] = row[2 * x + yo] as f32;
                    g[j] = row[pair + uo] as f32;
                    b[j] = row[pair + vo] as f32;
                }
                pixel::yuv_planes_to_rgb(r, g, b);
            }
            PixelFormat::Nv12 => {
                let luma = &d[line..line + f.width];
                let c = f.stride * f.height + (sy / 2) * f.stride;
                let chroma = &d[c..c + f.width.div_ceil(2) * 2];
                for (j, &x) in xs.iter().enumerate() {
                    let x = x as usize;
                    r[j] = luma[x] as f32;
                    g[j] = chroma[x & !1] as f32;
                    b[j] = chroma[(x & !1) + 1] as f32;
                }
                pixel::yuv_planes_to_rgb(r, g, b);
            }
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => {
                let (ro, bo) = if f.format == PixelFormat::Rgb24 {
                    (0, 2)
                } else {
                    (2, 0)
                };
                let row = &d[line..line + 3 * f.width];
                for (j, &x) in xs.iter().enumerate() {
                    let p = &row[3 * x as usize..3 * x as usize + 3];
                    r[j] = p[ro] as f32;
                    g[j] = p[1] as f32;
                    b[j] = p[bo] as f32;
                }
            }
            PixelFormat::Grey => {
                let row = &d[line..line + f.width];
                for (j, &x) in xs.iter().enumerate() {
                    let v = row[x as usize] as f32;
                    (r[j], g[j], b[j]) = (v, v, v);
                }
            }
            PixelFormat::Mjpeg => unreachable!("MJPEG frames are decoded before sampling"),
        }
    }

    /// Colour order or gray, normalisation, layout and element type for output row `k`.
    fn store<T: Store>(&self, k: usize, parts: &mut [&mut [T]; 3], acc: &[Vec<f32>; 3]) {
        let w = self.t.width;
        let q = self.t.quant;
        let (sc, bi) = (self.scale, self.bias);
        let src: [&[f32]; 3] = match self.spec.color {
            Color::Rgb | Color::Gray => [&acc[0][..w], &acc[1][..w], &acc[2][..w]],
            Color::Bgr => [&acc[2][..w], &acc[1][..w], &acc[0][..w]],
        };
        match (self.spec.layout, self.spec.color) {
            (Layout::Nchw, Color::Gray) | (Layout::Nhwc, Color::Gray) => {
                let out = &mut parts[0][k * w..(k + 1) * w];
                let [lr, lg, lb] = pixel::LUMA;
                for j in 0..w {
                    let v = lr * src[0][j] + lg * src[1][j] + lb * src[2][j];
                    out[j] = T::store(v * sc[0] + bi[0], q);
                }
            }
            (Layout::Nchw, _) => {
                for c in 0..3 {
                    let out = &mut parts[c][k * w..(k + 1) * w];
                    for j in 0..w {
                        out[j] = T::store(src[c][j] * sc[c] + bi[c], q);
                    }
                }
            }
            (Layout::Nhwc, _) => {
                let out = &mut parts[0][k * w * 3..(k + 1) * w * 3];
                for j in 0..w {
                    for c in 0..3 {
                        out[3 * j + c] = T::store(src[c][j] * sc[c] + bi[c], q);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::QuantParams;

    fn u8_input(quant: QuantParams) -> TensorInfo {
        TensorInfo {
            name: "image".into(),
            dtype: DType::U8,
            shape: vec![1, 3, 4, 4],
            weight: None,
            quant: Some(quant),
        }
    }

    #[test]
    fn an_integer_input_is_quantized_per_tensor_only() {
        let spec = PreprocessSpec::default();
        let t = Target::for_input(
            &spec,
            &u8_input(QuantParams {
                scale: vec![0.5],
                zero_point: vec![7],
                axis: None,
            }),
        )
        .unwrap();
        assert_eq!(
            t.quant,
            Quant {
                scale: 0.5,
                zero_point: 7.0
            }
        );
        // Used to take the first channel's parameters for all three.
        let e = Target::for_input(
            &spec,
            &u8_input(QuantParams {
                scale: vec![0.5, 0.25, 0.125],
                zero_point: vec![0, 1, 2],
                axis: Some(1),
            }),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("\"image\"") && e.contains("3 scales"), "{e}");
    }
}
