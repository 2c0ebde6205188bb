//! The GRU cell (ONNX gates z, r, h; sigmoid/tanh) over the lanes of `super`.

use super::{
    check_common, check_weights, clamp, lanes, prepare, Disjoint, FloatProducts, Lane, Outs,
    RnnDims, RnnParams, RnnProducts, RnnWeights,
};
use crate::activation::sigmoid;

/// Runs an ONNX GRU. `scratch` needs [`super::gru_scratch`] elements; `y` and `y_h` are fully
/// written. The directions run in turn: the step products go through the shared packing pool
/// (their gate blocks are column ranges of R), so lanes side by side could allocate. Panics if
/// a slice is shorter than `d` says (callers check sizes first).
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
        ws: None,
    };
    gru_with(d, &params, linear_before_reset, &mut p, x, y, y_h, scratch);
}

/// [`gru`] with the products computed by `p`, one direction after the other.
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
    let outs = checked(d, w, x, y, y_h);
    let fold_r = fold_r(d, linear_before_reset);
    let (proj, bufs) = prepare(d, 3, w, fold_r, p, x, scratch);
    lanes::in_turn(d, 3 * d.hidden, bufs, &mut |lane| {
        cell(d, w, linear_before_reset, p, proj, lane, outs)
    });
}

/// Gate columns whose R bias goes into the projection: all of them, except that with
/// `linear_before_reset` Rbh multiplies with r and stays out.
fn fold_r(d: &RnnDims, linear_before_reset: bool) -> usize {
    if linear_before_reset {
        2 * d.hidden
    } else {
        3 * d.hidden
    }
}

fn checked(d: &RnnDims, w: &RnnParams, x: &[f32], y: &mut [f32], y_h: &mut [f32]) -> Outs {
    check_common(d, 3, w, x, y, y_h);
    Outs {
        y: Disjoint::new(y),
        y_h: Disjoint::new(y_h),
        y_c: None,
    }
}

/// Every step of one lane; `s` holds r ⊙ h_prev, the left operand of the second product
/// without `linear_before_reset`.
fn cell(
    d: &RnnDims,
    w: &RnnParams,
    linear_before_reset: bool,
    p: &mut impl RnnProducts,
    proj: &[f32],
    lane: Lane,
    outs: Outs,
) {
    let Lane {
        id,
        gates,
        h,
        s: rh,
        ..
    } = lane;
    let (hs, dir, rows) = (d.hidden, id.dir, id.rows);
    let gh = 3 * hs;
    let stride = d.dirs * gh;
    let proj_row = |t: usize, r: usize| &proj[d.x_row(t, id.b0 + r) * stride + dir * gh..][..gh];
    id.load(d, w.h0, h);
    let rbh = match (linear_before_reset, w.bias) {
        (true, Some(bias)) => Some(&bias[dir * 2 * gh + gh + 2 * hs..(dir + 1) * 2 * gh]),
        _ => None,
    };
    for step in 0..d.seq {
        let t = id.time(d, step);
        let first = if linear_before_reset { gh } else { 2 * hs };
        p.recur(dir, 0, first, h, rows, gates, gh, false);
        // z and r, activated in place.
        for r in 0..rows {
            let pr = proj_row(t, r);
            let g = &mut gates[r * gh..(r + 1) * gh];
            for j in 0..2 * hs {
                g[j] = sigmoid(clamp(pr[j] + g[j], w.clip));
            }
            if !linear_before_reset {
                for j in 0..hs {
                    rh[r * hs + j] = g[hs + j] * h[r * hs + j];
                }
            }
        }
        if !linear_before_reset && rows > 0 && hs > 0 {
            p.recur(dir, 2 * hs, hs, rh, rows, &mut gates[2 * hs..], gh, false);
        }
        for r in 0..rows {
            let pr = proj_row(t, r);
            let g = &gates[r * gh..(r + 1) * gh];
            let hb = &mut h[r * hs..(r + 1) * hs];
            for j in 0..hs {
                let (z, rg) = (g[j], g[hs + j]);
                let rec = match (linear_before_reset, rbh) {
                    (true, Some(rb)) => rg * (g[2 * hs + j] + rb[j]),
                    (true, None) => rg * g[2 * hs + j],
                    (false, _) => g[2 * hs + j],
                };
                let cand = clamp(pr[2 * hs + j] + rec, w.clip).tanh();
                hb[j] = (1.0 - z) * cand + z * hb[j];
            }
            id.emit(d, t, r, hb, outs.y);
        }
    }
    id.store(d, h, outs.y_h);
}
