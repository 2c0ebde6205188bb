//! Recurrent layers with ONNX semantics and default activations: LSTM (gates i, o, f, c;
//! sigmoid/tanh/tanh) and GRU (gates z, r, h; sigmoid/tanh).
//!
//! Shape of the work: the input projection of every timestep and every direction is one GEMM,
//! `X[T·B, I] · Wᵀ[I, D·G·H]`, into scratch, with the biases folded in; then each step is one
//! GEMM `h[B, H] · Rᵀ[H, G·H]` (two for a GRU without `linear_before_reset`) followed by fused
//! gate math.
//!
//! The recurrence runs in lanes: a direction and a run of its batch items, each lane with its
//! own gates and state rows. Batch items and directions never read each other's state, so with
//! several threads [`lstm`] and [`gru`] run the lanes side by side, one fork for the whole
//! sequence rather than one per step (a bidirectional layer's two directions, or halves of a
//! batch). [`lstm_with`] and [`gru_with`] run one lane per direction, in turn.
//!
//! Files: `lstm.rs` and `gru.rs` hold the cells; this file the shapes, the products, the
//! projection and the lane plumbing.
//!
//! Layouts follow ONNX: time-major X [T, B, I], Y [T, D, B, H], states [D, B, H]; batch-first
//! (`layout = 1`) X [B, T, I], Y [B, T, D, H], states [B, D, H]. Biases are ONNX `B` rows,
//! `[D, 2·G·H]`, W half then R half. Peepholes are `[D, 3·H]` in the order i, o, f.
//!
//! The two products go through [`RnnProducts`]: [`lstm`] and [`gru`] run them as float GEMMs;
//! [`lstm_with`] and [`gru_with`] take any implementation (the runtime's int8 QLstm/QGru
//! quantize X and h dynamically), with the gate math and states unchanged, in f32.

mod gru;
mod lanes;
mod lstm;
mod split;
#[cfg(test)]
mod tests;

pub use gru::{gru, gru_with};
pub use lstm::{lstm, lstm_with};

use crate::gemm::{sgemm, sgemm_packed_b, sgemm_packed_b_in, MatRef, PackedB};
use lanes::{Disjoint, Lane, Outs};

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
    /// `w_t` packed by [`crate::gemm::pack_b`], when W is a constant: the projection then
    /// repacks nothing per call.
    pub w_packed: Option<&'a PackedB>,
    /// W is the column selection `W_d[j][d·G·H + j] = 1` (X already holds every direction's
    /// projection, side by side: an embedding table folded with W at compile time), so the
    /// projection adds X's rows instead of multiplying.
    pub projected: bool,
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
    /// for `j < cols` and each of the `rows` batch items `b` of `h` (`[rows, H]`): the batch,
    /// or the lane's part of it.
    #[allow(clippy::too_many_arguments)]
    fn recur(
        &mut self,
        dir: usize,
        col0: usize,
        cols: usize,
        h: &[f32],
        rows: usize,
        gates: &mut [f32],
        ld: usize,
        accumulate: bool,
    );
}

/// The float products: SGEMM with `w.w_t` / `w.r_t` (and `w.r_packed` for whole-gate steps).
struct FloatProducts<'a, 'w> {
    d: RnnDims,
    gh: usize,
    w: &'a RnnWeights<'a>,
    threads: usize,
    /// A lane's own workspace for the packed step product, when lanes run side by side.
    ws: Option<&'w mut [f32]>,
}

impl RnnProducts for FloatProducts<'_, '_> {
    fn project(&mut self, x: &[f32], rows: usize, proj: &mut [f32]) {
        let (i, n) = (self.d.input, self.d.dirs * self.gh);
        if self.w.projected && i == n {
            // (In the widest vectors: the seed LSTM's 320 × 512 floats.)
            crate::vmath::add_inplace(&mut proj[..rows * n], &x[..rows * n]);
            return;
        }
        let xm = MatRef::row_major(&x[..rows * i], rows, i);
        match self.w.w_packed {
            Some(wp) => sgemm_packed_b(xm, wp, proj, n, 1.0, 1.0, self.threads),
            None => sgemm(rows, n, i, xm, self.w.w_t, proj, n, 1.0, 1.0, self.threads),
        }
    }

    fn recur(
        &mut self,
        dir: usize,
        col0: usize,
        cols: usize,
        h: &[f32],
        bs: usize,
        gates: &mut [f32],
        ld: usize,
        accumulate: bool,
    ) {
        let hs = self.d.hidden;
        let keep = if accumulate { 1.0 } else { 0.0 };
        let hm = MatRef::row_major(&h[..bs * hs], bs, hs);
        match (self.w.r_packed, &mut self.ws) {
            (Some(rp), Some(ws)) if col0 == 0 && cols == self.gh => {
                sgemm_packed_b_in(hm, &rp[dir], gates, ld, keep, 1.0, ws)
            }
            (Some(rp), None) if col0 == 0 && cols == self.gh => {
                sgemm_packed_b(hm, &rp[dir], gates, ld, keep, 1.0, self.threads)
            }
            _ => {
                let r_t = col_block(self.w.r_t, dir * self.gh + col0, cols);
                sgemm(bs, cols, hs, hm, r_t, gates, ld, keep, 1.0, self.threads)
            }
        }
    }
}

/// Scratch, in f32 elements, that [`lstm`] needs.
pub fn lstm_scratch(d: &RnnDims) -> usize {
    scratch_len(d, 4)
}

/// Scratch, in f32 elements, that [`gru`] needs.
pub fn gru_scratch(d: &RnnDims) -> usize {
    scratch_len(d, 3)
}

/// Projections for all steps, then the lanes' buffers (see `lanes.rs`).
fn scratch_len(d: &RnnDims, gates: usize) -> usize {
    let gh = gates * d.hidden;
    // (The split LSTM's buffers, `split::bufs_len`, where they are larger: a second h.)
    let bufs = lanes::bufs_len(d, gh) + lanes::workspace_len(d);
    d.seq * d.batch * d.dirs * gh + bufs.max(split::bufs_len(d))
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

/// Checks the common arguments, then splits `scratch` into the projections (filled here with
/// `X · Wᵀ + bias` by `p`) and the lanes' buffers.
#[allow(clippy::too_many_arguments)]
fn prepare<'s>(
    d: &RnnDims,
    gates: usize,
    w: &RnnParams,
    fold_r: usize,
    p: &mut impl RnnProducts,
    x: &[f32],
    scratch: &'s mut [f32],
) -> (&'s [f32], &'s mut [f32]) {
    let gh = gates * d.hidden;
    assert!(scratch.len() >= scratch_len(d, gates), "rnn: scratch");
    let (proj, bufs) = scratch.split_at_mut(d.seq * d.batch * d.dirs * gh);
    project_inputs(d, gates, w, fold_r, x, proj, p);
    (proj, bufs)
}
