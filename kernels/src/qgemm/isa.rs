//! Which integer micro-kernel family runs: detected once per process, overridable for tests.

use std::sync::atomic::{AtomicU8, Ordering};

use super::{Format, Job, Out};

/// An integer micro-kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QKernel {
    /// Plain Rust (all formats).
    Portable,
    /// x86-64 AVX2: i16 pairs with `vpmaddwd` (no `vpmaddubsw`, which saturates).
    Avx2,
    /// x86-64 AVX-512 VNNI: `vpdpbusd` (u8 × i8) and `vpdpwssd` (i16 pairs).
    Avx512Vnni,
    /// aarch64 Advanced SIMD: i16 with `smlal`.
    Neon,
    /// aarch64 with the dot-product extension: `sdot` on activations shifted to i8.
    NeonDot,
}

/// Runs a whole product for one family (its `#[target_feature]` wrapper around `drive`).
pub(crate) type DriverFn = unsafe fn(&Job, &mut Out, &mut [u8]);

impl QKernel {
    /// The fastest family this CPU runs, detected on first use.
    pub fn detect() -> QKernel {
        static CACHED: AtomicU8 = AtomicU8::new(u8::MAX);
        let all = [
            QKernel::Portable,
            QKernel::Avx2,
            QKernel::Avx512Vnni,
            QKernel::Neon,
            QKernel::NeonDot,
        ];
        let code = CACHED.load(Ordering::Relaxed);
        if let Some(k) = all.into_iter().find(|k| *k as u8 == code) {
            return k;
        }
        let best = *QKernel::supported().last().unwrap_or(&QKernel::Portable);
        CACHED.store(best as u8, Ordering::Relaxed);
        best
    }

    /// Every family this CPU runs, slowest first.
    pub fn supported() -> Vec<QKernel> {
        let mut v = vec![QKernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") {
                v.push(QKernel::Avx2);
                if is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vnni")
                {
                    v.push(QKernel::Avx512Vnni);
                }
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            v.push(QKernel::Neon);
            if std::arch::is_aarch64_feature_detected!("dotprod") {
                v.push(QKernel::NeonDot);
            }
        }
        v
    }

    /// The panel format this family uses for weights that fit i8 (`fits_i8`) or not.
    /// Panics if this CPU cannot run the family.
    pub(crate) fn format(self, fits_i8: bool) -> Format {
        assert!(
            QKernel::supported().contains(&self),
            "qgemm: this CPU cannot run the {self:?} kernels"
        );
        match (self, fits_i8) {
            (QKernel::Portable | QKernel::Avx512Vnni, true) => Format::U8,
            (QKernel::NeonDot, true) => Format::S8,
            _ => Format::I16,
        }
    }

    pub(crate) fn driver(self) -> DriverFn {
        match self {
            #[cfg(target_arch = "x86_64")]
            QKernel::Avx2 => super::x86::drive_avx2,
            #[cfg(target_arch = "x86_64")]
            QKernel::Avx512Vnni => super::x86::drive_avx512vnni,
            #[cfg(target_arch = "aarch64")]
            QKernel::Neon => super::neon::drive_neon,
            #[cfg(target_arch = "aarch64")]
            QKernel::NeonDot => super::neon::drive_neon_dot,
            _ => super::portable::drive_portable,
        }
    }
}
