//! Single-precision matrix multiply: our own Goto/BLIS-style blocked SGEMM, with strides so
//! callers can express transposes without copying.
//!
//! Layout of the module:
//! - `mod.rs` (this file): the public API — [`MatRef`], [`sgemm`], [`PackedA`], [`pack_a`],
//!   [`sgemm_packed`] — argument checks and the choice between the paths below.
//! - `isa.rs`: which micro-kernel family the CPU runs ([`Kernel`]), detected once and cached.
//! - `driver.rs`: the blocked loops (pack B panel, pack A panel, micro-kernel over tiles) and the
//!   split of the output over the rayon pool.
//! - `pack.rs`: panel packing and the workspace pool that makes steady-state calls allocation-free.
//! - `gemv.rs`: the matrix-vector paths (m == 1 or n == 1), portable bodies compiled per ISA.
//! - `portable.rs`, `x86.rs`, `neon.rs`: the micro-kernels.
//!
//! Contract shared by every path: `c = alpha·c + beta·(a·b)`; `alpha == 0` overwrites c without
//! reading it. Nothing here allocates once the workspace pool holds a buffer big enough for the
//! call's shape (the first call of a shape may allocate).

mod driver;
mod gemv;
mod isa;
#[cfg(target_arch = "aarch64")]
mod neon;
mod pack;
mod portable;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

pub(crate) use driver::par_for;
pub use driver::{Epi, RowEpi, TileFn};
pub use isa::Kernel;
pub use pack::reserve_workspaces;

/// A row/column-strided matrix view: element (i, j) is at `ptr[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: isize,
    pub cs: isize,
}

impl<'a> MatRef<'a> {
    /// A dense row-major matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: cols as isize,
            cs: 1,
        }
    }
    /// The transpose of a dense row-major `cols × rows` matrix, without copying.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: 1,
            cs: rows as isize,
        }
    }
    fn check(&self) {
        if self.rows == 0 || self.cols == 0 {
            return;
        }
        let last = (self.rows as isize - 1) * self.rs + (self.cols as isize - 1) * self.cs;
        assert!(
            self.rs >= 0 && self.cs >= 0 && (last as usize) < self.data.len(),
            "matrix view out of bounds"
        );
    }
    /// The view as raw parts, for the packing and gemv code. Only call after `check`.
    fn raw(&self) -> driver::Raw {
        driver::Raw {
            ptr: self.data.as_ptr(),
            rs: self.rs as usize,
            cs: self.cs as usize,
        }
    }
}

/// Below this many multiply-adds (m·n·k) a call runs on the caller's thread even when
/// `threads > 1`: splitting costs more than it saves.
const PARALLEL_MIN_WORK: usize = 1 << 18;

/// `c = alpha·c + beta·(a · b)` where c is dense row-major `m × n` with row stride `ldc`.
/// `alpha = 0` overwrites c (its prior contents are ignored, NaNs included).
/// `threads > 1` lets large products split the output over the current rayon pool.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
    threads: usize,
) {
    sgemm_with(
        Kernel::detect(),
        m,
        n,
        k,
        a,
        b,
        c,
        ldc,
        alpha,
        beta,
        threads,
    )
}

/// [`sgemm`] with the micro-kernel family forced; for tests and benchmarks.
/// Panics if the CPU cannot run `kernel`.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn sgemm_with(
    kernel: Kernel,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef,
    b: MatRef,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
    threads: usize,
) {
    assert!(
        a.rows == m && a.cols == k && b.rows == k && b.cols == n,
        "sgemm dimensions disagree"
    );
    a.check();
    b.check();
    check_c(m, n, c, ldc);
    let isa = kernel.isa();
    if m == 0 || n == 0 {
        return;
    }
    let par = threads > 1 && m * n * k >= PARALLEL_MIN_WORK;
    let out = driver::Out {
        ptr: c.as_mut_ptr(),
        ldc,
    };
    let (ar, br) = (a.raw(), b.raw());
    if k == 0 {
        driver::scale(m, n, out, alpha);
    } else if !gemv::try_gemv(isa, m, n, k, ar, br, out, alpha, beta, par, threads) {
        driver::gemm(
            isa,
            m,
            n,
            k,
            driver::Lhs::Strided(ar),
            driver::Rhs::Strided(br),
            out,
            alpha,
            beta,
            par,
            threads,
            None,
            None,
        );
    }
}

