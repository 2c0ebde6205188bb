//! The blocked product (Goto/BLIS loop nest) and its split over the rayon pool.
//!
//! For each `NC`-wide block of columns and `KC`-deep block of depth, pack that B block once
//! (or, where the micro-kernel family can, read a row-major B where it lies: `direct_b`);
//! for each `MC`-tall block of rows, pack (or find pre-packed) the A block; then run the
//! micro-kernel over every `MR × NR` tile, B strip outermost so it stays in L1 while the A
//! block streams from L2. The last depth block's tiles are stored through the epilogue: a
//! row bias and clamp in registers (`RowEpi`), or a caller's function over each finished
//! block (`TileFn`). With several threads the output is cut into disjoint blocks along its
//! longer side, one per thread, each packing what it reads into its own workspace slice.

use super::isa::{DirectFn, Fused, Isa, MAX_TILE};
use super::pack::{pack_a, pack_b, Workspace};

/// A bounds-checked strided input view as raw parts: element (i, j) at `ptr[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Raw {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

/// A bounds-checked row-major output view as raw parts.
#[derive(Clone, Copy)]
pub(crate) struct Out {
    pub ptr: *mut f32,
    pub ldc: usize,
}

// SAFETY: `Raw` only reads through its pointer, from data borrowed immutably for the whole
// call; sharing it across the call's worker threads is like sharing the `&[f32]`.
unsafe impl Send for Raw {}
// SAFETY: as above.
unsafe impl Sync for Raw {}
// SAFETY: `Out` points into a `&mut [f32]` held for the whole call; tasks sharing it write
// disjoint elements (each function that forks says which).
unsafe impl Send for Out {}
// SAFETY: as above.
unsafe impl Sync for Out {}

/// The left operand: a strided view, or panels pre-packed by [`super::pack_a`].
#[derive(Clone, Copy)]
pub(crate) enum Lhs<'a> {
    Strided(Raw),
    Packed(&'a [f32]),
}

/// A block epilogue: `f(row, col, seg)` with `seg` the finished output elements of row `row`,
/// columns `col..col + seg.len()`; every element is passed once, right after the cache block
/// that holds it is finished (while it is still in L2).
pub type TileFn<'a> = &'a (dyn Fn(usize, usize, &mut [f32]) + Sync);

/// A bias per output row and an optional clamp, applied by the micro-kernels as they store
/// the last depth block: `c + bias[i]`, then `max` with `lo` and `min` with `hi` (a NaN gives
/// `lo`); without a clamp a zero bias leaves `c` untouched. No second pass over the output.
#[derive(Clone, Copy, Debug)]
pub struct RowEpi<'a> {
    /// One per row of the product (at least `m`), or none.
    pub bias: Option<&'a [f32]>,
    /// `(lo, hi)`: ReLU is `(0, ∞)`, ReLU6 `(0, 6)`.
    pub clamp: Option<(f32, f32)>,
}

impl RowEpi<'_> {
    /// The epilogue of the tile whose first row is `row`.
    fn fused(&self, row: usize) -> Fused {
        Fused {
            // SAFETY (of the later reads): the public entry points check `bias.len() >= m`.
            bias: self.bias.map_or(std::ptr::null(), |b| b[row..].as_ptr()),
            clamp: self.clamp,
        }
    }

    /// Row `row`'s finished elements `seg`, outside the micro-kernels (matrix-vector paths).
    pub(crate) fn apply(&self, row: usize, seg: &mut [f32]) {
        let b = self.bias.map_or(0.0, |b| b[row]);
        seg.iter_mut()
            .for_each(|v| *v = Fused::one(*v, b, self.clamp));
    }
}

