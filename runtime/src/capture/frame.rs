//! Frames as cameras deliver them: a pixel format, a size, and the bytes, checked before use.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The largest width or height of a frame or image (zune-jpeg's own default limit). Keeps every
/// size product far from overflow and a few bytes of header from announcing gigabytes.
pub const MAX_SIDE: usize = 1 << 14;

/// Pixel formats a source can deliver. Everything but MJPEG is sampled in place by the
/// preprocessing step; MJPEG is decoded to RGB24 first (`decode::Decoder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Packed 4:2:2, bytes Y0 U Y1 V (V4L2 `YUYV`).
    Yuyv,
    /// Packed 4:2:2, bytes U Y0 V Y1 (V4L2 `UYVY`).
    Uyvy,
    /// Planar Y, then interleaved U V at half resolution in both axes (V4L2 `NV12`).
    Nv12,
    /// One JPEG per frame (V4L2 `MJPG`).
    Mjpeg,
    /// Packed R G B (V4L2 `RGB3`).
    Rgb24,
    /// Packed B G R (V4L2 `BGR3`).
    Bgr24,
    /// 8-bit luma (V4L2 `GREY`).
    Grey,
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 7] = [
        PixelFormat::Yuyv,
        PixelFormat::Uyvy,
        PixelFormat::Nv12,
        PixelFormat::Mjpeg,
        PixelFormat::Rgb24,
        PixelFormat::Bgr24,
        PixelFormat::Grey,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Yuyv => "yuyv",
            PixelFormat::Uyvy => "uyvy",
            PixelFormat::Nv12 => "nv12",
            PixelFormat::Mjpeg => "mjpeg",
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Bgr24 => "bgr24",
            PixelFormat::Grey => "grey",
        }
    }

    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        *match self {
            PixelFormat::Yuyv => b"YUYV",
            PixelFormat::Uyvy => b"UYVY",
            PixelFormat::Nv12 => b"NV12",
            PixelFormat::Mjpeg => b"MJPG",
            PixelFormat::Rgb24 => b"RGB3",
            PixelFormat::Bgr24 => b"BGR3",
            PixelFormat::Grey => b"GREY",
        }
    }

    pub fn from_fourcc(code: [u8; 4]) -> Option<PixelFormat> {
        PixelFormat::ALL.into_iter().find(|f| f.fourcc() == code)
    }

    /// Minimum bytes per line for `width` (planar formats: of the luma plane).
    pub fn min_stride(self, width: usize) -> usize {
        match self {
            PixelFormat::Yuyv | PixelFormat::Uyvy => width.div_ceil(2) * 4,
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => width * 3,
            PixelFormat::Nv12 => width.div_ceil(2) * 2,
            PixelFormat::Grey => width,
            PixelFormat::Mjpeg => 0,
        }
    }

    /// Bytes of a frame with lines `stride` bytes apart (None for MJPEG: variable).
    pub fn frame_len(self, stride: usize, height: usize) -> Option<usize> {
        match self {
            PixelFormat::Mjpeg => None,
            PixelFormat::Nv12 => Some(stride * height + stride * height.div_ceil(2)),
            _ => Some(stride * height),
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PixelFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<PixelFormat> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "yuyv" | "yuy2" | "yuv422" => PixelFormat::Yuyv,
            "uyvy" => PixelFormat::Uyvy,
            "nv12" => PixelFormat::Nv12,
            "mjpeg" | "mjpg" | "jpeg" | "jpg" => PixelFormat::Mjpeg,
            "rgb" | "rgb24" | "rgb3" => PixelFormat::Rgb24,
            "bgr" | "bgr24" | "bgr3" => PixelFormat::Bgr24,
            "grey" | "gray" | "y8" | "l8" => PixelFormat::Grey,
            _ => {
                return Err(Error::invalid(format!(
                    "unknown pixel format \"{s}\" (yuyv, uyvy, nv12, mjpeg, rgb24, bgr24, grey)"
                )))
            }
        })
    }
}

/// One frame. `data` is reused from frame to frame by the sources that fill it.
#[derive(Debug, Clone)]
pub struct Frame {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    /// Bytes per line (planar formats: of the luma plane; the NV12 chroma plane uses the same).
    pub stride: usize,
    pub data: Vec<u8>,
    /// Position in the source's stream, from 0.
    pub index: u64,
}

impl Frame {
    /// An empty frame to be filled by a source.
    pub fn empty() -> Frame {
        Frame {
            format: PixelFormat::Rgb24,
            width: 0,
            height: 0,
            stride: 0,
            data: Vec::new(),
            index: 0,
        }
    }

    /// A packed frame (stride = the format's minimum).
    pub fn new(format: PixelFormat, width: usize, height: usize, data: Vec<u8>) -> Frame {
        Frame {
            format,
            width,
            height,
            stride: format.min_stride(width),
            data,
            index: 0,
        }
    }

    /// Checks size, stride and length: a frame with fewer bytes than its size and format make
    /// is an error for this frame (bytes past them, a driver's or a library's padding, are not
    /// read). Sides are at most [`MAX_SIDE`] and lines at most `4 * MAX_SIDE` bytes apart, so no
    /// size product can overflow.
    pub fn check(&self) -> Result<()> {
        if self.width == 0 || self.height == 0 || self.width > MAX_SIDE || self.height > MAX_SIDE {
            return Err(Error::invalid(format!(
                "frame size {}x{}: each side must be 1 to {MAX_SIDE}",
                self.width, self.height
            )));
        }
        if self.format == PixelFormat::Mjpeg {
            if self.data.len() < 4 || self.data[..2] != [0xFF, 0xD8] {
                return Err(Error::invalid(format!(
                    "not a JPEG ({} bytes, no start-of-image marker)",
                    self.data.len()
                )));
            }
            return Ok(());
        }
        let min = self.format.min_stride(self.width);
        if self.stride < min || self.stride > 4 * MAX_SIDE {
            return Err(Error::invalid(format!(
                "{} line stride {} is not {min} to {} for width {}",
                self.format,
                self.stride,
                4 * MAX_SIDE,
                self.width
            )));
        }
        let want = self.format.frame_len(self.stride, self.height).unwrap_or(0);
        if self.data.len() < want {
            return Err(Error::invalid(format!(
                "short {} frame: {} bytes, {}x{} needs {want}",
                self.format,
                self.data.len(),
                self.width,
                self.height
            )));
        }
        Ok(())
    }
}
