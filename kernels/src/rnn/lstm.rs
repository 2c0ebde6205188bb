//! The LSTM cell (ONNX gates i, o, f, c; sigmoid/tanh/tanh) over the lanes of `super`.

use super::{
    check_common, check_weights, clamp, lanes, prepare, split, Disjoint, FloatProducts, Lane,
    LstmExtras, Outs, RnnDims, RnnParams, RnnProducts, RnnWeights,
};
use crate::activation::sigmoid;
use crate::vmath::lstm_cell;

/// Runs an ONNX LSTM. `scratch` needs [`super::lstm_scratch`] elements; `y`, `y_h`, `y_c` are
/// fully written. With `threads > 1` and enough work, directions and runs of the batch go to
/// separate threads for the whole sequence. Panics if a slice is shorter than `d` says (callers
/// check sizes first).
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
    let products = |threads, ws| FloatProducts {
        d: *d,
        gh: 4 * d.hidden,
        w,
        threads,
        ws,
    };
    // One lane (batch 1, one direction): its units split between two threads, step by step.
    if let Some(r) = w
        .r_packed
        .filter(|r| split::pays(d, e, w.clip, r.first(), threads))
    {
        let outs = checked(d, &params, e, x, y, y_h, y_c);
        let mut p = products(threads, None);
        let (proj, bufs) = prepare(d, 4, &params, 4 * d.hidden, &mut p, x, scratch);
        return split::run(d, &params, e, &r[0], proj, bufs, outs);
    }
    let (per, parallel) = lanes::plan(d, 4 * d.hidden, threads);
    // Side by side, each lane's step product packs h into the lane's own workspace.
    if !parallel || w.r_packed.is_none() {
        let mut p = products(threads, None);
        return lstm_with(d, &params, e, &mut p, x, y, y_h, y_c, scratch);
    }
    let outs = checked(d, &params, e, x, y, y_h, y_c);
    let mut p = products(threads, None);
    let (proj, bufs) = prepare(d, 4, &params, 4 * d.hidden, &mut p, x, scratch);
    lanes::side_by_side(d, 4 * d.hidden, bufs, per, &|mut lane| {
        let mut p = FloatProducts {
            ws: Some(std::mem::take(&mut lane.ws)),
            ..products(1, None)
        };
        cell(d, &params, e, &mut p, proj, lane, outs)
    });
}

/// [`lstm`] with the products computed by `p`, one direction after the other.
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
    let outs = checked(d, w, e, x, y, y_h, y_c);
    let (proj, bufs) = prepare(d, 4, w, 4 * d.hidden, p, x, scratch);
    lanes::in_turn(d, 4 * d.hidden, bufs, &mut |lane| {
        cell(d, w, e, p, proj, lane, outs)
    });
}

/// Checks the arguments and returns the outputs as lanes write them.
fn checked(
    d: &RnnDims,
    w: &RnnParams,
    e: &LstmExtras,
    x: &[f32],
    y: &mut [f32],
    y_h: &mut [f32],
    y_c: &mut [f32],
) -> Outs {
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
    Outs {
        y: Disjoint::new(y),
        y_h: Disjoint::new(y_h),
        y_c: Some(Disjoint::new(y_c)),
    }
}

/// A row's four gates (`i, o, f, c`), `hs` units each.
fn gate_slices(row: &[f32], hs: usize) -> [&[f32]; 4] {
    let (i, rest) = row.split_at(hs);
    let (o, rest) = rest.split_at(hs);
    let (f, c) = rest.split_at(hs);
    [i, o, f, &c[..hs]]
}

/// Every step of one lane: the lane's rows of h and c from the initial states, then per step
/// one recurrent product and the gate math, Y written as it goes, the final states at the end.
fn cell(
    d: &RnnDims,
    w: &RnnParams,
    e: &LstmExtras,
    p: &mut impl RnnProducts,
    proj: &[f32],
    lane: Lane,
    outs: Outs,
) {
    let Lane {
        id, gates, h, s: c, ..
    } = lane;
    let (hs, dir) = (d.hidden, id.dir);
    let gh = 4 * hs;
    let stride = d.dirs * gh;
    let proj_row = |t: usize, r: usize| &proj[d.x_row(t, id.b0 + r) * stride + dir * gh..][..gh];
    id.load(d, w.h0, h);
    id.load(d, e.c0, c);
    let peep = e.peepholes.map(|p| &p[dir * 3 * hs..(dir + 1) * 3 * hs]);
    // Fast path: the recurrent product alone, then the projection added and every gate
    // activated in one vectorised pass (`vmath::lstm_cell`).
    let fast = peep.is_none() && w.clip.is_none() && !e.input_forget;
    for step in 0..d.seq {
        let t = id.time(d, step);
        p.recur(dir, 0, gh, h, id.rows, gates, gh, false);
        for r in 0..id.rows {
            let hb = &mut h[r * hs..(r + 1) * hs];
            let cb = &mut c[r * hs..(r + 1) * hs];
            let g = &gates[r * gh..(r + 1) * gh];
            if fast {
                lstm_cell(gate_slices(g, hs), gate_slices(proj_row(t, r), hs), cb, hb);
            } else {
                let pr = proj_row(t, r);
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
            }
            id.emit(d, t, r, hb, outs.y);
        }
    }
    id.store(d, h, outs.y_h);
    if let Some(y_c) = outs.y_c {
        id.store(d, c, y_c);
    }
}
