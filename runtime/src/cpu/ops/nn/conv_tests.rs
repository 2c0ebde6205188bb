//! Conv against a direct 7-loop definition, every strategy, and the strategy choice.

use super::*;
use crate::cpu::ops::{build as build_op, BuildCtx, Ctx};
use crate::ir::ops::OpInfo;
use crate::ir::{Fact, Op};
use crate::tensor::AlignedBuf;
use crate::Tensor;

/// Deterministic values in [-1, 1).
pub(crate) fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

pub(crate) fn tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(shape, data(shape.iter().product(), seed)).unwrap()
}

/// The golden-test criterion: |got − want| ≤ 1e-4 · max(1, max|want|).
pub(crate) fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale,
            "{what}: element {i} is {g}, want {w}"
        );
    }
}

/// Runs one op with all inputs non-constant and a chosen thread budget.
pub(crate) fn run_op(op: &Op, inputs: &[&Tensor], threads: usize) -> Vec<Tensor> {
    run_op_consts(op, inputs, threads, &[])
}

/// [`run_op`] with the inputs whose index is in `consts` given to the kernel as constants
/// (packed or transformed when it is built, as the weights of a compiled model are).
pub(crate) fn run_op_consts(
    op: &Op,
    inputs: &[&Tensor],
    threads: usize,
    consts: &[usize],
) -> Vec<Tensor> {
    let facts: Vec<Fact> = inputs
        .iter()
        .map(|t| Fact::new(t.dtype, t.shape.clone()))
        .collect();
    let out_facts = op.infer(&facts).unwrap();
    let consts: Vec<Option<TensorView>> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| consts.contains(&i).then(|| t.view()))
        .collect();
    let kernel = build_op(
        op,
        &BuildCtx {
            inputs: &facts,
            outputs: &out_facts,
            consts: &consts,
        },
    )
    .unwrap();
    let mut outs: Vec<Tensor> = out_facts
        .iter()
        .map(|f| Tensor::zeros(f.dtype, &f.shape))
        .collect();
    let mut scratch = AlignedBuf::zeroed(kernel.scratch_bytes());
    let views: Vec<TensorView> = inputs.iter().map(|t| t.view()).collect();
    let mut out_views: Vec<TensorViewMut> = outs.iter_mut().map(|t| t.view_mut()).collect();
    kernel
        .run(
            &views,
            &mut out_views,
            scratch.as_mut_slice(),
            &Ctx { threads },
        )
        .unwrap();
    drop(out_views);
    outs
}

pub(crate) fn act_ref(act: Option<UnaryOp>, x: f32) -> f32 {
    match act {
        None => x,
        Some(UnaryOp::Relu) => x.max(0.0),
        Some(UnaryOp::Clip { min, max }) => x.clamp(min, max),
        Some(UnaryOp::HardSwish) => x * ((x + 3.0).clamp(0.0, 6.0) / 6.0),
        Some(UnaryOp::Sigmoid) => 1.0 / (1.0 + (-x).exp()),
        Some(other) => panic!("no reference for {other:?}"),
    }
}

/// Spatial lists of a 1-D case lifted to 2-D (height 1).
fn lift(v: &[usize], one: usize) -> Vec<usize> {
    if v.len() == 1 {
        vec![one, v[0]]
    } else {
        v.to_vec()
    }
}

