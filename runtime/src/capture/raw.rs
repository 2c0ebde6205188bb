//! A raw frame file: frames of one format and size back to back, named `PATH[:FMT]:WxH`
//! (format from the extension when not given: `frames.yuyv:1920x1080`). MJPEG files hold
//! concatenated JPEGs, read one at a time. A short last frame, or a read that fails, is an
//! error for that frame, then the stream ends.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

use super::frame::MAX_SIDE;
use super::{Frame, FrameSource, PixelFormat};
use crate::{Error, Result};

/// A parsed raw-file source name.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSpec {
    pub path: PathBuf,
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
}

impl RawSpec {
    /// `Ok(None)` when `spec` does not end in `:WxH` (so it is not meant as a raw file).
    pub fn parse(spec: &str) -> Result<Option<RawSpec>> {
        let Some((rest, size)) = spec.rsplit_once(':') else {
            return Ok(None);
        };
        let Some((width, height)) = super::parse_size(size) else {
            return Ok(None);
        };
        let (path, format) = match rest.rsplit_once(':') {
            Some((p, f)) if f.parse::<PixelFormat>().is_ok() => (p, f.parse()?),
            _ => {
                let ext = std::path::Path::new(rest)
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or("");
                let format = ext.parse::<PixelFormat>().map_err(|_| {
                    Error::invalid(format!(
                        "--source {spec}: cannot tell the pixel format from \".{ext}\"; name it: {rest}:yuyv:{width}x{height} (yuyv, uyvy, nv12, mjpeg, rgb24, bgr24, grey)"
                    ))
                })?;
                (rest, format)
            }
        };
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(Error::invalid(format!(
                "--source {spec}: frame size {width}x{height}: each side must be 1 to {MAX_SIDE}"
            )));
        }
        Ok(Some(RawSpec {
            path: PathBuf::from(path),
            format,
            width,
            height,
        }))
    }
}

enum Body {
    /// Fixed-size frames read one at a time.
    Fixed {
        reader: BufReader<File>,
        frame_len: usize,
    },
    /// Concatenated JPEGs read one at a time, split where an end-of-image marker meets the
    /// next start-of-image; `ahead` holds what was read past the last one.
    Jpegs {
        reader: BufReader<File>,
        ahead: Vec<u8>,
    },
}

/// The largest JPEG a raw MJPEG file may hold (a camera's 4K frame is a few MB): without a
/// marker the file would otherwise be read whole into one frame.
const MAX_JPEG: usize = 64 << 20;

pub struct RawSource {
    spec: RawSpec,
    body: Body,
    next: u64,
    done: bool,
}

