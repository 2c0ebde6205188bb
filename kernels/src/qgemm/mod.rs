//! Integer GEMM for quantized convolutions and matrix products: u8 activations times i8 (or
//! i16) weights with i32 accumulation, and a requantizing epilogue.
//!
//! For output row `m` (an output channel) and column `p` (an output pixel, or a row of a GEMM's
//! left operand) it computes `acc = Σ_k (x[p][k] − zx)·w[m][k]` exactly, where `w` are the
//! weights minus their zero point (so −255..255), and then
//! `y = acc·mult[m] + add[m]` in f32, written as f32 or rounded (half to even), offset by the
//! output zero point and clamped (which is where ReLU and ReLU6 go).
//!
//! Weights are packed once ([`QWeights::new`]); `run` packs one 16-column panel of activations at
//! a time into the caller's scratch (im2col on the fly for convolutions) and allocates nothing.
//! Three panel formats exist, chosen per weight tensor and instruction set ([`QKernel`]):
//! - `U8`: groups of 4 along k, raw u8 activations × i8 weights (`vpdpbusd`); the zero point is a
//!   per-row correction `−zx·Σw`, computed when packing. Weights that do not fit i8 (u8 weights
//!   with a zero point: −255..255, but a row spans at most 255) are shifted by a per-row `s`
//!   into −128..127, and the product gains `s·Σ_k (x − zx)`: a per-column sum of each packed
//!   panel, computed once per panel for all rows (ONNX Runtime's u8 × u8 trick). This keeps
//!   4 products per `vpdpbusd` lane where `I16` has 2.
//! - `S8`: as `U8` with activations shifted to i8 (`x − 128`, NEON `sdot`); correction
//!   `(128 − zx)·Σw`.
//! - `I16`: groups of 2, `x − zx` and weights as i16 (`vpmaddwd`, `vpdpwssd`, NEON `smlal`):
//!   never saturates, takes any weight zero point.
//!
//! [`QWeights::run_dynamic`] serves dynamic quantization (activations quantized at run time, as
//! in ORT's DynamicQuantizeLSTM): the zero point and scale of the activations are arguments of
//! the call, and the f32 result `sx·mult[m]·acc + add[m]` is stored or added to the output.
//! [`gemv`] is the one-column product for the recurrent steps, [`row_blocks`] the same over
//! rows interleaved for AVX-512 VNNI.

pub mod depthwise;
#[cfg(target_arch = "x86_64")]
pub mod dw_vnni;
pub mod gemv;
mod isa;
mod pack;
mod portable;
pub mod row_blocks;

#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use isa::QKernel;
pub use pack::Source;

/// Columns of one activation panel (and of a micro-tile).
pub const NR: usize = 16;
/// Rows of a micro-tile.
pub const MR: usize = 8;

/// Bytes of packed panels a block aims at (well inside L1 with the weights streaming by).
const BLOCK_BYTES: usize = 8 << 10;

/// Most panels in one block.
pub(crate) const MAX_BLOCK_PANELS: usize = 16;

/// Most columns of a last, partial panel the VNNI byte kernel may run as matrix-vector
/// products (where that costs less than a whole panel: `x86::narrow_pays`).
#[cfg(target_arch = "x86_64")]
pub(crate) const NARROW_MAX: usize = 4;

/// How activations and weights are laid out for the micro-kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    U8,
    S8,
    I16,
}

impl Format {
    /// Values of k per 32-bit group.
    pub fn group(self) -> usize {
        match self {
            Format::I16 => 2,
            _ => 4,
        }
    }
}

/// What the epilogue writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutKind {
    /// `clamp(round(y) + zp, lo, hi)` stored as a byte (`lo..hi` within 0..255, or −128..127
    /// for i8 outputs, whose bytes are the two's complement).
    Int { zp: f32, lo: f32, hi: f32 },
    /// `clamp(y, lo, hi)` as f32 (±∞ when there is no activation).
    F32 { lo: f32, hi: f32 },
}

