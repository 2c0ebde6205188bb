//! Data movement by element size: strided copies (slice, expand, transpose) and a blocked 2-D
//! transpose. Elements are opaque groups of `E` bytes, so one kernel serves every dtype.

use crate::strided::Strided;

/// Copies over `layout`, whose operand 0 is `dst` and operand 1 is `src` (element offsets are
/// added to `src_base`), for elements of `elsize` bytes (1, 2, 4 or 8).
pub fn copy_strided(
    layout: &Strided<2>,
    elsize: usize,
    dst: &mut [u8],
    src: &[u8],
    src_base: isize,
) {
    match elsize {
        1 => copy_rows::<1>(layout, dst, src, src_base),
        2 => copy_rows::<2>(layout, dst, src, src_base),
        4 => copy_rows::<4>(layout, dst, src, src_base),
        8 => copy_rows::<8>(layout, dst, src, src_base),
        _ => copy_rows_dyn(layout, elsize, dst, src, src_base),
    }
}

fn copy_rows<const E: usize>(layout: &Strided<2>, dst: &mut [u8], src: &[u8], src_base: isize) {
    let n = layout.inner();
    let [ds, ss] = layout.inner_strides();
    if let Some(r) = transpose_rows(layout) {
        return copy_transposed::<E>(layout, r, dst, src, src_base);
    }
    if ds == 1 && ss == 1 && n * E <= 32 && layout.outer_rank() <= 2 {
        return copy_short_rows(layout, n * E, E, dst, src, src_base);
    }
    layout.for_rows(0, layout.rows(), |_, [d0, s0]| {
        let s0 = src_base + s0;
        if ds == 1 && ss == 1 {
            let (d, s) = (d0 as usize * E, s0 as usize * E);
            dst[d..d + n * E].copy_from_slice(&src[s..s + n * E]);
        } else if ss == 0 {
            let s = s0 as usize * E;
            let v: [u8; E] = src[s..s + E].try_into().expect("E bytes");
            for j in 0..n {
                let d = (d0 + j as isize * ds) as usize * E;
                dst[d..d + E].copy_from_slice(&v);
            }
        } else {
            for j in 0..n as isize {
                let d = (d0 + j * ds) as usize * E;
                let s = (s0 + j * ss) as usize * E;
                dst[d..d + E].copy_from_slice(&src[s..s + E]);
            }
        }
    });
}

/// [`copy_rows`] of contiguous rows of `len` bytes (at most 32) under at most two outer axes:
/// two plain loops and one fixed-size move per row. Silero's STFT slices are 4 128 rows of
/// 4 floats; through the general odometer and a `memcpy` call each, a row cost about 5 ns.
fn copy_short_rows(
    layout: &Strided<2>,
    len: usize,
    e: usize,
    dst: &mut [u8],
    src: &[u8],
    src_base: isize,
) {
    let (dims, strides) = layout.outer();
    let ((n1, [d1, s1]), (n0, [d0, s0])) = match (dims, strides) {
        ([], _) => ((1, [0, 0]), (1, [0, 0])),
        ([a], [sa]) => ((1, [0, 0]), (*a, *sa)),
        ([a, b], [sa, sb]) => ((*a, *sa), (*b, *sb)),
        _ => unreachable!("at most two outer axes"),
    };
    #[inline(always)]
    fn go<const L: usize>(
        (n1, d1, s1): (usize, isize, isize),
        (n0, d0, s0): (usize, isize, isize),
        e: usize,
        dst: &mut [u8],
        src: &[u8],
        src_base: isize,
    ) {
        for i in 0..n1 as isize {
            for j in 0..n0 as isize {
                let d = (i * d1 + j * d0) as usize * e;
                let s = (src_base + i * s1 + j * s0) as usize * e;
                let v: [u8; L] = src[s..s + L].try_into().expect("L bytes");
                dst[d..d + L].copy_from_slice(&v);
            }
        }
    }
    let (o1, o0) = ((n1, d1, s1), (n0, d0, s0));
    match len {
        4 => go::<4>(o1, o0, e, dst, src, src_base),
        8 => go::<8>(o1, o0, e, dst, src, src_base),
        12 => go::<12>(o1, o0, e, dst, src, src_base),
        16 => go::<16>(o1, o0, e, dst, src, src_base),
        20 => go::<20>(o1, o0, e, dst, src, src_base),
        24 => go::<24>(o1, o0, e, dst, src, src_base),
        28 => go::<28>(o1, o0, e, dst, src, src_base),
        32 => go::<32>(o1, o0, e, dst, src, src_base),
        _ => layout.for_rows(0, layout.rows(), |_, [d, s]| {
            let (d, s) = (d as usize * e, (src_base + s) as usize * e);
            copy_short(&mut dst[d..d + len], &src[s..s + len]);
        }),
    }
}