/// What a product does to its output as it finishes it.
#[derive(Clone, Copy)]
pub enum Epi<'a> {
    /// A function over each finished run of a row, while the block is in L2.
    Tile(TileFn<'a>),
    /// Bias and clamp in the micro-kernels' registers, before the stores.
    Rows(RowEpi<'a>),
}

/// The right operand: a strided view, or panels pre-packed by [`super::pack_b`].
#[derive(Clone, Copy)]
pub(crate) enum Rhs<'a> {
    Strided(Raw),
    Packed(&'a [f32]),
}

/// Runs `f(0) .. f(tasks - 1)`, in parallel on the current rayon pool when `tasks > 1`.
/// `rayon::join` runs on stack-allocated jobs: no heap allocation.
pub(crate) fn par_for(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    fn go(lo: usize, hi: usize, f: &(dyn Fn(usize) + Sync)) {
        if hi - lo == 1 {
            f(lo);
        } else {
            let mid = lo + (hi - lo) / 2;
            rayon::join(|| go(lo, mid, f), || go(mid, hi, f));
        }
    }
    if tasks > 0 {
        go(0, tasks, f);
    }
}

/// `c = alpha·c` over `m × n` (zeros when `alpha == 0`): the product with `k == 0`.
pub(crate) fn scale(m: usize, n: usize, out: Out, alpha: f32) {
    for i in 0..m {
        // SAFETY: row i of the bounds-checked output.
        let row = unsafe { std::slice::from_raw_parts_mut(out.ptr.add(i * out.ldc), n) };
        if alpha == 0.0 {
            row.fill(0.0);
        } else {
            row.iter_mut().for_each(|v| *v *= alpha);
        }
    }
}

/// The blocked product over the whole `m × n` output. All views were bounds-checked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    isa: &Isa,
    m: usize,
    n: usize,
    k: usize,
    a: Lhs,
    b: Rhs,
    out: Out,
    alpha: f32,
    beta: f32,
    par: bool,
    threads: usize,
    epi: Option<Epi>,
    ws: Option<&mut [f32]>,
) {
    let threads = if par { threads } else { 1 };
    let split_n = split_columns(isa, m, n, &a, &b, threads);
    let (len, unit) = if split_n { (n, isa.nr) } else { (m, isa.mr) };
    // Cut by columns with A packed, no task packs what another does: cut finer than the
    // threads, so that a thread that finishes early (a slower core, a cache that was cold)
    // takes over the other's remaining blocks instead of waiting for them.
    let parts = if split_n && threads > 1 && matches!(a, Lhs::Packed(_)) {
        threads * SPLIT_FINER
    } else {
        threads
    };
    let chunk = len.div_ceil(parts).next_multiple_of(unit);
    let tasks = len.div_ceil(chunk);
    let (tm, tn) = if split_n {
        (m, chunk.min(n))
    } else {
        (chunk.min(m), n)
    };
    let kc = isa.kc.min(k);
    let b_len = match b {
        Rhs::Strided(_) => kc * tn.min(isa.nc).next_multiple_of(isa.nr),
        Rhs::Packed(_) => 0,
    };
    let a_len = match a {
        Lhs::Strided(_) => super::pack::a_block_len(isa, tm, k),
        Lhs::Packed(_) => 0,
    };
    let per_task = (b_len + a_len).next_multiple_of(16);
    let mut pooled = None;
    let buf = match ws {
        // Both operands packed: nothing to pack into.
        _ if per_task == 0 => &mut [][..],
        Some(buf) => {
            let off = super::pack::align_offset(buf);
            assert!(
                buf.len() >= off + per_task * tasks,
                "sgemm: workspace too small"
            );
            &mut buf[off..]
        }
        None => pooled.insert(Workspace::take(per_task * tasks)).aligned(),
    };
    let ws = Out {
        ptr: buf.as_mut_ptr(),
        ldc: per_task,
    };
    par_for(tasks, &|t| {
        // Whole-struct captures: the structs are Sync, their raw-pointer fields are not.
        let (ws, b, out) = (&ws, &b, &out);
        let lo = t * chunk;
        let hi = ((t + 1) * chunk).min(len);
        let (rows, cols) = if split_n {
            ((0, m), (lo, hi))
        } else {
            ((lo, hi), (0, n))
        };
        // SAFETY: task t owns workspace floats [t·per_task, (t+1)·per_task) and output
        // block rows × cols; blocks of different tasks are disjoint.
        unsafe {
            let bp = ws.ptr.add(t * ws.ldc);
            block(
                isa,
                rows,
                cols,
                0,
                k,
                a,
                m,
                *b,
                n,
                *out,
                alpha,
                beta,
                bp,
                bp.add(b_len),
                epi,
            );
        }
    });
}

