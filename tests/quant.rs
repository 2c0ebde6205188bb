//! Int8 execution of the pre-quantized MobileNetV2: the compiled graph is int8 end to end, and
//! its top-1 equals onnxruntime's on every image in `../shared/data/images`.
//!
//! The pixels and onnxruntime's top-1 come from `scripts/quant/mobilenet_top1.py` (committed
//! under `tests/fixtures/`): images resized to 224×224, then MANIFEST.md's `(x − 128)/128`.

mod common;

use common::*;
use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::ir::Op;
use edgefuse_runtime::{Model, Tensor};

const MODEL: &str = "mobilenet_v2_int8_qdq";

#[test]
fn mobilenet_compiles_to_int8_ops() {
    let Some(models) = models_dir() else { return };
    let model = Model::load(compiled(&models, MODEL)).unwrap();
    let g = model.graph();
    let count = |f: fn(&Op) -> bool| g.nodes.iter().filter(|n| f(&n.op)).count();
    assert_eq!(
        count(|o| matches!(o, Op::QConv(_))),
        53,
        "every Conv becomes a QConv"
    );
    assert_eq!(
        count(|o| matches!(o, Op::QAdd(_))),
        10,
        "every residual Add becomes a QAdd"
    );
    assert_eq!(count(|o| matches!(o, Op::QPool(_))), 1);
    assert_eq!(
        count(|o| matches!(o, Op::Conv(_) | Op::Binary(_) | Op::Unary(_))),
        0
    );
    // Float only at the edges: the input's QuantizeLinear, and the Softmax with its pair.
    assert!(count(|o| matches!(o, Op::DequantizeLinear(_))) <= 2);
    assert!(count(|o| matches!(o, Op::QuantizeLinear(_))) <= 2);
}

#[test]
fn mobilenet_int8_top1_matches_onnxruntime_on_every_image() {
    let Some(models) = models_dir() else { return };
    let fixtures = repo_root().join("tests").join("fixtures");
    let pixels = edgefuse::npy::read(&fixtures.join("mobilenet_images_u8.npy")).unwrap();
    let refs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("mobilenet_top1.json")).unwrap())
            .unwrap();
    let images = refs["images"].as_array().unwrap();
    assert_eq!(pixels.shape, [images.len(), 3, 224, 224]);
    let on_disk = std::fs::read_dir(models.join("../data/images"))
        .unwrap()
        .count();
    assert_eq!(
        images.len(),
        on_disk,
        "the fixture covers every image; rerun the script"
    );
    let model = Model::load(compiled(&models, MODEL)).unwrap();
    let mut s = Session::new(model, SessionOptions::with_threads(2)).unwrap();
    let per = 3 * 224 * 224;
    let mut wrong = Vec::new();
    for (i, row) in images.iter().enumerate() {
        let x: Vec<f32> = pixels.bytes()[i * per..(i + 1) * per]
            .iter()
            .map(|&v| (v as f32 - 128.0) / 128.0)
            .collect();
        let x = Tensor::from_vec(&[1, 3, 224, 224], x).unwrap();
        s.set_input(0, x.view()).unwrap();
        s.run().unwrap();
        let probs = s.output(0).typed::<f32>().to_vec();
        let top1 = (0..probs.len()).fold(0, |b, k| if probs[k] > probs[b] { k } else { b });
        let want = row["top1"].as_u64().unwrap() as usize;
        let name = row["image"].as_str().unwrap();
        eprintln!(
            "{name}: top-1 {top1} p={:.4} (onnxruntime {want} p={})",
            probs[top1], row["p1"]
        );
        if top1 != want {
            wrong.push(format!("{name}: {top1} instead of {want}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "top-1 differs from onnxruntime: {wrong:?}"
    );
}
