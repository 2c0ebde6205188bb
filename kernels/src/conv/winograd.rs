//! 3×3 stride-1 convolution by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray): each
//! 2×2 output tile costs 16 multiplies per channel pair instead of 36, so the products shrink
//! 2.25× for the price of two cheap transforms.
//!
//! - At build the weights go through `U = G·g·Gᵀ` (4×4 per output/input channel pair), and each
//!   of the 16 positions ξ becomes one packed `M × C` left operand.
//! - At run time the tiles of all images are cut into chunks. For each chunk, a thread
//!   transforms the input (`V = Bᵀ·d·B`), writing the 16 `C × tiles` right operands straight
//!   into the GEMM's panel layout. It then runs 16 products (`M_ξ = U_ξ · V_ξ`), transforms
//!   back (`Y = Aᵀ·M·A`), and applies bias, residual and activation as it writes.
//! - Chunks are sized so the chunk's operands stay in L2, and threads take whole chunks with
//!   their own buffers: no fork per product, no shared workspace.
//!
//! In f32 the result differs from direct convolution by a few ulp of the input magnitudes
//! (the transforms only add, subtract and halve).

use super::Window2d;
use crate::disjoint::Disjoint;
use crate::gemm::{pack_a, par_for, sgemm_panels, MatRef, PackedA, PanelLayout};

/// Positions of the 4×4 transformed tile.
const XI: usize = 16;

/// Bytes of one chunk's operands (V and M of every position) aimed for: about L2.
const CHUNK_BYTES: usize = 1 << 20;

/// Fewest panels per chunk: the products' columns are the chunk's tiles, and a chunk that
/// ends early in a panel wastes the rest of it.
const MIN_PANELS: usize = 2;

/// A 3×3, stride-1, dilation-1, ungrouped convolution with its weights transformed.
#[derive(Debug, Clone)]
pub struct Winograd {
    c: usize,
    m: usize,
    geom: Window2d,
    /// Tiles per image: rows and columns of 2×2 output tiles.
    th: usize,
    tw: usize,
    /// Most tiles per chunk.
    chunk: usize,
    /// `U_ξ`, `M × C`, packed.
    u: Vec<PackedA>,
}

impl Winograd {
    /// Whether the window is one this transform computes (3×3, stride 1, dilation 1).
    pub fn fits(g: &Window2d) -> bool {
        (g.kh, g.kw, g.sh, g.sw, g.dh, g.dw) == (3, 3, 1, 1, 1, 1) && g.oh > 0 && g.ow > 0
    }

    /// Transforms `w` (`M × C × 3 × 3`). Panics unless [`Winograd::fits`].
    pub fn new(w: &[f32], c: usize, m: usize, geom: Window2d) -> Winograd {
        assert!(
            Winograd::fits(&geom) && w.len() >= m * c * 9,
            "winograd: bad shape"
        );
        let mut u = vec![vec![0.0f32; m * c]; XI];
        for (mc, g) in w.chunks_exact(9).take(m * c).enumerate() {
            // G·g (4×3), then (G·g)·Gᵀ (4×4).
            let mut gg = [[0.0f32; 3]; 4];
            for j in 0..3 {
                let (a, b, d) = (g[j], g[3 + j], g[6 + j]);
                gg[0][j] = a;
                gg[1][j] = 0.5 * (a + b + d);
                gg[2][j] = 0.5 * (a - b + d);
                gg[3][j] = d;
            }
            for (i, row) in gg.iter().enumerate() {
                let (a, b, d) = (row[0], row[1], row[2]);
                let t = [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d];
                for (j, v) in t.into_iter().enumerate() {
                    u[4 * i + j][mc] = v;
                }
            }
        }
        let u = u
            .iter()
            .map(|ui| pack_a(MatRef::row_major(ui, m, c), m, c))
            .collect();
        let (th, tw) = (geom.oh.div_ceil(2), geom.ow.div_ceil(2));
        let nr = PanelLayout::new(c, 1).nr();
        let chunk = (CHUNK_BYTES / (XI * (c + m) * 4) / nr).max(MIN_PANELS) * nr;
        Winograd {
            c,
            m,
            geom,
            th,
            tw,
            chunk,
            u,
        }
    }