/// Rows `rows` of `c = a · b`, both operands packed (`a` all `m` rows), on the calling thread.
///
/// # Safety
/// `rows.0` is a multiple of `isa.mr`; `a` and `b` hold the packed `m × k` and `k × n`
/// operands; `out` is valid for rows `rows` of `n` columns and no other thread touches them.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn packed_rows(
    isa: &Isa,
    rows: (usize, usize),
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    out: Out,
) {
    let null = std::ptr::null_mut();
    // SAFETY: the caller's contract; both operands packed, so nothing is packed into the
    // (null) buffers.
    unsafe {
        block(
            isa,
            rows,
            (0, n),
            0,
            k,
            Lhs::Packed(a),
            m,
            Rhs::Packed(b),
            n,
            out,
            0.0,
            1.0,
            null,
            null,
            None,
        )
    }
}

/// Columns `cols` of `c = alpha·c + beta·(a · b)` for the whole `m × n` product, `b` packed
/// whole, on the calling thread: `a` is packed into `ap`, and output column `j` is stored at
/// `out.ptr[i·ldc + j − cols.0]`.
///
/// # Safety
/// `a` is bounds-checked for `m × k`; `b` holds the packed `k × n` operand; `cols.0` is a
/// multiple of `isa.nr` and `cols.1 ≤ n`; `ap` holds `round_up(min(m, MC), MR) · min(k, KC)`
/// floats; `out` is valid for `m` rows of `cols.1 − cols.0` columns and no other thread
/// touches them.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn packed_b_cols(
    isa: &Isa,
    m: usize,
    n: usize,
    k: usize,
    a: Raw,
    b: &[f32],
    cols: (usize, usize),
    out: Out,
    alpha: f32,
    beta: f32,
    ap: *mut f32,
    epi: Option<Epi>,
) {
    // SAFETY: the caller's contract; B is packed, so nothing is packed into its (null) buffer.
    unsafe {
        block(
            isa,
            (0, m),
            cols,
            cols.0,
            k,
            Lhs::Strided(a),
            m,
            Rhs::Packed(b),
            n,
            out,
            alpha,
            beta,
            std::ptr::null_mut(),
            ap,
            epi,
        )
    }
}

/// One full-width strip of B read in place: every row tile of the block, through the stack
/// tile where the block's last rows leave it short.
///
/// # Safety
/// As [`macro_kernel`], with `b` the strip's first row (`kc` rows `ldb` apart, `NR` floats
/// each) and `c` the strip's first output column.
#[allow(clippy::too_many_arguments)]
unsafe fn direct_strip(
    isa: &Isa,
    f: DirectFn,
    mc: usize,
    kc: usize,
    (ap, b, ldb): (*const f32, *const f32, usize),
    (c, ldc, alpha, beta): (*mut f32, usize, f32, f32),
    rows_epi: Option<(RowEpi, usize)>,
    tile: &mut [f32; MAX_TILE],
) {
    let (mr, nr) = (isa.mr, isa.nr);
    for ir in (0..mc).step_by(mr) {
        let h = mr.min(mc - ir);
        let fx = rows_epi.map(|(r, ic)| r.fused(ic + ir));
        // SAFETY: strip ir/MR of the packed A block; the tile at row ir is inside `c` when
        // full, and the stack tile holds MR × NR floats otherwise.
        unsafe {
            let (as_, ct) = (ap.add(ir * kc), c.add(ir * ldc));
            if h == mr {
                f(kc, as_, b, ldb, ct, ldc, alpha, beta, fx.as_ref());
                continue;
            }
            f(kc, as_, b, ldb, tile.as_mut_ptr(), nr, 0.0, 1.0, None);
            store_edge(tile, nr, (h, nr), ct, ldc, alpha, beta, fx.as_ref());
        }
    }
}

