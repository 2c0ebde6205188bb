//! CPU kernels of the recurrent family (LSTM, GRU): build-time checks and weight packing here,
//! the loops in `edgefuse_kernels::rnn`.

pub mod gru;
pub mod lstm;

#[cfg(test)]
pub(crate) mod tests;

use edgefuse_kernels::gemm::{pack_b, MatRef, PackedB};
use edgefuse_kernels::rnn::RnnDims;

use crate::cpu::ops::BuildCtx;
use crate::ir::ops::Direction;
use crate::tensor::{DType, TensorView, TensorViewMut};
use crate::{Error, Result};

/// What LSTM and GRU kernels share: sizes, the element count of every input and output (checked
/// on each run), and Wᵀ / Rᵀ packed at build when W / R are constants.
pub(super) struct Recurrent {
    pub dims: RnnDims,
    gates: usize,
    input_lens: Vec<usize>,
    output_lens: Vec<usize>,
    /// Wᵀ (`[I, D·G·H]`) packed for the input projection, when W is a constant.
    w_packed: Option<PackedB>,
    /// Each direction's block of Rᵀ packed for the recurrent GEMM, when R is a constant.
    r_packed: Option<Vec<PackedB>>,
    projected: bool,
}

/// Whether `w` (`[D·G·H, I]` row-major, `gh = D·G·H`) is the column selection
/// `W[c][c] = 1`, zeros elsewhere, with `I = D·G·H` (a folded embedding,
/// `compiler::passes::rnn`; the CUDA LSTM asks too).
pub(crate) fn is_selection(w: &[f32], input: usize, gh: usize) -> bool {
    input == gh
        && w.len() == gh * gh
        && w.chunks_exact(gh).enumerate().all(|(c, row)| {
            row.iter()
                .enumerate()
                .all(|(k, &v)| v == if k == c { 1.0 } else { 0.0 })
        })
}

impl Recurrent {
    /// `b.inputs` must already have passed the op's shape inference.
    pub fn new(
        b: &BuildCtx,
        gates: usize,
        hidden: usize,
        direction: Direction,
        batch_first: bool,
    ) -> Result<Recurrent> {
        let dims = rnn_dims(b, hidden, direction, batch_first);
        if b.outputs.iter().any(|f| f.dtype != DType::F32) {
            return Err(Error::invalid("recurrent outputs must be f32"));
        }
        // Both are packed straight from the transposed views of W and R (no transposed copy).
        let gh = dims.dirs * gates * hidden;
        let constant = |k: usize| b.consts.get(k).and_then(|c| c.as_ref());
        // A constant W that selects X's columns (`compiler::passes::rnn`): no projection.
        let projected = constant(1).is_some_and(|w| is_selection(w.typed::<f32>(), dims.input, gh));
        let w_packed = constant(1).filter(|_| !projected).map(|w| {
            let wt = MatRef::transposed(w.typed::<f32>(), dims.input, gh);
            pack_b(wt, dims.input, gh)
        });
        let g1 = gates * hidden;
        let r_packed = constant(2).map(|r| {
            let all = MatRef::transposed(r.typed::<f32>(), hidden, gh);
            (0..dims.dirs)
                .map(|d| {
                    let block = MatRef {
                        data: &all.data[d * g1 * hidden..],
                        cols: g1,
                        ..all
                    };
                    pack_b(block, hidden, g1)
                })
                .collect()
        });
        Ok(Recurrent {
            dims,
            gates,
            input_lens: b.inputs.iter().map(|f| f.len()).collect(),
            output_lens: b.outputs.iter().map(|f| f.len()).collect(),
            w_packed,
            r_packed,
            projected,
        })
    }

    /// W selects X's columns: the projection is X itself.
    pub fn projected(&self) -> bool {
        self.projected
    }

    /// Checks the run-time buffers against the build-time facts, so that data never reaches a
    /// kernel's bounds assertions.
    pub fn check(
        &self,
        name: &str,
        inputs: &[TensorView],
        outputs: &[TensorViewMut],
        scratch: &[u8],
        scratch_floats: usize,
    ) -> Result<()> {
        let ok = inputs.len() == self.input_lens.len()
            && outputs.len() == self.output_lens.len()
            && inputs
                .iter()
                .zip(&self.input_lens)
                .all(|(v, &n)| v.dtype == DType::F32 && v.data.len() == 4 * n)
            && outputs
                .iter()
                .zip(&self.output_lens)
                .all(|(v, &n)| v.dtype == DType::F32 && v.data.len() == 4 * n)
            && scratch.len() >= 4 * scratch_floats;
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "{name}: buffers do not match the planned shapes"
            )))
        }
    }

    /// Rᵀ per direction packed for the GEMM, when R is a constant.
    pub fn r_packed(&self) -> Option<&[PackedB]> {
        self.r_packed.as_deref()
    }

    /// Wᵀ packed for the projection, when W is a constant.
    pub fn w_packed(&self) -> Option<&PackedB> {
        self.w_packed.as_ref()
    }

    /// Wᵀ and Rᵀ as transposed views of the W and R inputs.
    pub fn weights<'a>(&self, inputs: &[TensorView<'a>]) -> (MatRef<'a>, MatRef<'a>) {
        let d = &self.dims;
        let gh = d.dirs * self.gates * d.hidden;
        (
            MatRef::transposed(inputs[1].typed::<f32>(), d.input, gh),
            MatRef::transposed(inputs[2].typed::<f32>(), d.hidden, gh),
        )
    }
}

/// The first `n` floats of the scratch buffer (64-byte aligned by contract, checked anyway).
pub(super) fn scratch_f32(scratch: &mut [u8], n: usize) -> Result<&mut [f32]> {
    bytemuck::try_cast_slice_mut(&mut scratch[..4 * n])
        .map_err(|e| Error::invalid(format!("recurrent scratch: {e}")))
}

/// The run's dimensions from the input X (`[seq, batch, input]`, or batch first).
pub(crate) fn rnn_dims(
    b: &BuildCtx,
    hidden: usize,
    direction: Direction,
    batch_first: bool,
) -> RnnDims {
    let x = &b.inputs[0].shape;
    let (seq, batch) = if batch_first {
        (x[1], x[0])
    } else {
        (x[0], x[1])
    };
    RnnDims {
        seq,
        batch,
        input: x[2],
        hidden,
        dirs: direction.count(),
        reverse: direction == Direction::Reverse,
        batch_first,
    }
}

/// An optional input: the `k`-th present one when `present`, advancing `k`.
pub(crate) fn optional<'a>(
    inputs: &[TensorView<'a>],
    present: bool,
    k: &mut usize,
) -> Option<&'a [f32]> {
    if !present {
        return None;
    }
    let v = inputs[*k].typed::<f32>();
    *k += 1;
    Some(v)
}
