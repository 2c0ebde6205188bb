//! Panel packing and the workspace pool.
//!
//! A packed A block is a run of `MR`-tall strips, each `kc` deep and stored depth-major
//! (`strip[p·MR + i]`); a packed B block is a run of `NR`-wide strips stored the same way
//! (`strip[p·NR + j]`). Strips past the matrix edge are zero-padded.
//!
//! Workspaces come from a process-wide free list rather than thread-locals: a call takes one
//! buffer for all of its tasks before it forks, so which rayon worker runs which task does not
//! matter, and a second call of the same shape finds a buffer already big enough.

use std::sync::Mutex;

use super::driver::Raw;
use super::isa::Isa;

/// Floats of slack that let a buffer start on a 64-byte boundary.
pub(crate) const ALIGN_F32: usize = 16;

/// Index of the first 64-byte-aligned element of `v` (within `ALIGN_F32`).
pub(crate) fn align_offset(v: &[f32]) -> usize {
    v.as_ptr().align_offset(64).min(ALIGN_F32)
}

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// Makes the pool's `count` largest buffers as large as its largest. Callers that run
/// `count` products at once, in no fixed order (a batch cut between threads, each part running
/// the whole graph), call it after a first run, so that whichever products meet later each
/// take a buffer big enough (`take` hands out the largest) and none allocates.
pub fn reserve_workspaces(count: usize) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let len = pool.iter().map(Vec::len).max().unwrap_or(0);
    if len == 0 {
        return;
    }
    pool.sort_unstable_by_key(|b| std::cmp::Reverse(b.len()));
    while pool.len() < count {
        pool.push(Vec::new());
    }
    for buf in pool.iter_mut().take(count) {
        buf.resize(len, 0.0);
    }
}

/// A buffer borrowed from the pool, returned on drop.
pub(crate) struct Workspace {
    buf: Vec<f32>,
}

impl Workspace {
    /// A buffer of at least `len` floats; allocates only when the pool has none that size.
    pub(crate) fn take(len: usize) -> Workspace {
        let mut buf = {
            let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            // The largest pooled buffer: concurrent callers of different sizes keep theirs.
            let best = (0..pool.len()).max_by_key(|&i| pool[i].len());
            best.map(|i| pool.swap_remove(i)).unwrap_or_default()
        };
        if buf.len() < len + ALIGN_F32 {
            buf.resize(len + ALIGN_F32, 0.0);
        }
        Workspace { buf }
    }

    /// The buffer from its first 64-byte boundary.
    pub(crate) fn aligned(&mut self) -> &mut [f32] {
        let off = align_offset(&self.buf);
        &mut self.buf[off..]
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        POOL.lock().unwrap_or_else(|e| e.into_inner()).push(buf);
    }
}

/// Floats in a whole packed A of `m × k`.
pub(crate) fn packed_a_len(isa: &Isa, m: usize, k: usize) -> usize {
    m.next_multiple_of(isa.mr) * k
}

/// Floats of one packed A block (at most `MC` rows by `KC` depths) of an `m × k` left operand:
/// what a product packing A on the fly needs per task.
pub(crate) fn a_block_len(isa: &Isa, m: usize, k: usize) -> usize {
    m.min(isa.mc).next_multiple_of(isa.mr) * isa.kc.min(k)
}

/// Copies `len` floats from `src` to `dst`: the panel widths as fixed-size moves (a `memcpy`
/// call per 8- or 32-float row of a panel costs as much as the copy), anything else by
/// `copy_nonoverlapping`.
///
/// # Safety
/// `src` is readable and `dst` writable for `len` floats; they do not overlap.
#[inline(always)]
unsafe fn copy_run(src: *const f32, dst: *mut f32, len: usize) {
    #[inline(always)]
    unsafe fn fixed<const N: usize>(src: *const f32, dst: *mut f32) {
        // SAFETY: the caller's contract with len == N.
        unsafe {
            dst.cast::<[f32; N]>()
                .write_unaligned(src.cast::<[f32; N]>().read_unaligned())
        }
    }
    // SAFETY: the caller's contract.
    unsafe {
        match len {
            32 => fixed::<32>(src, dst),
            16 => fixed::<16>(src, dst),
            12 => fixed::<12>(src, dst),
            8 => fixed::<8>(src, dst),
            6 => fixed::<6>(src, dst),
            4 => fixed::<4>(src, dst),
            _ => std::ptr::copy_nonoverlapping(src, dst, len),
        }
    }
}

