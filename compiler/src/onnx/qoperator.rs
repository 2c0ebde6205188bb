//! onnxruntime's QOperator format lowered to QDQ before import: each `QLinear*` node becomes
//! DequantizeLinear on its quantized inputs, the float op with the node's own attributes, and
//! QuantizeLinear on its output — the equivalence the ONNX spec defines them by. The importers
//! then read the float op as usual, and the int8 rewrite rules fold the pattern back into int8
//! ops (`QConv`, `QGemm`, `QAdd`, `QPool`), exactly as for a QDQ export. The table below names
//! each lowered op; anything else passes through unchanged. A QOperator node that does not fit
//! its op (inputs missing, `channels_last`) is refused here, naming it.

use anyhow::{bail, Result};
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::{AttributeProto, NodeProto};

/// How a QOperator node's inputs are laid out.
#[derive(Clone, Copy)]
enum Layout {
    /// (x, scale, zero point) per quantized input, `n` of them, then the output's scale and
    /// zero point; with `bias`, an optional i32 bias after them (QLinearConv's), dequantized
    /// at scale `x_scale · w_scale`.
    Triples { n: usize, bias: bool },
    /// The output's scale and zero point first, then a triple per input (QLinearConcat).
    OutputFirst,
    /// com.microsoft QGemm: A's and B's triples, an optional i32 bias C (at `alpha · a_scale ·
    /// b_scale`, as onnxruntime adds it to the i32 product before scaling), then the output's
    /// scale and zero point — without a zero point the output is float. B's scales are per
    /// column of `op(B)`: axis 0 with `transB`, else 1.
    Gemm,
}

struct Lowering {
    domain: &'static str,
    op: &'static str,
    float_op: &'static str,
    layout: Layout,
    /// Axis of per-channel scales for each quantized input (weights: 0 for Conv; MatMul's A
    /// per row, -2, and B per column, -1).
    axes: &'static [i64],
    /// Axis of a per-channel output scale (MatMul's per row, -2).
    out_axis: i64,
    /// Attributes the float op does not take, refused unless 0 (e.g. `channels_last`).
    zero_only: &'static [&'static str],
}

const MS: &str = "com.microsoft";

const LOWERINGS: &[Lowering] = &[
    Lowering {
        domain: "",
        op: "QLinearConv",
        float_op: "Conv",
        layout: Layout::Triples { n: 2, bias: true },
        axes: &[1, 0],
        zero_only: &[],
        out_axis: 1,
    },
    Lowering {
        domain: "",
        op: "QLinearMatMul",
        float_op: "MatMul",
        layout: Layout::Triples { n: 2, bias: false },
        axes: &[-2, -1],
        zero_only: &[],
        out_axis: -2,
    },
    Lowering {
        domain: MS,
        op: "QGemm",
        float_op: "Gemm",
        layout: Layout::Gemm,
        axes: &[],
        zero_only: &[],
        out_axis: 1,
    },
    Lowering {
        domain: MS,
        op: "QLinearAdd",
        float_op: "Add",
        layout: Layout::Triples { n: 2, bias: false },
        axes: &[1, 1],
        zero_only: &[],
        out_axis: 1,
    },
    Lowering {
        domain: MS,
        op: "QLinearMul",
        float_op: "Mul",
        layout: Layout::Triples { n: 2, bias: false },
        axes: &[1, 1],
        zero_only: &[],
        out_axis: 1,
    },
    Lowering {
        domain: MS,
        op: "QLinearGlobalAveragePool",
        float_op: "GlobalAveragePool",
        layout: Layout::Triples { n: 1, bias: false },
        axes: &[1],
        zero_only: &["channels_last"],
        out_axis: 1,
    },
    Lowering {
        domain: MS,
        op: "QLinearAveragePool",
        float_op: "AveragePool",
        layout: Layout::Triples { n: 1, bias: false },
        axes: &[1],
        zero_only: &["channels_last"],
        out_axis: 1,
    },
    Lowering {
        domain: MS,
        op: "QLinearSigmoid",
        float_op: "Sigmoid",
        layout: Layout::Triples { n: 1, bias: false },
        axes: &[1],
        zero_only: &[],
        out_axis: 1,
    },
    Lowering {
        domain: MS,
        op: "QLinearLeakyRelu",
        float_op: "LeakyRelu",
        layout: Layout::Triples { n: 1, bias: false },
        axes: &[1],
        zero_only: &[],
        out_axis: 1,
    },
    Lowering {
        domain: MS,
        op: "QLinearConcat",
        float_op: "Concat",
        layout: Layout::OutputFirst,
        axes: &[],
        zero_only: &[],
        out_axis: 1,
    },
];

