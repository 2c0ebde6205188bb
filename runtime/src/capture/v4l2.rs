//! V4L2 cameras (`/dev/videoN[:WxH][:FMT][@FPS]`) through the `v4l` crate: format negotiation
//! among the pixel formats `preprocess` samples, mmap streaming, and recovery when the camera
//! drops out or is unplugged and comes back (each failed frame is an error; the source keeps
//! reopening the device).

use std::time::{Duration, Instant};

use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

use super::{Frame, FrameSource, PixelFormat};
use crate::{Error, Result};

/// Formats tried when none is asked for, best first (cheap to sample, then compressed).
const PREFERENCE: [PixelFormat; 7] = [
    PixelFormat::Yuyv,
    PixelFormat::Uyvy,
    PixelFormat::Nv12,
    PixelFormat::Mjpeg,
    PixelFormat::Rgb24,
    PixelFormat::Bgr24,
    PixelFormat::Grey,
];

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub path: String,
    pub size: Option<(usize, usize)>,
    pub format: Option<PixelFormat>,
    pub fps: Option<u32>,
}

impl Request {
    pub fn parse(spec: &str) -> Result<Request> {
        let (body, fps) = match spec.rsplit_once('@') {
            Some((b, f)) => (
                b,
                Some(f.parse::<u32>().map_err(|_| {
                    Error::invalid(format!("--source {spec}: \"@{f}\" is not a frame rate"))
                })?),
            ),
            None => (spec, None),
        };
        let mut parts = body.split(':');
        let path = parts.next().unwrap_or_default().to_string();
        let (mut size, mut format) = (None, None);
        for p in parts {
            if let Some(s) = super::parse_size(p) {
                size = Some(s);
            } else {
                format = Some(p.parse()?);
            }
        }
        Ok(Request {
            path,
            size,
            format,
            fps,
        })
    }
}

struct Open {
    stream: Stream<'static>,
    _dev: Device,
    format: PixelFormat,
    width: usize,
    height: usize,
    stride: usize,
}

pub struct V4l2Source {
    req: Request,
    open: Option<Open>,
    next: u64,
    last_try: Option<Instant>,
}

impl V4l2Source {
    /// Opens the camera now (so a wrong path fails at once); later dropouts are recovered.
    pub fn open(spec: &str) -> Result<V4l2Source> {
        let req = Request::parse(spec)?;
        let open = Some(negotiate(&req)?);
        Ok(V4l2Source {
            req,
            open,
            next: 0,
            last_try: None,
        })
    }

    /// The negotiated format and size.
    pub fn format(&self) -> Option<(PixelFormat, usize, usize)> {
        self.open.as_ref().map(|o| (o.format, o.width, o.height))
    }
}

fn negotiate(req: &Request) -> Result<Open> {
    let ctx = |what: &str, e: std::io::Error| Error::invalid(format!("{}: {what}: {e}", req.path));
    let dev = Device::with_path(&req.path).map_err(|e| ctx("cannot open the camera", e))?;
    let offered: Vec<PixelFormat> = dev
        .enum_formats()
        .map_err(|e| ctx("cannot list formats", e))?
        .iter()
        .filter_map(|d| PixelFormat::from_fourcc(d.fourcc.repr))
        .collect();
    let format = match req.format {
        Some(f) if offered.contains(&f) => f,
        Some(f) => {
            return Err(Error::invalid(format!(
                "{}: the camera does not offer {f} (it offers: {})",
                req.path,
                offered
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
        None => *PREFERENCE
            .iter()
            .find(|f| offered.contains(f))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{}: the camera offers none of yuyv, uyvy, nv12, mjpeg, rgb24, bgr24, grey",
                    req.path
                ))
            })?,
    };
    let mut fmt = dev.format().map_err(|e| ctx("cannot read the format", e))?;
    fmt.fourcc = FourCC::new(&format.fourcc());
    if let Some((w, h)) = req.size {
        (fmt.width, fmt.height) = (w as u32, h as u32);
    }
    let fmt = dev
        .set_format(&fmt)
        .map_err(|e| ctx("cannot set the format", e))?;
    let got = PixelFormat::from_fourcc(fmt.fourcc.repr).ok_or_else(|| {
        Error::invalid(format!(
            "{}: the driver switched to an unsupported format {}",
            req.path, fmt.fourcc
        ))
    })?;
    if let Some(fps) = req.fps {
        let _ = dev.set_params(&v4l::video::capture::Parameters::with_fps(fps));
    }
    let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, 4)
        .map_err(|e| ctx("cannot start streaming", e))?;
    stream.set_timeout(Duration::from_secs(2));
    let (width, height) = (fmt.width as usize, fmt.height as usize);
    Ok(Open {
        stream,
        _dev: dev,
        format: got,
        width,
        height,
        stride: (fmt.stride as usize).max(got.min_stride(width)),
    })
}

impl FrameSource for V4l2Source {
    fn describe(&self) -> String {
        match &self.open {
            Some(o) => format!("{} ({} {}x{})", self.req.path, o.format, o.width, o.height),
            None => format!("{} (reopening)", self.req.path),
        }
    }

    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool> {
        frame.index = self.next;
        self.next += 1;
        if self.open.is_none() {
            // Back off between tries so an unplugged camera does not spin.
            if let Some(t) = self.last_try {
                let wait = Duration::from_millis(500).saturating_sub(t.elapsed());
                std::thread::sleep(wait);
            }
            self.last_try = Some(Instant::now());
            self.open = Some(
                negotiate(&self.req)
                    .map_err(|e| Error::invalid(format!("camera unavailable, retrying: {e}")))?,
            );
        }
        let o = self.open.as_mut().expect("opened above");
        let (buf, meta) = match o.stream.next() {
            Ok(x) => x,
            Err(e) => {
                self.open = None;
                return Err(Error::invalid(format!(
                    "{} dropped out ({e}); reopening",
                    self.req.path
                )));
            }
        };
        let mut used = (meta.bytesused as usize).min(buf.len());
        // Drivers may pad a frame past its last line (sizeimage); the frame is its lines only.
        if let Some(len) = o.format.frame_len(o.stride, o.height) {
            used = used.min(len);
        }
        frame.format = o.format;
        (frame.width, frame.height, frame.stride) = (o.width, o.height, o.stride);
        frame.data.clear();
        frame.data.extend_from_slice(&buf[..used]);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        let r = Request::parse("/dev/video2:1280x720:mjpeg@30").unwrap();
        assert_eq!(r.path, "/dev/video2");
        assert_eq!(
            (r.size, r.format, r.fps),
            (Some((1280, 720)), Some(PixelFormat::Mjpeg), Some(30))
        );
        assert_eq!(Request::parse("/dev/video0").unwrap().size, None);
    }
}
