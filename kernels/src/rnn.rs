//! Recurrent layers with ONNX semantics and default activations: LSTM (gates i, o, f, c;
//! sigmoid/tanh/tanh) and GRU (gates z, r, h; sigmoid/tanh).
//!
//! Shape of the work: the input projection of every timestep and every direction is one GEMM,
//! `X[T·B, I] · Wᵀ[I, D·G·H]`, into scratch, with the biases folded in; then each step is one
//! GEMM `h[B, H] · Rᵀ[H, G·H]` (two for a GRU without `linear_before_reset`) followed by fused
//! gate math. Directions run one after the other and share the step buffers.
//!
//! Layouts follow ONNX: time-major X [T, B, I], Y [T, D, B, H], states [D, B, H]; batch-first
//! (`layout = 1`) X [B, T, I], Y [B, T, D, H], states [B, D, H]. Biases are ONNX `B` rows,
//! `[D, 2·G·H]`, W half then R half. Peepholes are `[D, 3·H]` in the order i, o, f.
//!
//! The two products go through [`RnnProducts`]: [`lstm`] and [`gru`] run them as float GEMMs;
//! [`lstm_with`] and [`gru_with`] take any implementation (the runtime's int8 QLstm/QGru
//! quantize X and h dynamically), with the gate math and states unchanged, in f32.

use crate::activation::sigmoid;
use crate::gemm::{sgemm, sgemm_packed_b, MatRef, PackedB};
use crate::vmath::{sigmoid_inplace, tanh_inplace};

/// Static sizes of one recurrent layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnDims {
    pub seq: usize,
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
    /// 1, or 2 when bidirectional (direction 0 runs forward, 1 in reverse).
    pub dirs: usize,
    /// Run direction 0 in reverse (ONNX `direction = "reverse"`, only with `dirs == 1`).
    pub reverse: bool,
    pub batch_first: bool,
}

impl RnnDims {
    /// Elements of X.
    pub fn x_len(&self) -> usize {
        self.seq * self.batch * self.input
    }
    /// Elements of Y.
    pub fn y_len(&self) -> usize {
        self.seq * self.dirs * self.batch * self.hidden
    }
    /// Elements of an initial or final state (h or c).
    pub fn state_len(&self) -> usize {
        self.dirs * self.batch * self.hidden
    }
    /// Row of X (as a `[T·B, I]` matrix in memory order) holding timestep `t` of batch item `b`.
    fn x_row(&self, t: usize, b: usize) -> usize {
        if self.batch_first {
            b * self.seq + t
        } else {
            t * self.batch + b
        }
    }
    /// Offset in Y of the hidden vector of (t, d, b).
    fn y_at(&self, t: usize, d: usize, b: usize) -> usize {
        let h = self.hidden;
        if self.batch_first {
            ((b * self.seq + t) * self.dirs + d) * h
        } else {
            ((t * self.dirs + d) * self.batch + b) * h
        }
    }
    /// Offset in a state tensor of the vector of (d, b).
    fn state_at(&self, d: usize, b: usize) -> usize {
        let h = self.hidden;
        if self.batch_first {
            (b * self.dirs + d) * h
        } else {
            (d * self.batch + b) * h
        }
    }
    fn runs_reversed(&self, d: usize) -> bool {
        d == 1 || self.reverse
    }
}

/// What both cells read besides X: the weight matrices (already transposed, directions side by
/// side), the optional bias and initial hidden state, and the clip threshold.
#[derive(Clone, Copy, Debug)]
pub struct RnnWeights<'a> {
    /// Wᵀ, `[I, D·G·H]`: column `d·G·H + j` is row j of `W[d]`.
    pub w_t: MatRef<'a>,
    /// Rᵀ, `[H, D·G·H]`, laid out like `w_t`.
    pub r_t: MatRef<'a>,
    /// ONNX `B`, `[D, 2·G·H]`.
    pub bias: Option<&'a [f32]>,
    /// ONNX `initial_h`, in the state layout.
    pub h0: Option<&'a [f32]>,
    /// Gate pre-activations are clamped to `[-clip, clip]`.
    pub clip: Option<f32>,
    /// Rᵀ of each direction (`[H, G·H]`) packed by [`crate::gemm::pack_b`], when R is a
    /// constant: the recurrent GEMM then repacks nothing per step. Used by [`lstm`].
    pub r_packed: Option<&'a [PackedB]>,
}