fn check_c(m: usize, n: usize, c: &[f32], ldc: usize) {
    assert!(
        m == 0 || n == 0 || ((m - 1) * ldc + n <= c.len() && (m == 1 || ldc >= n)),
        "sgemm output out of bounds"
    );
}

/// Packed panels of a constant operand, starting on a 64-byte boundary.
#[derive(Clone, Debug)]
struct Panels {
    /// Padded so that `data[offset..]` starts on a 64-byte boundary.
    data: Vec<f32>,
    offset: usize,
}

impl Panels {
    /// `len` floats, zeroed, then filled by `pack` (skipped when `len` is 0).
    fn new(len: usize, pack: impl FnOnce(&mut [f32])) -> Panels {
        let mut data = vec![0.0f32; len + pack::ALIGN_F32];
        let offset = pack::align_offset(&data);
        if len > 0 {
            pack(&mut data[offset..offset + len]);
        }
        Panels { data, offset }
    }
    fn get(&self) -> &[f32] {
        &self.data[self.offset..]
    }
}

/// A constant left operand packed once into the micro-kernel's panel layout, for
/// [`sgemm_packed`]; convolution and Gemm weights are the intended use.
#[derive(Clone, Debug)]
pub struct PackedA {
    kernel: Kernel,
    m: usize,
    k: usize,
    data: Panels,
}

impl PackedA {
    pub fn rows(&self) -> usize {
        self.m
    }
    pub fn cols(&self) -> usize {
        self.k
    }
    /// Rows per packed strip: a split of the rows between threads starts each part at a
    /// multiple of this.
    pub fn mr(&self) -> usize {
        self.kernel.isa().mr
    }
    fn panels(&self) -> &[f32] {
        self.data.get()
    }
}

/// Packs the `m × k` matrix `a` for [`sgemm_packed`] with the CPU's micro-kernel.
pub fn pack_a(a: MatRef, m: usize, k: usize) -> PackedA {
    pack_a_with(Kernel::detect(), a, m, k)
}

/// [`pack_a`] for a forced micro-kernel family; for tests and benchmarks.
#[doc(hidden)]
pub fn pack_a_with(kernel: Kernel, a: MatRef, m: usize, k: usize) -> PackedA {
    assert!(a.rows == m && a.cols == k, "pack_a dimensions disagree");
    a.check();
    let isa = kernel.isa();
    let data = Panels::new(pack::packed_a_len(isa, m, k), |dst| {
        pack::pack_a_full(isa, a.raw(), m, k, dst)
    });
    PackedA { kernel, m, k, data }
}

/// [`sgemm`] with a pre-packed left operand: `c = alpha·c + beta·(a · b)`, `a` being `m × k`
/// as packed and `b` `k × n`.
pub fn sgemm_packed(
    a: &PackedA,
    b: MatRef,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
    threads: usize,
) {
    sgemm_packed_epi(a, b, c, ldc, alpha, beta, threads, None)
}

/// [`sgemm_packed`] with an epilogue applied to each output element once as it is finished,
/// instead of in another pass over the output: a function over each finished run of a row
/// (bias, activation, residual; while the block is in L2), or a bias per row and a clamp in
/// the micro-kernels' registers ([`RowEpi`]: its bias holds at least `a.rows()` values).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_packed_epi(
    a: &PackedA,
    b: MatRef,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
    threads: usize,
    epi: Option<Epi>,
) {
    packed_a_product(a, b, c, ldc, alpha, beta, threads, epi, None)
}

