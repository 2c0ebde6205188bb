//! Unit tests of the recurrent cells.

use super::*;
use crate::activation::sigmoid;

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
        projected: false,
        w_t: MatRef::row_major(&wv, 1, 4),
        r_t: MatRef::row_major(&rv, 1, 4),
        r_packed: None,
        w_packed: None,
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

/// Deterministic values in [-0.5, 0.5).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

/// A layer big enough for the lanes to run side by side, with a batch that does not split
/// evenly, in both layouts and both directions.
fn lane_cases() -> Vec<RnnDims> {
    let mut v = Vec::new();
    for (dirs, reverse) in [(1, false), (1, true), (2, false)] {
        for batch_first in [false, true] {
            for batch in [1, 5] {
                v.push(RnnDims {
                    seq: 24,
                    batch,
                    input: 24,
                    hidden: 64,
                    dirs,
                    reverse,
                    batch_first,
                });
            }
        }
    }
    v
}

/// Lanes on several threads give what one thread gives (only the step products' summation
/// order may differ, for one-row lanes). The LSTM runs its lanes side by side; the GRU, in
/// turn, goes through the same lane code.
#[test]
fn lanes_match_one_thread() {
    for d in lane_cases() {
        for gates in [3, 4] {
            let gh = gates * d.hidden;
            assert!(
                d.batch == 1 && d.dirs == 1 || lanes::plan(&d, gh, 3).1,
                "{d:?}: expected lanes side by side"
            );
            let w_t = values(d.input * d.dirs * gh, 1);
            let r_t = values(d.hidden * d.dirs * gh, 2);
            let bias = values(d.dirs * 2 * gh, 3);
            let (h0, c0) = (values(d.state_len(), 4), values(d.state_len(), 5));
            let x = values(d.x_len(), 6);
            let r_m = MatRef::row_major(&r_t, d.hidden, d.dirs * gh);
            // Each direction's Rᵀ packed, as the runtime does for a constant R.
            let packed: Vec<_> = (0..d.dirs)
                .map(|dir| {
                    let cols: Vec<f32> = r_t
                        .chunks(d.dirs * gh)
                        .flat_map(|row| &row[dir * gh..(dir + 1) * gh])
                        .copied()
                        .collect();
                    crate::gemm::pack_b(MatRef::row_major(&cols, d.hidden, gh), d.hidden, gh)
                })
                .collect();
            let w = RnnWeights {
                projected: false,
                w_t: MatRef::row_major(&w_t, d.input, d.dirs * gh),
                r_t: r_m,
                r_packed: Some(&packed),
                w_packed: None,
                bias: Some(&bias),
                h0: Some(&h0),
                clip: None,
            };
            let e = LstmExtras {
                c0: Some(&c0),
                peepholes: None,
                input_forget: false,
            };
            let run = |threads: usize| {
                let (mut y, mut yh, mut yc) = (
                    vec![0.0; d.y_len()],
                    vec![0.0; d.state_len()],
                    vec![0.0; d.state_len()],
                );
                if gates == 4 {
                    let mut s = vec![f32::NAN; lstm_scratch(&d)];
                    lstm(&d, &w, &e, &x, &mut y, &mut yh, &mut yc, &mut s, threads);
                } else {
                    let mut s = vec![f32::NAN; gru_scratch(&d)];
                    gru(&d, &w, false, &x, &mut y, &mut yh, &mut s, threads);
                }
                [y, yh, yc]
            };
            let (one, three) = (run(1), run(3));
            for (a, b) in one.iter().zip(&three) {
                let worst = a
                    .iter()
                    .zip(b)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0, f32::max);
                assert!(
                    worst <= 1e-5,
                    "{d:?}, {gates} gates: lanes differ by {worst}"
                );
            }
        }
    }
}