/// Column tasks per thread when a product with packed weights (A) is cut by columns.
const SPLIT_FINER: usize = 4;

/// Multiply-adds one packed float costs, for [`split_columns`].
const PACK_COST: usize = 4;

/// Whether to cut the output between threads by columns (else by rows), in whole micro-tiles:
/// the cut whose largest task (its padded micro-tiles plus what it packs) is least. A product
/// 64 × 72 on two threads cut by columns of 32 gives one thread 64 columns and the other 8; by
/// rows it gives each 32. Near-ties go to the longer side.
fn split_columns(isa: &Isa, m: usize, n: usize, a: &Lhs, b: &Rhs, threads: usize) -> bool {
    let (mp, np) = (m.next_multiple_of(isa.mr), n.next_multiple_of(isa.nr));
    let (pack_a, pack_b) = (
        matches!(a, Lhs::Strided(_)) as usize,
        matches!(b, Rhs::Strided(_)) as usize,
    );
    let cn = n.div_ceil(isa.nr).div_ceil(threads) * isa.nr;
    let cm = m.div_ceil(isa.mr).div_ceil(threads) * isa.mr;
    // Each task packs its share of one operand and all of the other.
    let by_cols = cn * mp + PACK_COST * (cn * pack_b + mp * pack_a);
    let by_rows = cm * np + PACK_COST * (np * pack_b + cm * pack_a);
    let longer = n >= m;
    if longer {
        by_cols * 20 <= by_rows * 21
    } else {
        by_cols * 21 < by_rows * 20
    }
}

