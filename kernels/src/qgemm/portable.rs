//! The portable micro-kernels: plain Rust for every panel format; the reference the SIMD
//! families are tested against.

use super::{drive, Format, Job, Out, MR, NR};

/// Runs a product with the portable micro-kernel of the weights' format.
///
/// # Safety
/// `job` must describe buffers checked by `QWeights::run`.
pub(crate) unsafe fn drive_portable(job: &Job, out: &mut Out, scratch: &mut [u8]) {
    let micro = match job.wts.format {
        Format::U8 => micro_u8,
        Format::S8 => micro_s8,
        Format::I16 => micro_i16,
    };
    drive(job, out, scratch, micro);
}

#[inline(always)]
unsafe fn micro_generic(
    kg: usize,
    w: *const i32,
    ldw: usize,
    rows: usize,
    panel: *const u8,
    acc: &mut [[i32; NR]; MR],
    dot: impl Fn([u8; 4], [u8; 4]) -> i32,
) {
    for (i, a) in acc.iter_mut().enumerate() {
        *a = [0; NR];
        if i >= rows {
            continue;
        }
        for g in 0..kg {
            // SAFETY: the caller guarantees `rows` rows of `kg` groups and a `kg × NR × 4` panel.
            let wv = (*w.add(i * ldw + g)).to_le_bytes();
            let p = panel.add(g * NR * 4);
            for (j, aj) in a.iter_mut().enumerate() {
                let x = [
                    *p.add(j * 4),
                    *p.add(j * 4 + 1),
                    *p.add(j * 4 + 2),
                    *p.add(j * 4 + 3),
                ];
                // Modulo 2^32: with shifted weights the sum may pass i32 on its way to a
                // result that fits once the corrections are added (`QWeights::new`).
                *aj = aj.wrapping_add(dot(x, wv));
            }
        }
    }
}

unsafe fn micro_u8(
    kg: usize,
    w: *const i32,
    ldw: usize,
    rows: usize,
    panel: *const u8,
    acc: &mut [[i32; NR]; MR],
) {
    micro_generic(kg, w, ldw, rows, panel, acc, |x, w| {
        (0..4).map(|t| x[t] as i32 * w[t] as i8 as i32).sum()
    })
}

unsafe fn micro_s8(
    kg: usize,
    w: *const i32,
    ldw: usize,
    rows: usize,
    panel: *const u8,
    acc: &mut [[i32; NR]; MR],
) {
    micro_generic(kg, w, ldw, rows, panel, acc, |x, w| {
        (0..4).map(|t| x[t] as i8 as i32 * w[t] as i8 as i32).sum()
    })
}

unsafe fn micro_i16(
    kg: usize,
    w: *const i32,
    ldw: usize,
    rows: usize,
    panel: *const u8,
    acc: &mut [[i32; NR]; MR],
) {
    micro_generic(kg, w, ldw, rows, panel, acc, |x, w| {
        let xi = |t: usize| i16::from_le_bytes([x[2 * t], x[2 * t + 1]]) as i32;
        let wi = |t: usize| i16::from_le_bytes([w[2 * t], w[2 * t + 1]]) as i32;
        xi(0) * wi(0) + xi(1) * wi(1)
    })
}
