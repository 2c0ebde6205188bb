//! Lanes of a recurrence: one direction and a run of its batch items, each with its own step
//! buffers (gates, h, and c or r ⊙ h) and, when lanes run side by side, its own GEMM
//! workspace, so concurrent lanes never draw from the shared packing pool (which could then
//! allocate mid-stream).
//!
//! Scratch after the projections: per direction the gates `[B, G·H]` and two `[B, H]` states,
//! then the lanes' workspaces.

use super::RnnDims;
pub(super) use crate::disjoint::Disjoint;
use crate::gemm::{lhs_workspace, par_for};

/// Below this many multiply-adds in the recurrent products of the whole layer, lanes stay on
/// the calling thread.
const LANE_MIN_WORK: usize = 1 << 18;

/// Most batch runs per direction; more threads than this per direction stay idle.
const MAX_CHUNKS: usize = 8;

/// Floats of the per-direction buffers for the whole batch: gates, then h and one more
/// `[B, H]` state (c of an LSTM, r ⊙ h of a GRU).
pub(super) fn bufs_len(d: &RnnDims, gh: usize) -> usize {
    d.dirs * d.batch * (gh + 2 * d.hidden)
}

/// Floats of GEMM workspace one lane of `rows` batch items needs for the recurrent product.
fn lane_ws(d: &RnnDims, rows: usize) -> usize {
    lhs_workspace(rows, d.hidden)
}

/// Floats of workspace for lanes side by side, whichever run length [`plan`] picks.
pub(super) fn workspace_len(d: &RnnDims) -> usize {
    (1..=MAX_CHUNKS.min(d.batch))
        .map(|chunks| d.dirs * chunks * lane_ws(d, d.batch.div_ceil(chunks)))
        .max()
        .unwrap_or(0)
}

/// Where a lane writes: Y and the final states (Y_h, and Y_c of an LSTM).
#[derive(Clone, Copy)]
pub(super) struct Outs {
    pub y: Disjoint,
    pub y_h: Disjoint,
    pub y_c: Option<Disjoint>,
}

/// One direction and the batch items `b0..b0 + rows` of it, with the lane's own buffers.
pub(super) struct Lane<'a> {
    pub id: LaneId,
    /// `[rows, G·H]`.
    pub gates: &'a mut [f32],
    /// `[rows, H]` each.
    pub h: &'a mut [f32],
    pub s: &'a mut [f32],
    /// GEMM workspace, empty when the lanes run in turn.
    pub ws: &'a mut [f32],
}

/// Which direction and batch items a lane runs.
#[derive(Clone, Copy)]
pub(super) struct LaneId {
    pub dir: usize,
    pub b0: usize,
    pub rows: usize,
}

impl LaneId {
    /// Time index of step `step` in this lane's direction.
    pub fn time(&self, d: &RnnDims, step: usize) -> usize {
        if d.runs_reversed(self.dir) {
            d.seq - 1 - step
        } else {
            step
        }
    }

    /// Fills `buf` (`h` or `s`) with the lane's rows of an initial state, or zeros.
    pub fn load(&self, d: &RnnDims, init: Option<&[f32]>, buf: &mut [f32]) {
        let h = d.hidden;
        for (r, dst) in buf.chunks_exact_mut(h).enumerate() {
            match init {
                Some(s) => dst.copy_from_slice(&s[d.state_at(self.dir, self.b0 + r)..][..h]),
                None => dst.fill(0.0),
            }
        }
    }

    /// Writes `buf` into the lane's rows of a state output.
    pub fn store(&self, d: &RnnDims, buf: &[f32], out: Disjoint) {
        let h = d.hidden;
        for (r, src) in buf.chunks_exact(h).enumerate() {
            // SAFETY: (dir, b) rows of a state are disjoint, and each belongs to one lane.
            unsafe { out.part(d.state_at(self.dir, self.b0 + r), h) }.copy_from_slice(src);
        }
    }

