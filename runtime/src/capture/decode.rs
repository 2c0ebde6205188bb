//! JPEG to RGB24 with zune-jpeg: MJPEG frames into a buffer reused from frame to frame, and
//! JPEG image files (`image::load`), both through [`decode_jpeg`].

use std::io::Cursor;

use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::frame::MAX_SIDE;
use super::{Frame, PixelFormat};
use crate::{Error, Result};

/// Decodes compressed frames; the output frame's buffer is kept between calls.
pub struct Decoder {
    out: Frame,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            out: Frame::empty(),
        }
    }
}

impl Decoder {
    /// Decodes an MJPEG frame to RGB24 at the JPEG's own size (a camera may send another size
    /// than it negotiated). A corrupt or truncated JPEG is an error naming the frame.
    pub fn decode(&mut self, frame: &Frame) -> Result<&Frame> {
        let bad = |e: &dyn std::fmt::Display| Error::invalid(format!("corrupt MJPEG frame: {e}"));
        // A truncated frame lacks the end-of-image marker (cameras may pad with zeros after it).
        let end = frame
            .data
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        if end < 4 || frame.data[end - 2..end] != [0xFF, 0xD9] {
            return Err(bad(&format!(
                "{} bytes, no end-of-image marker (truncated)",
                frame.data.len()
            )));
        }
        decode_jpeg(&frame.data, &mut self.out).map_err(|e| bad(&e))?;
        self.out.index = frame.index;
        Ok(&self.out)
    }
}

/// Decodes a whole JPEG into `out` as RGB24 (grey and CMYK converted). Strict: a scan cut
/// short or a marker inside a scan is an error, not grey fill. Stray bytes between two header
/// segments lose no picture data (libjpeg and Pillow accept them), so such a file is decoded,
/// strictly still, with those bytes left out. The picture must be at most [`MAX_SIDE`] a side
/// and no larger than the data can hold — every 8x8 block takes at least one bit — so a few
/// bytes of header never allocate a huge frame of nothing.
pub(crate) fn decode_jpeg(data: &[u8], out: &mut Frame) -> std::result::Result<(), String> {
    match decode_with(data, out, true) {
        Err(e) if e.contains(STRAY_BYTES) => match without_stray_bytes(data) {
            Some(clean) => decode_with(&clean, out, true),
            None => Err(e),
        },
        other => other,
    }
}

/// zune-jpeg's strict-mode error for bytes between two header segments, the one refusal
/// `decode_jpeg` mends (`stray_bytes_between_segments_decode` watches the wording).
const STRAY_BYTES: &str = "Extra bytes between headers";

/// `data` with the bytes that stand between header segments (before the scan) left out; None
/// when the headers do not parse as segments.
fn without_stray_bytes(data: &[u8]) -> Option<Vec<u8>> {
    if data.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(&data[..2]);
    let mut at = 2;
    loop {
        // Stray bytes up to the next marker, then any fill bytes (0xFF) before its code.
        at += data.get(at..)?.iter().position(|&b| b == 0xFF)?;
        while data.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let marker = *data.get(at + 1)?;
        if marker == 0xDA {
            // Start of scan: the rest (the scan's own header, data and what follows) as it is.
            out.extend_from_slice(&data[at..]);
            return Some(out);
        }
        let len = match marker {
            0x01 | 0xD0..=0xD8 => 2,
            _ => 2 + usize::from(u16::from_be_bytes([*data.get(at + 2)?, *data.get(at + 3)?])),
        };
        out.extend_from_slice(data.get(at..at + len)?);
        at += len;
    }
}

fn decode_with(data: &[u8], out: &mut Frame, strict: bool) -> std::result::Result<(), String> {
    // zune's own limit is MAX_SIDE; it is raised to the format's so the check below names the size.
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX))
        .set_strict_mode(strict);
    let mut dec = JpegDecoder::new_with_options(Cursor::new(data), options);
    dec.decode_headers().map_err(|e| e.to_string())?;
    let (w, h) = dec.dimensions().ok_or("no image size")?;
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(format!("{w}x{h} is larger than {MAX_SIDE} on a side"));
    }
    if w * h > data.len() * 8 * 64 {
        return Err(format!(
            "{} bytes cannot hold a {w}x{h} picture (truncated, or a decompression bomb)",
            data.len()
        ));
    }
    let len = dec.output_buffer_size().ok_or("no image size")?;
    if len != w * h * 3 {
        return Err(format!("{len} output bytes for {w}x{h} RGB"));
    }
    out.data.resize(len, 0);
    dec.decode_into(&mut out.data).map_err(|e| e.to_string())?;
    out.format = PixelFormat::Rgb24;
    (out.width, out.height, out.stride) = (w, h, w * 3);
    Ok(())
}
