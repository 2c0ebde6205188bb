//! RGB24 → any pixel format, with the inverse of the decode formulas (`preprocess::pixel`).
//! Used to record test frames from reference images and by the synthetic source.

use super::PixelFormat;
use crate::preprocess::pixel::rgb_to_yuv;
use crate::{Error, Result};

/// Encodes a packed RGB24 image (`w * h * 3` bytes) as `format` into `out` (packed lines).
/// Chroma of 4:2:2 and 4:2:0 formats is the average of the pixels it covers.
pub fn encode_into(
    rgb: &[u8],
    w: usize,
    h: usize,
    format: PixelFormat,
    out: &mut Vec<u8>,
) -> Result<()> {
    if rgb.len() != w * h * 3 || w == 0 || h == 0 {
        return Err(Error::invalid(format!(
            "encode: {} bytes is not a {w}x{h} RGB image",
            rgb.len()
        )));
    }
    out.clear();
    let px = |x: usize, y: usize| {
        let x = x.min(w - 1);
        let y = y.min(h - 1);
        let p = &rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
        [p[0] as f32, p[1] as f32, p[2] as f32]
    };
    // Average of a block's RGB, then its chroma.
    let chroma = |xs: &[(usize, usize)]| {
        let mut s = [0f32; 3];
        for &(x, y) in xs {
            let p = px(x, y);
            for c in 0..3 {
                s[c] += p[c] / xs.len() as f32;
            }
        }
        let [_, u, v] = rgb_to_yuv(s[0], s[1], s[2]);
        (u, v)
    };
    let luma = |x, y| {
        let [r, g, b] = px(x, y);
        rgb_to_yuv(r, g, b)[0]
    };
    match format {
        PixelFormat::Yuyv | PixelFormat::Uyvy => {
            for y in 0..h {
                for x in (0..w).step_by(2) {
                    let (u, v) = chroma(&[(x, y), (x + 1, y)]);
                    let (y0, y1) = (luma(x, y), luma(x + 1, y));
                    if format == PixelFormat::Yuyv {
                        out.extend_from_slice(&[y0, u, y1, v]);
                    } else {
                        out.extend_from_slice(&[u, y0, v, y1]);
                    }
                }
            }
        }
        PixelFormat::Nv12 => {
            // Lines are `min_stride` (w rounded up to even) bytes long.
            for y in 0..h {
                for x in 0..w.div_ceil(2) * 2 {
                    out.push(luma(x, y));
                }
            }
            for y in (0..h).step_by(2) {
                for x in (0..w).step_by(2) {
                    let (u, v) = chroma(&[(x, y), (x + 1, y), (x, y + 1), (x + 1, y + 1)]);
                    out.extend_from_slice(&[u, v]);
                }
            }
        }
        PixelFormat::Rgb24 => out.extend_from_slice(rgb),
        PixelFormat::Bgr24 => {
            for p in rgb.chunks_exact(3) {
                out.extend_from_slice(&[p[2], p[1], p[0]]);
            }
        }
        PixelFormat::Grey => {
            for p in rgb.chunks_exact(3) {
                let v = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
                out.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
        PixelFormat::Mjpeg => {
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut *out, 95);
            image::ImageEncoder::write_image(
                enc,
                rgb,
                w as u32,
                h as u32,
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| Error::invalid(format!("encode JPEG: {e}")))?;
        }
    }
    Ok(())
}

/// [`encode_into`] returning a new buffer.
pub fn encode(rgb: &[u8], w: usize, h: usize, format: PixelFormat) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(rgb, w, h, format, &mut out)?;
    Ok(out)
}