    /// Writes row `r` of the lane's h as Y at time `t`.
    pub fn emit(&self, d: &RnnDims, t: usize, r: usize, hb: &[f32], y: Disjoint) {
        // SAFETY: Y's (t, dir, b) vectors are disjoint, and each belongs to one lane.
        unsafe { y.part(d.y_at(t, self.dir, self.b0 + r), d.hidden) }.copy_from_slice(hb);
    }
}

/// Lane `t` of `dirs × ceil(B / per)`: direction `t / chunks`, batch run `t % chunks`; with a
/// workspace of `ws` floats when `ws > 0`.
///
/// # Safety
/// `bufs` holds [`bufs_len`] floats and then the workspaces, and no other live slice overlaps
/// the lane's parts (distinct `t` give disjoint lanes).
unsafe fn lane_at<'a>(
    d: &RnnDims,
    gh: usize,
    bufs: &'a Disjoint,
    per: usize,
    ws: usize,
    t: usize,
) -> Lane<'a> {
    let (hs, bs) = (d.hidden, d.batch);
    let chunks = bs.div_ceil(per).max(1);
    let (dir, b0) = (t / chunks, (t % chunks) * per);
    let rows = per.min(bs - b0.min(bs));
    let base = dir * bs * (gh + 2 * hs);
    let (g0, h0, s0) = (base, base + bs * gh, base + bs * (gh + hs));
    // SAFETY: rows b0..b0 + rows of direction dir's gates, h and s blocks, and workspace t,
    // exclusive to this lane as the caller guarantees.
    unsafe {
        Lane {
            id: LaneId { dir, b0, rows },
            gates: bufs.part(g0 + b0 * gh, rows * gh),
            h: bufs.part(h0 + b0 * hs, rows * hs),
            s: bufs.part(s0 + b0 * hs, rows * hs),
            ws: bufs.part(bufs_len(d, gh) + t * ws, ws),
        }
    }
}

/// How many lanes cut `B` into runs of `per` items, over every direction.
fn lane_count(d: &RnnDims, per: usize) -> usize {
    d.dirs * d.batch.div_ceil(per).max(1)
}

/// Runs `body` on every direction's whole batch, one direction after the other.
pub(super) fn in_turn(d: &RnnDims, gh: usize, bufs: &mut [f32], body: &mut dyn FnMut(Lane)) {
    let shared = Disjoint::new(bufs);
    let per = d.batch.max(1);
    for t in 0..lane_count(d, per) {
        // SAFETY: one lane at a time, each dropped before the next.
        body(unsafe { lane_at(d, gh, &shared, per, 0, t) });
    }
}

/// Runs `body` on every lane of `per` batch items, side by side on the rayon pool, each lane
/// with its own workspace.
pub(super) fn side_by_side(
    d: &RnnDims,
    gh: usize,
    bufs: &mut [f32],
    per: usize,
    body: &(dyn Fn(Lane) + Sync),
) {
    let tasks = lane_count(d, per);
    let ws = lane_ws(d, per);
    assert!(
        bufs.len() >= bufs_len(d, gh) + tasks * ws,
        "rnn: lane workspace"
    );
    let shared = Disjoint::new(bufs);
    par_for(tasks, &|t| {
        // SAFETY: every task takes a different t, so a disjoint lane.
        body(unsafe { lane_at(d, gh, &shared, per, ws, t) })
    });
}

/// Batch items per lane: the whole batch on one thread; otherwise the threads go to
/// directions first, then to runs of the batch. Returns (items per lane, run the lanes side
/// by side).
pub(super) fn plan(d: &RnnDims, gh: usize, threads: usize) -> (usize, bool) {
    let work = d.dirs * d.seq * d.batch * d.hidden * gh;
    if threads <= 1 || work < LANE_MIN_WORK || d.batch == 0 {
        return (d.batch.max(1), false);
    }
    let chunks = threads.div_ceil(d.dirs).min(d.batch).min(MAX_CHUNKS);
    (d.batch.div_ceil(chunks), d.dirs * chunks > 1)
}