/// Floats of workspace [`sgemm_packed_epi_in`] needs for `a` times a right operand of `n`
/// columns.
pub fn rhs_workspace(a: &PackedA, n: usize) -> usize {
    let isa = a.kernel.isa();
    (isa.kc.min(a.k) * n.min(isa.nc).next_multiple_of(isa.nr)).next_multiple_of(16)
        + pack::ALIGN_F32
        + 16
}

/// [`sgemm_packed_epi`] on the calling thread, packing `b` into `ws` (at least
/// [`rhs_workspace`] floats) rather than into a buffer from the shared pool: for callers that
/// run several products at once and must not allocate.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_packed_epi_in(
    a: &PackedA,
    b: MatRef,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
    epi: Option<Epi>,
    ws: &mut [f32],
) {
    packed_a_product(a, b, c, ldc, alpha, beta, 1, epi, Some(ws))
}

#[allow(clippy::too_many_arguments)]
fn packed_a_product(
    a: &PackedA,
    b: MatRef,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
    threads: usize,
    epi: Option<Epi>,
    ws: Option<&mut [f32]>,
) {
    let (m, k, n) = (a.m, a.k, b.cols);
    assert!(b.rows == k, "sgemm_packed dimensions disagree");
    if let Some(Epi::Rows(RowEpi {
        bias: Some(bias), ..
    })) = epi
    {
        assert!(
            bias.len() >= m,
            "sgemm_packed: {} biases for {m} rows",
            bias.len()
        );
    }
    // The matrix-vector and empty-depth paths run the epilogue after the product.
    let after = |c: &mut [f32], i: usize, seg: std::ops::Range<usize>| match epi {
        Some(Epi::Tile(f)) => f(i, seg.start, &mut c[i * ldc..][seg]),
        Some(Epi::Rows(r)) => r.apply(i, &mut c[i * ldc..][seg]),
        None => {}
    };
    b.check();
    check_c(m, n, c, ldc);
    if m == 0 || n == 0 {
        return;
    }
    let isa = a.kernel.isa();
    let par = threads > 1 && m * n * k >= PARALLEL_MIN_WORK;
    let out = driver::Out {
        ptr: c.as_mut_ptr(),
        ldc,
    };
    let br = b.raw();
    if k == 0 {
        driver::scale(m, n, out, alpha);
        for i in 0..m {
            after(c, i, 0..n);
        }
    } else if m == 1 && br.cs == 1 {
        // Row 0 of each MR-tall panel strip: element p sits at p·MR across all KC blocks.
        let x = driver::Raw {
            ptr: a.panels().as_ptr(),
            rs: 0,
            cs: isa.mr,
        };
        gemv::axpy_path(isa, n, k, x, br, out, alpha, beta, par, threads);
        after(c, 0, 0..n);
    } else {
        let lhs = driver::Lhs::Packed(a.panels());
        let rhs = driver::Rhs::Strided(br);
        driver::gemm(
            isa, m, n, k, lhs, rhs, out, alpha, beta, par, threads, epi, ws,
        );
    }
}

/// A constant right operand packed once into the micro-kernel's panel layout, for
/// [`sgemm_packed_b`]: fully connected and recurrent weights are the intended use, where the
/// left operand (activations) changes every call but B does not.
#[derive(Clone, Debug)]
pub struct PackedB {
    kernel: Kernel,
    k: usize,
    n: usize,
    data: Panels,
}

impl PackedB {
    pub fn rows(&self) -> usize {
        self.k
    }
    pub fn cols(&self) -> usize {
        self.n
    }
    /// Columns per panel: column ranges given to [`sgemm_packed_b_cols_in`] start at a
    /// multiple of it.
    pub fn panel_width(&self) -> usize {
        self.kernel.isa().nr
    }
    fn panels(&self) -> &[f32] {
        self.data.get()
    }
}

/// Packs the `k × n` matrix `b` for [`sgemm_packed_b`] with the CPU's micro-kernel.
pub fn pack_b(b: MatRef, k: usize, n: usize) -> PackedB {
    pack_b_with(Kernel::detect(), b, k, n)
}