fn copy_rows_dyn(layout: &Strided<2>, e: usize, dst: &mut [u8], src: &[u8], src_base: isize) {
    let n = layout.inner() as isize;
    let [ds, ss] = layout.inner_strides();
    layout.for_rows(0, layout.rows(), |_, [d0, s0]| {
        for j in 0..n {
            let d = (d0 + j * ds) as usize * e;
            let s = (src_base + s0 + j * ss) as usize * e;
            dst[d..d + e].copy_from_slice(&src[s..s + e]);
        }
    });
}

/// When `layout` is a batch of 2-D transposes (contiguous destination rows reading a source
/// column, and the next-outer axis walking the source contiguously), the number of rows per
/// matrix.
fn transpose_rows(layout: &Strided<2>) -> Option<usize> {
    let [ds, ss] = layout.inner_strides();
    let (dims, strides) = layout.outer();
    let (&r, &[dr, sr]) = (dims.last()?, strides.last()?);
    let worth_it = layout.inner() >= 4 && r >= 4;
    (ds == 1 && ss != 1 && ss != 0 && dr == layout.inner() as isize && sr == 1 && worth_it)
        .then_some(r)
}

/// Tile edge of the blocked transpose: two 16×16 tiles of 8-byte elements fit in L1.
const TILE: usize = 16;