/// The loop nest over output rows `rows.0..rows.1` and columns `cols.0..cols.1`; output
/// column `j` is stored at `out.ptr[i·ldc + j − col0]` (`col0 ≤ cols.0`).
///
/// # Safety
/// The views are bounds-checked for the full product (`m` rows of A, `n` columns of B); `bp`
/// and `ap` hold the packed B and A blocks sized as in [`gemm`]; no other thread touches this
/// output block.
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    isa: &Isa,
    rows: (usize, usize),
    cols: (usize, usize),
    col0: usize,
    k: usize,
    a: Lhs,
    m: usize,
    b: Rhs,
    n: usize,
    out: Out,
    alpha: f32,
    beta: f32,
    bp: *mut f32,
    ap: *mut f32,
    epi: Option<Epi>,
) {
    let mp = m.next_multiple_of(isa.mr);
    let np = n.next_multiple_of(isa.nr);
    let direct = match b {
        Rhs::Strided(b) => direct_b(isa, b),
        Rhs::Packed(_) => None,
    };
    for jc in (cols.0..cols.1).step_by(isa.nc) {
        let nc = isa.nc.min(cols.1 - jc);
        for pc in (0..k).step_by(isa.kc) {
            let kc = isa.kc.min(k - pc);
            // Later depth blocks accumulate onto the first.
            let alpha = if pc == 0 { alpha } else { 1.0 };
            let bpan = match b {
                Rhs::Strided(b) => match direct {
                    Some(f) => BSrc::Direct {
                        f,
                        // SAFETY: row pc, column jc of the bounds-checked `b`.
                        ptr: unsafe { b.ptr.add(pc * b.rs + jc) },
                        ldb: b.rs,
                        raw: b,
                        pc,
                        jc,
                        spare: bp,
                    },
                    None => {
                        // SAFETY: in bounds of `b`, and `bp` is sized for kc × round_up(nc, NR).
                        unsafe { pack_b(isa.nr, b, pc, kc, jc, nc, bp) };
                        BSrc::Packed(bp)
                    }
                },
                // SAFETY: `jc` is a multiple of NR (task cuts and NC are), so this is the
                // start of strip jc/NR of depth block pc, laid out by `pack_b_full`.
                Rhs::Packed(p) => BSrc::Packed(unsafe { p.as_ptr().add(pc * np + jc * kc) }),
            };
            for ic in (rows.0..rows.1).step_by(isa.mc) {
                let mc = isa.mc.min(rows.1 - ic);
                let apan = match a {
                    Lhs::Strided(a) => {
                        // SAFETY: in bounds of `a`; `ap` is sized for round_up(mc, MR) × kc.
                        unsafe { pack_a(isa.mr, a, ic, mc, pc, kc, ap) };
                        ap as *const f32
                    }
                    // SAFETY: `ic` is a multiple of MR (task cuts and MC are), so this is the
                    // start of strip ic/MR of depth block pc, laid out by `pack_a_full`.
                    Lhs::Packed(p) => unsafe { p.as_ptr().add(pc * mp + ic * kc) },
                };
                let last = pc + kc >= k;
                // Bias and clamp as the last depth block is stored.
                let rows_epi = match epi {
                    Some(Epi::Rows(r)) if last => Some((r, ic)),
                    _ => None,
                };
                // SAFETY: the output block rows ic..ic+mc, columns jc..jc+nc is ours.
                unsafe {
                    let c = out.ptr.add(ic * out.ldc + jc - col0);
                    let ldc = out.ldc;
                    macro_kernel(isa, mc, nc, kc, apan, bpan, c, ldc, alpha, beta, rows_epi);
                    // The epilogue runs on the block once its last depth block is in, while
                    // the block is still in L2.
                    if let Some(Epi::Tile(f)) = epi.filter(|_| last) {
                        for i in 0..mc {
                            let row = std::slice::from_raw_parts_mut(c.add(i * out.ldc), nc);
                            f(ic + i, jc, row);
                        }
                    }
                }
            }
        }
    }
}

/// Where the micro-kernels read a block of B: a packed block, or (see [`direct_b`]) the
/// row-major operand itself.
#[derive(Clone, Copy)]
enum BSrc {
    Packed(*const f32),
    /// Row `pc`, column `jc` of `raw` at `ptr`, rows `ldb` apart. A strip narrower than `NR`
    /// (the operand's last columns) is packed into `spare` (sized for a packed block) and read
    /// from there.
    Direct {
        f: DirectFn,
        ptr: *const f32,
        ldb: usize,
        raw: Raw,
        pc: usize,
        jc: usize,
        spare: *mut f32,
    },
}