/// [`pack_b`] for a forced micro-kernel family; for tests and benchmarks.
#[doc(hidden)]
pub fn pack_b_with(kernel: Kernel, b: MatRef, k: usize, n: usize) -> PackedB {
    assert!(b.rows == k && b.cols == n, "pack_b dimensions disagree");
    b.check();
    let isa = kernel.isa();
    let data = Panels::new(pack::packed_b_len(isa, k, n), |dst| {
        pack::pack_b_full(isa, b.raw(), k, n, dst)
    });
    PackedB { kernel, k, n, data }
}

/// [`sgemm`] with a pre-packed right operand: `c = alpha·c + beta·(a · b)`, `a` being `m × k`
/// and `b` `k × n` as packed.
pub fn sgemm_packed_b(
    a: MatRef,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
    threads: usize,
) {
    packed_b_product(a, b, c, ldc, alpha, beta, threads, None)
}

/// Floats of workspace [`sgemm_packed_b_in`] needs for an `m × k` left operand, with the
/// CPU's micro-kernel.
pub fn lhs_workspace(m: usize, k: usize) -> usize {
    let isa = Kernel::detect().isa();
    pack::a_block_len(isa, m, k) + pack::ALIGN_F32 + 16
}

/// [`sgemm_packed_b`] on the calling thread, packing `a` into `ws` (at least
/// [`lhs_workspace`] floats, for `b` packed with the CPU's micro-kernel) rather than into a buffer from the shared pool: for callers
/// that run several products at once and must not allocate.
pub fn sgemm_packed_b_in(
    a: MatRef,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
    ws: &mut [f32],
) {
    packed_b_product(a, b, c, ldc, alpha, beta, 1, Some(ws))
}

/// Columns `cols` of the one-row product `c = alpha·c + beta·(a · b)` (`a` a row of `k`), on
/// the calling thread, by the same strip kernel as [`sgemm_packed_b`]'s one-row path (so the
/// sums are bit-identical to it): for threads that split one matrix-vector product by
/// columns, as the LSTM's recurrent step does. `c` holds those columns only (`c[j −
/// cols.start]`); `cols.start` is a multiple of [`PackedB::panel_width`].
pub fn sgemv_packed_b_cols(
    a: &[f32],
    b: &PackedB,
    cols: std::ops::Range<usize>,
    c: &mut [f32],
    alpha: f32,
    beta: f32,
) {
    let (k, n) = (b.k, b.n);
    let isa = b.kernel.isa();
    assert!(
        a.len() >= k,
        "sgemv_packed_b_cols: a row of {} for depth {k}",
        a.len()
    );
    assert!(
        cols.start <= cols.end && cols.end <= n && cols.start.is_multiple_of(isa.nr),
        "sgemv_packed_b_cols: columns {cols:?} of {n} (panels of {})",
        isa.nr
    );
    assert!(
        c.len() >= cols.len(),
        "sgemv_packed_b_cols: output too short"
    );
    if cols.is_empty() {
        return;
    }
    let out = driver::Out {
        ptr: c.as_mut_ptr(),
        ldc: cols.len(),
    };
    if k == 0 {
        driver::scale(1, cols.len(), out, alpha);
        return;
    }
    let a = driver::Raw {
        ptr: a.as_ptr(),
        rs: k,
        cs: 1,
    };
    // SAFETY: the panels were packed for this ISA and shape; `a` holds `k` floats, `cols`
    // starts on a panel and ends by `n`, and `c` holds `cols.len()` floats (all checked).
    unsafe { driver::strip_run(isa, n, k, a, b.panels(), out, cols, alpha, beta) };
}

