//! The portable micro-kernel: plain Rust over fixed-size arrays, which LLVM keeps in registers
//! and vectorises for the baseline target. The reference the SIMD kernels are tested against.

pub(crate) const MR: usize = 4;
pub(crate) const NR: usize = 8;

/// See [`super::isa::MicroFn`].
///
/// # Safety
/// `a` holds `kc·MR` floats, `b` holds `kc·NR`, and `c` is valid for an `MR × NR` tile with
/// row stride `ldc`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn micro(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
    fx: Option<&super::isa::Fused>,
) {
    // SAFETY: the caller guarantees the panel lengths and the tile's extent.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, kc * MR),
            std::slice::from_raw_parts(b, kc * NR),
        )
    };
    let mut acc = [[0.0f32; NR]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] += ap[i] * bp[j];
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: row i of the tile lies within the caller's `c` extent.
        let out = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), NR) };
        if alpha == 0.0 {
            for (o, v) in out.iter_mut().zip(row) {
                *o = beta * v;
            }
        } else {
            for (o, v) in out.iter_mut().zip(row) {
                *o = alpha * *o + beta * v;
            }
        }
    }
    if let Some(fx) = fx {
        // SAFETY: the tile is the caller's; `fx.bias` holds its rows.
        unsafe { fx.apply(c, ldc, MR, NR) };
    }
}
