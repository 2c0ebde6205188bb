//! Data-movement ops: reshape (a view), transpose, concat, slice, gather, gather-elements, pad,
//! cast, split, resize, expand, where. All resolved to static attributes by the importer.

use serde::{Deserialize, Serialize};

use super::{broadcast_shapes, expect_inputs, Fact, OpInfo};
use crate::tensor::DType;
use crate::{Error, Result};

/// Reinterprets the input with a new static shape (Reshape, Flatten, Squeeze, Unsqueeze).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reshape {
    pub shape: Vec<usize>,
}

impl OpInfo for Reshape {
    fn name(&self) -> &'static str {
        "Reshape"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("Reshape", inputs, 1, 1)?;
        let len = self.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if len != Some(inputs[0].len()) {
            return Err(Error::invalid(format!(
                "cannot reshape {:?} into {:?}",
                inputs[0].shape, self.shape
            )));
        }
        Ok(vec![Fact::new(inputs[0].dtype, self.shape.clone())])
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transpose {
    pub perm: Vec<usize>,
}

impl OpInfo for Transpose {
    fn name(&self) -> &'static str {
        "Transpose"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("Transpose", inputs, 1, 1)?;
        let x = &inputs[0];
        let mut seen = vec![false; x.rank()];
        if self.perm.len() != x.rank()
            || self
                .perm
                .iter()
                .any(|&p| p >= x.rank() || std::mem::replace(&mut seen[p], true))
        {
            return Err(Error::invalid(format!(
                "perm {:?} is not a permutation of rank {}",
                self.perm,
                x.rank()
            )));
        }
        Ok(vec![Fact::new(
            x.dtype,
            self.perm.iter().map(|&p| x.shape[p]).collect::<Vec<_>>(),
        )])
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concat {
    pub axis: usize,
}

impl OpInfo for Concat {
    fn name(&self) -> &'static str {
        "Concat"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        if inputs.is_empty() {
            return Err(Error::invalid("Concat of nothing"));
        }
        let first = &inputs[0];
        if self.axis >= first.rank() {
            return Err(Error::invalid(format!(
                "Concat axis {} for rank {}",
                self.axis,
                first.rank()
            )));
        }
        let mut out = first.shape.clone();
        out[self.axis] = 0;
        for f in inputs {
            let same = f.dtype == first.dtype
                && f.rank() == first.rank()
                && f.shape
                    .iter()
                    .zip(&first.shape)
                    .enumerate()
                    .all(|(i, (a, b))| i == self.axis || a == b);
            if !same {
                return Err(Error::invalid(format!(
                    "Concat of {:?} {} and {:?} {} along {}",
                    first.shape, first.dtype, f.shape, f.dtype, self.axis
                )));
            }
            out[self.axis] += f.shape[self.axis];
        }
        Ok(vec![Fact::new(first.dtype, out)])
    }
}

/// Strided slice, one entry per axis: output index `j` reads input index `starts[i] + j·steps[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    pub starts: Vec<usize>,
    pub steps: Vec<i64>,
    pub lens: Vec<usize>,
}

impl OpInfo for Slice {
    fn name(&self) -> &'static str {
        "Slice"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("Slice", inputs, 1, 1)?;
        let x = &inputs[0];
        let r = x.rank();
        if self.starts.len() != r || self.steps.len() != r || self.lens.len() != r {
            return Err(Error::invalid(
                "Slice attributes do not match the input rank",
            ));
        }
        for i in 0..r {
            let (s, st, n, dim) = (self.starts[i], self.steps[i], self.lens[i], x.shape[i]);
            // The last index read, start + (len − 1)·step, exactly (any usize and i64 fit).
            let last = s as i128 + (n.max(1) - 1) as i128 * st as i128;
            if st == 0 || (n > 0 && (s >= dim || last < 0 || last >= dim as i128)) {
                return Err(Error::invalid(format!(
                    "Slice reads outside axis {i} of {:?}",
                    x.shape
                )));
            }
        }
        Ok(vec![Fact::new(x.dtype, self.lens.clone())])
    }
}

/// Gather along `axis` with integer indices (negative indices count from the end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gather {
    pub axis: usize,
}

impl OpInfo for Gather {
    fn name(&self) -> &'static str {
        "Gather"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("Gather", inputs, 2, 2)?;
        let (x, idx) = (&inputs[0], &inputs[1]);
        if self.axis >= x.rank() || !matches!(idx.dtype, DType::I64 | DType::I32) {
            return Err(Error::invalid(format!(
                "Gather axis {} of {:?} with {} indices",
                self.axis, x.shape, idx.dtype
            )));
        }
        let mut out = x.shape[..self.axis].to_vec();
        out.extend_from_slice(&idx.shape);
        out.extend_from_slice(&x.shape[self.axis + 1..]);
        Ok(vec![Fact::new(x.dtype, out)])
    }
}

/// `out[i…] = x[i… with i[axis] = indices[i…]]`: the output has the indices' shape, which
/// matches the data's on every other axis (it may be shorter); negative indices count from
/// the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatherElements {
    pub axis: usize,
}

