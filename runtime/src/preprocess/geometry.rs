//! Where each output pixel samples the source: per-axis tap tables computed once per frame
//! size. Coordinates use half-pixel centres (`src = (dst + 0.5) * scale - 0.5`, as OpenCV and
//! PIL); `fit=crop` follows torchvision (`Resize(short side)` truncates the long side,
//! `CenterCrop` rounds the offset half to even).

use std::ops::Range;

use super::spec::{Fit, Interp, PreprocessSpec};
use crate::{Error, Result};

/// One axis: for output index `o` and tap `k`, source index `idx[k * n + o]` with weight
/// `w[k * n + o]` (weights of one output sum to 1; unused taps weigh 0). Outputs outside
/// `inside` are letterbox padding.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub n: usize,
    pub taps: usize,
    pub idx: Vec<u32>,
    pub w: Vec<f32>,
    pub inside: Range<usize>,
}

/// Both axes of one (source size, spec, output size).
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    pub src: (usize, usize),
    pub x: Axis,
    pub y: Axis,
}

impl Geometry {
    /// Tap tables for a `src_w x src_h` frame into an `out_w x out_h` model input.
    pub fn new(
        spec: &PreprocessSpec,
        src_w: usize,
        src_h: usize,
        out_w: usize,
        out_h: usize,
    ) -> Result<Geometry> {
        if src_w == 0 || src_h == 0 || out_w == 0 || out_h == 0 {
            return Err(Error::invalid(format!(
                "preprocess: empty size {src_w}x{src_h} -> {out_w}x{out_h}"
            )));
        }
        let (sw, sh) = (src_w as f64, src_h as f64);
        // (resized width, height) and where output (0, 0) lies in the resized image.
        let (rw, rh, ox, oy) = match spec.fit {
            Fit::Stretch => (out_w, out_h, 0i64, 0i64),
            Fit::Crop => {
                let (rw, rh) = match spec.resize {
                    Some(r) => {
                        let r = r as usize;
                        if src_w <= src_h {
                            (r, (r as f64 * sh / sw) as usize)
                        } else {
                            ((r as f64 * sw / sh) as usize, r)
                        }
                    }
                    None => {
                        let s = (out_w as f64 / sw).max(out_h as f64 / sh);
                        (
                            ((sw * s).round() as usize).max(out_w),
                            ((sh * s).round() as usize).max(out_h),
                        )
                    }
                };
                if rw < out_w || rh < out_h {
                    return Err(Error::invalid(format!(
                        "preprocess: a {src_w}x{src_h} frame resized to {rw}x{rh} is smaller than the {out_w}x{out_h} crop (raise resize=)"
                    )));
                }
                let off = |r: usize, o: usize| ((r - o) as f64 / 2.0).round_ties_even() as i64;
                (rw, rh, off(rw, out_w), off(rh, out_h))
            }
            Fit::Letterbox => {
                let s = (out_w as f64 / sw).min(out_h as f64 / sh);
                let rw = ((sw * s).round() as usize).clamp(1, out_w);
                let rh = ((sh * s).round() as usize).clamp(1, out_h);
                (
                    rw,
                    rh,
                    -(((out_w - rw) / 2) as i64),
                    -(((out_h - rh) / 2) as i64),
                )
            }
        };
        Ok(Geometry {
            src: (src_w, src_h),
            x: axis(src_w, rw, out_w, ox, spec.interp)?,
            y: axis(src_h, rh, out_h, oy, spec.interp)?,
        })
    }
}

/// The most entries one axis's tap table may have (16 Mi: 128 MB of indices and weights). A
/// 4K frame shrunk to 224 by area needs 18 × 224; only a model input of extreme aspect behind
/// a letterbox (a 16384-row input showing one resized row) comes near it.
const MAX_TAPS: usize = 1 << 24;