/// The output of one `run`: element (m, p) is at `m·row_stride + p·col_stride`.
pub enum Out<'a> {
    Bytes(&'a mut [u8]),
    F32(&'a mut [f32]),
}

/// An output shared by threads that each write their own columns of every row (a product
/// split by columns, [`QWeights::run_cols_shared`] for bytes, [`QWeights::run_cols_shared_f32`]
/// for floats): the whole output, borrowed for the parallel call.
pub struct Shared<'a, T> {
    ptr: *mut T,
    len: usize,
    _out: std::marker::PhantomData<&'a mut [T]>,
}

/// A byte output shared by threads writing their own columns.
pub type SharedBytes<'a> = Shared<'a, u8>;
/// An f32 output shared by threads writing their own columns.
pub type SharedF32<'a> = Shared<'a, f32>;

// SAFETY: `Shared` stands for a `&mut [T]` borrowed for the whole parallel call; the threads
// sharing it write disjoint columns (the contract of `run_cols_shared` and
// `run_cols_shared_f32`).
unsafe impl<T: Send> Send for Shared<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Shared<'_, T> {}

impl<'a, T> Shared<'a, T> {
    pub fn new(out: &'a mut [T]) -> Shared<'a, T> {
        Shared {
            ptr: out.as_mut_ptr(),
            len: out.len(),
            _out: std::marker::PhantomData,
        }
    }
}

/// Per-row scale and offset of the epilogue, and the output kind.
#[derive(Debug, Clone)]
pub struct Epilogue {
    pub mult: Vec<f32>,
    pub add: Vec<f32>,
    pub kind: OutKind,
}

/// Activations quantized at run time: their u8-domain zero point and scale, and whether the
/// f32 result is added to the output (else stored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dynamic {
    pub zero_point: i32,
    pub scale: f32,
    pub accumulate: bool,
}

/// Weights packed for one kernel family, with their zero-point correction.
#[derive(Debug, Clone)]
pub struct QWeights {
    kernel: QKernel,
    format: Format,
    m: usize,
    k: usize,
    /// Groups along k (k padded to a multiple of the group size).
    kg: usize,
    /// `[m][kg]` groups, each 4 i8 or 2 i16 in one i32.
    w: Vec<i32>,
    /// Per row, added to the accumulator before the epilogue.
    corr: Vec<i32>,
    /// Per row, `Σw` for the `U8`/`S8` formats (0 for `I16`): a run with another activation
    /// zero point `z` adds `(zx − z)·Σw` to `corr`.
    sums: Vec<i32>,
    /// Per row, the shift `s` taken off the weights to make them fit i8 (`U8` only); empty when
    /// no row is shifted.
    shift: Vec<i32>,
    /// Byte xor-ed into every u8-domain activation while packing (0x80 for `S8`).
    xor: u8,
    /// Activation zero point in the u8 domain.
    zx: i32,
}

