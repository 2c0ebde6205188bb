//! Element types, owned tensors and borrowed views.
//!
//! Kernels see plain byte slices plus a static shape; these types are the typed, checked wrapper
//! used at the API boundary (feeding inputs, reading outputs) and by the compiler while folding.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F16,
    I64,
    I32,
    I8,
    U8,
    Bool,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
            DType::I64 => 8,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::Bool => "bool",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Element types a tensor can be viewed as.
pub trait Element: bytemuck::Pod {
    const DTYPE: DType;
}
impl Element for f32 {
    const DTYPE: DType = DType::F32;
}
impl Element for half::f16 {
    const DTYPE: DType = DType::F16;
}
impl Element for i64 {
    const DTYPE: DType = DType::I64;
}
impl Element for i32 {
    const DTYPE: DType = DType::I32;
}
impl Element for i8 {
    const DTYPE: DType = DType::I8;
}
impl Element for u8 {
    const DTYPE: DType = DType::U8;
}

/// A byte buffer whose start is 64-byte aligned, so any element type can be viewed in place.
///
/// Backed by a plain zeroed `Vec<u8>` (the allocator's `calloc`: a large arena arrives as
/// untouched zero pages, not written at load) with the start moved to a 64-byte boundary.
pub struct AlignedBuf {
    buf: Vec<u8>,
    offset: usize,
    len: usize,
}

impl AlignedBuf {
    pub fn zeroed(len: usize) -> Self {
        let buf = vec![0u8; len + 63];
        let offset = buf.as_ptr().align_offset(64).min(63);
        AlignedBuf { buf, offset, len }
    }
    /// [`AlignedBuf::zeroed`], or `None` where the allocator cannot give `len` bytes (a plan
    /// asking for more memory than the machine has): the caller reports it rather than the
    /// process aborting. Zeroed by the allocator, so untouched pages stay unmapped.
    pub fn try_zeroed(len: usize) -> Option<Self> {
        let cap = len.checked_add(63)?;
        let layout = std::alloc::Layout::array::<u8>(cap).ok()?;
        // SAFETY: `layout` is not empty (`cap` ≥ 63).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `ptr` comes from the global allocator with u8's alignment and `cap` bytes,
        // all of them initialised (zeroed).
        let buf = unsafe { Vec::from_raw_parts(ptr, cap, cap) };
        let offset = buf.as_ptr().align_offset(64).min(63);
        Some(AlignedBuf { buf, offset, len })
    }
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut b = Self::zeroed(bytes.len());
        b.as_mut_slice().copy_from_slice(bytes);
        b
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.offset..self.offset + self.len]
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[self.offset..self.offset + self.len]
    }
}

impl Clone for AlignedBuf {
    /// A fresh aligned buffer (a cloned `Vec` need not share the original's alignment).
    fn clone(&self) -> Self {
        Self::from_bytes(self.as_slice())
    }
}

impl Default for AlignedBuf {
    fn default() -> Self {
        Self::zeroed(0)
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

/// An owned tensor: dtype, shape and 64-byte-aligned data.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    data: AlignedBuf,
}

/// f32 little-endian bytes narrowed to f16 (round to nearest even) into `dst`, half as long.
pub fn narrow_f32_bytes(src: &[u8], dst: &mut [u8]) {
    for (s, d) in src.chunks_exact(4).zip(dst.chunks_exact_mut(2)) {
        let v = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        d.copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
    }
}

/// f16 little-endian bytes widened to f32 into `dst`, twice as long (exact).
pub fn widen_f16_bytes(src: &[u8], dst: &mut [u8]) {
    for (s, d) in src.chunks_exact(2).zip(dst.chunks_exact_mut(4)) {
        let v = half::f16::from_le_bytes([s[0], s[1]]).to_f32();
        d.copy_from_slice(&v.to_le_bytes());
    }
}

impl Tensor {
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor {
            dtype,
            shape: shape.to_vec(),
            data: AlignedBuf::zeroed(n * dtype.size()),
        }
    }