    /// Floats of one lane's buffers: the 16 right operands in panels, then the 16 products,
    /// then four input rows.
    fn lane_len(&self) -> usize {
        let v = PanelLayout::new(self.c, self.chunk).len();
        XI * v + XI * self.m * self.chunk + BLOCK + self.c * self.padded()
    }

    /// Floats of one zero-padded input plane: the rows and columns the tiles read.
    fn padded(&self) -> usize {
        (2 * self.th + 2) * self.pw()
    }

    /// Width of a padded plane: the tiles' columns, the halo, and room for a last block that
    /// runs past the plane.
    fn pw(&self) -> usize {
        2 * (self.tw + BLOCK) + 2
    }

    /// Scratch floats for `images` images on up to `threads` threads.
    pub fn scratch_len(&self, images: usize, threads: usize) -> usize {
        self.plan(images, threads).2 * self.lane_len()
    }

    /// (tiles per chunk, chunks, threads): chunks of whole panels and at most `self.chunk`
    /// tiles, as many as a multiple of the threads where that costs no extra panel.
    fn plan(&self, images: usize, threads: usize) -> (usize, usize, usize) {
        let tiles = images * self.th * self.tw;
        let nr = PanelLayout::new(self.c, 1).nr();
        let lanes = threads.max(1).min(tiles.div_ceil(nr)).max(1);
        let chunks = tiles.div_ceil(self.chunk).next_multiple_of(lanes).max(1);
        let chunk = tiles.div_ceil(chunks).next_multiple_of(nr).min(self.chunk);
        let chunks = tiles.div_ceil(chunk);
        (chunk, chunks, lanes.min(chunks))
    }

    /// `y = act(conv(x) + bias + res)` for `images` NCHW images. `scratch` holds
    /// [`Winograd::scratch_len`] floats for the same `images` and `threads`.
    #[allow(clippy::too_many_arguments)]
    pub fn run<F: Fn(f32) -> f32 + Sync + Copy>(
        &self,
        images: usize,
        x: &[f32],
        bias: Option<&[f32]>,
        res: Option<&[f32]>,
        act: F,
        y: &mut [f32],
        scratch: &mut [f32],
        threads: usize,
    ) {
        let g = &self.geom;
        let (isz, osz) = (g.ih * g.iw, g.oh * g.ow);
        assert!(x.len() >= images * self.c * isz && y.len() >= images * self.m * osz);
        assert!(res.is_none_or(|r| r.len() >= images * self.m * osz));
        assert!(bias.is_none_or(|b| b.len() >= self.m));
        let (chunk, chunks, lanes) = self.plan(images, threads);
        let per = self.lane_len();
        assert!(scratch.len() >= lanes * per, "winograd: scratch");
        let tiles = images * self.th * self.tw;
        let out = Disjoint::new(y);
        let bufs = Disjoint::new(scratch);
        par_for(lanes, &|lane| {
            // SAFETY: lane `lane` owns scratch floats [lane·per, (lane+1)·per).
            let buf = unsafe { bufs.part(lane * per, per) };
            for ch in (lane..chunks).step_by(lanes) {
                let t0 = ch * chunk;
                let t1 = (t0 + chunk).min(tiles);
                // SAFETY: the tiles of distinct chunks write disjoint output pixels.
                unsafe { self.chunk_widest(x, bias, res, act, &out, buf, t0, t1) };
            }
        });
    }