/// The (domain, op type) of every op lowered here.
pub fn lowered_ops() -> impl Iterator<Item = (&'static str, &'static str)> {
    LOWERINGS.iter().map(|l| (l.domain, l.op))
}

fn find(node: &NodeProto) -> Option<&'static Lowering> {
    let domain = match node.domain.as_str() {
        "ai.onnx" => "",
        d => d,
    };
    LOWERINGS
        .iter()
        .find(|l| l.domain == domain && l.op == node.op_type)
}

/// `nodes` with every QOperator node lowered, each new node paired with the index of the node
/// it came from (for error messages).
pub fn lower(nodes: &[NodeProto]) -> Result<Vec<(usize, NodeProto)>> {
    let mut out = Vec::with_capacity(nodes.len());
    for (index, node) in nodes.iter().enumerate() {
        match find(node) {
            Some(l) => {
                let lowered = lower_one(node, l).map_err(|e| {
                    anyhow::anyhow!("node #{index} \"{}\" {}: {e}", node.name, node.op_type)
                })?;
                out.extend(lowered.into_iter().map(|n| (index, n)));
            }
            None => out.push((index, node.clone())),
        }
    }
    Ok(out)
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

fn float_attr(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: v,
        ..Default::default()
    }
}

fn lower_one(node: &NodeProto, l: &Lowering) -> Result<Vec<NodeProto>> {
    let input = |i: usize| node.input.get(i).cloned().unwrap_or_default();
    let y = match node.output.as_slice() {
        [y] if !y.is_empty() => y.clone(),
        outs => bail!("{} outputs; one named output expected", outs.len()),
    };
    if let Some(a) =
        (node.attribute.iter()).find(|a| l.zero_only.contains(&a.name.as_str()) && a.i != 0)
    {
        bail!("{}={} is not supported", a.name, a.i);
    }
    // Names of the new values derive from the output's, which is unique in the graph; the new
    // nodes are named after the node, for messages.
    let who = if node.name.is_empty() {
        y.clone()
    } else {
        node.name.clone()
    };
    let make =
        |op: &str, suffix: &str, inputs: Vec<String>, outputs: Vec<String>, attrs| NodeProto {
            op_type: op.into(),
            name: format!("{who}{suffix}"),
            input: inputs,
            output: outputs,
            attribute: attrs,
            ..Default::default()
        };
    let base = y.clone();
    let count = |lo: usize, hi: usize| -> Result<()> {
        if !(lo..=hi).contains(&node.input.len()) {
            bail!("{} inputs; {lo} to {hi} expected", node.input.len());
        }
        Ok(())
    };
    let mut nodes = Vec::new();
    let mut float_inputs = Vec::new();
    let dequantize =
        |k: usize, x: String, scale: String, zp: String, axis: i64, nodes: &mut Vec<NodeProto>| {
            let xf = format!("{base}::dequantized{k}");
            nodes.push(make(
                "DequantizeLinear",
                &format!("::dequantize{k}"),
                vec![x, scale, zp],
                vec![xf.clone()],
                vec![int_attr("axis", axis)],
            ));
            xf
        };
    // The i32 bias of Conv and Gemm: scale x_scale · w_scale, zero point 0.
    let bias = |k: usize, b: String, nodes: &mut Vec<NodeProto>| {
        let scale = format!("{base}::bias_scale");
        nodes.push(make(
            "Mul",
            "::bias_scale",
            vec![input(1), input(4)],
            vec![scale.clone()],
            vec![],
        ));
        // Axis -1: QLinearConv's 1-D bias, and QGemm's C ([N], [1, N] or [M, N]) per column.
        dequantize(k, b, scale, String::new(), -1, nodes)
    };
    let (y_scale, y_zp) = match l.layout {
        Layout::Triples { n, bias: has_bias } => {
            let want = 3 * n + 2;
            // The output's zero point may be left off the end (refused below, naming it).
            count(want - 1, want + usize::from(has_bias))?;
            for k in 0..n {
                let (x, scale, zp) = (input(3 * k), input(3 * k + 1), input(3 * k + 2));
                float_inputs.push(dequantize(k, x, scale, zp, l.axes[k], &mut nodes));
            }
            if has_bias && !input(want).is_empty() {
                float_inputs.push(bias(n, input(want), &mut nodes));
            }
            (input(3 * n), input(3 * n + 1))
        }
        Layout::Gemm => {
            count(6, 9)?;
            let trans_b = (node.attribute.iter()).any(|a| a.name == "transB" && a.i != 0);
            let b_axis = if trans_b { 0 } else { 1 };
            float_inputs.push(dequantize(0, input(0), input(1), input(2), 1, &mut nodes));
            float_inputs.push(dequantize(
                1,
                input(3),
                input(4),
                input(5),
                b_axis,
                &mut nodes,
            ));
            if !input(6).is_empty() {
                float_inputs.push(bias(2, input(6), &mut nodes));
            }
            (input(7), input(8))
        }
        Layout::OutputFirst => {
            let rest = node.input.len().saturating_sub(2);
            if rest == 0 || !rest.is_multiple_of(3) {
                bail!(
                    "{} inputs; the output's scale and zero point, then triples",
                    node.input.len()
                );
            }
            for k in 0..rest / 3 {
                let i = 2 + 3 * k;
                let (x, scale, zp) = (input(i), input(i + 1), input(i + 2));
                float_inputs.push(dequantize(k, x, scale, zp, 1, &mut nodes));
            }
            (input(0), input(1))
        }
    };
    let mut attrs: Vec<AttributeProto> = (node.attribute.iter())
        .filter(|a| !l.zero_only.contains(&a.name.as_str()))
        .cloned()
        .collect();
    let gemm = matches!(l.layout, Layout::Gemm);
    if gemm && !input(6).is_empty() {
        // C is part of the product's i32 sum, which alpha scales: beta = alpha.
        let alpha = (node.attribute.iter())
            .find(|a| a.name == "alpha")
            .map_or(1.0, |a| a.f);
        attrs.push(float_attr("beta", alpha));
    }
    if gemm && y_zp.is_empty() {
        // QGemm without an output zero point: a float output (onnxruntime's rule).
        nodes.push(make(l.float_op, "", float_inputs, vec![y.clone()], attrs));
    } else {
        // The output's type is its zero point's, so one must be given.
        if y_scale.is_empty() || y_zp.is_empty() {
            bail!("the output's scale and zero point are required (the zero point gives the output's type)");
        }
        let yf = format!("{base}::float");
        nodes.push(make(l.float_op, "", float_inputs, vec![yf.clone()], attrs));
        nodes.push(make(
            "QuantizeLinear",
            "::quantize",
            vec![yf, y_scale, y_zp],
            vec![y.clone()],
            vec![int_attr("axis", l.out_axis)],
        ));
    }
    // Optional inputs left empty at the end are dropped, as ONNX writers do.
    for n in &mut nodes {
        while n.input.last().is_some_and(|s| s.is_empty()) {
            n.input.pop();
        }
    }
    Ok(nodes)
}