impl QWeights {
    /// Packs `w` (`m × k` row-major, weights minus their zero point, each in −255..=255) for
    /// activations whose zero point is `zx` (u8 domain: an i8 tensor is read as `x ^ 0x80` with
    /// zero point `zx + 128`). `kernel` must be supported by this CPU.
    pub fn new(kernel: QKernel, w: &[i32], m: usize, k: usize, zx: i32) -> QWeights {
        assert_eq!(w.len(), m * k, "qgemm: weights are not m × k");
        let fits_i8 = w.iter().all(|&v| (-128..=127).contains(&v));
        // Rows that span at most 255 can be shifted into i8 where the family reads u8 × i8.
        let range = |r: usize| {
            let row = &w[r * k..(r + 1) * k];
            let lo = row.iter().copied().min().unwrap_or(0);
            (lo, row.iter().copied().max().unwrap_or(0))
        };
        let shifted = !fits_i8
            && kernel.format(true) == Format::U8
            && (0..m).all(|r| {
                let (lo, hi) = range(r);
                hi - lo <= 255
            });
        let format = kernel.format(fits_i8 || shifted);
        let gs = format.group();
        let kg = k.div_ceil(gs).max(1);
        let shift: Vec<i32> = if shifted {
            (0..m)
                .map(|r| {
                    let (lo, hi) = range(r);
                    if lo >= -128 && hi <= 127 {
                        0
                    } else {
                        hi - 127
                    }
                })
                .collect()
        } else {
            vec![]
        };
        let mut packed = vec![0i32; m * kg];
        let mut corr = vec![0i32; m];
        let mut sums = vec![0i32; m];
        let mut shifted_row = vec![0i32; k];
        for r in 0..m {
            let s = shift.get(r).copied().unwrap_or(0);
            for (d, &v) in shifted_row.iter_mut().zip(&w[r * k..(r + 1) * k]) {
                *d = v - s;
            }
            let row = &shifted_row[..];
            // With a shift the sum also carries `s` per packed k (padding included: its
            // activations are the zero point, so it adds nothing to `s·Σ(x − zx)`). Modulo
            // 2^32, like every correction: the accumulator's true value fits i32 even where a
            // term alone does not (a long row of u8 weights), and wrapping terms add up to it.
            let sum = row
                .iter()
                .fold(s.wrapping_mul((gs * kg) as i32), |a, &v| a.wrapping_add(v));
            if format != Format::I16 {
                sums[r] = sum;
            }
            corr[r] = match format {
                Format::U8 => (-zx).wrapping_mul(sum),
                Format::S8 => (128 - zx).wrapping_mul(sum),
                Format::I16 => 0,
            };
            for g in 0..kg {
                let mut bytes = [0u8; 4];
                for t in 0..gs {
                    let v = row.get(g * gs + t).copied().unwrap_or(0);
                    match format {
                        Format::I16 => {
                            bytes[2 * t..2 * t + 2].copy_from_slice(&(v as i16).to_le_bytes())
                        }
                        _ => bytes[t] = v as i8 as u8,
                    }
                }
                packed[r * kg + g] = i32::from_le_bytes(bytes);
            }
        }
        QWeights {
            kernel,
            format,
            m,
            k,
            kg,
            w: packed,
            corr,
            sums,
            shift,
            xor: if format == Format::S8 { 0x80 } else { 0 },
            zx,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// What row `m`'s accumulator gains before the epilogue for activations with zero point
    /// `zx` (u8 domain): the packed correction, moved from the packing's zero point to `zx`.
    /// Modulo 2^32 (see `new`).
    #[inline(always)]
    pub(crate) fn correction(&self, m: usize, zx: i32) -> i32 {
        self.corr[m].wrapping_add((self.zx - zx).wrapping_mul(self.sums[m]))
    }
    pub fn rows(&self) -> usize {
        self.m
    }
    pub fn depth(&self) -> usize {
        self.k
    }

    /// Whether a one-column product (`cols` 1) runs as dot products over whole weight rows
    /// (AVX-512 VNNI, u8 × i8: 64 bytes of a row per `vpdpbusd`) rather than through a
    /// 16-column panel with one live column; a caller with a few columns then does best with
    /// one run per column.
    pub fn one_column_rows(&self) -> bool {
        cfg!(target_arch = "x86_64")
            && self.kernel == QKernel::Avx512Vnni
            && self.format == Format::U8
    }

    /// Scratch bytes `run` needs: a block of packed panels (up to 16 for the VNNI byte kernel,
    /// one for the others).
    pub fn scratch_bytes(&self) -> usize {
        self.kg * NR * 4 * self.block_panels()
    }

    /// Panels packed at a time by the kernel that runs each tile of rows over several panels
    /// (VNNI u8 × i8): as many as fit [`BLOCK_BYTES`], at most [`MAX_BLOCK_PANELS`], at least
    /// one; 1 for the other kernels.
    pub(crate) fn block_panels(&self) -> usize {
        // Only the VNNI byte kernel runs blocks; the others pack one panel at a time.
        if self.kernel != QKernel::Avx512Vnni || self.format != Format::U8 {
            return 1;
        }
        (BLOCK_BYTES / (self.kg * NR * 4)).clamp(1, MAX_BLOCK_PANELS)
    }

    /// Computes the `m × cols` product of these weights with the activations `src` (whose
    /// bytes are xor-ed with `src_xor` to reach the u8 domain: 0x80 for i8 tensors) and writes
    /// it through `epi` into `out` at `m·row_stride + p·col_stride`.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        src: &Source,
        src_xor: u8,
        cols: usize,
        epi: &Epilogue,
        out: &mut Out,
        row_stride: usize,
        col_stride: usize,
        scratch: &mut [u8],
    ) {
        self.run_rows(
            src,
            src_xor,
            cols,
            epi,
            out,
            row_stride,
            col_stride,
            scratch,
            0..self.m,
        )
    }

    /// The product with activations quantized at run time (`x`: their zero point and scale,
    /// u8 domain), for weight rows `rows`: `out[(m − rows.start)·row_stride + p·col_stride]`
    /// gets (or, accumulating, is increased by)
    /// `x.scale·mult[m]·Σ_k (src[p][k] − zero_point)·w[m][k] + add[m]`, clamped as `epi` says.
    /// `epi.kind` must be `OutKind::F32`.
    #[allow(clippy::too_many_arguments)]
    pub fn run_dynamic(
        &self,
        src: &Source,
        src_xor: u8,
        cols: usize,
        x: Dynamic,
        epi: &Epilogue,
        out: &mut [f32],
        row_stride: usize,
        col_stride: usize,
        scratch: &mut [u8],
        rows: std::ops::Range<usize>,
    ) {
        assert!(
            matches!(epi.kind, OutKind::F32 { .. }) && (0..=255).contains(&x.zero_point),
            "qgemm: dynamic runs write f32 from u8-domain activations"
        );
        self.run_job(
            src,
            src_xor,
            cols,
            epi,
            &mut Out::F32(out),
            row_stride,
            col_stride,
            scratch,
            rows,
            x,
            0,
        )
    }

    /// [`QWeights::run`] for rows `rows` only (a thread's share), written to `out` from row
    /// `rows.start` on: element (m, p) at `(m − rows.start)·row_stride + p·col_stride`.
    #[allow(clippy::too_many_arguments)]
    pub fn run_rows(
        &self,
        src: &Source,
        src_xor: u8,
        cols: usize,
        epi: &Epilogue,
        out: &mut Out,
        row_stride: usize,
        col_stride: usize,
        scratch: &mut [u8],
        rows: std::ops::Range<usize>,
    ) {
        self.run_job(
            src,
            src_xor,
            cols,
            epi,
            out,
            row_stride,
            col_stride,
            scratch,
            rows,
            self.fixed(),
            0,
        )
    }

    /// [`QWeights::run`] for columns `cols` only (a thread's share of a wide product), all
    /// rows: element (m, p) at `m·row_stride + (p − cols.start)·col_stride`.
    #[allow(clippy::too_many_arguments)]
    pub fn run_cols(
        &self,
        src: &Source,
        src_xor: u8,
        cols: std::ops::Range<usize>,
        epi: &Epilogue,
        out: &mut Out,
        row_stride: usize,
        col_stride: usize,
        scratch: &mut [u8],
    ) {
        self.run_job(
            src,
            src_xor,
            cols.end,
            epi,
            out,
            row_stride,
            col_stride,
            scratch,
            0..self.m,
            self.fixed(),
            cols.start,
        )
    }

    /// Rows `rows` and columns `cols` of the product, element (m, p) at
    /// `(m − rows.start)·row_stride + (p − cols.start)·col_stride`, for activations quantized
    /// statically (`x` None: as [`QWeights::run_rows`] and [`QWeights::run_cols`]) or at run
    /// time (`x`: as [`QWeights::run_dynamic`], `epi.kind` then `OutKind::F32`).
    #[allow(clippy::too_many_arguments)]
    pub fn run_part(
        &self,
        src: &Source,
        src_xor: u8,
        cols: std::ops::Range<usize>,
        x: Option<Dynamic>,
        epi: &Epilogue,
        out: &mut Out,
        row_stride: usize,
        col_stride: usize,
        scratch: &mut [u8],
        rows: std::ops::Range<usize>,
    ) {
        if let Some(d) = x {
            assert!(
                matches!((epi.kind, &*out), (OutKind::F32 { .. }, Out::F32(_)))
                    && (0..=255).contains(&d.zero_point),
                "qgemm: dynamic runs write f32 from u8-domain activations"
            );
        }
        assert!(cols.start <= cols.end, "qgemm: columns out of range");
        self.run_job(
            src,
            src_xor,
            cols.end,
            epi,
            out,
            row_stride,
            col_stride,
            scratch,
            rows,
            x.unwrap_or_else(|| self.fixed()),
            cols.start,
        )
    }

    /// Whether [`QWeights::run_cols_shared`] (byte outputs) and
    /// [`QWeights::run_cols_shared_f32`] (f32 outputs) take products of these weights (u8 × i8
    /// on AVX-512 VNNI); else the caller splits columns into buffers of its own.
    pub fn writes_shared(&self) -> bool {
        cfg!(target_arch = "x86_64")
            && self.kernel == QKernel::Avx512Vnni
            && self.format == Format::U8
    }

    /// [`QWeights::run_cols`] written straight into the whole output: element (m, p), for
    /// every row m and the columns p in `cols`, at `m·row_stride + p` of `out`. Threads split
    /// one product's columns this way without buffers of their own or a copy afterwards.
    /// Panics unless [`QWeights::writes_shared`] holds, `epi` writes bytes and `out` holds
    /// every row's columns.
    ///
    /// # Safety
    /// While it runs, nothing else accesses columns `cols` of `out`'s rows (other threads
    /// take other columns).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn run_cols_shared(
        &self,
        src: &Source,
        src_xor: u8,
        cols: std::ops::Range<usize>,
        epi: &Epilogue,
        out: &SharedBytes,
        row_stride: usize,
        scratch: &mut [u8],
    ) {
        assert!(self.writes_shared(), "qgemm: no shared-output kernel");
        let OutKind::Int { zp, lo, hi } = epi.kind else {
            panic!("qgemm: run_cols_shared writes bytes")
        };
        let x = self.fixed();
        let Some(job) = self.shared_job(
            src,
            src_xor,
            cols.clone(),
            x,
            epi,
            out.len,
            row_stride,
            scratch,
        ) else {
            return;
        };
        // SAFETY: the VNNI kernel family was checked to be supported when the weights were
        // packed; bounds are checked above: the job writes (m, p) at m·row_stride + p, inside
        // `out`, and only columns `cols`, which the caller guarantees are this call's alone.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let (o, len) = (out.ptr.add(cols.start), out.len - cols.start);
            match self.narrow_from(&job) {
                None => x86::drive_vnni_u8_bytes(&job, o, len, scratch, zp, lo, hi),
                Some(end) => {
                    if let Some(main) = job.before(end) {
                        x86::drive_vnni_u8_bytes(&main, o, len, scratch, zp, lo, hi);
                    }
                    x86::narrow_u8_bytes(&job, o, len, end, scratch, zp, lo, hi);
                }
            }
        }
        // (Unreachable elsewhere: `writes_shared` holds on x86-64 only.)
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (job, zp, lo, hi, out.ptr);
    }

    /// [`QWeights::run_cols_shared`] for f32 outputs, with the activations quantized
    /// statically (`x` None) or at run time (`x`, as [`QWeights::run_dynamic`]): element
    /// (m, p), for every row m and the columns p in `cols`, at `m·row_stride + p` of `out`.
    /// Panics unless [`QWeights::writes_shared`] holds, `epi` writes f32 and `out` holds every
    /// row's columns.
    ///
    /// # Safety
    /// While it runs, nothing else accesses columns `cols` of `out`'s rows (other threads
    /// take other columns).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn run_cols_shared_f32(
        &self,
        src: &Source,
        src_xor: u8,
        cols: std::ops::Range<usize>,
        x: Option<Dynamic>,
        epi: &Epilogue,
        out: &SharedF32,
        row_stride: usize,
        scratch: &mut [u8],
    ) {
        assert!(self.writes_shared(), "qgemm: no shared-output kernel");
        let OutKind::F32 { lo, hi } = epi.kind else {
            panic!("qgemm: run_cols_shared_f32 writes f32")
        };
        let x = x.unwrap_or_else(|| self.fixed());
        assert!((0..=255).contains(&x.zero_point), "qgemm: zero point");
        let Some(job) = self.shared_job(
            src,
            src_xor,
            cols.clone(),
            x,
            epi,
            out.len,
            row_stride,
            scratch,
        ) else {
            return;
        };
        // SAFETY: the VNNI kernel family was checked to be supported when the weights were
        // packed; bounds are checked above: the job writes (m, p) at m·row_stride + p, inside
        // `out`, and only columns `cols`, which the caller guarantees are this call's alone.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let (o, len) = (out.ptr.add(cols.start), out.len - cols.start);
            x86::drive_vnni_u8_f32(&job, o, len, scratch, lo, hi)
        }
        // (Unreachable elsewhere: `writes_shared` holds on x86-64 only.)
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (job, lo, hi, out.ptr);
    }

    /// The job of a shared-output run over columns `cols` of every row of an output of
    /// `out_len` elements, rows `row_stride` apart, after the checks its safety rests on; None
    /// when there is nothing to compute.
    #[allow(clippy::too_many_arguments)]
    fn shared_job<'a>(
        &'a self,
        src: &'a Source<'a>,
        src_xor: u8,
        cols: std::ops::Range<usize>,
        x: Dynamic,
        epi: &'a Epilogue,
        out_len: usize,
        row_stride: usize,
        scratch: &[u8],
    ) -> Option<Job<'a>> {
        assert!(cols.start <= cols.end, "qgemm: columns out of range");
        assert!(epi.mult.len() >= self.m && epi.add.len() >= self.m);
        assert!(
            scratch.len() >= self.scratch_bytes(),
            "qgemm: scratch too small"
        );
        if cols.is_empty() || self.m == 0 {
            return None;
        }
        // Columns inside a row, so no two rows' runs meet (the threads' disjointness rests
        // on it), and every row inside the output.
        assert!(
            self.m == 1 || cols.end <= row_stride,
            "qgemm: columns past the row stride"
        );
        let end = (self.m - 1)
            .checked_mul(row_stride)
            .and_then(|v| v.checked_add(cols.end));
        assert!(end.is_some_and(|e| e <= out_len), "qgemm: output too small");
        src.check(self.k, cols.end);
        Some(Job {
            wts: self,
            src,
            xor: src_xor ^ self.xor,
            first: cols.start,
            cols: cols.end,
            epi,
            row_stride,
            col_stride: 1,
            rows: 0..self.m,
            x,
        })
    }

    /// The statically quantized case: the activation zero point packed with the weights.
    fn fixed(&self) -> Dynamic {
        Dynamic {
            zero_point: self.zx,
            scale: 1.0,
            accumulate: false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_job(
        &self,
        src: &Source,
        src_xor: u8,
        cols: usize,
        epi: &Epilogue,
        out: &mut Out,
        row_stride: usize,
        col_stride: usize,
        scratch: &mut [u8],
        rows: std::ops::Range<usize>,
        x: Dynamic,
        first: usize,
    ) {
        assert!(
            rows.start <= rows.end && rows.end <= self.m,
            "qgemm: rows out of range"
        );
        assert!(first <= cols, "qgemm: columns out of range");
        assert!(epi.mult.len() >= self.m && epi.add.len() >= self.m);
        assert!(
            scratch.len() >= self.scratch_bytes(),
            "qgemm: scratch too small"
        );
        let n = rows.end - rows.start;
        let width = cols - first;
        let last = (n.max(1) - 1) * row_stride + width.max(1).saturating_sub(1) * col_stride;
        let out_len = match out {
            Out::Bytes(b) => b.len(),
            Out::F32(f) => f.len(),
        };
        assert!(
            width == 0 || n == 0 || last < out_len,
            "qgemm: output too small"
        );
        src.check(self.k, cols);
        let job = Job {
            wts: self,
            src,
            xor: src_xor ^ self.xor,
            first,
            cols,
            epi,
            row_stride,
            col_stride,
            rows,
            x,
        };
        #[cfg(target_arch = "x86_64")]
        if let (Some(end), Out::Bytes(o), OutKind::Int { zp, lo, hi }) =
            (self.narrow_from(&job), &mut *out, epi.kind)
        {
            if let Some(main) = job.before(end) {
                // SAFETY: as below, for fewer columns.
                unsafe { (self.kernel.driver())(&main, &mut Out::Bytes(o), scratch) }
            }
            // SAFETY: VNNI (`narrow_from`); bounds are checked above.
            unsafe { x86::narrow_u8_bytes(&job, o.as_mut_ptr(), o.len(), end, scratch, zp, lo, hi) }
            return;
        }
        // SAFETY: the kernel family was checked to be supported when the weights were packed
        // (`QKernel::format` asserts it); bounds are checked above.
        unsafe { (self.kernel.driver())(&job, out, scratch) }
    }

    /// Where the VNNI byte kernel's job, written along rows, should hand a last panel of a
    /// few live columns (EfficientNet's 7 × 7 planes: 49 = 3 · 16 + 1) to
    /// `x86::narrow_u8_bytes`'s matrix-vector products, the first of those columns: where they
    /// cost less than a whole panel's tiles. (Split here, not inside the kernel: folded into it, the kernel's
    /// function compiled differently and the short-depth layers ran 3–16 % slower.)
    #[cfg(target_arch = "x86_64")]
    fn narrow_from(&self, job: &Job) -> Option<usize> {
        let tail = (job.cols - job.first) % NR;
        (self.kernel == QKernel::Avx512Vnni
            && self.format == Format::U8
            && job.col_stride == 1
            && x86::narrow_pays(tail, self.kg))
        .then_some(job.cols - tail)
    }
}

/// Everything one `run` needs, handed to the per-family driver.
pub(crate) struct Job<'a> {
    pub wts: &'a QWeights,
    pub src: &'a Source<'a>,
    pub xor: u8,
    /// Columns `first..cols` of the product; column p is written at `(p − first)·col_stride`.
    pub first: usize,
    pub cols: usize,
    pub epi: &'a Epilogue,
    pub row_stride: usize,
    pub col_stride: usize,
    pub rows: std::ops::Range<usize>,
    /// The activations' zero point and scale for this run, and whether f32 results accumulate.
    pub x: Dynamic,
}