    /// [`Winograd::chunk_run`] compiled for the widest vector ISA this CPU runs, so that the
    /// transforms' fixed-size loops vectorise in 16 or 8 lanes.
    ///
    /// # Safety
    /// As [`Winograd::chunk_run`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn chunk_widest<F: Fn(f32) -> f32 + Copy>(
        &self,
        x: &[f32],
        bias: Option<&[f32]>,
        res: Option<&[f32]>,
        act: F,
        out: &Disjoint,
        buf: &mut [f32],
        t0: usize,
        t1: usize,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            /// `chunk_run` compiled with the target features `$features`.
            macro_rules! compiled_for {
                ($name:ident, $features:literal) => {
                    #[target_feature(enable = $features)]
                    #[allow(clippy::too_many_arguments)]
                    unsafe fn $name<F: Fn(f32) -> f32 + Copy>(
                        w: &Winograd,
                        x: &[f32],
                        bias: Option<&[f32]>,
                        res: Option<&[f32]>,
                        act: F,
                        out: &Disjoint,
                        buf: &mut [f32],
                        t0: usize,
                        t1: usize,
                    ) {
                        // SAFETY: passed on from the caller.
                        unsafe { w.chunk_run(x, bias, res, act, out, buf, t0, t1) }
                    }
                };
            }
            compiled_for!(avx512, "avx512f,avx2,fma");
            compiled_for!(avx2, "avx2,fma");
            match crate::gemm::Kernel::detect() {
                // SAFETY: `Kernel::detect` only reports families this CPU runs; the rest is
                // the caller's contract.
                crate::gemm::Kernel::Avx512 => {
                    return unsafe { avx512(self, x, bias, res, act, out, buf, t0, t1) }
                }
                // SAFETY: as above.
                crate::gemm::Kernel::Avx2 => {
                    return unsafe { avx2(self, x, bias, res, act, out, buf, t0, t1) }
                }
                _ => {}
            }
        }
        // SAFETY: the caller's contract.
        unsafe { self.chunk_run(x, bias, res, act, out, buf, t0, t1) }
    }

    /// Tiles `t0..t1` (numbered image by image, row by row) from input to output.
    ///
    /// # Safety
    /// No other thread writes the output pixels of these tiles.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn chunk_run<F: Fn(f32) -> f32 + Copy>(
        &self,
        x: &[f32],
        bias: Option<&[f32]>,
        res: Option<&[f32]>,
        act: F,
        out: &Disjoint,
        buf: &mut [f32],
        t0: usize,
        t1: usize,
    ) {
        let (c, m, n) = (self.c, self.m, t1 - t0);
        let layout = PanelLayout::new(c, n);
        let vlen = PanelLayout::new(c, self.chunk).len();
        let (v, rest) = buf.split_at_mut(XI * vlen);
        let (prod, pad) = rest.split_at_mut(XI * m * self.chunk + BLOCK);
        self.transform_input(x, &layout, vlen, v, pad, t0, t1);
        for xi in 0..XI {
            let b = &v[xi * vlen..][..layout.len()];
            sgemm_panels(&self.u[xi], b, &layout, &mut prod[xi * m * n..][..m * n], n);
        }
        // SAFETY: passed on from the caller.
        unsafe { self.transform_output(prod, n, bias, res, act, out, t0, t1) };
    }

    /// `V = Bᵀ·d·B` for every tile of `t0..t1` and input channel, into 16 panel operands
    /// (`vlen` floats apart). Image by image, the input planes are first copied zero-padded
    /// into `pad`; then each run of tiles along a tile row goes [`BLOCK`] tiles at a time
    /// through fixed-size arrays, which LLVM vectorises across the tiles.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn transform_input(
        &self,
        x: &[f32],
        layout: &PanelLayout,
        vlen: usize,
        v: &mut [f32],
        pad: &mut [f32],
        t0: usize,
        t1: usize,
    ) {
        let g = &self.geom;
        let (isz, psz, pw) = (g.ih * g.iw, self.padded(), self.pw());
        let per_img = self.th * self.tw;
        let mut t = t0;
        let mut padded_img = usize::MAX;
        let nr = layout.nr();
        while t < t1 {
            let (img, ty, tx0) = (t / per_img, t % per_img / self.tw, t % self.tw);
            let tx1 = self.tw.min(tx0 + t1 - t);
            if img != padded_img {
                let planes = &x[img * self.c * isz..][..self.c * isz];
                for (p, src) in pad.chunks_exact_mut(psz).zip(planes.chunks_exact(isz)) {
                    pad_plane(g, pw, src, p);
                }
                padded_img = img;
            }
            // Column of tile tx0 in this chunk's panels (tile b0 is at j0 + b0 - tx0: a chunk
            // may start mid-row, so tx0 can exceed t - t0).
            let j0 = t - t0;
            for (ch, p) in pad.chunks_exact(psz).enumerate().take(self.c) {
                let row = |q: usize| &p[(2 * ty + q) * pw..][..pw];
                let rows = [row(0), row(1), row(2), row(3)];
                for b0 in (tx0..tx1).step_by(BLOCK) {
                    let nb = BLOCK.min(tx1 - b0);
                    let vals = input_block(&rows, 2 * b0);
                    // Where columns j.. of row ch go: one or two runs (a panel boundary).
                    let j = j0 + (b0 - tx0);
                    let first = nb.min(nr - j % nr);
                    let second = (first < nb).then(|| (layout.at(ch, j + first), first..nb));
                    let runs = [Some((layout.at(ch, j), 0..first)), second];
                    for (xi, vx) in vals.iter().enumerate() {
                        for (at, cols) in runs.iter().flatten().cloned() {
                            let dst = &mut v[xi * vlen + at..][..cols.len()];
                            for (d, &val) in dst.iter_mut().zip(&vx[cols]) {
                                *d = val;
                            }
                        }
                    }
                }
            }
            t += tx1 - tx0;
        }
    }

    /// `Y = Aᵀ·M·A` for every tile of `t0..t1` and output channel, from the 16 products
    /// (`M × n` each), then `act(y + bias + res)` into the output, a run of tiles along a tile
    /// row at a time.
    ///
    /// # Safety
    /// No other thread writes the output pixels of these tiles.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn transform_output<F: Fn(f32) -> f32 + Copy>(
        &self,
        prod: &[f32],
        n: usize,
        bias: Option<&[f32]>,
        res: Option<&[f32]>,
        act: F,
        out: &Disjoint,
        t0: usize,
        t1: usize,
    ) {
        let g = &self.geom;
        let osz = g.oh * g.ow;
        let per_img = self.th * self.tw;
        let mut t = t0;
        while t < t1 {
            let (img, ty, tx0) = (t / per_img, t % per_img / self.tw, t % self.tw);
            let tx1 = self.tw.min(tx0 + t1 - t);
            // Column of tile tx0 in this chunk's panels (tile b0 is at j0 + b0 - tx0: a chunk
            // may start mid-row, so tx0 can exceed t - t0).
            let j0 = t - t0;
            let (oy, rows) = (2 * ty, 2.min(g.oh - 2 * ty));
            for ch in 0..self.m {
                let b = bias.map_or(0.0, |b| b[ch]);
                let base = (img * self.m + ch) * osz;
                let m = &prod[ch * n..];
                for b0 in (tx0..tx1).step_by(BLOCK) {
                    let nb = BLOCK.min(tx1 - b0);
                    // Whole blocks: columns past the run are read (from the slack after the
                    // products) and dropped.
                    let mut mm = [[0.0f32; BLOCK]; XI];
                    for (xi, row) in mm.iter_mut().enumerate() {
                        row.copy_from_slice(&m[xi * self.m * n + j0 + (b0 - tx0)..][..BLOCK]);
                    }
                    let o = output_block(&mm);
                    let (ox0, ox1) = (2 * b0, (2 * (b0 + nb)).min(g.ow));
                    for (r, orow) in o.iter().enumerate().take(rows) {
                        let at = base + (oy + r) * g.ow + ox0;
                        // SAFETY: row oy + r, columns ox0..ox1 of this plane belong to these
                        // tiles, which the caller gives this thread alone.
                        let yr = unsafe { out.part(at, ox1 - ox0) };
                        match res {
                            Some(res) => {
                                let rr = &res[at..at + yr.len()];
                                for ((y, &v), &q) in yr.iter_mut().zip(orow).zip(rr) {
                                    *y = act(v + b + q);
                                }
                            }
                            None => {
                                for (y, &v) in yr.iter_mut().zip(orow) {
                                    *y = act(v + b);
                                }
                            }
                        }
                    }
                }
            }
            t += tx1 - tx0;
        }
    }
}