/// LSTM-only inputs.
#[derive(Clone, Copy, Debug)]
pub struct LstmExtras<'a> {
    /// ONNX `initial_c`, in the state layout.
    pub c0: Option<&'a [f32]>,
    /// ONNX `P`, `[D, 3·H]` (i, o, f).
    pub peepholes: Option<&'a [f32]>,
    /// Couple the forget gate to the input gate: f = 1 − i.
    pub input_forget: bool,
}

/// What [`lstm_with`] and [`gru_with`] read besides X and the products: ONNX `B` (`[D, 2·G·H]`),
/// `initial_h` (state layout) and the clip threshold.
#[derive(Clone, Copy, Debug, Default)]
pub struct RnnParams<'a> {
    pub bias: Option<&'a [f32]>,
    pub h0: Option<&'a [f32]>,
    pub clip: Option<f32>,
}

/// The two matrix products of a recurrent layer.
pub trait RnnProducts {
    /// `proj[r·n + j] += Σ_i x[r·I + i]·W[j][i]` for the `rows` rows of `x` and all
    /// `n = D·G·H` gate rows of W (directions side by side).
    fn project(&mut self, x: &[f32], rows: usize, proj: &mut [f32]);
    /// `gates[b·ld + j] = (gates[b·ld + j] if accumulate) + Σ_k h[b·H + k]·R[dir][col0 + j][k]`
    /// for `j < cols` and every batch item `b`.
    #[allow(clippy::too_many_arguments)]
    fn recur(
        &mut self,
        dir: usize,
        col0: usize,
        cols: usize,
        h: &[f32],
        gates: &mut [f32],
        ld: usize,
        accumulate: bool,
    );
}

/// The float products: SGEMM with `w.w_t` / `w.r_t` (and `w.r_packed` for whole-gate steps).
struct FloatProducts<'a> {
    d: RnnDims,
    gh: usize,
    w: &'a RnnWeights<'a>,
    threads: usize,
}

impl RnnProducts for FloatProducts<'_> {
    fn project(&mut self, x: &[f32], rows: usize, proj: &mut [f32]) {
        let (i, n) = (self.d.input, self.d.dirs * self.gh);
        let xm = MatRef::row_major(&x[..rows * i], rows, i);
        sgemm(rows, n, i, xm, self.w.w_t, proj, n, 1.0, 1.0, self.threads);
    }

    fn recur(
        &mut self,
        dir: usize,
        col0: usize,
        cols: usize,
        h: &[f32],
        gates: &mut [f32],
        ld: usize,
        accumulate: bool,
    ) {
        let (bs, hs) = (self.d.batch, self.d.hidden);
        let keep = if accumulate { 1.0 } else { 0.0 };
        let hm = MatRef::row_major(&h[..bs * hs], bs, hs);
        match self.w.r_packed {
            Some(rp) if col0 == 0 && cols == self.gh => {
                sgemm_packed_b(hm, &rp[dir], gates, ld, keep, 1.0, self.threads)
            }
            _ => {
                let r_t = col_block(self.w.r_t, dir * self.gh + col0, cols);
                sgemm(bs, cols, hs, hm, r_t, gates, ld, keep, 1.0, self.threads)
            }
        }
    }
}

