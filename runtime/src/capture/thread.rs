//! A capture thread: reads frames from a source into a small ring of reused buffers while the
//! caller preprocesses and runs the model on the previous one.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::{Frame, FrameSource};
use crate::{Error, Result};

/// One frame from the capture thread, or the error for that frame.
pub struct Captured {
    pub frame: Frame,
    pub result: Result<()>,
    /// Time the source took to deliver it (reading, waiting for the camera), in ms.
    pub capture_ms: f64,
}

/// Options for [`CaptureThread::spawn`].
#[derive(Debug, Clone, Copy)]
pub struct CaptureOptions {
    /// Buffers in the ring (at least 2: one being filled while one is used).
    pub ring: usize,
    /// Stop after this many frames (good or bad).
    pub max_frames: Option<u64>,
    /// Start again at the end of file sources.
    pub looping: bool,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            ring: 3,
            max_frames: None,
            looping: false,
        }
    }
}

pub struct CaptureThread {
    full: Receiver<Captured>,
    free: SyncSender<Frame>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl CaptureThread {
    /// Starts reading `source` on its own thread. Setting `stop` ends the stream after the
    /// frame in progress.
    pub fn spawn(
        mut source: Box<dyn FrameSource>,
        opts: CaptureOptions,
        stop: Arc<AtomicBool>,
    ) -> CaptureThread {
        let ring = opts.ring.max(2);
        let (full_tx, full) = sync_channel::<Captured>(ring);
        let (free, free_rx) = sync_channel::<Frame>(ring);
        for _ in 0..ring {
            free.send(Frame::empty()).expect("the receiver is alive");
        }
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("edgefuse-capture".into())
            .spawn(move || {
                let mut count = 0u64;
                while !stop2.load(Ordering::Relaxed) && opts.max_frames.is_none_or(|m| count < m) {
                    let Ok(mut frame) = free_rx.recv() else {
                        return;
                    };
                    let t = Instant::now();
                    // A panic in the source is an error for this frame and ends the stream: the
                    // caller hears of it rather than seeing an ordinary end.
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        let mut r = source.next_frame(&mut frame);
                        if matches!(r, Ok(false)) && opts.looping && count > 0 && source.rewind() {
                            r = source.next_frame(&mut frame);
                        }
                        r
                    }));
                    let panicked = r.is_err();
                    let result = match r {
                        Ok(Ok(true)) => Ok(()),
                        Ok(Ok(false)) => return,
                        Ok(Err(e)) => Err(e),
                        Err(panic) => {
                            let msg = crate::error::panic_message(&*panic);
                            Err(Error::invalid(format!(
                                "{}: the frame source panicked: {msg}",
                                source.describe()
                            )))
                        }
                    };
                    count += 1;
                    let c = Captured {
                        frame,
                        result,
                        capture_ms: t.elapsed().as_secs_f64() * 1e3,
                    };
                    if full_tx.send(c).is_err() || panicked {
                        return;
                    }
                }
            })
            .expect("cannot start the capture thread");
        CaptureThread {
            full,
            free,
            stop,
            handle: Some(handle),
        }
    }

    /// The next frame, or None when the stream ended (or was stopped).
    pub fn next(&self) -> Option<Captured> {
        self.full.recv().ok()
    }

    /// Returns a frame's buffer to the ring.
    pub fn recycle(&self, frame: Frame) {
        let _ = self.free.try_send(frame);
    }
}

impl Drop for CaptureThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblock the thread: drain what it produced so a blocked send returns.
        while self.full.try_recv().is_ok() {}
        if let Some(h) = self.handle.take() {
            // The thread may be blocked waiting for a free buffer: hand one over.
            let _ = self.free.try_send(Frame::empty());
            while !h.is_finished() {
                while self.full.try_recv().is_ok() {}
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let _ = h.join();
        }
    }
}