/// Tiles per transform block.
const BLOCK: usize = 8;

/// Copies plane `src` into `p` (width `pw`) at row `pt`, column `pl`, zeros around.
fn pad_plane(g: &Window2d, pw: usize, src: &[f32], p: &mut [f32]) {
    p.fill(0.0);
    let ph = p.len() / pw;
    for (iy, row) in src.chunks_exact(g.iw).enumerate() {
        let py = iy + g.pt;
        if py >= ph || g.pl >= pw {
            break;
        }
        let n = g.iw.min(pw - g.pl);
        p[py * pw + g.pl..][..n].copy_from_slice(&row[..n]);
    }
}

/// `Bᵀ·d·B` for [`BLOCK`] tiles along a tile row: tile i's window is columns
/// `k0 + 2i .. + 4` of the four padded `rows`. Element (a, b) of tile i is `[4·a + b][i]`.
#[inline(always)]
fn input_block(rows: &[&[f32]; 4], k0: usize) -> [[f32; BLOCK]; XI] {
    // Tile i reads columns c[0][i], c[1][i], c[2][i], c[3][i] = k0 + 2i + 0..4 of each row,
    // after Bᵀ·d has combined the rows: r0 − r2, r1 + r2, r2 − r1, r1 − r3.
    let mut t = [[[0.0f32; BLOCK]; 4]; 4];
    for (j, tj) in t.iter_mut().enumerate() {
        let mut c = [[0.0f32; BLOCK]; 4];
        for (q, cq) in c.iter_mut().enumerate() {
            let r = &rows[q][k0 + j..k0 + j + 2 * BLOCK];
            for i in 0..BLOCK {
                cq[i] = r[2 * i];
            }
        }
        for i in 0..BLOCK {
            tj[0][i] = c[0][i] - c[2][i];
            tj[1][i] = c[1][i] + c[2][i];
            tj[2][i] = c[2][i] - c[1][i];
            tj[3][i] = c[1][i] - c[3][i];
        }
    }
    // ·B along each combined row a: c0 − c2, c1 + c2, c2 − c1, c1 − c3.
    let mut vals = [[0.0f32; BLOCK]; XI];
    for a in 0..4 {
        for i in 0..BLOCK {
            let (c0, c1, c2, c3) = (t[0][a][i], t[1][a][i], t[2][a][i], t[3][a][i]);
            vals[4 * a][i] = c0 - c2;
            vals[4 * a + 1][i] = c1 + c2;
            vals[4 * a + 2][i] = c2 - c1;
            vals[4 * a + 3][i] = c1 - c3;
        }
    }
    vals
}

