//! aarch64 Advanced SIMD micro-kernel (8 × 12) and the matrix-vector bodies compiled for it.
//!
//! 24 accumulators `acc[i][v]` (rows i < 8, four-column vectors v < 3); per depth step two
//! vector loads of A and three of B, and each FMA takes its A scalar from a vector lane
//! (`vfmaq_laneq_f32`), so no broadcasts are needed.

use std::arch::aarch64::*;

use super::gemv;
use super::isa::Isa;

const MR: usize = 8;
const NR: usize = 12;

pub(crate) static NEON: Isa = Isa {
    mr: MR,
    nr: NR,
    kc: 256,
    mc: MR * 16,
    nc: 1536,
    micro,
    half: None,
    short: None,
    direct: None,
    axpy: gemv::axpy_portable,
    strip: strip_neon,
    dots: gemv::dots_portable,
};

gemv::strip_fn!(strip_neon, true, NR);

/// See [`super::isa::MicroFn`].
///
/// # Safety
/// `a` holds `kc·8` floats, `b` holds `kc·12`, and `c` is valid for an 8 × 12 tile with row
/// stride `ldc`.
#[allow(clippy::too_many_arguments)]
unsafe fn micro(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
    fx: Option<&super::isa::Fused>,
) {
    // SAFETY: NEON is part of the aarch64 baseline; every load stays inside the panels
    // (p < kc) and every store inside the tile, as the caller guarantees.
    unsafe {
        let z = vdupq_n_f32(0.0);
        let mut acc = [[z; 3]; MR];
        let (mut a, mut b) = (a, b);
        for _ in 0..kc {
            let a0 = vld1q_f32(a);
            let a1 = vld1q_f32(a.add(4));
            let bv = [vld1q_f32(b), vld1q_f32(b.add(4)), vld1q_f32(b.add(8))];
            macro_rules! row {
                ($i:expr, $av:ident, $lane:literal) => {
                    for v in 0..3 {
                        acc[$i][v] = vfmaq_laneq_f32::<$lane>(acc[$i][v], bv[v], $av);
                    }
                };
            }
            row!(0, a0, 0);
            row!(1, a0, 1);
            row!(2, a0, 2);
            row!(3, a0, 3);
            row!(4, a1, 0);
            row!(5, a1, 1);
            row!(6, a1, 2);
            row!(7, a1, 3);
            a = a.add(MR);
            b = b.add(NR);
        }
        let betav = vdupq_n_f32(beta);
        for (i, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                let p = c.add(i * ldc + 4 * v);
                let r = if alpha == 0.0 {
                    vmulq_f32(betav, *x)
                } else {
                    vfmaq_n_f32(vmulq_f32(betav, *x), vld1q_f32(p), alpha)
                };
                vst1q_f32(p, r);
            }
        }
        if let Some(fx) = fx {
            fx.apply(c, ldc, MR, NR);
        }
    }
}
