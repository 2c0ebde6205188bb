//! Frames held in memory, delivered in order: for tests and for embedding applications that
//! capture frames themselves.

use super::{Frame, FrameSource};
use crate::Result;

pub struct MemorySource {
    pub frames: Vec<Frame>,
    next: usize,
}

impl MemorySource {
    pub fn new(frames: Vec<Frame>) -> MemorySource {
        MemorySource { frames, next: 0 }
    }
}

impl FrameSource for MemorySource {
    fn describe(&self) -> String {
        format!("memory ({} frames)", self.frames.len())
    }

    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool> {
        let Some(f) = self.frames.get(self.next) else {
            return Ok(false);
        };
        frame.format = f.format;
        (frame.width, frame.height, frame.stride) = (f.width, f.height, f.stride);
        frame.data.clear();
        frame.data.extend_from_slice(&f.data);
        frame.index = self.next as u64;
        self.next += 1;
        Ok(true)
    }

    fn rewind(&mut self) -> bool {
        self.next = 0;
        true
    }
}
