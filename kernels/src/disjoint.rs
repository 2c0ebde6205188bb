//! A mutable f32 buffer shared by threads that each write their own disjoint parts of it: the
//! LSTM lanes' state rows and outputs, the Winograd chunks' output pixels, the direct
//! convolution's output rows. Each caller of [`Disjoint::part`] says why its part is its own.

/// A `&mut [f32]` borrowed for a whole parallel call, handed out in disjoint parts.
#[derive(Clone, Copy)]
pub(crate) struct Disjoint {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: `Disjoint` stands for a `&mut [f32]` borrowed for the whole call; the threads sharing
// it only touch disjoint parts (each use of `part` says why they are disjoint).
unsafe impl Send for Disjoint {}
// SAFETY: as above.
unsafe impl Sync for Disjoint {}

impl Disjoint {
    pub(crate) fn new(s: &mut [f32]) -> Disjoint {
        Disjoint {
            ptr: s.as_mut_ptr(),
            len: s.len(),
        }
    }

    /// Elements `off..off + n` (bounds-checked), to read.
    ///
    /// # Safety
    /// No live mutable slice overlaps them, and nothing writes them while the returned slice
    /// lives.
    pub(crate) unsafe fn read(&self, off: usize, n: usize) -> &[f32] {
        assert!(off + n <= self.len, "disjoint part out of bounds");
        // SAFETY: in bounds (checked), and not written while borrowed, as the caller
        // guarantees.
        unsafe { std::slice::from_raw_parts(self.ptr.add(off), n) }
    }

    /// Elements `off..off + n` (bounds-checked).
    ///
    /// # Safety
    /// No other live slice overlaps them.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn part(&self, off: usize, n: usize) -> &mut [f32] {
        assert!(off + n <= self.len, "disjoint part out of bounds");
        // SAFETY: in bounds (checked), and exclusive as the caller guarantees.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(off), n) }
    }
}