impl<'a> Job<'a> {
    /// This job's columns before `end`, if there are any.
    #[cfg(target_arch = "x86_64")]
    fn before(&self, end: usize) -> Option<Job<'a>> {
        (end > self.first).then(|| Job {
            cols: end,
            rows: self.rows.clone(),
            ..*self
        })
    }
}

/// Rounds half to even for |v| < 2^22 (the epilogue clamps first), vectorisable without SSE4.1.
#[inline(always)]
pub fn round_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    (v + MAGIC) - MAGIC
}

/// `clamp(round_half_even(v), lo, hi)` as the low byte of its i32 (u8, or i8 two's complement),
/// for integer bounds within ±2^22: rounding by adding 1.5·2^23 and reading the mantissa bits,
/// which vectorises (a saturating `as i32` does not).
#[inline(always)]
pub fn quantize_byte(v: f32, lo: f32, hi: f32) -> u8 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    (clamp(v, lo, hi) + MAGIC)
        .to_bits()
        .wrapping_sub(MAGIC.to_bits()) as u8
}

/// `v.max(lo).min(hi)` for bounds that are not NaN, NaN included (it gives `lo`), written as
/// the comparisons `maxps`/`minps` make, so it compiles to those two instructions without the
/// NaN fix-ups `f32::max` needs.
#[inline(always)]
pub fn clamp(v: f32, lo: f32, hi: f32) -> f32 {
    let v = if v > lo { v } else { lo };
    if v < hi {
        v
    } else {
        hi
    }
}