/// `Aᵀ·M·A` for [`BLOCK`] tiles along a tile row: two output rows of `2·BLOCK` pixels.
#[inline(always)]
fn output_block(mm: &[[f32; BLOCK]; XI]) -> [[f32; 2 * BLOCK]; 2] {
    // Aᵀ·M: rows s = m0 + m1 + m2 and d = m1 − m2 − m3, per column.
    let mut s = [[0.0f32; BLOCK]; 4];
    let mut d = [[0.0f32; BLOCK]; 4];
    for b in 0..4 {
        for i in 0..BLOCK {
            s[b][i] = mm[b][i] + mm[4 + b][i] + mm[8 + b][i];
            d[b][i] = mm[4 + b][i] - mm[8 + b][i] - mm[12 + b][i];
        }
    }
    let mut o = [[0.0f32; 2 * BLOCK]; 2];
    for i in 0..BLOCK {
        o[0][2 * i] = s[0][i] + s[1][i] + s[2][i];
        o[0][2 * i + 1] = s[1][i] - s[2][i] - s[3][i];
        o[1][2 * i] = d[0][i] + d[1][i] + d[2][i];
        o[1][2 * i + 1] = d[1][i] - d[2][i] - d[3][i];
    }
    o
}

#[cfg(test)]
#[path = "winograd_tests.rs"]
mod tests;