/// Direct 7-loop convolution; returns the output data.
fn naive(op: &Conv, x: &Tensor, w: &Tensor, b: Option<&Tensor>, r: Option<&Tensor>) -> Vec<f32> {
    let (xs, ws) = (x.as_slice::<f32>().unwrap(), w.as_slice::<f32>().unwrap());
    let (n, c, m) = (x.shape[0], x.shape[1], w.shape[0]);
    let sp = lift(&x.shape[2..], 1);
    let k = lift(&op.kernel, 1);
    let s = lift(&op.strides, 1);
    let d = lift(&op.dilations, 1);
    let p = if op.pads.len() == 2 {
        vec![0, op.pads[0], 0, op.pads[1]]
    } else {
        op.pads.clone()
    };
    let o: Vec<usize> = (0..2)
        .map(|a| (sp[a] + p[a] + p[a + 2] - d[a] * (k[a] - 1) - 1) / s[a] + 1)
        .collect();
    let (cg, mg) = (c / op.group, m / op.group);
    let mut out = vec![0.0; n * m * o[0] * o[1]];
    for ni in 0..n {
        for mi in 0..m {
            let grp = mi / mg;
            for oy in 0..o[0] {
                for ox in 0..o[1] {
                    let mut acc = b.map_or(0.0, |b| b.as_slice::<f32>().unwrap()[mi]);
                    for ci in 0..cg {
                        for ki in 0..k[0] {
                            for kj in 0..k[1] {
                                let iy = (oy * s[0] + ki * d[0]) as isize - p[0] as isize;
                                let ix = (ox * s[1] + kj * d[1]) as isize - p[1] as isize;
                                if iy < 0 || ix < 0 || iy >= sp[0] as isize || ix >= sp[1] as isize
                                {
                                    continue;
                                }
                                let xv = xs[((ni * c + grp * cg + ci) * sp[0] + iy as usize)
                                    * sp[1]
                                    + ix as usize];
                                let wv = ws[((mi * cg + ci) * k[0] + ki) * k[1] + kj];
                                acc += xv * wv;
                            }
                        }
                    }
                    let at = ((ni * m + mi) * o[0] + oy) * o[1] + ox;
                    acc += r.map_or(0.0, |r| r.as_slice::<f32>().unwrap()[at]);
                    out[at] = act_ref(op.act, acc);
                }
            }
        }
    }
    out
}

struct Case {
    name: &'static str,
    x: Vec<usize>,
    m: usize,
    group: usize,
    kernel: Vec<usize>,
    strides: Vec<usize>,
    pads: Vec<usize>,
    dilations: Vec<usize>,
    bias: bool,
    act: Option<UnaryOp>,
    residual: bool,
}

fn case(name: &'static str, x: &[usize], m: usize, kernel: &[usize]) -> Case {
    let s = kernel.len();
    Case {
        name,
        x: x.to_vec(),
        m,
        group: 1,
        kernel: kernel.to_vec(),
        strides: vec![1; s],
        pads: vec![0; 2 * s],
        dilations: vec![1; s],
        bias: false,
        act: None,
        residual: false,
    }
}