impl RawSource {
    /// Opens the file; an empty file, or a regular file shorter than one frame, is an error
    /// here rather than a stream of nothing.
    pub fn open(spec: RawSpec) -> Result<RawSource> {
        let io = |e| Error::Io {
            path: spec.path.clone(),
            source: e,
        };
        let frame_len = spec
            .format
            .frame_len(spec.format.min_stride(spec.width), spec.height);
        let file = File::open(&spec.path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if meta.is_file() && meta.len() < frame_len.unwrap_or(1) as u64 {
            return Err(Error::invalid(match (meta.len(), frame_len) {
                (0, _) | (_, None) => format!("{}: empty file", spec.path.display()),
                (n, Some(len)) => format!(
                    "{} holds {n} bytes, less than one {}x{} {} frame ({len} bytes)",
                    spec.path.display(),
                    spec.width,
                    spec.height,
                    spec.format
                ),
            }));
        }
        let reader = BufReader::with_capacity(1 << 20, file);
        let body = match frame_len {
            Some(frame_len) => Body::Fixed { reader, frame_len },
            None => Body::Jpegs {
                reader,
                ahead: Vec::new(),
            },
        };
        Ok(RawSource {
            spec,
            body,
            next: 0,
            done: false,
        })
    }
}

/// Where the JPEG at the start of `d` ends (after its EOI), when the next one's SOI follows in
/// `d`; the search starts at `from` (bytes before it were searched already).
fn jpeg_end(d: &[u8], from: usize) -> Option<usize> {
    d.windows(4)
        .skip(from)
        .position(|w| w == [0xFF, 0xD9, 0xFF, 0xD8])
        .map(|p| from + p + 2)
}

impl FrameSource for RawSource {
    fn describe(&self) -> String {
        format!(
            "{} ({} {}x{})",
            self.spec.path.display(),
            self.spec.format,
            self.spec.width,
            self.spec.height
        )
    }

    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        frame.format = self.spec.format;
        (frame.width, frame.height) = (self.spec.width, self.spec.height);
        frame.stride = self.spec.format.min_stride(self.spec.width);
        frame.index = self.next;
        self.next += 1;
        match &mut self.body {
            Body::Fixed { reader, frame_len } => {
                frame.data.resize(*frame_len, 0);
                let mut got = 0;
                while got < *frame_len {
                    match reader.read(&mut frame.data[got..]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            // Reading on would fail the same way for ever.
                            self.done = true;
                            return Err(Error::Io {
                                path: self.spec.path.clone(),
                                source: e,
                            });
                        }
                    }
                }
                if got == 0 {
                    self.done = true;
                    return Ok(false);
                }
                if got < *frame_len {
                    self.done = true;
                    frame.data.truncate(got);
                    return Err(Error::invalid(format!(
                        "{}: short frame at the end of the file: {got} of {frame_len} bytes",
                        self.spec.path.display()
                    )));
                }
            }
            Body::Jpegs { reader, ahead } => {
                frame.data.clear();
                frame.data.append(ahead);
                let mut from = 2;
                loop {
                    if let Some(end) = jpeg_end(&frame.data, from) {
                        ahead.extend_from_slice(&frame.data[end..]);
                        frame.data.truncate(end);
                        break;
                    }
                    if frame.data.len() > MAX_JPEG {
                        self.done = true;
                        return Err(Error::invalid(format!(
                            "{}: frame {} runs past {} MiB without a JPEG marker",
                            self.spec.path.display(),
                            frame.index,
                            MAX_JPEG >> 20
                        )));
                    }
                    from = frame.data.len().saturating_sub(3).max(2);
                    let had = frame.data.len();
                    let got = reader
                        .by_ref()
                        .take(1 << 16)
                        .read_to_end(&mut frame.data)
                        .map_err(|e| {
                            self.done = true;
                            Error::Io {
                                path: self.spec.path.clone(),
                                source: e,
                            }
                        })?;
                    if got == 0 {
                        // The end of the file ends the last JPEG.
                        self.done = true;
                        if had == 0 {
                            return Ok(false);
                        }
                        break;
                    }
                }
            }
        }
        Ok(true)
    }

    fn rewind(&mut self) -> bool {
        self.next = 0;
        self.done = false;
        match &mut self.body {
            Body::Fixed { reader, .. } => reader.seek(SeekFrom::Start(0)).is_ok(),
            Body::Jpegs { reader, ahead } => {
                ahead.clear();
                reader.seek(SeekFrom::Start(0)).is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_specs_parse() {
        let s = RawSpec::parse("clip/frames.yuyv:1920x1080")
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.format, s.width, s.height),
            (PixelFormat::Yuyv, 1920, 1080)
        );
        let s = RawSpec::parse("x.bin:nv12:64x48").unwrap().unwrap();
        assert_eq!(
            (s.path.to_str().unwrap(), s.format),
            ("x.bin", PixelFormat::Nv12)
        );
        assert!(RawSpec::parse("photo.png").unwrap().is_none());
        assert!(RawSpec::parse("x.bin:64x48")
            .unwrap_err()
            .to_string()
            .contains("pixel format"));
    }

    /// Concatenated JPEGs split where an EOI meets the next SOI, the file read a piece at a
    /// time (it used to be read whole: a long recording took its size in memory), then
    /// rewound.
    #[test]
    fn jpegs_split_at_markers() {
        let one = |fill: u8, len: usize| {
            let mut j = vec![0xFF, 0xD8];
            j.extend(std::iter::repeat_n(fill, len));
            j.extend([0xFF, 0xD9]);
            j
        };
        // The second spans two 64 KiB reads, and its EOI with the third's SOI straddles the
        // second read's end (file offsets 131071..131075).
        let jpegs = [one(1, 3), one(2, 131_062), one(3, 10)];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mjpeg");
        std::fs::write(&path, jpegs.concat()).unwrap();
        let spec = RawSpec::parse(&format!("{}:mjpeg:16x8", path.display()))
            .unwrap()
            .unwrap();
        let mut src = RawSource::open(spec).unwrap();
        let mut frame = Frame::new(PixelFormat::Mjpeg, 16, 8, Vec::new());
        for _ in 0..2 {
            for j in &jpegs {
                assert!(src.next_frame(&mut frame).unwrap());
                assert!(
                    frame.data == *j,
                    "{} bytes, want {}",
                    frame.data.len(),
                    j.len()
                );
            }
            assert!(!src.next_frame(&mut frame).unwrap());
            assert!(src.rewind());
        }
    }
}
