//! Golden tests: every reference model compiled (fp32) and run through the CLI, outputs compared
//! with onnxruntime's within `tol · max(1, max|ref|)`.

mod common;

use common::*;

fn golden(model: &str) {
    let Some(models) = models_dir() else { return };
    let case = CASES.iter().find(|c| c.model == model).unwrap();
    let efm = compiled(&models, model);
    let r = refs(&models, model);
    let out_dir = scratch_dir().join(format!("{model}-out"));
    let o = r
        .run_cmd(&efm, &out_dir)
        .args(["--threads", "2"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "run {model} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for (name, file, shape) in &r.outputs {
        let want = edgefuse::npy::read(file).unwrap();
        let got = edgefuse::npy::read(
            &out_dir.join(format!("{}.npy", edgefuse::cli::sanitize_name(name))),
        )
        .unwrap();
        assert_eq!(&got.shape, shape, "{model} output {name} shape");
        let (d, m) = max_diff(
            got.as_slice::<f32>().unwrap(),
            want.as_slice::<f32>().unwrap(),
        );
        let bound = case.tol * m.max(1.0);
        eprintln!("{model} {name}: max |diff| {d:.3e}, bound {bound:.3e}");
        assert!(
            d <= bound,
            "{model} output {name}: max |diff| {d:e} exceeds {bound:e}"
        );
    }
}

#[test]
fn seed_cnn_mnist() {
    golden("seed_cnn_mnist");
}
#[test]
fn seed_cnn_fashion() {
    golden("seed_cnn_fashion");
}
#[test]
fn seed_lstm_textgen() {
    golden("seed_lstm_textgen");
    // The golden run above goes through the folded embedding, the dropped zero states and the
    // batch-major LSTM: the compile fired each rule once, the LSTM's W is the column selection
    // the runtime skips the projection for, and no Transpose is left (batch 16 of the refs).
    let Some(models) = models_dir() else { return };
    let m = edgefuse_runtime::Model::load(compiled(&models, "seed_lstm_textgen")).unwrap();
    for rule in [
        "fold_embedding_into_lstm",
        "drop_zero_lstm_states",
        "lstm_to_batch_first",
    ] {
        assert!(
            m.meta()
                .provenance
                .rules_fired
                .iter()
                .any(|(r, n)| r == rule && *n == 1),
            "{rule}: {:?}",
            m.meta().provenance.rules_fired
        );
    }
    let g = m.graph();
    assert!(
        !g.nodes
            .iter()
            .any(|n| matches!(n.op, edgefuse_runtime::ir::Op::Transpose(_))),
        "{:?}",
        g.nodes.iter().map(|n| n.op.name()).collect::<Vec<_>>()
    );
    let lstm = g
        .nodes
        .iter()
        .find(|n| matches!(n.op, edgefuse_runtime::ir::Op::Lstm(_)))
        .unwrap();
    let (x, w) = (&g.tensors[lstm.inputs[0]], &g.tensors[lstm.inputs[1]]);
    assert_eq!(
        x.shape.last(),
        Some(&512),
        "X holds the projection (4H = 512)"
    );
    assert_eq!(w.shape, [1, 512, 512]);
}
#[test]
fn efficientnet_lite0() {
    golden("efficientnet_lite0");
}
#[test]
fn mobilenet_v2_int8_qdq() {
    golden("mobilenet_v2_int8_qdq");
}
#[test]
fn silero_vad_16k_sequence() {
    golden("silero_vad_16k_sequence");
}
#[test]
fn ddddocr_crnn() {
    golden("ddddocr_crnn");
}

/// The batch-16 references are the ones whose golden runs above (2 threads) go through the batch
/// cut (`cpu::batch`): `inspect` says so; the batch-1 ones say why not.
#[test]
fn inspect_says_which_references_cut_their_batch() {
    let Some(models) = models_dir() else { return };
    for (model, cut) in [
        ("seed_cnn_mnist", true),
        ("seed_cnn_fashion", true),
        ("seed_lstm_textgen", true),
        ("efficientnet_lite0", false),
        ("silero_vad_16k_sequence", false),
    ] {
        let efm = compiled(&models, model);
        let o = edgefuse()
            .args(["inspect", "--json"])
            .arg(&efm)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let threads = j["batch_cut_threads"].as_array();
        if cut {
            let t = threads.unwrap_or_else(|| panic!("{model}: {}", j["batch_cut_refused"]));
            assert!(t.contains(&serde_json::json!(2)), "{model}: {t:?}");
        } else {
            assert!(threads.is_none(), "{model}: {threads:?}");
            assert!(j["batch_cut_refused"].is_string(), "{model}");
        }
    }
}
