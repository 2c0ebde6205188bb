//! Frame sources: everything that delivers camera-like frames to `classify`, behind one trait.
//!
//! - [`frame`]: pixel formats and the checked [`Frame`].
//! - [`decode`]: MJPEG → RGB24 (zune-jpeg).
//! - [`encode`]: RGB → any pixel format (for recorded test frames and the synthetic source).
//! - one file per source: [`image`] (an image file or a folder of them), [`raw`] (a raw frame
//!   file `frames.yuyv:1920x1080`), [`synthetic`], [`memory`] (frames held in memory, for tests),
//!   and `v4l2` (`/dev/videoN`, cargo feature `v4l`).
//! - [`thread`]: a capture thread with a small ring of reused buffers, so capture of the next
//!   frame overlaps work on the current one.
//!
//! Boundary: sources deliver frames as the device gives them; converting them into a model input
//! is `preprocess`'s job.

pub mod decode;
pub mod encode;
pub mod frame;
pub mod image;
pub mod memory;
pub mod raw;
pub mod synthetic;
pub mod thread;
#[cfg(feature = "v4l")]
pub mod v4l2;

pub use frame::{Frame, PixelFormat};

use std::path::Path;

use crate::{Error, Result};

/// A stream of frames. `next_frame` fills the caller's frame (reusing its buffer).
pub trait FrameSource: Send {
    /// What this source is, for messages and `--json` output.
    fn describe(&self) -> String;

    /// Fills `frame` with the next frame: `Ok(true)` when it did, `Ok(false)` at the end of the
    /// stream. An error is about this frame only (short, corrupt, camera dropped out): the next
    /// call goes on with the frame after it.
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool>;

    /// Starts again from the first frame; false for sources that cannot (cameras, synthetic).
    fn rewind(&mut self) -> bool {
        false
    }
}

/// Opens a source named as on the command line: `/dev/videoN[:WxH][:FMT][@FPS]`, `synthetic[:WxH][:FMT]`,
/// a raw frame file `PATH[:FMT]:WxH`, an image file, or a folder of images.
pub fn open(spec: &str) -> Result<Box<dyn FrameSource>> {
    if spec.starts_with("/dev/video") {
        return open_v4l2(spec);
    }
    if spec == "synthetic" || spec.starts_with("synthetic:") {
        return Ok(Box::new(synthetic::Synthetic::parse(spec)?));
    }
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(Box::new(image::ImageSource::folder(path)?));
    }
    if path.is_file() && image::is_image(path) {
        return Ok(Box::new(image::ImageSource::file(path)?));
    }
    if let Some(raw) = raw::RawSpec::parse(spec)? {
        return Ok(Box::new(raw::RawSource::open(raw)?));
    }
    if path.exists() {
        return Err(Error::invalid(format!(
            "--source {spec}: not an image (.png, .jpg, .bmp) or folder; a raw frame file needs its size: {spec}:WIDTHxHEIGHT (format from the extension, or {spec}:yuyv:WIDTHxHEIGHT)"
        )));
    }
    Err(Error::invalid(format!(
        "--source {spec}: no such file, folder or camera (sources: /dev/videoN, an image, a folder, FILE.yuyv:WxH, synthetic)"
    )))
}

#[cfg(feature = "v4l")]
fn open_v4l2(spec: &str) -> Result<Box<dyn FrameSource>> {
    Ok(Box::new(v4l2::V4l2Source::open(spec)?))
}

#[cfg(not(feature = "v4l"))]
fn open_v4l2(spec: &str) -> Result<Box<dyn FrameSource>> {
    Err(Error::Unsupported(format!(
        "--source {spec}: this build of edgefuse has no V4L2 camera support; rebuild with `--features v4l`"
    )))
}

/// Splits a trailing `:WxH` (and optional `:FMT` before it) off a source spec.
pub(crate) fn parse_size(s: &str) -> Option<(usize, usize)> {
    let (w, h) = s.split_once(['x', 'X'])?;
    Some((w.parse().ok()?, h.parse().ok()?))
}