fn cases() -> Vec<Case> {
    let relu6 = Some(UnaryOp::Clip { min: 0.0, max: 6.0 });
    vec![
        case("2d 3x3", &[1, 3, 8, 9], 4, &[3, 3]),
        Case {
            pads: vec![1, 1, 1, 1],
            bias: true,
            act: Some(UnaryOp::Relu),
            ..case("2d padded bias relu", &[2, 3, 7, 6], 5, &[3, 3])
        },
        Case {
            strides: vec![2, 2],
            pads: vec![0, 1, 2, 1],
            bias: true,
            ..case("2d strided asymmetric pads", &[1, 4, 9, 10], 6, &[3, 3])
        },
        Case {
            dilations: vec![2, 3],
            pads: vec![2, 3, 2, 3],
            ..case("2d dilated", &[1, 2, 10, 11], 3, &[3, 3])
        },
        Case {
            group: 2,
            bias: true,
            pads: vec![1, 0, 1, 2],
            ..case("2d grouped", &[2, 4, 6, 7], 6, &[3, 2])
        },
        Case {
            group: 8,
            pads: vec![1, 1, 1, 1],
            bias: true,
            act: relu6,
            ..case("depthwise 3x3", &[2, 8, 9, 9], 8, &[3, 3])
        },
        Case {
            group: 6,
            strides: vec![2, 2],
            pads: vec![1, 2, 2, 1],
            bias: true,
            act: Some(UnaryOp::HardSwish),
            ..case("depthwise 5x5 strided", &[1, 6, 11, 10], 6, &[5, 5])
        },
        Case {
            group: 40,
            strides: vec![2, 2],
            pads: vec![1, 1, 2, 2],
            bias: true,
            act: relu6,
            // Enough work to split over threads; 40 is no multiple of any block width.
            ..case("depthwise threaded", &[2, 40, 33, 30], 40, &[5, 5])
        },
        // Planes wide enough for the planar path on AVX-512 (the clamp as stored; any other
        // activation as the separate pass).
        Case {
            group: 18,
            pads: vec![1, 1, 1, 1],
            bias: true,
            act: relu6,
            ..case("depthwise planar 3x3", &[1, 18, 7, 60], 18, &[3, 3])
        },
        Case {
            group: 17,
            strides: vec![2, 2],
            pads: vec![1, 1, 2, 2],
            bias: true,
            act: Some(UnaryOp::Relu),
            ..case(
                "depthwise planar 5x5 strided",
                &[1, 17, 9, 116],
                17,
                &[5, 5],
            )
        },
        Case {
            group: 5,
            pads: vec![2, 2, 2, 2],
            bias: true,
            act: Some(UnaryOp::HardSwish),
            ..case("depthwise planar hardswish", &[1, 5, 6, 57], 5, &[5, 5])
        },
        Case {
            group: 4,
            dilations: vec![2, 2],
            pads: vec![2, 2, 2, 2],
            ..case("depthwise dilated", &[1, 4, 8, 8], 4, &[3, 3])
        },
        Case {
            group: 3,
            pads: vec![1, 1, 1, 1],
            ..case("depthwise multiplier 2", &[1, 3, 6, 6], 6, &[3, 3])
        },
        Case {
            pads: vec![1, 1, 1, 1],
            bias: true,
            act: Some(UnaryOp::Relu),
            residual: true,
            // Winograd when the weights are constant (`eval`), im2col otherwise.
            ..case("3x3 winograd padded", &[2, 16, 9, 10], 24, &[3, 3])
        },
        Case {
            act: relu6,
            ..case("3x3 winograd unpadded", &[3, 8, 13, 13], 8, &[3, 3])
        },
        Case {
            bias: true,
            act: relu6,
            ..case("1x1", &[2, 16, 5, 7], 8, &[1, 1])
        },
        Case {
            group: 4,
            ..case("1x1 grouped", &[1, 8, 4, 4], 12, &[1, 1])
        },
        Case {
            strides: vec![2, 2],
            ..case("1x1 strided", &[1, 4, 7, 7], 3, &[1, 1])
        },
        Case {
            pads: vec![2, 1],
            bias: true,
            act: Some(UnaryOp::Sigmoid),
            ..case("1d", &[2, 3, 20], 4, &[5])
        },
        Case {
            strides: vec![3],
            dilations: vec![2],
            pads: vec![0, 4],
            ..case("1d strided dilated", &[1, 5, 31], 2, &[4])
        },
        Case {
            group: 6,
            pads: vec![1, 1],
            bias: true,
            ..case("1d depthwise", &[1, 6, 16], 6, &[3])
        },
        Case {
            strides: vec![4],
            bias: true,
            ..case("1d stft-like", &[1, 1, 64], 8, &[16])
        },
        Case {
            pads: vec![1, 1, 1, 1],
            bias: true,
            residual: true,
            act: Some(UnaryOp::Relu),
            ..case("residual relu, batched planes", &[3, 4, 6, 5], 6, &[3, 3])
        },
        Case {
            bias: true,
            residual: true,
            act: Some(UnaryOp::Relu),
            // Enough work for the images to split over two threads (3 + 2).
            ..case("batched planes threaded", &[5, 16, 12, 12], 24, &[3, 3])
        },
        Case {
            residual: true,
            ..case("residual 1x1 no bias", &[1, 8, 9, 9], 4, &[1, 1])
        },
        Case {
            pads: vec![1, 1, 1, 1],
            bias: true,
            residual: true,
            act: Some(UnaryOp::Relu),
            // Planes too large to batch: whole images per thread (2 + 1).
            ..case("images threaded", &[3, 4, 26, 26], 8, &[3, 3])
        },
        Case {
            group: 2,
            bias: true,
            ..case("images threaded grouped", &[3, 4, 24, 24], 6, &[3, 3])
        },
        Case {
            act: relu6,
            ..case("images threaded 1x1", &[2, 16, 24, 24], 8, &[1, 1])
        },
        Case {
            bias: true,
            residual: true,
            act: Some(UnaryOp::Relu),
            // Small planes batched, each thread multiplying its own images (2 + 2).
            ..case("batched lanes", &[4, 6, 9, 9], 32, &[3, 3])
        },
        Case {
            group: 2,
            bias: true,
            ..case("batched lanes grouped", &[3, 8, 8, 8], 32, &[3, 3])
        },
        Case {
            pads: vec![1, 1, 1, 1],
            bias: true,
            residual: true,
            act: Some(UnaryOp::Relu),
            // A first layer on grey images (direct strategy with constant weights, AVX-512).
            ..case("direct grey", &[3, 1, 20, 37], 16, &[3, 3])
        },
        Case {
            pads: vec![0, 2, 1, 0],
            act: relu6,
            ..case("direct colour", &[1, 3, 9, 40], 11, &[3, 3])
        },
        Case {
            bias: true,
            residual: true,
            act: Some(UnaryOp::Sigmoid),
            ..case("residual large plane", &[1, 3, 30, 30], 5, &[3, 3])
        },
        // Pointwise over the 7 × 7 planes of one image: Yᵀ = Xᵀ·Wᵀ then a transpose on AVX-512
        // (49 pixels would fill 64 columns), with an activation, a residual, or both.
        Case {
            bias: true,
            act: relu6,
            ..case("pointwise 7x7 transposed", &[1, 48, 7, 7], 64, &[1, 1])
        },
        Case {
            bias: true,
            residual: true,
            ..case(
                "pointwise 7x7 transposed residual",
                &[1, 40, 7, 7],
                128,
                &[1, 1],
            )
        },
        Case {
            residual: true,
            act: Some(UnaryOp::Sigmoid),
            ..case("pointwise 7x7 transposed both", &[1, 24, 7, 7], 96, &[1, 1])
        },
        // Channels cut between two threads in whole panels, the last one short; the bias
        // alone as the epilogue.
        Case {
            bias: true,
            ..case(
                "pointwise 7x7 transposed uneven",
                &[1, 56, 7, 7],
                80,
                &[1, 1],
            )
        },
    ]
}