    /// Builds a tensor from raw little-endian bytes; the length must match the shape.
    pub fn from_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
        // Checked: a shape from a file may multiply past usize (and wrap to the data's length).
        let need = shape
            .iter()
            .try_fold(dtype.size(), |n, &d| n.checked_mul(d));
        if need != Some(bytes.len()) {
            let need = need.map_or("more than memory holds".into(), |n| format!("{n} bytes"));
            return Err(Error::invalid(format!(
                "tensor of shape {shape:?} {dtype} needs {need}, got {}",
                bytes.len()
            )));
        }
        Ok(Tensor {
            dtype,
            shape: shape.to_vec(),
            data: AlignedBuf::from_bytes(bytes),
        })
    }

    pub fn from_vec<T: Element>(shape: &[usize], data: Vec<T>) -> Result<Tensor> {
        Self::from_bytes(T::DTYPE, shape, bytemuck::cast_slice(&data))
    }

    pub fn scalar<T: Element>(v: T) -> Tensor {
        Self::from_bytes(T::DTYPE, &[], bytemuck::bytes_of(&v)).expect("one element")
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn bytes(&self) -> &[u8] {
        self.data.as_slice()
    }
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.data.as_mut_slice()
    }

    /// The data as a typed slice; fails when `T` is not this tensor's dtype.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        if T::DTYPE != self.dtype {
            return Err(Error::invalid(format!(
                "tensor is {}, not {}",
                self.dtype,
                T::DTYPE
            )));
        }
        Ok(bytemuck::cast_slice(self.data.as_slice()))
    }
    pub fn as_slice_mut<T: Element>(&mut self) -> Result<&mut [T]> {
        if T::DTYPE != self.dtype {
            return Err(Error::invalid(format!(
                "tensor is {}, not {}",
                self.dtype,
                T::DTYPE
            )));
        }
        Ok(bytemuck::cast_slice_mut(self.data.as_mut_slice()))
    }

    /// Integer contents widened to i64 (shape arithmetic while folding).
    pub fn to_i64_vec(&self) -> Result<Vec<i64>> {
        Ok(match self.dtype {
            DType::I64 => self.as_slice::<i64>()?.to_vec(),
            DType::I32 => self.as_slice::<i32>()?.iter().map(|&v| v as i64).collect(),
            DType::I8 => self.as_slice::<i8>()?.iter().map(|&v| v as i64).collect(),
            DType::U8 | DType::Bool => self.bytes().iter().map(|&v| v as i64).collect(),
            DType::F32 => self.as_slice::<f32>()?.iter().map(|&v| v as i64).collect(),
            DType::F16 => self
                .as_slice::<half::f16>()?
                .iter()
                .map(|v| v.to_f32() as i64)
                .collect(),
        })
    }

    /// Contents converted to f32 (any dtype).
    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        Ok(match self.dtype {
            DType::F32 => self.as_slice::<f32>()?.to_vec(),
            DType::F16 => self
                .as_slice::<half::f16>()?
                .iter()
                .map(|v| v.to_f32())
                .collect(),
            DType::I8 => self.as_slice::<i8>()?.iter().map(|&v| v as f32).collect(),
            _ => self.to_i64_vec()?.into_iter().map(|v| v as f32).collect(),
        })
    }

    pub fn view(&self) -> TensorView<'_> {
        TensorView {
            dtype: self.dtype,
            shape: &self.shape,
            data: self.data.as_slice(),
        }
    }
    pub fn view_mut(&mut self) -> TensorViewMut<'_> {
        TensorViewMut {
            dtype: self.dtype,
            shape: &self.shape,
            data: self.data.as_mut_slice(),
        }
    }
}

/// A borrowed, read-only tensor: what a kernel receives as input.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    pub data: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// Typed view. Panics only on a planner bug (dtype or alignment), never on user data:
    /// dtypes are checked when the plan is built and every buffer is 64-byte aligned.
    pub fn typed<T: Element>(&self) -> &'a [T] {
        debug_assert_eq!(T::DTYPE, self.dtype);
        bytemuck::cast_slice(self.data)
    }
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A borrowed, writable tensor: what a kernel writes its output into.
#[derive(Debug)]
pub struct TensorViewMut<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    pub data: &'a mut [u8],
}

impl TensorViewMut<'_> {
    pub fn typed<T: Element>(&mut self) -> &mut [T] {
        debug_assert_eq!(T::DTYPE, self.dtype);
        bytemuck::cast_slice_mut(self.data)
    }
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod aligned_tests {
    use super::{AlignedBuf, DType, Tensor};

    /// A shape whose element count passes usize (2^96 here, which wraps to 0) is refused,
    /// whatever data comes with it; it used to be taken with no data.
    #[test]
    fn a_shape_past_usize_is_refused() {
        let huge = [1usize << 32, 1 << 32, 1 << 32];
        let e = Tensor::from_bytes(DType::F32, &huge, &[]).unwrap_err();
        assert!(e.to_string().contains("more than memory holds"), "{e}");
        assert!(Tensor::from_vec::<f32>(&huge, vec![]).is_err());
        assert!(Tensor::from_vec(&[2, 2], vec![0f32; 4]).is_ok());
    }

    #[test]
    fn aligned_buffers_start_on_64_bytes_and_clones_too() {
        for len in [0, 1, 63, 64, 65, 4096, 1 << 20] {
            let mut b = AlignedBuf::zeroed(len);
            assert_eq!(b.as_slice().as_ptr() as usize % 64, 0, "{len}");
            assert!(b.as_slice().iter().all(|&v| v == 0));
            assert_eq!(b.len(), len);
            if len > 0 {
                b.as_mut_slice()[len - 1] = 7;
            }
            let c = b.clone();
            assert_eq!(c.as_slice().as_ptr() as usize % 64, 0, "{len}");
            assert_eq!(c.as_slice(), b.as_slice());
        }
    }
}
