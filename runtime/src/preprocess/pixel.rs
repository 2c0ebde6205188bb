//! The per-pixel math, in one place: every backend (this CPU path, the CUDA kernel) must use
//! exactly these formulas so their outputs agree.
//!
//! 1. **Colour**: YUV is BT.601 limited range (what UVC cameras send; OpenCV's `COLOR_YUV2RGB_*`):
//!    `R = 1.164383 (Y-16) + 1.596027 (V-128)`, `G = 1.164383 (Y-16) - 0.391762 (U-128) - 0.812968 (V-128)`,
//!    `B = 1.164383 (Y-16) + 2.017232 (U-128)`, each clamped to 0..255. Chroma is taken from the
//!    pixel's own 2x1 (YUYV, UYVY) or 2x2 (NV12) block, without interpolation. GREY gives R = G = B = Y.
//! 2. **Resampling** happens on these RGB values (as f32, no rounding): see `geometry`.
//! 3. **Gray output**: `0.299 R + 0.587 G + 0.114 B`.
//! 4. **Normalise**: `(v - mean[c]) / std[c]`, computed as `v * scale[c] + bias[c]`.
//! 5. **Element type**: f32 as is; f16 rounded to nearest; u8/i8 `round(x / qscale + zero_point)`
//!    clamped, with the input tensor's quantization (scale 1, zero point 0 when it has none).

pub const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

const KY: f32 = 1.164383;
const KRV: f32 = 1.596027;
const KGU: f32 = 0.391762;
const KGV: f32 = 0.812968;
const KBU: f32 = 2.017232;

/// BT.601 limited-range YUV to RGB in 0..255.
#[inline(always)]
pub fn yuv_to_rgb(y: f32, u: f32, v: f32) -> [f32; 3] {
    let c = KY * (y - 16.0);
    let d = u - 128.0;
    let e = v - 128.0;
    [
        (c + KRV * e).clamp(0.0, 255.0),
        (c - KGU * d - KGV * e).clamp(0.0, 255.0),
        (c + KBU * d).clamp(0.0, 255.0),
    ]
}

/// Converts planes of Y, U, V in place into R, G, B (a loop the compiler vectorises).
#[inline]
pub fn yuv_planes_to_rgb(a: &mut [f32], b: &mut [f32], c: &mut [f32]) {
    let n = a.len().min(b.len()).min(c.len());
    let (a, b, c) = (&mut a[..n], &mut b[..n], &mut c[..n]);
    for i in 0..n {
        let [r, g, bb] = yuv_to_rgb(a[i], b[i], c[i]);
        a[i] = r;
        b[i] = g;
        c[i] = bb;
    }
}

/// Inverse of [`yuv_to_rgb`] (BT.601 limited range), rounded: for making test frames.
pub fn rgb_to_yuv(r: f32, g: f32, b: f32) -> [u8; 3] {
    let y = 16.0 + 0.256788 * r + 0.504129 * g + 0.097906 * b;
    let u = 128.0 - 0.148223 * r - 0.290993 * g + 0.439216 * b;
    let v = 128.0 + 0.439216 * r - 0.367788 * g - 0.071427 * b;
    [y, u, v].map(|x| x.round().clamp(0.0, 255.0) as u8)
}

/// `x * scale + bias` per channel: the normalisation of `(x - mean) / std`.
pub fn norm_coeffs(mean: f32, std: f32) -> (f32, f32) {
    (1.0 / std, -mean / std)
}

/// Quantization of an integer model input: `round(x / scale + zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quant {
    pub scale: f32,
    pub zero_point: f32,
}

impl Default for Quant {
    fn default() -> Self {
        Quant {
            scale: 1.0,
            zero_point: 0.0,
        }
    }
}

/// An element type the model input can have.
pub trait Store: Copy + Send + Sync + bytemuck::Pod {
    fn store(v: f32, q: Quant) -> Self;
}

impl Store for f32 {
    #[inline(always)]
    fn store(v: f32, _: Quant) -> f32 {
        v
    }
}

impl Store for half::f16 {
    #[inline(always)]
    fn store(v: f32, _: Quant) -> half::f16 {
        half::f16::from_f32(v)
    }
}

impl Store for u8 {
    #[inline(always)]
    fn store(v: f32, q: Quant) -> u8 {
        (v / q.scale + q.zero_point).round().clamp(0.0, 255.0) as u8
    }
}

impl Store for i8 {
    #[inline(always)]
    fn store(v: f32, q: Quant) -> i8 {
        (v / q.scale + q.zero_point).round().clamp(-128.0, 127.0) as i8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuv_round_trip_is_within_one_level() {
        for &(r, g, b) in &[
            (0.0, 0.0, 0.0),
            (255.0, 255.0, 255.0),
            (200.0, 30.0, 90.0),
            (12.0, 250.0, 128.0),
        ] {
            let [y, u, v] = rgb_to_yuv(r, g, b);
            let back = yuv_to_rgb(y as f32, u as f32, v as f32);
            for (x, w) in back.iter().zip([r, g, b]) {
                assert!((x - w).abs() <= 2.5, "{:?} -> {:?}", (r, g, b), back);
            }
        }
    }
}