impl OpInfo for GatherElements {
    fn name(&self) -> &'static str {
        "GatherElements"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("GatherElements", inputs, 2, 2)?;
        let (x, idx) = (&inputs[0], &inputs[1]);
        let fits = idx.rank() == x.rank()
            && self.axis < x.rank()
            && (idx.shape[self.axis] == 0 || x.shape[self.axis] > 0)
            && (0..x.rank()).all(|i| i == self.axis || idx.shape[i] <= x.shape[i]);
        if !fits || !matches!(idx.dtype, DType::I64 | DType::I32) {
            return Err(Error::invalid(format!(
                "GatherElements along axis {} of {:?} with {} indices {:?}",
                self.axis, x.shape, idx.dtype, idx.shape
            )));
        }
        Ok(vec![Fact::new(x.dtype, idx.shape.clone())])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
}

/// Padding with non-negative `pads = [begin.., end..]` (negative ONNX pads become a Slice).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pad {
    pub pads: Vec<usize>,
    pub mode: PadMode,
    pub value: f32,
}

impl OpInfo for Pad {
    fn name(&self) -> &'static str {
        "Pad"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("Pad", inputs, 1, 1)?;
        let x = &inputs[0];
        let r = x.rank();
        if self.pads.len() != 2 * r {
            return Err(Error::invalid(format!(
                "Pad needs {} pads for rank {r}, got {}",
                2 * r,
                self.pads.len()
            )));
        }
        if self.mode == PadMode::Reflect
            && (0..r).any(|i| self.pads[i].max(self.pads[r + i]) >= x.shape[i].max(1))
        {
            return Err(Error::invalid(
                "reflect padding must be smaller than the axis",
            ));
        }
        let out: Option<Vec<usize>> = (0..r)
            .map(|i| {
                x.shape[i]
                    .checked_add(self.pads[i])?
                    .checked_add(self.pads[r + i])
            })
            .collect();
        let Some(out) = out else {
            return Err(Error::invalid(format!(
                "pads {:?} are too large for {:?}",
                self.pads, x.shape
            )));
        };
        Ok(vec![Fact::new(x.dtype, out)])
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cast {
    pub to: DType,
}

impl OpInfo for Cast {
    fn name(&self) -> &'static str {
        "Cast"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("Cast", inputs, 1, 1)?;
        Ok(vec![Fact::new(self.to, inputs[0].shape.clone())])
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub axis: usize,
    pub sizes: Vec<usize>,
}

impl OpInfo for Split {
    fn name(&self) -> &'static str {
        "Split"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("Split", inputs, 1, 1)?;
        let x = &inputs[0];
        let total = self.sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s));
        if self.axis >= x.rank() || total != Some(x.shape[self.axis]) {
            return Err(Error::invalid(format!(
                "Split sizes {:?} along {} do not cover {:?}",
                self.sizes, self.axis, x.shape
            )));
        }
        Ok(self
            .sizes
            .iter()
            .map(|&s| {
                let mut sh = x.shape.clone();
                sh[self.axis] = s;
                Fact::new(x.dtype, sh)
            })
            .collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ResizeMode {
    /// Nearest with ONNX `nearest_mode` (round_prefer_floor, round_prefer_ceil, floor, ceil).
    Nearest(NearestMode),
    Linear,
    /// Cubic convolution with ONNX `cubic_coeff_a` (`a`) and `exclude_outside` (taps outside the
    /// input weigh 0, the others renormalised to sum to 1).
    Cubic {
        a: f32,
        exclude_outside: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResizeCoord {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
    /// Opset 19: half pixel, shifted so the output stays centred when its length was rounded.
    HalfPixelSymmetric,
}

/// Resize to a static `out_shape` (same rank); `scales` are the ONNX scales (or out/in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resize {
    pub mode: ResizeMode,
    pub coord: ResizeCoord,
    pub scales: Vec<f32>,
    pub out_shape: Vec<usize>,
}

impl OpInfo for Resize {
    fn name(&self) -> &'static str {
        "Resize"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("Resize", inputs, 1, 1)?;
        let x = &inputs[0];
        if self.out_shape.len() != x.rank()
            || self.scales.len() != x.rank()
            || x.dtype != DType::F32
        {
            return Err(Error::invalid(format!(
                "Resize to {:?} of f32 {:?}",
                self.out_shape, x.shape
            )));
        }
        Ok(vec![Fact::new(x.dtype, self.out_shape.clone())])
    }
}

/// Broadcast to `shape` (ONNX Expand with the target already combined with the input's shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expand {
    pub shape: Vec<usize>,
}

impl OpInfo for Expand {
    fn name(&self) -> &'static str {
        "Expand"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("Expand", inputs, 1, 1)?;
        if broadcast_shapes(&inputs[0].shape, &self.shape)? != self.shape {
            return Err(Error::invalid(format!(
                "cannot expand {:?} to {:?}",
                inputs[0].shape, self.shape
            )));
        }
        Ok(vec![Fact::new(inputs[0].dtype, self.shape.clone())])
    }
}

/// `out = cond ? x : y` with broadcasting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Where {}

impl OpInfo for Where {
    fn name(&self) -> &'static str {
        "Where"
    }
    fn infer(&self, inputs: &[Fact]) -> Result<Vec<Fact>> {
        expect_inputs("Where", inputs, 3, 3)?;
        if inputs[0].dtype != DType::Bool || inputs[1].dtype != inputs[2].dtype {
            return Err(Error::invalid(
                "Where needs a bool condition and two values of one type",
            ));
        }
        let s = broadcast_shapes(
            &broadcast_shapes(&inputs[0].shape, &inputs[1].shape)?,
            &inputs[2].shape,
        )?;
        Ok(vec![Fact::new(inputs[1].dtype, s)])
    }
}
