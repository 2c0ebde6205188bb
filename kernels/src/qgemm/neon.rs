//! aarch64 integer micro-kernels: i16 pairs with `smlal` (every Advanced SIMD CPU) and `sdot`
//! on activations shifted to i8 (CPUs with the dot-product extension).

use std::arch::aarch64::*;

use super::{drive, Format, Job, Out, MR, NR};

/// # Safety
/// `job` checked by `QWeights::run` (Advanced SIMD is baseline on aarch64).
pub(crate) unsafe fn drive_neon(job: &Job, out: &mut Out, scratch: &mut [u8]) {
    debug_assert_eq!(job.wts.format, Format::I16);
    drive(job, out, scratch, micro_i16)
}

/// # Safety
/// The CPU must have the dot-product extension; `job` checked by `QWeights::run`.
#[target_feature(enable = "dotprod")]
pub(crate) unsafe fn drive_neon_dot(job: &Job, out: &mut Out, scratch: &mut [u8]) {
    match job.wts.format {
        Format::S8 => drive(job, out, scratch, micro_sdot),
        _ => drive(job, out, scratch, micro_i16),
    }
}

unsafe fn micro_i16(
    kg: usize,
    w: *const i32,
    ldw: usize,
    rows: usize,
    panel: *const u8,
    acc: &mut [[i32; NR]; MR],
) {
    for half in 0..2 {
        let r: [*const i32; 4] = std::array::from_fn(|i| w.add((half * 4 + i).min(rows - 1) * ldw));
        let mut c = [[vdupq_n_s32(0); 4]; 4];
        for g in 0..kg {
            // SAFETY: the panel holds `kg` groups of 64 bytes (16 columns × 2 i16).
            let p = panel.add(g * 64) as *const i16;
            let a = vld2q_s16(p);
            let b = vld2q_s16(p.add(16));
            for i in 0..4 {
                let wv = *r[i].add(g);
                let (w0, w1) = (wv as i16, (wv >> 16) as i16);
                c[i][0] = vmlal_n_s16(
                    vmlal_n_s16(c[i][0], vget_low_s16(a.0), w0),
                    vget_low_s16(a.1),
                    w1,
                );
                c[i][1] = vmlal_high_n_s16(vmlal_high_n_s16(c[i][1], a.0, w0), a.1, w1);
                c[i][2] = vmlal_n_s16(
                    vmlal_n_s16(c[i][2], vget_low_s16(b.0), w0),
                    vget_low_s16(b.1),
                    w1,
                );
                c[i][3] = vmlal_high_n_s16(vmlal_high_n_s16(c[i][3], b.0, w0), b.1, w1);
            }
        }
        for i in 0..4 {
            let a = acc[half * 4 + i].as_mut_ptr();
            for q in 0..4 {
                vst1q_s32(a.add(q * 4), c[i][q]);
            }
        }
        if rows <= 4 {
            break;
        }
    }
}

/// `acc[l] += Σ_t a[4l + t]·b[4l + t]` (the `vdotq_s32` intrinsic is not stable yet).
#[inline(always)]
unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: only called from functions compiled with the dotprod feature, on CPUs that have it.
    std::arch::asm!(
        ".arch_extension dotprod",
        "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
        acc = inout(vreg) acc,
        a = in(vreg) a,
        b = in(vreg) b,
        options(pure, nomem, nostack),
    );
    acc
}

#[target_feature(enable = "dotprod")]
unsafe fn micro_sdot(
    kg: usize,
    w: *const i32,
    ldw: usize,
    rows: usize,
    panel: *const u8,
    acc: &mut [[i32; NR]; MR],
) {
    for half in 0..2 {
        let r: [*const i32; 4] = std::array::from_fn(|i| w.add((half * 4 + i).min(rows - 1) * ldw));
        let mut c = [[vdupq_n_s32(0); 4]; 4];
        for g in 0..kg {
            // SAFETY: the panel holds `kg` groups of 64 bytes (16 columns × 4 i8).
            let p = panel.add(g * 64) as *const i8;
            let x = [
                vld1q_s8(p),
                vld1q_s8(p.add(16)),
                vld1q_s8(p.add(32)),
                vld1q_s8(p.add(48)),
            ];
            for i in 0..4 {
                let wv = vreinterpretq_s8_s32(vdupq_n_s32(*r[i].add(g)));
                for q in 0..4 {
                    c[i][q] = sdot(c[i][q], x[q], wv);
                }
            }
        }
        for i in 0..4 {
            let a = acc[half * 4 + i].as_mut_ptr();
            for q in 0..4 {
                vst1q_s32(a.add(q * 4), c[i][q]);
            }
        }
        if rows <= 4 {
            break;
        }
    }
}