/// An LSTM whose X already holds every direction's projection (`projected`, W the column
/// selection) gives what the unprojected LSTM gives, bidirectional, on 1 and 2 threads.
#[test]
fn projected_input_matches_the_projection() {
    let (seq, batch, input, hidden, dirs) = (4, 3, 5, 6, 2);
    let d = RnnDims {
        seq,
        batch,
        input,
        hidden,
        dirs,
        reverse: false,
        batch_first: false,
    };
    let n = dirs * 4 * hidden;
    let (wv, rv, x) = (
        values(n * input, 1),
        values(n * hidden, 2),
        values(seq * batch * input, 3),
    );
    let bias = values(dirs * 8 * hidden, 4);
    // The projection by hand: P[r][c] = Σ_i X[r][i]·W[c][i].
    let p: Vec<f32> = (0..seq * batch)
        .flat_map(|r| {
            let (x, wv) = (&x, &wv);
            (0..n).map(move |c| {
                (0..input)
                    .map(|i| x[r * input + i] * wv[c * input + i])
                    .sum()
            })
        })
        .collect();
    let select: Vec<f32> = (0..n * n)
        .map(|k| if k / n == k % n { 1.0 } else { 0.0 })
        .collect();
    let e = LstmExtras {
        c0: None,
        peepholes: None,
        input_forget: false,
    };
    for threads in [1, 2] {
        let run = |w: &RnnWeights, d: &RnnDims, x: &[f32]| {
            let mut y = vec![0.0; seq * dirs * batch * hidden];
            let (mut yh, mut yc) = (
                vec![0.0; dirs * batch * hidden],
                vec![0.0; dirs * batch * hidden],
            );
            let mut scratch = vec![0.0; lstm_scratch(d)];
            lstm(d, w, &e, x, &mut y, &mut yh, &mut yc, &mut scratch, threads);
            (y, yh, yc)
        };
        let plain = RnnWeights {
            projected: false,
            w_t: MatRef::transposed(&wv, input, n),
            r_t: MatRef::transposed(&rv, hidden, n),
            r_packed: None,
            w_packed: None,
            bias: Some(&bias),
            h0: None,
            clip: None,
        };
        let dp = RnnDims { input: n, ..d };
        let folded = RnnWeights {
            projected: true,
            w_t: MatRef::transposed(&select, n, n),
            ..plain
        };
        let (a, b) = (run(&plain, &d, &x), run(&folded, &dp, &p));
        for (u, v) in [(&a.0, &b.0), (&a.1, &b.1), (&a.2, &b.2)] {
            for (s, t) in u.iter().zip(v) {
                assert!((s - t).abs() < 1e-5, "{threads} thread(s): {s} vs {t}");
            }
        }
    }
}

/// One lane split by units between two threads (`split.rs`) gives exactly what one thread
/// gives: the same strip kernel sums each gate column in the same order. Even halves (128
/// units) and uneven ones (96: 64 + 32 with AVX-512's 32-wide panels), both directions, with and
/// without initial states, in
/// a two-thread pool and in a one-thread pool (where one thread takes every half).
#[test]
fn split_lane_matches_one_thread() {
    for (hidden, reverse, init) in [(128, false, true), (128, true, false), (96, false, true)] {
        let d = RnnDims {
            seq: 9,
            batch: 1,
            input: 20,
            hidden,
            dirs: 1,
            reverse,
            batch_first: false,
        };
        let gh = 4 * hidden;
        let w_t = values(d.input * gh, 11);
        let r_t = values(hidden * gh, 12);
        let bias = values(2 * gh, 13);
        let (h0, c0) = (values(d.state_len(), 14), values(d.state_len(), 15));
        let x = values(d.x_len(), 16);
        let packed = [crate::gemm::pack_b(
            MatRef::row_major(&r_t, hidden, gh),
            hidden,
            gh,
        )];
        let w = RnnWeights {
            projected: false,
            w_t: MatRef::row_major(&w_t, d.input, gh),
            r_t: MatRef::row_major(&r_t, hidden, gh),
            r_packed: Some(&packed),
            w_packed: None,
            bias: Some(&bias),
            h0: init.then_some(&h0[..]),
            clip: None,
        };
        let e = LstmExtras {
            c0: init.then_some(&c0[..]),
            peepholes: None,
            input_forget: false,
        };
        #[cfg(target_arch = "x86_64")]
        assert!(
            split::pays(&d, &e, None, Some(&packed[0]), 2),
            "{d:?}: expected the split"
        );
        let run = |threads: usize, pool: usize| {
            let (mut y, mut yh, mut yc) = (
                vec![0.0; d.y_len()],
                vec![0.0; d.state_len()],
                vec![0.0; d.state_len()],
            );
            let mut s = vec![f32::NAN; lstm_scratch(&d)];
            rayon::ThreadPoolBuilder::new()
                .num_threads(pool)
                .build()
                .unwrap()
                .install(|| lstm(&d, &w, &e, &x, &mut y, &mut yh, &mut yc, &mut s, threads));
            [y, yh, yc]
        };
        let one = run(1, 1);
        assert_eq!(one, run(2, 2), "{d:?}: split on two threads");
        assert_eq!(one, run(2, 1), "{d:?}: split in a one-thread pool");
    }
}