#[test]
fn conv_matches_direct_convolution() {
    for (i, c) in cases().into_iter().enumerate() {
        let op = Conv {
            kernel: c.kernel.clone(),
            strides: c.strides.clone(),
            pads: c.pads.clone(),
            dilations: c.dilations.clone(),
            group: c.group,
            has_bias: c.bias,
            act: c.act,
            residual: c.residual,
        };
        let x = tensor(&c.x, i as u64);
        let mut wshape = vec![c.m, c.x[1] / c.group];
        wshape.extend(&c.kernel);
        let w = tensor(&wshape, 100 + i as u64);
        let b = tensor(&[c.m], 200 + i as u64);
        let out_shape = op.infer(
            &[
                Fact::new(DType::F32, c.x.clone()),
                Fact::new(DType::F32, wshape.clone()),
            ]
            .into_iter()
            .chain(c.bias.then(|| Fact::new(DType::F32, vec![c.m])))
            .collect::<Vec<_>>()
            .into_iter()
            .chain(c.residual.then(|| Fact::new(DType::F32, vec![0])))
            .collect::<Vec<_>>(),
        );
        let r_shape = match out_shape {
            Ok(f) => f[0].shape.clone(),
            // The placeholder residual shape is refused: take the shape from the message-free
            // path by inferring without the residual.
            Err(_) => Conv {
                residual: false,
                ..op.clone()
            }
            .infer(
                &[
                    Fact::new(DType::F32, c.x.clone()),
                    Fact::new(DType::F32, wshape.clone()),
                ]
                .into_iter()
                .chain(c.bias.then(|| Fact::new(DType::F32, vec![c.m])))
                .collect::<Vec<_>>(),
            )
            .unwrap()[0]
                .shape
                .clone(),
        };
        let r = tensor(&r_shape, 300 + i as u64);
        let mut inputs = vec![&x, &w];
        if c.bias {
            inputs.push(&b);
        }
        if c.residual {
            inputs.push(&r);
        }
        let want = naive(&op, &x, &w, c.bias.then_some(&b), c.residual.then_some(&r));
        let got = crate::cpu::ops::eval(&Op::Conv(op.clone()), &inputs).unwrap();
        assert_close(got[0].as_slice::<f32>().unwrap(), &want, c.name);
        let got = run_op(&Op::Conv(op.clone()), &inputs, 2);
        assert_close(got[0].as_slice::<f32>().unwrap(), &want, c.name);
        // Constant weights and bias: packed (or transformed) when the kernel is built.
        for threads in [1, 2] {
            let got = run_op_consts(&Op::Conv(op.clone()), &inputs, threads, &[1, 2]);
            let name = format!("{} (constant weights, {threads} threads)", c.name);
            assert_close(got[0].as_slice::<f32>().unwrap(), &want, &name);
        }
    }
}

