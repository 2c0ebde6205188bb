//! QConv on the GPU against the CPU kernel (within one step of the output's quantization:
//! the two epilogues may round a tie apart), and its host-side decisions without a GPU.

use super::*;
use crate::cuda::ops::testing::check;
use crate::ir::ops::{Conv, QScale, UnaryOp};
use crate::ir::Op;
use crate::Tensor;

fn bytes(dtype: DType, shape: &[usize], seed: usize) -> Tensor {
    let mut t = Tensor::zeros(dtype, shape);
    for (i, b) in t.bytes_mut().iter_mut().enumerate() {
        *b = ((i * 131 + seed * 17) % 251) as u8;
    }
    t
}

fn qconv(group: usize, m: usize, act: Option<UnaryOp>, out: QOut) -> QConv {
    QConv {
        conv: Conv {
            kernel: vec![3, 3],
            strides: vec![2, 2],
            pads: vec![1, 0, 1, 1],
            dilations: vec![1, 1],
            group,
            has_bias: true,
            act,
            residual: false,
        },
        x: QScale {
            scale: 0.02,
            zero_point: 7,
        },
        w_scale: (0..m).map(|i| 0.01 + i as f32 * 1e-3).collect(),
        w_zero_point: vec![0; m],
        out,
    }
}

fn u8_out() -> QOut {
    QOut {
        dtype: DType::U8,
        q: Some(QScale {
            scale: 0.05,
            zero_point: 3,
        }),
    }
}

const F32_OUT: QOut = QOut {
    dtype: DType::F32,
    q: None,
};

#[test]
fn requant_folds_relu_and_clip_into_the_clamp() {
    let op = qconv(1, 4, Some(UnaryOp::Relu), u8_out());
    let r = requant(&op, &[0.5; 4], 4).unwrap();
    assert_eq!((r.zp, r.lo, r.hi), (3.0, 3.0, 255.0));
    assert_eq!(r.mult[1], 0.02 * 0.011 / 0.05);
    assert_eq!(r.add[0], 0.5 / 0.05);
    let op = qconv(1, 4, Some(UnaryOp::Clip { min: 0.0, max: 6.0 }), u8_out());
    let r = requant(&op, &[], 4).unwrap();
    assert_eq!((r.lo, r.hi), (3.0, 123.0));
    let r = requant(&qconv(1, 4, None, F32_OUT), &[], 4).unwrap();
    assert_eq!((r.lo, r.hi), (f32::NEG_INFINITY, f32::INFINITY));
}

#[test]
fn unsupported_forms_stay_on_the_cpu() {
    let facts = [
        Fact::new(DType::U8, vec![1, 4, 9, 9]),
        Fact::new(DType::I8, vec![8, 4, 3, 3]),
        Fact::new(DType::F32, vec![8]),
    ];
    let out = [Fact::new(DType::U8, vec![1, 8, 5, 4])];
    assert!(supports(&qconv(1, 8, None, u8_out()), &facts, &out).is_ok());
    let mut residual = qconv(1, 8, None, u8_out());
    residual.conv.residual = true;
    assert!(supports(&residual, &facts, &out).is_err());
    let sigmoid = qconv(1, 8, Some(UnaryOp::Sigmoid), F32_OUT);
    let out32 = [Fact::new(DType::F32, vec![1, 8, 5, 4])];
    assert!(supports(&sigmoid, &facts, &out32).is_err());
    // An fp16 plan narrows f32 inputs; a QConv keeps its f32 bias, so it stays as it is.
    let mut half_bias = facts.clone();
    half_bias[2].dtype = DType::F16;
    assert!(supports(&qconv(1, 8, None, u8_out()), &half_bias, &out).is_err());
}

#[test]
fn dp4a_words_hold_four_channels_of_a_tap() {
    // M = 2, cg = 5 (two words per tap, the second with one channel), 2 taps.
    let wq: Vec<i32> = (0..20).map(|i| i - 10).collect();
    let (words, sums) = pack_dp4a(&wq, 2, 5, 2);
    assert_eq!(words.len(), 2 * 2 * 2);
    let lanes = |w: i32| w.to_le_bytes().map(|b| b as i8 as i32);
    // Row 0, word 0, tap 1: channels 0..4 at tap 1 = wq[1], wq[3], wq[5], wq[7].
    assert_eq!(lanes(words[1]), [-9, -7, -5, -3]);
    // Row 0, word 1, tap 0: channel 4 alone.
    assert_eq!(lanes(words[2]), [-2, 0, 0, 0]);
    assert_eq!(
        sums,
        [wq[..10].iter().sum::<i32>(), wq[10..].iter().sum::<i32>()]
    );
}