/// Output `o` is resized index `o + offset` (inside when 0 <= that < `resized`).
fn axis(src: usize, resized: usize, n: usize, offset: i64, interp: Interp) -> Result<Axis> {
    let scale = src as f64 / resized as f64;
    let area = interp == Interp::Area && scale > 1.0;
    let taps = if area { scale.ceil() as usize + 1 } else { 2 };
    if taps.saturating_mul(n) > MAX_TAPS {
        return Err(Error::invalid(format!(
            "preprocess: interp=area from {src} to {resized} pixels over an axis of {n} needs \
             {taps} taps per pixel, more than the {MAX_TAPS} table entries allowed (use \
             interp=bilinear or a less extreme input shape)"
        )));
    }
    let mut idx = vec![0u32; taps * n];
    let mut w = vec![0f32; taps * n];
    let lo = (-offset).clamp(0, n as i64) as usize;
    let hi = (resized as i64 - offset).clamp(lo as i64, n as i64) as usize;
    for o in lo..hi {
        let r = (o as i64 + offset) as f64;
        if area {
            let (start, end) = (r * scale, (r + 1.0) * scale);
            let first = start.floor() as usize;
            for k in 0..taps {
                let s = first + k;
                let overlap = (end.min(s as f64 + 1.0) - start.max(s as f64)).max(0.0);
                if s < src && overlap > 0.0 {
                    idx[k * n + o] = s as u32;
                    w[k * n + o] = (overlap / scale) as f32;
                }
            }
        } else {
            let sx = ((r + 0.5) * scale - 0.5).max(0.0);
            let mut x0 = sx.floor() as usize;
            let mut f = sx - x0 as f64;
            if x0 >= src - 1 {
                x0 = src - 1;
                f = 0.0;
            }
            idx[o] = x0 as u32;
            w[o] = (1.0 - f) as f32;
            idx[n + o] = (x0 + 1).min(src - 1) as u32;
            w[n + o] = f as f32;
        }
    }
    Ok(Axis {
        n,
        taps,
        idx,
        w,
        inside: lo..hi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_matches_torchvision_numbers() {
        let spec = PreprocessSpec::parse("resize=256,crop=224").unwrap();
        let g = Geometry::new(&spec, 1920, 1080, 224, 224).unwrap();
        // Resize(256): 455x256; CenterCrop(224): left round(115.5) = 116, top 16.
        let sx: f64 = (116.0 + 0.5) * (1920.0 / 455.0) - 0.5;
        assert_eq!(g.x.idx[0], sx.floor() as u32);
        let sy: f64 = (16.0 + 0.5) * (1080.0 / 256.0) - 0.5;
        assert_eq!(g.y.idx[0], sy.floor() as u32);
        assert!((g.y.w[224] as f64 - sy.fract()).abs() < 1e-6);
        assert_eq!(g.x.inside, 0..224);
    }

    #[test]
    fn weights_sum_to_one_and_letterbox_pads() {
        for text in [
            "fit=letterbox,crop=100",
            "interp=area,crop=50",
            "fit=stretch,crop=64x48",
        ] {
            let spec = PreprocessSpec::parse(text).unwrap();
            let (w, h) = spec.crop.unwrap();
            let g = Geometry::new(&spec, 640, 360, w as usize, h as usize).unwrap();
            for a in [&g.x, &g.y] {
                for o in a.inside.clone() {
                    let s: f32 = (0..a.taps).map(|k| a.w[k * a.n + o]).sum();
                    assert!((s - 1.0).abs() < 1e-5, "{text}: {s}");
                }
            }
            if text.contains("letterbox") {
                assert_eq!(g.x.inside, 0..100);
                assert_eq!(g.y.inside, 22..78);
            }
        }
    }

    /// A letterbox into a 1 × 16384 input shows one resized row: area taps of 16385 per output
    /// over 16384 outputs were 268 M entries (2 GB) before the bound; now an error.
    #[test]
    fn an_extreme_area_table_is_an_error_not_gigabytes() {
        let spec = PreprocessSpec::parse("fit=letterbox,interp=area").unwrap();
        let e = Geometry::new(&spec, 16384, 16384, 1, 16384)
            .unwrap_err()
            .to_string();
        assert!(e.contains("16385 taps per pixel"), "{e}");
        // The 4K frame into a 224 input still has its table.
        let spec = PreprocessSpec::parse("interp=area").unwrap();
        assert_eq!(
            Geometry::new(&spec, 3840, 2160, 224, 224).unwrap().x.taps,
            11
        );
    }
}
