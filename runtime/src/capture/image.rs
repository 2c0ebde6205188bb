//! An image file or a folder of images (PNG, JPEG, BMP), decoded with the `image` crate into
//! RGB24 frames. A file that does not decode is an error for that frame; the folder goes on.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use super::frame::MAX_SIDE;
use super::{decode, Frame, FrameSource, PixelFormat};
use crate::{Error, Result};

const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp"];

/// The largest image file read (an uncompressed 16384 × 16384 BMP is 768 MiB, a photograph a
/// few MB).
const MAX_FILE: u64 = 1 << 30;

/// Whether the path has an image extension this source reads.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// One image, or every image in a folder (sorted by name), once each.
pub struct ImageSource {
    what: String,
    files: Vec<PathBuf>,
    next: usize,
}

impl ImageSource {
    pub fn file(path: &Path) -> Result<ImageSource> {
        Ok(ImageSource {
            what: path.display().to_string(),
            files: vec![path.to_path_buf()],
            next: 0,
        })
    }

    pub fn folder(dir: &Path) -> Result<ImageSource> {
        let io = |e| Error::Io {
            path: dir.to_path_buf(),
            source: e,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_image(p))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::invalid(format!(
                "--source {}: the folder has no .png, .jpg or .bmp images",
                dir.display()
            )));
        }
        Ok(ImageSource {
            what: dir.display().to_string(),
            files,
            next: 0,
        })
    }

    /// The file the last frame came from.
    pub fn current(&self) -> Option<&Path> {
        self.next.checked_sub(1).map(|i| self.files[i].as_path())
    }
}

/// Decodes one image file into an RGB24 frame. The content decides the format, not the
/// extension; JPEGs go through the decoder of MJPEG frames (`decode::decode_jpeg`, strict about scan data), and
/// PNG and BMP pictures are held to [`MAX_SIDE`] a side before anything is allocated for them.
pub fn load(path: &Path, frame: &mut Frame) -> Result<()> {
    let io = |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let bad = |e: &dyn std::fmt::Display| {
        Error::invalid(format!("{}: cannot decode the image: {e}", path.display()))
    };
    // A pipe or device named like an image would be read for ever, a huge file whole.
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(bad(&"a directory"));
    }
    if !meta.is_file() {
        return Err(bad(&"not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(bad(&format!(
            "{} bytes, more than an image file may have ({} MiB)",
            meta.len(),
            MAX_FILE >> 20
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    if bytes.is_empty() {
        return Err(bad(&"empty file"));
    }
    let format = image::guess_format(&bytes).map_err(|_| bad(&"not a PNG, JPEG or BMP file"))?;
    if format == ImageFormat::Jpeg {
        return decode::decode_jpeg(&bytes, frame).map_err(|e| bad(&e));
    }
    if !matches!(format, ImageFormat::Png | ImageFormat::Bmp) {
        return Err(bad(&format!("a {format:?} file (PNG, JPEG or BMP only)")));
    }
    let decoder = ImageReader::with_format(Cursor::new(&bytes[..]), format)
        .into_decoder()
        .map_err(|e| bad(&e))?;
    let (w, h) = decoder.dimensions();
    if w as usize > MAX_SIDE || h as usize > MAX_SIDE {
        return Err(bad(&format!("{w}x{h} is larger than {MAX_SIDE} on a side")));
    }
    let img = DynamicImage::from_decoder(decoder)
        .map_err(|e| bad(&e))?
        .into_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    frame.data.clear();
    frame.data.extend_from_slice(img.as_raw());
    frame.format = PixelFormat::Rgb24;
    (frame.width, frame.height, frame.stride) = (w, h, w * 3);
    Ok(())
}

impl FrameSource for ImageSource {
    fn describe(&self) -> String {
        if self.files.len() == 1 {
            self.what.clone()
        } else {
            format!("{} ({} images)", self.what, self.files.len())
        }
    }

    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool> {
        let Some(path) = self.files.get(self.next) else {
            return Ok(false);
        };
        frame.index = self.next as u64;
        self.next += 1;
        load(path, frame)?;
        Ok(true)
    }

    fn rewind(&mut self) -> bool {
        self.next = 0;
        true
    }
}
