//! MJPEG (and any JPEG) to RGB24 with zune-jpeg, into a buffer reused from frame to frame.

use std::io::Cursor;

use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

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
    /// Decodes an MJPEG frame to RGB24. A corrupt or truncated JPEG is an error naming the frame.
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
        let options = DecoderOptions::default()
            .jpeg_set_out_colorspace(ColorSpace::RGB)
            .set_strict_mode(true);
        let mut dec = JpegDecoder::new_with_options(Cursor::new(&frame.data[..]), options);
        dec.decode_headers().map_err(|e| bad(&e))?;
        let (w, h) = dec.dimensions().ok_or_else(|| bad(&"no image size"))?;
        let len = dec
            .output_buffer_size()
            .ok_or_else(|| bad(&"no image size"))?;
        if len != w * h * 3 {
            return Err(bad(&format!("{len} output bytes for {w}x{h} RGB")));
        }
        self.out.data.resize(len, 0);
        dec.decode_into(&mut self.out.data).map_err(|e| bad(&e))?;
        self.out.format = PixelFormat::Rgb24;
        (self.out.width, self.out.height, self.out.stride) = (w, h, w * 3);
        self.out.index = frame.index;
        Ok(&self.out)
    }
}