fn copy_transposed<const E: usize>(
    layout: &Strided<2>,
    r: usize,
    dst: &mut [u8],
    src: &[u8],
    src_base: isize,
) {
    let c = layout.inner();
    let [_, sc] = layout.inner_strides();
    layout.for_rows(0, layout.rows(), |row, [d0, s0]| {
        if row % r != 0 {
            return;
        }
        // Matrix: dst[d0 + i·c + j] = src[s0 + i + j·sc] for i < r, j < c.
        let s0 = src_base + s0;
        for i0 in (0..r).step_by(TILE) {
            for j0 in (0..c).step_by(TILE) {
                for i in i0..(i0 + TILE).min(r) {
                    let drow = (d0 as usize + i * c) * E;
                    for j in j0..(j0 + TILE).min(c) {
                        let s = (s0 + i as isize + j as isize * sc) as usize * E;
                        let d = drow + j * E;
                        dst[d..d + E].copy_from_slice(&src[s..s + E]);
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strided::contiguous_strides;
    #[test]
    fn short_rows_copy_like_indexing() {
        // Slices of a `[a, b, w]` tensor keeping `n` of each row from column 1 (and every
        // other of the middle axis): rows of 1..9 elements of 1, 2, 4 and 8 bytes, under
        // zero, one or two outer axes (merged where contiguous), as `Slice` lays them out.
        for e in [1usize, 2, 4, 8] {
            for (a, b, w, n, bstep) in [
                (1usize, 1usize, 6usize, 4usize, 1usize),
                (1, 7, 6, 4, 1),
                (3, 5, 6, 5, 1),
                (3, 5, 9, 8, 2),
                (2, 4, 3, 1, 1),
                (2, 3, 11, 9, 1),
            ] {
                let bn = b.div_ceil(bstep);
                let src: Vec<u8> = (0..a * b * w * e).map(|i| (i * 37 % 251) as u8).collect();
                let shape = [a, bn, n];
                let dst_strides = contiguous_strides(&shape);
                let src_strides = [(b * w) as isize, (bstep * w) as isize, 1];
                let layout = Strided::new(&shape, [&dst_strides, &src_strides]).unwrap();
                let mut got = vec![0u8; a * bn * n * e];
                copy_strided(&layout, e, &mut got, &src, 1);
                let mut want = Vec::new();
                for i in 0..a {
                    for j in 0..bn {
                        let at = (i * b * w + j * bstep * w + 1) * e;
                        want.extend_from_slice(&src[at..at + n * e]);
                    }
                }
                assert_eq!(got, want, "e {e} {a}x{b}x{w} n {n} step {bstep}");
            }
        }
    }

    fn transpose_u32(shape: &[usize], perm: &[usize]) -> Vec<u32> {
        let n: usize = shape.iter().product();
        let src: Vec<u32> = (0..n as u32).collect();
        let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let cs = contiguous_strides(shape);
        let src_strides: Vec<isize> = perm.iter().map(|&p| cs[p]).collect();
        let dst_strides = contiguous_strides(&out_shape);
        let l = Strided::new(&out_shape, [&dst_strides, &src_strides]).unwrap();
        let mut dst = vec![0u8; n * 4];
        let src_bytes: Vec<u8> = src.iter().flat_map(|v| v.to_le_bytes()).collect();
        copy_strided(&l, 4, &mut dst, &src_bytes, 0);
        dst.chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn blocked_transpose_matches_naive() {
        let (n, c, h, w) = (2, 5, 7, 19);
        let got = transpose_u32(&[n, c, h, w], &[0, 2, 3, 1]);
        for b in 0..n {
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        let want = ((b * c + ch) * h + y) * w + x;
                        assert_eq!(got[((b * h + y) * w + x) * c + ch] as usize, want);
                    }
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` without a library call for the short rows of small planes
/// (a `memcpy` call per 11-element row costs more than the copy): eight elements at a time.
#[inline(always)]
pub fn copy_short<T: Copy>(dst: &mut [T], src: &[T]) {
    if dst.len() > 64 {
        return dst.copy_from_slice(src);
    }
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let s: &[T; 8] = s.try_into().expect("chunk of 8");
        let d: &mut [T; 8] = d.try_into().expect("chunk of 8");
        *d = *s;
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// `dst[c·rows + r] = src[r·cols + c]`: a row-major `rows × cols` matrix transposed, by 8 × 8
/// tiles (in AVX registers where the CPU has AVX2), the edges element by element.
pub fn transpose_f32(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    use crate::conv::depthwise::{tile_of, transpose8, TILE};
    let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
    #[inline(always)]
    fn body<const AVX: bool>(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
        let (r8, c8) = (rows - rows % TILE, cols - cols % TILE);
        for r0 in (0..r8).step_by(TILE) {
            for c0 in (0..c8).step_by(TILE) {
                // Rows c0..c0 + 8 of `dst`, each from column r0, as disjoint slices.
                let mut d = dst[c0 * rows..(c0 + TILE) * rows].chunks_exact_mut(rows);
                transpose8::<AVX>(
                    tile_of(|i| &src[(r0 + i) * cols + c0..][..TILE]),
                    tile_of(|_| &mut d.next().expect("a row of dst")[r0..r0 + TILE]),
                );
            }
            for c in c8..cols {
                for r in r0..r0 + TILE {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
        for r in r8..rows {
            for (c, &v) in src[r * cols..(r + 1) * cols].iter().enumerate() {
                dst[c * rows + r] = v;
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
            body::<true>(src, rows, cols, dst)
        }
        if matches!(
            crate::gemm::Kernel::detect(),
            crate::gemm::Kernel::Avx512 | crate::gemm::Kernel::Avx2
        ) {
            // SAFETY: the CPU runs AVX2 (detected).
            return unsafe { avx(src, rows, cols, dst) };
        }
    }
    body::<false>(src, rows, cols, dst)
}

#[cfg(test)]
mod transpose_tests {
    use super::transpose_f32;

    #[test]
    fn transposes_every_shape() {
        for (rows, cols) in [
            (1, 1),
            (8, 8),
            (49, 192),
            (7, 9),
            (16, 3),
            (3, 16),
            (49, 1152),
        ] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut dst = vec![f32::NAN; rows * cols + 1];
            transpose_f32(&src, rows, cols, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        dst[c * rows + r],
                        src[r * cols + c],
                        "{rows}x{cols} ({r}, {c})"
                    );
                }
            }
            assert!(dst[rows * cols].is_nan());
        }
    }
}
