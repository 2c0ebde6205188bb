//! A synthetic test pattern, `synthetic[:WxH][:FMT]` (default 640x480 YUYV): colour bars over a
//! gradient that scroll one step per frame. Endless; needs no camera.

use super::{encode, Frame, FrameSource, PixelFormat};
use crate::{Error, Result};

pub struct Synthetic {
    format: PixelFormat,
    width: usize,
    height: usize,
    rgb: Vec<u8>,
    next: u64,
}

impl Synthetic {
    pub fn parse(spec: &str) -> Result<Synthetic> {
        let (mut w, mut h, mut format) = (640, 480, PixelFormat::Yuyv);
        for part in spec.split(':').skip(1) {
            if let Some((pw, ph)) = super::parse_size(part) {
                (w, h) = (pw, ph);
            } else {
                format = part.parse()?;
            }
        }
        if w == 0 || h == 0 || w > 8192 || h > 8192 {
            return Err(Error::invalid(format!(
                "--source {spec}: size must be 1..8192 on each side"
            )));
        }
        Ok(Synthetic::new(format, w, h))
    }

    pub fn new(format: PixelFormat, width: usize, height: usize) -> Synthetic {
        Synthetic {
            format,
            width,
            height,
            rgb: vec![0; width * height * 3],
            next: 0,
        }
    }
}

const BARS: [[u8; 3]; 8] = [
    [235, 235, 235],
    [235, 235, 16],
    [16, 235, 235],
    [16, 235, 16],
    [235, 16, 235],
    [235, 16, 16],
    [16, 16, 235],
    [16, 16, 16],
];

impl FrameSource for Synthetic {
    fn describe(&self) -> String {
        format!("synthetic ({} {}x{})", self.format, self.width, self.height)
    }

    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool> {
        let (w, h) = (self.width, self.height);
        let shift = (self.next as usize * 4) % w;
        for y in 0..h {
            for x in 0..w {
                let p = &mut self.rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
                if y < h * 2 / 3 {
                    p.copy_from_slice(&BARS[((x + shift) % w) * 8 / w]);
                } else {
                    let v = (((x + shift) % w) * 255 / w.max(1)) as u8;
                    p.copy_from_slice(&[v, v, 255 - v]);
                }
            }
        }
        encode::encode_into(&self.rgb, w, h, self.format, &mut frame.data)?;
        frame.format = self.format;
        (frame.width, frame.height) = (w, h);
        frame.stride = self.format.min_stride(w);
        frame.index = self.next;
        self.next += 1;
        Ok(true)
    }
}