/// Returns `data` (a dense row-major `rows × cols` matrix) transposed, dense row-major.
/// Packing `W [D·G·H, I]` this way gives the `w_t` layout directly.
pub fn pack_transposed(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert!(data.len() >= rows * cols, "pack_transposed: short input");
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// Scratch, in f32 elements, that [`lstm`] needs.
pub fn lstm_scratch(d: &RnnDims) -> usize {
    scratch_len(d, 4, 2)
}

/// Scratch, in f32 elements, that [`gru`] needs.
pub fn gru_scratch(d: &RnnDims) -> usize {
    scratch_len(d, 3, 2)
}

/// Projections for all steps, one step's recurrent gates, then `states` `[B, H]` buffers.
fn scratch_len(d: &RnnDims, gates: usize, states: usize) -> usize {
    let gh = gates * d.hidden;
    d.seq * d.batch * d.dirs * gh + d.batch * gh + states * d.batch * d.hidden
}

#[inline]
fn clamp(x: f32, clip: Option<f32>) -> f32 {
    match clip {
        // max/min rather than `clamp`, which panics on a negative or NaN threshold.
        Some(c) => x.max(-c).min(c),
        None => x,
    }
}

/// Columns `start..start + n` of `m`.
fn col_block(m: MatRef<'_>, start: usize, n: usize) -> MatRef<'_> {
    let off = start * m.cs as usize;
    MatRef {
        data: if n == 0 || m.rows == 0 {
            &m.data[..0]
        } else {
            &m.data[off..]
        },
        rows: m.rows,
        cols: n,
        rs: m.rs,
        cs: m.cs,
    }
}

fn check_weights(d: &RnnDims, gates: usize, w: &RnnWeights) {
    let gh = gates * d.hidden;
    assert!(
        w.w_t.rows == d.input && w.w_t.cols == d.dirs * gh,
        "rnn: W shape"
    );
    assert!(
        w.r_t.rows == d.hidden && w.r_t.cols == d.dirs * gh,
        "rnn: R shape"
    );
}

fn check_common(d: &RnnDims, gates: usize, w: &RnnParams, x: &[f32], y: &[f32], y_h: &[f32]) {
    let gh = gates * d.hidden;
    assert!(
        d.dirs == 1 || (d.dirs == 2 && !d.reverse),
        "rnn: bad direction"
    );
    assert!(
        w.bias.is_none_or(|b| b.len() >= d.dirs * 2 * gh),
        "rnn: B length"
    );
    assert!(
        w.h0.is_none_or(|h| h.len() >= d.state_len()),
        "rnn: h0 length"
    );
    assert!(x.len() >= d.x_len(), "rnn: X length");
    assert!(y.len() >= d.y_len(), "rnn: Y length");
    assert!(y_h.len() >= d.state_len(), "rnn: Y_h length");
}

/// Fills `proj` (`[T·B, D·G·H]`, rows in X's memory order) with `X · Wᵀ + bias`. The first
/// `fold_r` gate columns of each direction get `Wb + Rb`, the rest `Wb` alone.
fn project_inputs(
    d: &RnnDims,
    gates: usize,
    w: &RnnParams,
    fold_r: usize,
    x: &[f32],
    proj: &mut [f32],
    p: &mut impl RnnProducts,
) {
    let gh = gates * d.hidden;
    let n = d.dirs * gh;
    let m = d.seq * d.batch;
    if m == 0 || n == 0 {
        return;
    }
    match w.bias {
        Some(bias) => {
            for dir in 0..d.dirs {
                let wb = &bias[dir * 2 * gh..dir * 2 * gh + gh];
                let rb = &bias[dir * 2 * gh + gh..(dir + 1) * 2 * gh];
                for j in 0..gh {
                    proj[dir * gh + j] = if j < fold_r { wb[j] + rb[j] } else { wb[j] };
                }
            }
            for r in 1..m {
                proj.copy_within(0..n, r * n);
            }
        }
        None => proj[..m * n].fill(0.0),
    }
    p.project(x, m, &mut proj[..m * n]);
}

/// Copies the initial state of direction `dir` (or zeros) into a `[B, H]` buffer.
fn load_state(d: &RnnDims, dir: usize, init: Option<&[f32]>, buf: &mut [f32]) {
    let h = d.hidden;
    for b in 0..d.batch {
        let dst = &mut buf[b * h..(b + 1) * h];
        match init {
            Some(s) => dst.copy_from_slice(&s[d.state_at(dir, b)..][..h]),
            None => dst.fill(0.0),
        }
    }
}

/// Copies a `[B, H]` buffer into direction `dir` of a state tensor.
fn store_state(d: &RnnDims, dir: usize, buf: &[f32], out: &mut [f32]) {
    let h = d.hidden;
    for b in 0..d.batch {
        out[d.state_at(dir, b)..][..h].copy_from_slice(&buf[b * h..(b + 1) * h]);
    }
}

/// Runs an ONNX LSTM. `scratch` needs [`lstm_scratch`] elements; `y`, `y_h`, `y_c` are fully
/// written. Panics if a slice is shorter than `d` says (callers check sizes first).
#[allow(clippy::too_many_arguments)]
pub fn lstm(
    d: &RnnDims,
    w: &RnnWeights,
    e: &LstmExtras,
    x: &[f32],
    y: &mut [f32],
    y_h: &mut [f32],
    y_c: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
) {
    check_weights(d, 4, w);
    let params = RnnParams {
        bias: w.bias,
        h0: w.h0,
        clip: w.clip,
    };
    let mut p = FloatProducts {
        d: *d,
        gh: 4 * d.hidden,
        w,
        threads,
    };
    lstm_with(d, &params, e, &mut p, x, y, y_h, y_c, scratch);
}

/// [`lstm`] with the products computed by `p`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_with(
    d: &RnnDims,
    w: &RnnParams,
    e: &LstmExtras,
    p: &mut impl RnnProducts,
    x: &[f32],
    y: &mut [f32],
    y_h: &mut [f32],
    y_c: &mut [f32],
    scratch: &mut [f32],
) {
    check_common(d, 4, w, x, y, y_h);
    assert!(y_c.len() >= d.state_len(), "lstm: Y_c length");
    assert!(
        e.c0.is_none_or(|c| c.len() >= d.state_len()),
        "lstm: c0 length"
    );
    assert!(
        e.peepholes.is_none_or(|p| p.len() >= d.dirs * 3 * d.hidden),
        "lstm: P length"
    );
    assert!(scratch.len() >= lstm_scratch(d), "lstm: scratch");
    let (hs, bs) = (d.hidden, d.batch);
    let gh = 4 * hs;
    let stride = d.dirs * gh;
    let (proj, rest) = scratch.split_at_mut(d.seq * bs * stride);
    let (gates, rest) = rest.split_at_mut(bs * gh);
    let (h, rest) = rest.split_at_mut(bs * hs);
    let c = &mut rest[..bs * hs];
    project_inputs(d, 4, w, gh, x, proj, p);

    for dir in 0..d.dirs {
        load_state(d, dir, w.h0, h);
        load_state(d, dir, e.c0, c);
        let peep = e.peepholes.map(|p| &p[dir * 3 * hs..(dir + 1) * 3 * hs]);
        for step in 0..d.seq {
            let t = if d.runs_reversed(dir) {
                d.seq - 1 - step
            } else {
                step
            };
            // Fast path: the projection goes in as the GEMM's C, the gates are activated by
            // the vectorised functions, whole slices at a time.
            let fast = peep.is_none() && w.clip.is_none() && !e.input_forget;
            if fast {
                for b in 0..bs {
                    let src = &proj[d.x_row(t, b) * stride + dir * gh..][..gh];
                    gates[b * gh..(b + 1) * gh].copy_from_slice(src);
                }
            }
            p.recur(dir, 0, gh, h, gates, gh, fast);
            for b in 0..bs {
                let hb = &mut h[b * hs..(b + 1) * hs];
                let cb = &mut c[b * hs..(b + 1) * hs];
                if fast {
                    let g = &mut gates[b * gh..(b + 1) * gh];
                    let (ifo, cand) = g.split_at_mut(3 * hs);
                    sigmoid_inplace(ifo);
                    tanh_inplace(cand);
                    let (i, rest) = ifo.split_at(hs);
                    let (o, f) = rest.split_at(hs);
                    for j in 0..hs {
                        cb[j] = f[j] * cb[j] + i[j] * cand[j];
                    }
                    hb.copy_from_slice(cb);
                    tanh_inplace(hb);
                    hb.iter_mut().zip(o).for_each(|(h, o)| *h *= o);
                    y[d.y_at(t, dir, b)..][..hs].copy_from_slice(hb);
                    continue;
                }
                let pr = &proj[d.x_row(t, b) * stride + dir * gh..][..gh];
                let g = &gates[b * gh..(b + 1) * gh];
                for j in 0..hs {
                    let c_prev = cb[j];
                    let mut i = pr[j] + g[j];
                    if let Some(pp) = peep {
                        i += pp[j] * c_prev;
                    }
                    let i = sigmoid(clamp(i, w.clip));
                    let f = if e.input_forget {
                        1.0 - i
                    } else {
                        let mut f = pr[2 * hs + j] + g[2 * hs + j];
                        if let Some(pp) = peep {
                            f += pp[2 * hs + j] * c_prev;
                        }
                        sigmoid(clamp(f, w.clip))
                    };
                    let cand = clamp(pr[3 * hs + j] + g[3 * hs + j], w.clip).tanh();
                    let c_new = f * c_prev + i * cand;
                    let mut o = pr[hs + j] + g[hs + j];
                    if let Some(pp) = peep {
                        o += pp[hs + j] * c_new;
                    }
                    let o = sigmoid(clamp(o, w.clip));
                    cb[j] = c_new;
                    hb[j] = o * c_new.tanh();
                }
                y[d.y_at(t, dir, b)..][..hs].copy_from_slice(hb);
            }
        }
        store_state(d, dir, h, y_h);
        store_state(d, dir, c, y_c);
    }
}

/// Runs an ONNX GRU. `scratch` needs [`gru_scratch`] elements; `y` and `y_h` are fully
/// written. Panics if a slice is shorter than `d` says (callers check sizes first).
#[allow(clippy::too_many_arguments)]
pub fn gru(
    d: &RnnDims,
    w: &RnnWeights,
    linear_before_reset: bool,
    x: &[f32],
    y: &mut [f32],
    y_h: &mut [f32],
    scratch: &mut [f32],
    threads: usize,
) {
    check_weights(d, 3, w);
    let params = RnnParams {
        bias: w.bias,
        h0: w.h0,
        clip: w.clip,
    };
    let mut p = FloatProducts {
        d: *d,
        gh: 3 * d.hidden,
        w,
        threads,
    };
    gru_with(d, &params, linear_before_reset, &mut p, x, y, y_h, scratch);
}

/// [`gru`] with the products computed by `p`.
#[allow(clippy::too_many_arguments)]
pub fn gru_with(
    d: &RnnDims,
    w: &RnnParams,
    linear_before_reset: bool,
    p: &mut impl RnnProducts,
    x: &[f32],
    y: &mut [f32],
    y_h: &mut [f32],
    scratch: &mut [f32],
) {
    check_common(d, 3, w, x, y, y_h);
    assert!(scratch.len() >= gru_scratch(d), "gru: scratch");
    let (hs, bs) = (d.hidden, d.batch);
    let gh = 3 * hs;
    let stride = d.dirs * gh;
    let (proj, rest) = scratch.split_at_mut(d.seq * bs * stride);
    let (gates, rest) = rest.split_at_mut(bs * gh);
    let (h, rest) = rest.split_at_mut(bs * hs);
    // r ⊙ h_prev, the left operand of the second GEMM without `linear_before_reset`.
    let rh = &mut rest[..bs * hs];
    // With `linear_before_reset`, Rbh multiplies with r and stays out of the projection.
    let fold_r = if linear_before_reset { 2 * hs } else { gh };
    project_inputs(d, 3, w, fold_r, x, proj, p);

    for dir in 0..d.dirs {
        load_state(d, dir, w.h0, h);
        let rbh = match (linear_before_reset, w.bias) {
            (true, Some(bias)) => Some(&bias[dir * 2 * gh + gh + 2 * hs..(dir + 1) * 2 * gh]),
            _ => None,
        };
        for step in 0..d.seq {
            let t = if d.runs_reversed(dir) {
                d.seq - 1 - step
            } else {
                step
            };
            let first = if linear_before_reset { gh } else { 2 * hs };
            p.recur(dir, 0, first, h, gates, gh, false);
            // z and r, activated in place.
            for b in 0..bs {
                let pr = &proj[d.x_row(t, b) * stride + dir * gh..][..gh];
                let g = &mut gates[b * gh..(b + 1) * gh];
                for j in 0..2 * hs {
                    g[j] = sigmoid(clamp(pr[j] + g[j], w.clip));
                }
                if !linear_before_reset {
                    for j in 0..hs {
                        rh[b * hs + j] = g[hs + j] * h[b * hs + j];
                    }
                }
            }
            if !linear_before_reset && bs > 0 && hs > 0 {
                p.recur(dir, 2 * hs, hs, rh, &mut gates[2 * hs..], gh, false);
            }
            for b in 0..bs {
                let pr = &proj[d.x_row(t, b) * stride + dir * gh..][..gh];
                let g = &gates[b * gh..(b + 1) * gh];
                let hb = &mut h[b * hs..(b + 1) * hs];
                for j in 0..hs {
                    let (z, r) = (g[j], g[hs + j]);
                    let rec = match (linear_before_reset, rbh) {
                        (true, Some(rb)) => r * (g[2 * hs + j] + rb[j]),
                        (true, None) => r * g[2 * hs + j],
                        (false, _) => g[2 * hs + j],
                    };
                    let cand = clamp(pr[2 * hs + j] + rec, w.clip).tanh();
                    hb[j] = (1.0 - z) * cand + z * hb[j];
                }
                y[d.y_at(t, dir, b)..][..hs].copy_from_slice(hb);
            }
        }
        store_state(d, dir, h, y_h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_transposed_swaps_axes() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(
            pack_transposed(&a, 2, 3),
            vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
    }

    /// One-step, one-unit LSTM against the formula by hand.
    #[test]
    fn lstm_single_unit_matches_formula() {
        let d = RnnDims {
            seq: 1,
            batch: 1,
            input: 1,
            hidden: 1,
            dirs: 1,
            reverse: false,
            batch_first: false,
        };
        let wv = [0.5, -0.25, 0.75, 1.0]; // i o f c, as [4, 1]; Wᵀ is the same numbers.
        let rv = [0.1, 0.2, 0.3, 0.4];
        let w = RnnWeights {
            w_t: MatRef::row_major(&wv, 1, 4),
            r_t: MatRef::row_major(&rv, 1, 4),
            r_packed: None,
            bias: None,
            h0: Some(&[0.5]),
            clip: None,
        };
        let e = LstmExtras {
            c0: Some(&[-0.3]),
            peepholes: None,
            input_forget: false,
        };
        let (x, h0, c0) = (2.0f32, 0.5f32, -0.3f32);
        let (mut y, mut yh, mut yc) = ([0.0], [0.0], [0.0]);
        let mut scratch = vec![0.0; lstm_scratch(&d)];
        lstm(&d, &w, &e, &[x], &mut y, &mut yh, &mut yc, &mut scratch, 1);
        let pre = |k: usize| wv[k] * x + rv[k] * h0;
        let (i, o, f, g) = (
            sigmoid(pre(0)),
            sigmoid(pre(1)),
            sigmoid(pre(2)),
            pre(3).tanh(),
        );
        let c = f * c0 + i * g;
        assert!((yc[0] - c).abs() < 1e-6);
        assert!((yh[0] - o * c.tanh()).abs() < 1e-6);
        assert_eq!(y, yh);
    }
}