/// The driver loop shared by every family: panel by panel, tile by tile, then the epilogue.
/// Inlined into each family's `#[target_feature]` wrapper so packing and epilogue vectorise.
#[inline(always)]
pub(crate) unsafe fn drive(job: &Job, out: &mut Out, scratch: &mut [u8], micro: MicroFn) {
    let w = job.wts;
    let panel = &mut scratch[..w.kg * NR * 4];
    let mut acc = [[0i32; NR]; MR];
    let mut p0 = job.first;
    while p0 < job.cols {
        let np = NR.min(job.cols - p0);
        let zx = job.x.zero_point;
        let pad = (zx as u8) ^ w.xor;
        pack::pack_panel(
            job.src, w.format, w.k, w.kg, p0, np, job.xor, zx, pad, panel,
        );
        // Σ_k x per column of the panel, for rows whose weights were shifted.
        let mut colsum = [0i32; NR];
        if !w.shift.is_empty() {
            for group in panel.chunks_exact(64) {
                for (j, cs) in colsum.iter_mut().enumerate() {
                    let b = &group[4 * j..4 * j + 4];
                    let quad = b[0] as i32 + b[1] as i32 + b[2] as i32 + b[3] as i32;
                    *cs = cs.wrapping_add(quad);
                }
            }
        }
        let mut m0 = job.rows.start;
        while m0 < job.rows.end {
            let rows = MR.min(job.rows.end - m0);
            // SAFETY: `w.w` holds `m × kg` groups, `panel` `kg × NR × 4` bytes, `acc` MR × NR.
            micro(
                w.kg,
                w.w.as_ptr().add(m0 * w.kg),
                w.kg,
                rows,
                panel.as_ptr(),
                &mut acc,
            );
            epilogue(job, out, &acc, &colsum, m0, rows, p0, np);
            m0 += MR;
        }
        p0 += NR;
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn epilogue(
    job: &Job,
    out: &mut Out,
    acc: &[[i32; NR]; MR],
    colsum: &[i32; NR],
    m0: usize,
    rows: usize,
    p0: usize,
    np: usize,
) {
    let (rs, cs) = (job.row_stride, job.col_stride);
    for (i, a) in acc.iter().enumerate().take(rows) {
        let m = m0 + i;
        let w = job.wts;
        let corr = w.correction(m, job.x.zero_point);
        let (mult, add) = (job.epi.mult[m] * job.x.scale, job.epi.add[m]);
        let s = w.shift.get(m).copied().unwrap_or(0);
        let mut y = [0f32; NR];
        for j in 0..NR {
            let v = a[j]
                .wrapping_add(corr)
                .wrapping_add(s.wrapping_mul(colsum[j]));
            y[j] = v as f32 * mult + add;
        }
        match (job.epi.kind, &mut *out) {
            (OutKind::Int { zp, lo, hi }, Out::Bytes(o)) => {
                let mut q = [0u8; NR];
                for j in 0..NR {
                    q[j] = quantize_byte(y[j] + zp, lo, hi);
                }
                let base = (m - job.rows.start) * rs + (p0 - job.first) * cs;
                if cs == 1 && np == NR {
                    // One 16-byte store. (A fixed-size `copy_from_slice` here is merged by LLVM
                    // with the partial copy below into one call to memcpy per tile row.)
                    let dst: &mut [u8; NR] = (&mut o[base..base + NR]).try_into().expect("NR");
                    // SAFETY: `dst` is a valid, exclusive 16-byte array.
                    unsafe { std::ptr::write_volatile(dst, q) };
                } else if cs == 1 {
                    o[base..base + np].copy_from_slice(&q[..np]);
                } else {
                    for j in 0..np {
                        o[base + j * cs] = q[j];
                    }
                }
            }
            (OutKind::F32 { lo, hi }, Out::F32(o)) => {
                let base = (m - job.rows.start) * rs + (p0 - job.first) * cs;
                for v in &mut y {
                    *v = clamp(*v, lo, hi);
                }
                match (cs == 1, job.x.accumulate) {
                    (true, false) if np == NR => {
                        // As above: one 64-byte store, not a merged memcpy.
                        let dst: &mut [f32; NR] = (&mut o[base..base + NR]).try_into().expect("NR");
                        // SAFETY: `dst` is a valid, exclusive array of NR floats.
                        unsafe { std::ptr::write_volatile(dst, y) };
                    }
                    (true, false) => o[base..base + np].copy_from_slice(&y[..np]),
                    (true, true) => {
                        for (d, v) in o[base..base + np].iter_mut().zip(&y) {
                            *d += v;
                        }
                    }
                    (false, false) => {
                        for j in 0..np {
                            o[base + j * cs] = y[j];
                        }
                    }
                    (false, true) => {
                        for j in 0..np {
                            o[base + j * cs] += y[j];
                        }
                    }
                }
            }
            _ => panic!("qgemm: output buffer does not match the epilogue's kind"),
        }
    }
}

/// `acc[i][j] = Σ_g dot(w[i·ldw + g], panel[g][j])` for `i < MR` (rows past `rows` may be
/// computed from any valid row and are ignored), over `kg` groups.
pub(crate) type MicroFn = unsafe fn(
    kg: usize,
    w: *const i32,
    ldw: usize,
    rows: usize,
    panel: *const u8,
    acc: &mut [[i32; NR]; MR],
);
