//! Which micro-kernel family runs: detected once per process, cached, overridable for tests.
//!
//! An [`Isa`] bundles everything that depends on the instruction set: the micro-kernel and its
//! tile shape, the cache blocking, and the matrix-vector bodies compiled for that target.

use std::sync::atomic::{AtomicU8, Ordering};

use super::{gemv, portable};

/// `c[i·ldc + j] = (alpha == 0 ? 0 : alpha·c[i·ldc + j]) + beta·Σ_p a[p·MR + i]·b[p·NR + j]`
/// over one full `MR × NR` tile, then [`Fused`] if given; `a` and `b` are packed panels `kc`
/// deep.
pub(crate) type MicroFn = unsafe fn(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
    fx: Option<&Fused>,
);

/// A row epilogue as one tile is stored (see `driver::RowEpi`): `bias` points at the bias of
/// the tile's first row (null: none).
pub(crate) struct Fused {
    pub bias: *const f32,
    pub clamp: Option<(f32, f32)>,
}

impl Fused {
    /// Row `i`'s bias.
    ///
    /// # Safety
    /// `bias` is null or holds the tile's rows.
    #[inline(always)]
    pub unsafe fn bias(&self, i: usize) -> f32 {
        if self.bias.is_null() {
            0.0
        } else {
            // SAFETY: the caller's contract.
            unsafe { *self.bias.add(i) }
        }
    }

    /// One element: `v + b`, then `max` with `lo` and `min` with `hi` in the order of the
    /// x86 instructions (`maxps`: a NaN gives `lo`); without a clamp a zero bias leaves `v`
    /// untouched (−0 stays −0), as the convolutions' separate epilogue pass did.
    #[inline(always)]
    pub fn one(v: f32, b: f32, clamp: Option<(f32, f32)>) -> f32 {
        match clamp {
            Some((lo, hi)) => {
                let v = v + b;
                let v = if v > lo { v } else { lo };
                if v < hi {
                    v
                } else {
                    hi
                }
            }
            None if b != 0.0 => v + b,
            None => v,
        }
    }

    /// [`Fused::one`] over the first `rows × cols` elements of a stored tile, for the
    /// micro-kernels that apply it after their stores (portable, AVX2, NEON).
    ///
    /// # Safety
    /// `c` is valid for `rows × cols` with row stride `ldc`; `bias` as in [`Fused::bias`].
    pub unsafe fn apply(&self, c: *mut f32, ldc: usize, rows: usize, cols: usize) {
        for i in 0..rows {
            // SAFETY: the caller's contract.
            unsafe {
                let b = self.bias(i);
                let row = std::slice::from_raw_parts_mut(c.add(i * ldc), cols);
                row.iter_mut()
                    .for_each(|v| *v = Fused::one(*v, b, self.clamp));
            }
        }
    }
}

/// [`MicroFn`] over one full tile with B unpacked: its rows `ldb` floats apart where they lie
/// in a row-major operand, each read `NR` wide.
pub(crate) type DirectFn = unsafe fn(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
    fx: Option<&Fused>,
);

/// A micro-kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Plain Rust that LLVM vectorises for the baseline target (SSE2, NEON).
    Portable,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512F.
    Avx512,
    /// aarch64 Advanced SIMD.
    Neon,
}

/// Everything the drivers need for one family.
pub(crate) struct Isa {
    /// Micro-tile rows (A panel height) and columns (B panel width).
    pub mr: usize,
    pub nr: usize,
    /// Cache blocking: depth of a panel, rows of an A block, columns of a B block.
    pub kc: usize,
    pub mc: usize,
    pub nc: usize,
    pub micro: MicroFn,
    /// The micro-kernel over the first `nr / 2` columns of a panel (its rows still `nr` apart),
    /// for edge tiles at most that wide: half the work of `micro` on a half-empty panel.
    pub half: Option<MicroFn>,
    /// The micro-kernel over the first `mr / 2` rows of a panel (its columns still `mr` apart),
    /// for edge tiles at most that high.
    pub short: Option<MicroFn>,
    /// The full tile reading B unpacked, where the family has one (see `driver::direct_b`).
    pub direct: Option<DirectFn>,
    pub axpy: gemv::AxpyFn,
    /// [`gemv::AxpyFn`] over one `nr`-wide strip of a packed B (`rstride` = `nr`).
    pub strip: gemv::AxpyFn,
    pub dots: gemv::DotsFn,
}

/// The largest `MR·NR` of any family: edge tiles go through a stack buffer this big.
pub(crate) const MAX_TILE: usize = 16 * 32;

static PORTABLE: Isa = Isa {
    mr: portable::MR,
    nr: portable::NR,
    kc: 256,
    mc: 64,
    nc: 2048,
    micro: portable::micro,
    half: None,
    short: None,
    direct: None,
    axpy: gemv::axpy_portable,
    strip: gemv::strip_portable,
    dots: gemv::dots_portable,
};

impl Kernel {
    /// The fastest family this CPU runs, detected on first use.
    pub fn detect() -> Kernel {
        static CACHED: AtomicU8 = AtomicU8::new(u8::MAX);
        let code = CACHED.load(Ordering::Relaxed);
        if let Some(k) = Kernel::from_code(code) {
            return k;
        }
        let best = *Kernel::supported().last().unwrap_or(&Kernel::Portable);
        CACHED.store(best as u8, Ordering::Relaxed);
        best
    }

    fn from_code(code: u8) -> Option<Kernel> {
        [Kernel::Portable, Kernel::Avx2, Kernel::Avx512, Kernel::Neon]
            .into_iter()
            .find(|k| *k as u8 == code)
    }

    /// Every family this CPU runs, slowest first.
    pub fn supported() -> &'static [Kernel] {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            let avx512 = avx2 && is_x86_feature_detected!("avx512f");
            if avx512 {
                &[Kernel::Portable, Kernel::Avx2, Kernel::Avx512]
            } else if avx2 {
                &[Kernel::Portable, Kernel::Avx2]
            } else {
                &[Kernel::Portable]
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            &[Kernel::Portable, Kernel::Neon]
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            &[Kernel::Portable]
        }
    }

    /// The family's parameters. Panics if this CPU cannot run it.
    pub(crate) fn isa(self) -> &'static Isa {
        assert!(
            Kernel::supported().contains(&self),
            "sgemm: this CPU cannot run the {self:?} kernels"
        );
        match self {
            Kernel::Portable => &PORTABLE,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => &super::x86::AVX2,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => &super::x86::AVX512,
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => &super::neon::NEON,
            #[allow(unreachable_patterns)]
            _ => unreachable!("checked by supported()"),
        }
    }
}