/// Whether the micro-kernel reads a row-major B where it lies instead of packing it first.
/// Packing copies every element of B once per product (read, written, read again), and where
/// the output has few rows — a pointwise convolution to 16–112 channels — that copy costs about
/// as much as the products. Read in place, each `NR`-wide strip of B's rows is loaded once per
/// row tile as a packed strip is, from L1 or L2. Measured on AVX-512 (BENCHMARKS.md): a gain
/// wherever the rows start at 8 or more distinct offsets modulo 4 KiB (L1's set span); a loss
/// where they start at fewer and so crowd a few sets: 4 offsets (EfficientNet's 112 × 112
/// planes, rows 50,176 bytes apart) were 12–29 % slower in the model, 1 (a 1024-wide B) 2 %.
pub(crate) fn direct_b(isa: &Isa, b: Raw) -> Option<DirectFn> {
    if b.cs != 1 {
        return None;
    }
    // Rows `rs` floats apart start at this many distinct offsets modulo 4 KiB (L1's set span).
    let offsets = 4096 / gcd(b.rs * 4 % 4096, 4096);
    isa.direct.filter(|_| offsets >= 8)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Every `MR × NR` tile of an `mc × nc` output block; edge tiles go through a stack tile, and
/// those at most `MR / 2` high or `NR / 2` wide run the half-height or half-width kernel where
/// there is one.
///
/// # Safety
/// `ap` holds the packed A block and `bsrc` the packed B block or the operand's rows (see
/// [`BSrc`]); `c` is valid for `mc × nc` with row stride `ldc`.
#[allow(clippy::too_many_arguments)]
unsafe fn macro_kernel(
    isa: &Isa,
    mc: usize,
    nc: usize,
    kc: usize,
    ap: *const f32,
    bsrc: BSrc,
    c: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
    rows_epi: Option<(RowEpi, usize)>,
) {
    let (mr, nr) = (isa.mr, isa.nr);
    let mut tile = [0.0f32; MAX_TILE];
    for jr in (0..nc).step_by(nr) {
        let w = nr.min(nc - jr);
        let bs = match bsrc {
            // SAFETY: strip jr/NR of the packed B block.
            BSrc::Packed(bp) => unsafe { bp.add(jr * kc) },
            BSrc::Direct { f, ptr, ldb, .. } if w == nr => {
                // SAFETY: rows 0..kc of B from column jc + jr hold NR floats each (w == NR).
                unsafe {
                    let (b, c) = (ptr.add(jr), c.add(jr));
                    let (ab, cs) = ((ap, b, ldb), (c, ldc, alpha, beta));
                    direct_strip(isa, f, mc, kc, ab, cs, rows_epi, &mut tile)
                };
                continue;
            }
            BSrc::Direct {
                raw, pc, jc, spare, ..
            } => {
                // SAFETY: columns jc + jr .. jc + jr + w, depths pc .. pc + kc are in bounds
                // of `raw`; `spare` holds a packed block, so at least kc·NR floats.
                unsafe { pack_b(nr, raw, pc, kc, jc + jr, w, spare) };
                spare as *const f32
            }
        };
        for ir in (0..mc).step_by(mr) {
            let h = mr.min(mc - ir);
            // SAFETY: strip ir/MR of the packed A block; the tile at (ir, jr) is inside `c`
            // when full, and the stack tile holds MR × NR <= MAX_TILE floats otherwise.
            unsafe {
                let as_ = ap.add(ir * kc);
                let ct = c.add(ir * ldc + jr);
                // Tiles at most half a panel high or wide take the half-height or half-width
                // kernel: (kernel, the rows and columns it computes).
                let (micro, th, tw) = match (isa.short, isa.half) {
                    (Some(short), _) if 2 * h <= mr => (short, mr / 2, nr),
                    (_, Some(half)) if 2 * w <= nr => (half, mr, nr / 2),
                    _ => (isa.micro, mr, nr),
                };
                let fx = rows_epi.map(|(r, ic)| r.fused(ic + ir));
                if (h, w) == (th, tw) {
                    micro(kc, as_, bs, ct, ldc, alpha, beta, fx.as_ref());
                } else {
                    micro(kc, as_, bs, tile.as_mut_ptr(), nr, 0.0, 1.0, None);
                    store_edge(&tile, nr, (h, w), ct, ldc, alpha, beta, fx.as_ref());
                }
            }
        }
    }
}

/// The first `h × w` elements of a stack tile (rows `nr` apart) into the output at `ct`:
/// `alpha·c + beta·t`, as the micro-kernels store, then the row epilogue if any.
///
/// # Safety
/// `ct` is valid for `h × w` with row stride `ldc`; `fx`'s bias holds `h` rows.
#[allow(clippy::too_many_arguments)]
unsafe fn store_edge(
    tile: &[f32; MAX_TILE],
    nr: usize,
    (h, w): (usize, usize),
    ct: *mut f32,
    ldc: usize,
    alpha: f32,
    beta: f32,
    fx: Option<&Fused>,
) {
    for i in 0..h {
        // SAFETY: the caller's contract.
        let row = unsafe { std::slice::from_raw_parts_mut(ct.add(i * ldc), w) };
        for (o, v) in row.iter_mut().zip(&tile[i * nr..i * nr + w]) {
            *o = if alpha == 0.0 {
                beta * v
            } else {
                alpha * *o + beta * v
            };
        }
    }
    if let Some(f) = fx {
        // SAFETY: the caller's contract.
        unsafe { f.apply(ct, ldc, h, w) };
    }
}

/// `c = alpha·c + beta·(a · b)` for a single row `a` (`1 × k`, element p at `a.ptr[p·a.cs]`)
/// and a B packed whole by `pack_b_full`: one `strip` body per `NR`-wide strip and depth block, the
/// strips split over the pool when `par`.
///
/// # Safety
/// `a` holds `k` elements; `bp` is the packed `k × n` B for this ISA; `c` is valid for `n`
/// elements.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn packed_b_row(
    isa: &Isa,
    n: usize,
    k: usize,
    a: Raw,
    bp: &[f32],
    out: Out,
    alpha: f32,
    beta: f32,
    par: bool,
    threads: usize,
) {
    let nr = isa.nr;
    let np = n.next_multiple_of(nr);
    let strips = np / nr;
    let tasks = if par { threads.min(strips) } else { 1 };
    let per = strips.div_ceil(tasks.max(1));
    par_for(tasks, &|t| {
        let (a, out) = (&a, &out);
        let cols = (t * per * nr).min(n)..((t + 1) * per * nr).min(n);
        if cols.is_empty() {
            return;
        }
        let out = Out {
            // SAFETY: column cols.start < n of the bounds-checked output row.
            ptr: unsafe { out.ptr.add(cols.start) },
            ldc: out.ldc,
        };
        // SAFETY: the caller's contract; task t owns output columns `cols`.
        unsafe { strip_run(isa, n, k, *a, bp, out, cols, alpha, beta) }
    });
}