/// Packs rows `i0..i0 + mc`, depths `p0..p0 + kc` of `a` into `dst` as `MR`-tall strips.
///
/// # Safety
/// The rows and depths are inside the bounds-checked view `a`; `dst` holds
/// `round_up(mc, MR)·kc` floats.
pub(crate) unsafe fn pack_a(
    mr: usize,
    a: Raw,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    dst: *mut f32,
) {
    for s in 0..mc.div_ceil(mr) {
        let i = i0 + s * mr;
        let h = mr.min(i0 + mc - i);
        // SAFETY: strip s occupies dst[s·MR·kc .. (s+1)·MR·kc]; source elements are in
        // bounds by the caller's contract.
        unsafe {
            let d = dst.add(s * mr * kc);
            let src = a.ptr.add(i * a.rs + p0 * a.cs);
            if a.rs == 1 {
                for p in 0..kc {
                    copy_run(src.add(p * a.cs), d.add(p * mr), h);
                }
            } else {
                for ii in 0..h {
                    let row = src.add(ii * a.rs);
                    for p in 0..kc {
                        *d.add(p * mr + ii) = *row.add(p * a.cs);
                    }
                }
            }
            if h < mr {
                for p in 0..kc {
                    std::ptr::write_bytes(d.add(p * mr + h), 0, mr - h);
                }
            }
        }
    }
}

/// Packs depths `p0..p0 + kc`, columns `j0..j0 + nc` of `b` into `dst` as `NR`-wide strips:
/// the `MR`-tall strips of [`pack_a`] over `b`'s transpose.
///
/// # Safety
/// The depths and columns are inside the bounds-checked view `b`; `dst` holds
/// `kc·round_up(nc, NR)` floats.
pub(crate) unsafe fn pack_b(
    nr: usize,
    b: Raw,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    dst: *mut f32,
) {
    let bt = Raw {
        ptr: b.ptr,
        rs: b.cs,
        cs: b.rs,
    };
    // SAFETY: column j of `b` is row j of `bt`, so the caller's contract is `pack_a`'s.
    unsafe { pack_a(nr, bt, j0, nc, p0, kc, dst) }
}

/// Packs all of `a` (`m × k`) for [`super::PackedA`]: for each `KC` block of depth in turn,
/// all of its `MR`-tall strips. `dst` holds [`packed_a_len`] floats.
pub(crate) fn pack_a_full(isa: &Isa, a: Raw, m: usize, k: usize, dst: &mut [f32]) {
    assert!(dst.len() >= packed_a_len(isa, m, k));
    let mp = m.next_multiple_of(isa.mr);
    for p0 in (0..k).step_by(isa.kc) {
        let kc = isa.kc.min(k - p0);
        // SAFETY: `a` was bounds-checked for m × k; this block occupies dst[p0·mp ..
        // p0·mp + mp·kc], inside the length asserted above.
        unsafe { pack_a(isa.mr, a, 0, m, p0, kc, dst.as_mut_ptr().add(p0 * mp)) };
    }
}

/// Floats in a whole packed B of `k × n`.
pub(crate) fn packed_b_len(isa: &Isa, k: usize, n: usize) -> usize {
    k * n.next_multiple_of(isa.nr)
}

/// Packs all of `b` (`k × n`) for [`super::PackedB`]: for each `KC` block of depth in turn,
/// all of its `NR`-wide strips. `dst` holds [`packed_b_len`] floats. Large operands (a
/// classifier's weights run to tens of megabytes) are packed by several threads, runs of
/// strips each, which shortens the model's load.
pub(crate) fn pack_b_full(isa: &Isa, b: Raw, k: usize, n: usize, dst: &mut [f32]) {
    use rayon::prelude::*;
    /// Floats below which one thread packs everything.
    const PAR_MIN: usize = 1 << 20;
    /// Strips per task when packing in parallel.
    const STRIPS: usize = 16;
    assert!(dst.len() >= packed_b_len(isa, k, n));
    let np = n.next_multiple_of(isa.nr);
    let parallel = packed_b_len(isa, k, n) >= PAR_MIN;
    for p0 in (0..k).step_by(isa.kc) {
        let kc = isa.kc.min(k - p0);
        let block = &mut dst[p0 * np..p0 * np + kc * np];
        let run = |(t, d): (usize, &mut [f32])| {
            let j0 = t * STRIPS * isa.nr;
            let nc = (STRIPS * isa.nr).min(n - j0);
            // SAFETY: `b` was bounds-checked for k × n; these strips occupy `d`, which holds
            // kc·round_up(nc, NR) floats.
            unsafe { pack_b(isa.nr, b, p0, kc, j0, nc, d.as_mut_ptr()) };
        };
        if parallel {
            block
                .par_chunks_mut(STRIPS * isa.nr * kc)
                .enumerate()
                .for_each(run);
        } else {
            block
                .chunks_mut(STRIPS * isa.nr * kc)
                .enumerate()
                .for_each(run);
        }
    }
}