#[test]
fn qconv_matches_the_cpu() {
    // 6 channels per group: dp4a with a partial word; 1 per group (depthwise): the plain kernel.
    let x = bytes(DType::U8, &[1, 6, 9, 9], 1);
    let bias = Tensor::from_vec(&[8], (0..8).map(|i| i as f32 * 0.1 - 0.3).collect()).unwrap();
    for (group, w_shape) in [(1, [8, 6, 3, 3]), (2, [8, 3, 3, 3])] {
        let w = bytes(DType::I8, &w_shape, 2);
        let relu = Op::QConv(qconv(group, 8, Some(UnaryOp::Relu), u8_out()));
        // One quantization step of a u8 output, relative to max(1, |ref|) <= 255.
        let inputs = [x.clone(), w.clone(), bias.clone()];
        check(&relu, &inputs, &[false, true, true], 1.0 / 255.0);
        let float = Op::QConv(qconv(group, 8, None, F32_OUT));
        check(&float, &inputs, &[false, true, true], 1e-5);
    }
    // An i8 input with a negative zero point through dp4a's signed form, and u8 weights with a
    // zero point through the plain kernel.
    let xi = bytes(DType::I8, &[1, 6, 9, 9], 3);
    let mut op = qconv(1, 8, Some(UnaryOp::Relu), u8_out());
    op.x.zero_point = -4;
    let w = bytes(DType::I8, &[8, 6, 3, 3], 2);
    check(
        &Op::QConv(op.clone()),
        &[xi.clone(), w, bias.clone()],
        &[false, true, true],
        1.0 / 255.0,
    );
    op.w_zero_point = vec![128; 8];
    let wu = bytes(DType::U8, &[8, 6, 3, 3], 4);
    check(
        &Op::QConv(op),
        &[xi, wu, bias],
        &[false, true, true],
        1.0 / 255.0,
    );
}

#[test]
fn long_reductions_split_over_lanes() {
    // Threads per output follow the reduction's length, capped at a warp.
    assert_eq!(lanes_for(9, 32), 1);
    assert_eq!(lanes_for(54, 32), 2);
    assert_eq!(lanes_for(144, 32), 8);
    assert_eq!(lanes_for(960, 32), 32);
    assert_eq!(lanes_for(1 << 20, 32), 32);
    // 1x1 over 600 channels (32 lanes, 7·15 outputs: not a multiple of a warp), plain kernel
    // (u8 weights with a zero point) and dp4a (150 words: 8 lanes); and a 3x3 over 40
    // channels (360 terms: 16 lanes), each against the CPU.
    let x = bytes(DType::U8, &[1, 600, 3, 5], 5);
    let bias = Tensor::from_vec(&[7], (0..7).map(|i| i as f32 * 0.2 - 0.5).collect()).unwrap();
    let mut op = qconv(1, 7, None, F32_OUT);
    op.conv.kernel = vec![1, 1];
    op.conv.strides = vec![1, 1];
    op.conv.pads = vec![0, 0, 0, 0];
    let wi = bytes(DType::I8, &[7, 600, 1, 1], 6);
    let inputs = [x.clone(), wi, bias.clone()];
    check(&Op::QConv(op.clone()), &inputs, &[false, true, true], 1e-5);
    op.w_zero_point = vec![100; 7];
    let wu = bytes(DType::U8, &[7, 600, 1, 1], 7);
    check(
        &Op::QConv(op),
        &[x, wu, bias.clone()],
        &[false, true, true],
        1e-5,
    );
    let x3 = bytes(DType::U8, &[1, 40, 6, 7], 8);
    let w3 = bytes(DType::U8, &[7, 40, 3, 3], 9);
    let mut op3 = qconv(1, 7, Some(UnaryOp::Relu), u8_out());
    op3.w_zero_point = vec![120; 7];
    check(
        &Op::QConv(op3),
        &[x3, w3, bias],
        &[false, true, true],
        1.0 / 255.0,
    );
}

#[test]
fn pointwise_qconv_takes_the_tiled_kernel_and_matches_the_cpu() {
    // 1x1 over a 7x7 plane: 70 channels (a partial k tile), 37 outputs (a partial m tile), two
    // images; u8 weights with a zero point (MobileNetV2's), symmetric i8 weights (which would
    // otherwise take dp4a), an i8 input with a negative zero point; u8 out with ReLU6, f32 out.
    let bias = Tensor::from_vec(&[37], (0..37).map(|i| i as f32 * 0.05 - 0.9).collect()).unwrap();
    let pw = |act, out| {
        let mut op = qconv(1, 37, act, out);
        op.conv.kernel = vec![1, 1];
        op.conv.strides = vec![1, 1];
        op.conv.pads = vec![0, 0, 0, 0];
        op
    };
    let x = bytes(DType::U8, &[2, 70, 7, 7], 11);
    let facts = |t: &Tensor| Fact::new(t.dtype, t.shape.clone());
    let c = pw(None, F32_OUT).conv;
    let y = Fact::new(DType::F32, vec![2, 37, 7, 7]);
    assert!(is_pointwise(
        &c.kernel,
        &c.strides,
        &c.pads,
        c.group,
        &facts(&x),
        &y
    ));
    let relu6 = Some(UnaryOp::Clip { min: 0.0, max: 6.0 });
    let mut op = pw(relu6, u8_out());
    op.w_zero_point = vec![100; 37];
    let wu = bytes(DType::U8, &[37, 70, 1, 1], 12);
    let inputs = [x.clone(), wu, bias.clone()];
    check(&Op::QConv(op), &inputs, &[false, true, true], 1.0 / 255.0);
    let wi = bytes(DType::I8, &[37, 70, 1, 1], 13);
    check(
        &Op::QConv(pw(None, F32_OUT)),
        &[x, wi.clone(), bias.clone()],
        &[false, true, true],
        1e-5,
    );
    let mut op = pw(Some(UnaryOp::Relu), u8_out());
    op.x.zero_point = -4;
    let xi = bytes(DType::I8, &[1, 70, 5, 4], 14);
    check(
        &Op::QConv(op),
        &[xi, wi, bias],
        &[false, true, true],
        1.0 / 255.0,
    );
}