/// Columns `cols` (`cols.start` a multiple of `nr`) of the one-row product `out = alpha·out +
/// beta·(a · b)`, `b` packed (`n` columns, depth `k`), on the calling thread, strip by strip;
/// column `j` lands at `out.ptr + j − cols.start`.
///
/// # Safety
/// `bp` holds `b`'s panels for this ISA and shape; `a` is readable for `k` elements at stride
/// `a.cs`; `cols.end ≤ n`; `cols.len()` floats are writable at `out.ptr` and no other thread
/// touches them.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn strip_run(
    isa: &Isa,
    n: usize,
    k: usize,
    a: Raw,
    bp: &[f32],
    out: Out,
    cols: std::ops::Range<usize>,
    alpha: f32,
    beta: f32,
) {
    let nr = isa.nr;
    let np = n.next_multiple_of(nr);
    debug_assert!(cols.start.is_multiple_of(nr) && cols.end <= n);
    for j in cols.clone().step_by(nr) {
        let w = nr.min(cols.end - j);
        for p0 in (0..k).step_by(isa.kc) {
            let kc = isa.kc.min(k - p0);
            let alpha = if p0 == 0 { alpha } else { 1.0 };
            // SAFETY: the strip at column j of depth block p0 lies at p0·np + j·kc in `bp`
            // (see `pack_b_full`), `kc·NR` floats; row elements p0..p0+kc of `a`; output
            // columns j..j+w, the caller's.
            unsafe {
                (isa.strip)(
                    w,
                    kc,
                    a.ptr.add(p0 * a.cs),
                    a.cs,
                    bp.as_ptr().add(p0 * np + j * kc),
                    nr,
                    out.ptr.add(j - cols.start),
                    alpha,
                    beta,
                )
            }
        }
    }
}