/// Columns `cols` of [`sgemm_packed_b`]'s product, on the calling thread, with `epi` run on
/// each finished segment (column indices counted from 0, not from `cols.start`): threads that
/// each take a run of columns and carry on with them. `c` holds those columns only, element
/// `(i, j)` at `c[i·ldc + j − cols.start]`; `cols.start` is a multiple of
/// [`PackedB::panel_width`]; `a` is packed into `ws` (at least [`lhs_workspace`] floats).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_packed_b_cols_in(
    a: MatRef,
    b: &PackedB,
    cols: std::ops::Range<usize>,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
    epi: Option<TileFn>,
    ws: &mut [f32],
) {
    let (m, k, n) = (a.rows, b.k, b.n);
    let isa = b.kernel.isa();
    assert!(a.cols == k, "sgemm_packed_b_cols_in dimensions disagree");
    assert!(
        cols.start <= cols.end && cols.end <= n && cols.start.is_multiple_of(isa.nr),
        "sgemm_packed_b_cols_in: columns {cols:?} of {n} (panels of {})",
        isa.nr
    );
    a.check();
    check_c(m, cols.len(), c, ldc);
    if m == 0 || cols.is_empty() {
        return;
    }
    let out = driver::Out {
        ptr: c.as_mut_ptr(),
        ldc,
    };
    if k == 0 {
        driver::scale(m, cols.len(), out, alpha);
        if let Some(f) = epi {
            for i in 0..m {
                f(i, cols.start, &mut c[i * ldc..i * ldc + cols.len()]);
            }
        }
        return;
    }
    let off = pack::align_offset(ws);
    let need = pack::a_block_len(isa, m, k);
    assert!(
        ws.len() >= off + need,
        "sgemm_packed_b_cols_in: workspace too small"
    );
    // SAFETY: `a` was checked for m × k and `c` for m rows of the columns' width; the
    // panels were packed for this ISA and shape; `cols` was checked against the panels; the
    // workspace holds the A block (asserted above).
    unsafe {
        driver::packed_b_cols(
            isa,
            m,
            n,
            k,
            a.raw(),
            b.panels(),
            (cols.start, cols.end),
            out,
            alpha,
            beta,
            ws.as_mut_ptr().add(off),
            epi.map(Epi::Tile),
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn packed_b_product(
    a: MatRef,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    beta: f32,
    threads: usize,
    ws: Option<&mut [f32]>,
) {
    let (m, k, n) = (a.rows, b.k, b.n);
    assert!(a.cols == k, "sgemm_packed_b dimensions disagree");
    a.check();
    check_c(m, n, c, ldc);
    if m == 0 || n == 0 {
        return;
    }
    let isa = b.kernel.isa();
    let par = threads > 1 && m * n * k >= PARALLEL_MIN_WORK;
    let out = driver::Out {
        ptr: c.as_mut_ptr(),
        ldc,
    };
    let ar = a.raw();
    if k == 0 {
        driver::scale(m, n, out, alpha);
    } else if m == 1 {
        // SAFETY: `a` was checked for 1 × k, `c` for n elements, and the panels were packed
        // for this ISA and shape.
        unsafe { driver::packed_b_row(isa, n, k, ar, b.panels(), out, alpha, beta, par, threads) };
    } else {
        let (lhs, rhs) = (driver::Lhs::Strided(ar), driver::Rhs::Packed(b.panels()));
        driver::gemm(
            isa, m, n, k, lhs, rhs, out, alpha, beta, par, threads, None, ws,
        );
    }
}

/// Where the packed right-operand layout ([`pack_b`], the micro-kernel's B panels) puts each
/// element of a `k × n` matrix, for callers that write their operand straight into panels
/// rather than packing a row-major copy (the Winograd transform does).
#[derive(Clone, Copy, Debug)]
pub struct PanelLayout {
    kernel: Kernel,
    k: usize,
    n: usize,
    nr: usize,
    kc: usize,
}

impl PanelLayout {
    /// The layout of a `k × n` operand for the CPU's micro-kernel.
    pub fn new(k: usize, n: usize) -> PanelLayout {
        let kernel = Kernel::detect();
        let isa = kernel.isa();
        PanelLayout {
            kernel,
            k,
            n,
            nr: isa.nr,
            kc: isa.kc,
        }
    }
    /// Floats the panels take (the columns rounded up to whole panels).
    pub fn len(&self) -> usize {
        self.k * self.n.next_multiple_of(self.nr)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Panel width: columns `j` with the same `j / nr()` share a panel, and within one depth
    /// row of a panel consecutive columns are consecutive floats.
    pub fn nr(&self) -> usize {
        self.nr
    }
    /// Columns a product pays for in whole: `nr()`, or half of it where a half-width
    /// micro-kernel takes the panels at most half full (x86), so splitting columns at this
    /// step wastes nothing.
    pub fn step(&self) -> usize {
        if self.kernel.isa().half.is_some() {
            self.nr / 2
        } else {
            self.nr
        }
    }
    /// Offset of element (p, j).
    #[inline(always)]
    pub fn at(&self, p: usize, j: usize) -> usize {
        let pc = p - p % self.kc;
        let kcb = self.kc.min(self.k - pc);
        pc * self.n.next_multiple_of(self.nr)
            + (j / self.nr) * self.nr * kcb
            + (p - pc) * self.nr
            + j % self.nr
    }
}

/// Rows `rows` of `c = a · b` on the calling thread, as [`sgemm_panels`] (`c` holds all of
/// `a`'s rows, `ldc` apart; only rows `rows` are written). `rows.start` is a multiple of
/// [`PackedA::mr`], so threads can split a product by rows without a workspace.
pub fn sgemm_panels_rows(
    a: &PackedA,
    b: &[f32],
    layout: &PanelLayout,
    c: &mut [f32],
    ldc: usize,
    rows: std::ops::Range<usize>,
) {
    let (m, k, n) = (a.m, a.k, layout.n);
    let isa = a.kernel.isa();
    assert!(
        layout.k == k && a.kernel == layout.kernel && b.len() >= layout.len(),
        "sgemm_panels: operands disagree"
    );
    assert!(
        rows.start.is_multiple_of(isa.mr) && rows.start <= rows.end && rows.end <= m,
        "sgemm_panels_rows: rows {rows:?} of {m}"
    );
    check_c(m, n, c, ldc);
    if rows.is_empty() || n == 0 {
        return;
    }
    let out = driver::Out {
        ptr: c.as_mut_ptr(),
        ldc,
    };
    if k == 0 {
        for r in rows {
            c[r * ldc..][..n].fill(0.0);
        }
        return;
    }
    // SAFETY: `rows.start` is a multiple of MR (checked), the operands are packed for the
    // whole product (checked above and by `PackedA`), `c` holds every row (`check_c`), and
    // `c` is borrowed mutably, so no other thread touches it.
    unsafe { driver::packed_rows(isa, (rows.start, rows.end), m, n, k, a.panels(), b, out) };
}

/// `c = a · b` on the calling thread, `b` being `layout.k × layout.n` already in panels
/// (`layout.len()` floats) and `c` row-major with row stride `ldc`. Needs no workspace, so
/// concurrent calls neither share nor allocate anything.
pub fn sgemm_panels(a: &PackedA, b: &[f32], layout: &PanelLayout, c: &mut [f32], ldc: usize) {
    let (m, k, n) = (a.m, a.k, layout.n);
    assert!(
        layout.k == k && a.kernel == layout.kernel && b.len() >= layout.len(),
        "sgemm_panels: operands disagree"
    );
    check_c(m, n, c, ldc);
    if m == 0 || n == 0 {
        return;
    }
    let isa = a.kernel.isa();
    let out = driver::Out {
        ptr: c.as_mut_ptr(),
        ldc,
    };
    if k == 0 {
        driver::scale(m, n, out, 0.0);
        return;
    }
    let (lhs, rhs) = (driver::Lhs::Packed(a.panels()), driver::Rhs::Packed(b));
    driver::gemm(
        isa,
        m,
        n,
        k,
        lhs,
        rhs,
        out,
        0.0,
        1.0,
        false,
        1,
        None,
        Some(&mut []),
    );
}