#[test]
fn conv_picks_the_cheap_strategy() {
    let op = |group, kernel: &[usize]| Conv {
        kernel: kernel.to_vec(),
        strides: vec![1; 2],
        pads: vec![0; 4],
        dilations: vec![1; 2],
        group,
        has_bias: false,
        act: None,
        residual: false,
    };
    let scratch = |op: &Conv, x: &[usize], w: &[usize]| {
        let inputs = [Fact::new(DType::F32, x), Fact::new(DType::F32, w)];
        let outputs = op.infer(&inputs).unwrap();
        build(
            op,
            &BuildCtx {
                inputs: &inputs,
                outputs: &outputs,
                consts: &[None, None],
            },
        )
        .unwrap()
        .scratch_bytes()
    };
    assert_eq!(scratch(&op(1, &[1, 1]), &[1, 8, 5, 5], &[4, 8, 1, 1]), 0);
    assert!(scratch(&op(8, &[3, 3]), &[1, 8, 5, 5], &[8, 1, 3, 3]) > 0);
    assert_eq!(
        scratch(&op(1, &[3, 3]), &[1, 8, 5, 5], &[4, 8, 3, 3]),
        8 * 9 * 3 * 3 * 4
    );
    // 3×3 stride 1 with enough channels and a plane that fills the 2×2 tiles.
    let g = |ih, iw| Window2d {
        ih,
        iw,
        kh: 3,
        kw: 3,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        pt: 1,
        pl: 1,
        pb: 1,
        pr: 1,
        oh: ih,
        ow: iw,
    };
    assert!(winograd_pays(&g(16, 40), 48, 192, 1));
    assert!(winograd_pays(&g(11, 11), 32, 64, 1));
    assert!(winograd_pays(&g(3, 3), 64, 64, 1), "the seed CNN's f.6");
    assert!(
        !winograd_pays(&g(1, 5), 64, 64, 1),
        "tiles overhang a one-row plane"
    );
    assert!(
        !winograd_pays(&g(16, 40), 4, 192, 1),
        "too few input channels"
    );
    assert!(!winograd_pays(&g(16, 40), 48, 192, 2), "grouped");
    if edgefuse_kernels::gemm::Kernel::detect() == edgefuse_kernels::gemm::Kernel::Avx512 {
        assert!(transposed_pays(49, 192), "EfficientNet's 7×7 project convs");
        assert!(transposed_pays(49, 1152), "… and expand convs");
        assert!(
            !transposed_pays(196, 112),
            "14×14 planes fill the panels well enough"
        );
        assert!(!transposed_pays(3136, 24), "large planes");
    } else {
        assert!(!transposed_pays(49, 192), "AVX-512 only");
    }
}

#[test]
fn conv_3d_is_reported_unsupported() {
    let op = Conv {
        kernel: vec![1, 1, 1],
        strides: vec![1; 3],
        pads: vec![0; 6],
        dilations: vec![1; 3],
        group: 1,
        has_bias: false,
        act: None,
        residual: false,
    };
    let x = tensor(&[1, 2, 2, 2, 2], 1);
    let w = tensor(&[1, 2, 1, 1, 1], 2);
    let err = crate::cpu::ops::eval(&Op::Conv(op), &[&x, &w]).unwrap_err();
    assert!(matches!(err, crate::Error::Unsupported(_)), "{err}");
}
