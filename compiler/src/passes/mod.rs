//! Graph rewrites: named rules applied by one driver to a fixed point.
//!
//! Each rule is a small function `fn(&mut Module) -> Result<bool>` that finds one occurrence of its
//! pattern, rewrites it, and says whether it did. The driver applies every rule until none fires,
//! prunes dead nodes and constants, checks the graph, and returns how often each rule fired (the
//! `.efm` records that list; `inspect` shows it).

mod activation;
mod batchnorm;
mod gemm;
mod pad;
mod qdq;
mod qdynamic;
mod qops;
pub(crate) mod query;
mod qweight;
mod reshape;
mod rnn;
mod transpose;

use anyhow::{Context, Result};

use crate::Module;

/// A named rewrite rule.
pub struct Rule {
    pub name: &'static str,
    pub apply: fn(&mut Module) -> Result<bool>,
}

/// The rules, in the order the driver tries them.
pub fn rules() -> Vec<Rule> {
    vec![
        Rule {
            name: "remove_identity",
            apply: reshape::remove_identity,
        },
        Rule {
            name: "merge_reshapes",
            apply: reshape::merge_reshapes,
        },
        Rule {
            name: "cancel_transpose_pairs",
            apply: transpose::cancel_transpose_pairs,
        },
        Rule {
            name: "transpose_to_reshape",
            apply: transpose::transpose_to_reshape,
        },
        Rule {
            name: "fold_batchnorm_into_conv",
            apply: batchnorm::fold_batchnorm_into_conv,
        },
        Rule {
            name: "fold_pad_into_conv",
            apply: pad::fold_pad_into_conv,
        },
        Rule {
            name: "fuse_matmul_add_into_gemm",
            apply: gemm::fuse_matmul_add_into_gemm,
        },
        Rule {
            name: "fuse_swish",
            apply: activation::fuse_swish,
        },
        Rule {
            name: "fold_residual_add_into_conv",
            apply: activation::fold_residual_add_into_conv,
        },
        Rule {
            name: "fuse_conv_activation",
            apply: activation::fuse_conv_activation,
        },
        Rule {
            name: "fuse_gemm_activation",
            apply: activation::fuse_gemm_activation,
        },
        // Int8: QuantizeLinear/DequantizeLinear pairs folded into int8 ops. The last rule folds
        // the DequantizeLinear of constants none of them took (it must stay last).
        Rule {
            name: "fold_qdq_into_qconv",
            apply: qops::fold_qdq_into_qconv,
        },
        Rule {
            name: "fold_qdq_into_qgemm",
            apply: qops::fold_qdq_into_qgemm,
        },
        Rule {
            name: "fold_qdq_into_qadd",
            apply: qops::fold_qdq_into_qadd,
        },
        Rule {
            name: "fold_qdq_into_qpool",
            apply: qops::fold_qdq_into_qpool,
        },
        Rule {
            name: "fold_pad_into_qconv",
            apply: qops::fold_pad_into_qconv,
        },
        Rule {
            name: "fold_dq_into_qlstm",
            apply: qweight::fold_dq_into_qlstm,
        },
        Rule {
            name: "fold_dq_into_qgather",
            apply: qweight::fold_dq_into_qgather,
        },
        Rule {
            name: "fold_dynamic_matmul",
            apply: qdynamic::fold_dynamic_matmul,
        },
        Rule {
            name: "fold_bias_into_dynamic_matmul",
            apply: qdynamic::fold_bias_into_dynamic_matmul,
        },
        Rule {
            name: "fold_dynamic_conv",
            apply: qdynamic::fold_dynamic_conv,
        },
        Rule {
            name: "fold_bias_into_dynamic_conv",
            apply: qdynamic::fold_bias_into_dynamic_conv,
        },
        Rule {
            name: "fuse_dynamic_conv_activation",
            apply: qdynamic::fuse_dynamic_conv_activation,
        },
        Rule {
            name: "fold_clip_into_qdq",
            apply: qdq::fold_clip_into_qdq,
        },
        Rule {
            name: "push_dequantize_through_movement",
            apply: qdq::push_dequantize_through_movement,
        },
        Rule {
            name: "fold_embedding_into_lstm",
            apply: rnn::fold_embedding_into_lstm,
        },
        Rule {
            name: "drop_zero_lstm_states",
            apply: rnn::drop_zero_lstm_states,
        },
        Rule {
            name: "lstm_to_batch_first",
            apply: rnn::lstm_to_batch_first,
        },
        Rule {
            name: "cancel_qdq_pairs",
            apply: qdq::cancel_qdq_pairs,
        },
        Rule {
            name: "fold_constant_dequantize",
            apply: qdq::fold_constant_dequantize,
        },
    ]
}

/// Applies `rules` to a fixed point. Returns (rule name, times fired) for the rules that fired.
pub fn optimize(m: &mut Module, rules: &[Rule]) -> Result<Vec<(String, usize)>> {
    let mut fired = vec![0usize; rules.len()];
    loop {
        let mut changed = false;
        for (k, rule) in rules.iter().enumerate() {
            // A rule that fires without bound is a bug; stop it rather than spin.
            let mut guard = 0;
            while (rule.apply)(m).with_context(|| format!("rewrite rule {}", rule.name))? {
                fired[k] += 1;
                changed = true;
                guard += 1;
                *m = crate::onnx::prune::prune(std::mem::take(m));
                anyhow::ensure!(
                    guard <= 100_000,
                    "rewrite rule {} does not converge",
                    rule.name
                );
            }
        }
        if !changed {
            break;
        }
    }
    m.graph
        .validate_with_consts(&|i| m.is_const(i))
        .context("graph after rewriting")?;
    Ok(rules
        .iter()
        .zip(fired)
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.name.to_string(), n))
        .collect())
}
