//! One LSTM lane (one direction, batch 1) split by hidden units between two threads, step by
//! step: each thread takes a half of the units, multiplies h by its half of every gate's
//! columns of R (`gemm::sgemv_packed_b_cols`), activates them and writes its half of the
//! new c and h. The halves meet once per step: h is double-buffered (step s reads buffer
//! s mod 2 and writes the other), and a half of step s + 1 starts only when both halves of
//! step s are done.
//!
//! The halves are claimed from a counter, in order, by whichever thread comes for one, so a
//! thread that never joins (a busy pool) costs nothing but the split: the other takes every
//! half. A thread only waits for a half another thread has claimed and is running.
//!
//! Silero's LSTM (128 units, 32 steps, batch 1) ran on one thread while the other idled: the
//! recurrent product, 512 × 128 per step, was most of its 0.13 ms.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::lanes::LaneId;
use super::{Disjoint, LstmExtras, Outs, RnnDims, RnnParams};
use crate::gemm::{par_for, sgemv_packed_b_cols, PackedB};
use crate::vmath::lstm_cell;

/// Least multiply-adds per step of the recurrent product for the split: below, the per-step
/// meeting costs more than half the product saves.
const SPLIT_MIN_STEP: usize = 1 << 15;

/// From this many multiply-adds per step the product itself splits over every thread
/// (`gemm`'s one-row path); the split here, two threads only, then takes over only where
/// there are two.
const GEMM_PARALLEL_STEP: usize = 1 << 18;

/// Whether [`run`] should take this layer: one lane (one direction, batch 1) with no
/// peepholes, clip or coupled input-forget gate, R packed, whole panels of units (so each
/// gate's columns start on a panel: with NEON's 12-wide panels Silero's 128 units do not
/// qualify), at least two of them, and enough work per step; two threads, or more threads
/// and a step too small for the product to split over them itself.
pub(super) fn pays(
    d: &RnnDims,
    e: &LstmExtras,
    clip: Option<f32>,
    r: Option<&PackedB>,
    threads: usize,
) -> bool {
    let Some(r) = r else { return false };
    let nr = r.panel_width();
    threads > 1
        && d.dirs == 1
        && d.batch == 1
        && d.seq > 1
        && e.peepholes.is_none()
        && clip.is_none()
        && !e.input_forget
        && d.hidden.is_multiple_of(nr)
        && d.hidden >= 2 * nr
        && 4 * d.hidden * d.hidden >= SPLIT_MIN_STEP
        && (threads == 2 || 4 * d.hidden * d.hidden < GEMM_PARALLEL_STEP)
}

/// Floats of scratch [`run`] needs beyond the projections: gates, two h buffers and c.
pub(super) fn bufs_len(d: &RnnDims) -> usize {
    4 * d.hidden + 3 * d.hidden
}

/// Runs every step of the layer (see the module doc). `proj` holds the input projections
/// (bias included) for every step, `[seq, 4·H]`; `bufs` at least [`bufs_len`] floats.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    d: &RnnDims,
    w: &RnnParams,
    e: &LstmExtras,
    r: &PackedB,
    proj: &[f32],
    bufs: &mut [f32],
    outs: Outs,
) {
    let hs = d.hidden;
    let gh = 4 * hs;
    let nr = r.panel_width();
    assert!(bufs.len() >= bufs_len(d), "lstm: split scratch");
    assert!(proj.len() >= d.seq * gh, "lstm: projections");
    let (gates, rest) = bufs.split_at_mut(gh);
    let (hbuf, rest) = rest.split_at_mut(2 * hs);
    let c = &mut rest[..hs];
    // The one lane: direction 0, batch item 0. Initial states: h into buffer 0, c.
    let id = LaneId {
        dir: 0,
        b0: 0,
        rows: 1,
    };
    id.load(d, w.h0, &mut hbuf[..hs]);
    id.load(d, e.c0, c);
    // The first half: whole panels, at least half the units.
    let mid = (hs / 2).next_multiple_of(nr);
    let halves = [(0, mid), (mid, hs)];
    let (gates, hbuf, c) = (Disjoint::new(gates), Disjoint::new(hbuf), Disjoint::new(c));
    let (next, done) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let tasks = 2 * d.seq;
    let half = |step: usize, (u0, u1): (usize, usize)| {
        let t = id.time(d, step);
        let n = u1 - u0;
        let (cur, nxt) = ((step % 2) * hs, ((step + 1) % 2) * hs);
        // SAFETY: every thread reads all of h's current buffer while no one writes it (this
        // step's halves write the other buffer; the next step's start after both halves of
        // this one are done).
        let h = unsafe { hbuf.read(cur, hs) };
        // Each gate's columns of this half: i, o, f, c (ONNX order).
        let prow = &proj[d.x_row(t, 0) * gh..][..gh];
        for g in 0..4 {
            let cols = g * hs + u0..g * hs + u1;
            // SAFETY: gate columns of this half, touched by no other half.
            let gs = unsafe { gates.part(cols.start, n) };
            sgemv_packed_b_cols(h, r, cols, gs, 0.0, 1.0);
        }
        // SAFETY: as above, each gate's columns of this half (read only from here on); this
        // half's units of c and of the next h buffer belong to this half alone.
        let (g, cs, hn) = unsafe {
            (
                [0, 1, 2, 3].map(|k| gates.read(k * hs + u0, n)),
                c.part(u0, n),
                hbuf.part(nxt + u0, n),
            )
        };
        lstm_cell(g, [0, 1, 2, 3].map(|k| &prow[k * hs + u0..][..n]), cs, hn);
        // SAFETY: Y's (t, 0, 0) vector, this half's units: written by this half alone.
        unsafe { outs.y.part(d.y_at(t, 0, 0) + u0, n) }.copy_from_slice(hn);
    };
    par_for(2, &|_| loop {
        let task = next.fetch_add(1, Ordering::Relaxed);
        if task >= tasks {
            break;
        }
        let step = task / 2;
        // Both halves of the previous step must be done: their h is read, and this half's
        // gate columns and c may have been written by the other thread then.
        let mut spins = 0u32;
        while done.load(Ordering::Acquire) < 2 * step {
            spins += 1;
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        half(step, halves[task % 2]);
        done.fetch_add(1, Ordering::Release);
    });
    // The final states: h in the buffer the last step wrote.
    let last = (d.seq % 2) * hs;
    // SAFETY: the threads are done; nothing writes the buffers any more.
    let (h, c) = unsafe { (hbuf.read(last, hs), c.read(0, hs)) };
    id.store(d, h, outs.y_h);
    if let Some(y_c) = outs.y_c {
        id.store(d, c, y_c);
    }
}
