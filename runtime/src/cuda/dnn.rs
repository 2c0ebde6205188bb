//! cuDNN: the handle and a prepared 2-D convolution (1-D runs as height 1). fp32 uses FMA math
//! (no TF32, so results match the CPU); fp16 uses tensor cores. Bias + ReLU run fused in
//! `cudnnConvolutionBiasActivationForward`; other epilogues are our `elementwise_bias_act`.

use std::ffi::c_void;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use cudarc::cudnn::sys as cs;
use cudarc::driver::CudaStream;

use super::dnn_choices::Choices;
use crate::tensor::DType;
use crate::{Error, Result};

/// Most workspace a convolution algorithm may ask for; faster ones needing more are skipped.
const MAX_WORKSPACE: usize = 256 << 20;

fn check(what: &str, s: cs::cudnnStatus_t) -> Result<()> {
    if s == cs::cudnnStatus_t::CUDNN_STATUS_SUCCESS {
        Ok(())
    } else {
        Err(Error::Cuda(format!("{what}: {s:?}")))
    }
}

pub struct Dnn {
    handle: cs::cudnnHandle_t,
    /// Algorithm choices kept on disk for this cuDNN and GPU model.
    pub choices: Choices,
}

// SAFETY: used by one session at a time (the session owns its Device).
unsafe impl Send for Dnn {}
// SAFETY: as above.
unsafe impl Sync for Dnn {}

impl Dnn {
    /// A handle bound to `stream`, with the algorithm choices stored for `gpu` (a device name)
    /// in the kernel cache directory.
    pub fn new(stream: &Arc<CudaStream>, gpu: &str) -> Result<Dnn> {
        let dir = super::nvrtc::cache_dir();
        Dnn::with_choices(stream, |version| {
            Choices::open(dir.as_deref(), version, gpu)
        })
    }

    /// A handle with the choices `choices(cudnn version)` gives (tests use a directory of
    /// their own).
    pub fn with_choices(
        stream: &Arc<CudaStream>,
        choices: impl FnOnce(usize) -> Choices,
    ) -> Result<Dnn> {
        // SAFETY: only tries to dlopen the library.
        if !unsafe { cs::is_culib_present() } {
            return Err(Error::Cuda("libcudnn not found".into()));
        }
        let mut handle = std::ptr::null_mut();
        // SAFETY: the library is present; the stream outlives the handle (Device owns both).
        unsafe {
            check("cudnnCreate", cs::cudnnCreate(&mut handle))?;
            check(
                "cudnnSetStream",
                cs::cudnnSetStream(handle, stream.cu_stream() as cs::cudaStream_t),
            )?;
        }
        // SAFETY: the library is loaded (checked above).
        let version = unsafe { cs::cudnnGetVersion() };
        Ok(Dnn {
            handle,
            choices: choices(version),
        })
    }
}

impl Drop for Dnn {
    fn drop(&mut self) {
        // SAFETY: created in `new`, destroyed once.
        let _ = unsafe { cs::cudnnDestroy(self.handle) };
    }
}

/// Loads cuDNN's libraries ahead of the first convolution, so a thread can do it while the
/// driver starts (`CudaSession::new`): libcudnn itself (through cudarc, which keeps it), then
/// cuDNN 9's graph, ops, cnn and precompiled-engine libraries from the directory libcudnn was
/// loaded from (never another install's), kept loaded for the process — cuDNN's own dlopen of
/// them, at its handle or its first plan, then finds them loaded. On x86-64 those dlopens took 25–55 ms (cuDNN 9.28 from PyPI, warm page cache).
/// Nothing here fails: a missing library is the first convolution's error, as before.
pub fn preload() {
    static KEPT: std::sync::OnceLock<Vec<libloading::Library>> = std::sync::OnceLock::new();
    KEPT.get_or_init(|| {
        // libcudnn under cudarc's first name that loads (so cudarc's own load finds it), kept.
        let Some(cudnn) = super::device::first_loadable(cudarc::get_lib_name_candidates("cudnn"))
        else {
            return Vec::new();
        };
        // SAFETY: the library is loaded; cudarc finds it there and asks its version.
        let major = unsafe { cs::cudnnGetVersion() } / 10_000;
        if major < 9 {
            return Vec::new();
        }
        let Some(dir) = loaded_from("libcudnn.so") else {
            return Vec::new();
        };
        let parts = ["graph", "ops", "cnn", "engines_precompiled"]
            .iter()
            .map(|part| dir.join(format!("libcudnn_{part}.so.{major}")))
            .filter(|path| path.is_file())
            .filter_map(|path| super::device::first_loadable([path]));
        std::iter::once(cudnn).chain(parts).collect()
    });
}

/// The directory of the loaded library whose file name starts with `prefix` (Linux: from
/// `/proc/self/maps`).
fn loaded_from(prefix: &str) -> Option<std::path::PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(std::path::Path::new)
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
}

/// Geometry of one convolution, NCHW, symmetric padding.
#[derive(Debug, Clone)]
pub struct ConvShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub group: usize,
    pub pad: (usize, usize),
    pub stride: (usize, usize),
    pub dilation: (usize, usize),
}

impl ConvShape {
    /// What a choice of algorithm depends on besides the GPU and cuDNN version: the dtype and
    /// every dimension.
    fn key(&self, dtype: DType) -> String {
        let s = self;
        format!(
            "{dtype}:n{}c{}h{}w{}:k{}r{}x{}:o{}x{}:g{}:p{}x{}:s{}x{}:d{}x{}",
            s.n,
            s.c,
            s.h,
            s.w,
            s.k,
            s.kh,
            s.kw,
            s.oh,
            s.ow,
            s.group,
            s.pad.0,
            s.pad.1,
            s.stride.0,
            s.stride.1,
            s.dilation.0,
            s.dilation.1
        )
    }
}

/// Descriptors and the chosen algorithm of one convolution.
pub struct ConvPlan {
    x: cs::cudnnTensorDescriptor_t,
    y: cs::cudnnTensorDescriptor_t,
    bias: cs::cudnnTensorDescriptor_t,
    w: cs::cudnnFilterDescriptor_t,
    conv: cs::cudnnConvolutionDescriptor_t,
    act: cs::cudnnActivationDescriptor_t,
    algo: cs::cudnnConvolutionFwdAlgo_t,
    pub workspace: usize,
}

// SAFETY: descriptors are plain host-side objects, only read after construction.
unsafe impl Send for ConvPlan {}
// SAFETY: as above.
unsafe impl Sync for ConvPlan {}

fn i(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::Unsupported(format!("cuDNN dimension {v} is too large")))
}

impl ConvPlan {
    pub fn new(dnn: &Dnn, s: &ConvShape, dtype: DType) -> Result<ConvPlan> {
        let (ty, math) = match dtype {
            DType::F32 => (
                cs::cudnnDataType_t::CUDNN_DATA_FLOAT,
                cs::cudnnMathType_t::CUDNN_FMA_MATH,
            ),
            DType::F16 => (
                cs::cudnnDataType_t::CUDNN_DATA_HALF,
                cs::cudnnMathType_t::CUDNN_TENSOR_OP_MATH,
            ),
            other => return Err(Error::Unsupported(format!("cuDNN convolution of {other}"))),
        };
        let nchw = cs::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW;
        let mut p = ConvPlan {
            x: std::ptr::null_mut(),
            y: std::ptr::null_mut(),
            bias: std::ptr::null_mut(),
            w: std::ptr::null_mut(),
            conv: std::ptr::null_mut(),
            act: std::ptr::null_mut(),
            algo: cs::cudnnConvolutionFwdAlgo_t::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
            workspace: 0,
        };
        // SAFETY: each descriptor is created before it is set, and destroyed in Drop (null ones
        // are skipped); every out-pointer is valid.
        unsafe {
            check(
                "tensor descriptor",
                cs::cudnnCreateTensorDescriptor(&mut p.x),
            )?;
            check(
                "tensor descriptor",
                cs::cudnnCreateTensorDescriptor(&mut p.y),
            )?;
            check(
                "tensor descriptor",
                cs::cudnnCreateTensorDescriptor(&mut p.bias),
            )?;
            check(
                "filter descriptor",
                cs::cudnnCreateFilterDescriptor(&mut p.w),
            )?;
            check(
                "conv descriptor",
                cs::cudnnCreateConvolutionDescriptor(&mut p.conv),
            )?;
            check(
                "activation descriptor",
                cs::cudnnCreateActivationDescriptor(&mut p.act),
            )?;
            check(
                "input shape",
                cs::cudnnSetTensor4dDescriptor(p.x, nchw, ty, i(s.n)?, i(s.c)?, i(s.h)?, i(s.w)?),
            )?;
            check(
                "output shape",
                cs::cudnnSetTensor4dDescriptor(p.y, nchw, ty, i(s.n)?, i(s.k)?, i(s.oh)?, i(s.ow)?),
            )?;
            check(
                "bias shape",
                cs::cudnnSetTensor4dDescriptor(p.bias, nchw, ty, 1, i(s.k)?, 1, 1),
            )?;
            check(
                "filter shape",
                cs::cudnnSetFilter4dDescriptor(
                    p.w,
                    ty,
                    nchw,
                    i(s.k)?,
                    i(s.c / s.group)?,
                    i(s.kh)?,
                    i(s.kw)?,
                ),
            )?;
            // fp16 accumulates in fp32 (pseudo-half would lose accuracy).
            check(
                "convolution",
                cs::cudnnSetConvolution2dDescriptor(
                    p.conv,
                    i(s.pad.0)?,
                    i(s.pad.1)?,
                    i(s.stride.0)?,
                    i(s.stride.1)?,
                    i(s.dilation.0)?,
                    i(s.dilation.1)?,
                    cs::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
                    cs::cudnnDataType_t::CUDNN_DATA_FLOAT,
                ),
            )?;
            check(
                "group count",
                cs::cudnnSetConvolutionGroupCount(p.conv, i(s.group)?),
            )?;
            check("math type", cs::cudnnSetConvolutionMathType(p.conv, math))?;
            check(
                "activation",
                cs::cudnnSetActivationDescriptor(
                    p.act,
                    cs::cudnnActivationMode_t::CUDNN_ACTIVATION_RELU,
                    cs::cudnnNanPropagation_t::CUDNN_PROPAGATE_NAN,
                    0.0,
                ),
            )?;
            let key = s.key(dtype);
            let kept = dnn.choices.get(&key);
            let accepted = kept.and_then(|algo| p.workspace_for(dnn, algo).map(|ws| (algo, ws)));
            if let Some((algo, ws)) = accepted {
                (p.algo, p.workspace) = (algo, ws);
                dnn.choices.hits.fetch_add(1, Relaxed);
            } else {
                // The heuristic's first answer usually does; asking for all of them costs
                // ~1 ms of CPU a layer (pytorch/pytorch#187212), so only when it does not.
                let algo = match p.heuristic(dnn, 1, dtype)? {
                    Some(a) => a,
                    None => p.heuristic(dnn, 8, dtype)?.ok_or_else(|| {
                        Error::Unsupported("cuDNN has no algorithm for this convolution".into())
                    })?,
                };
                p.algo = algo;
                p.workspace = p.workspace_for(dnn, algo).ok_or_else(|| {
                    Error::Cuda("cuDNN refused the workspace query of its own choice".into())
                })?;
                dnn.choices.queries.fetch_add(1, Relaxed);
                dnn.choices.put(&key, algo);
            }
        }
        Ok(p)
    }

    /// The first usable algorithm among the heuristic's best `count`: it succeeded, fits
    /// [`MAX_WORKSPACE`] and, in f32, is not tensor-op math (TF32 would break exactness).
    ///
    /// # Safety
    /// The descriptors are set.
    unsafe fn heuristic(
        &self,
        dnn: &Dnn,
        count: usize,
        dtype: DType,
    ) -> Result<Option<cs::cudnnConvolutionFwdAlgo_t>> {
        let mut perf = [std::mem::zeroed::<cs::cudnnConvolutionFwdAlgoPerfStruct>(); 8];
        let count = count.min(perf.len());
        let mut found = 0;
        check(
            "choosing an algorithm",
            cs::cudnnGetConvolutionForwardAlgorithm_v7(
                dnn.handle,
                self.x,
                self.w,
                self.conv,
                self.y,
                count as i32,
                &mut found,
                perf.as_mut_ptr(),
            ),
        )?;
        let found = (found.max(0) as usize).min(count);
        Ok(perf[..found]
            .iter()
            .find(|a| {
                a.status == cs::cudnnStatus_t::CUDNN_STATUS_SUCCESS
                    && a.memory <= MAX_WORKSPACE
                    && (dtype != DType::F32
                        || a.mathType != cs::cudnnMathType_t::CUDNN_TENSOR_OP_MATH)
            })
            .map(|a| a.algo))
    }

    /// The workspace `algo` needs here, or None when cuDNN refuses it for this convolution or
    /// it needs more than [`MAX_WORKSPACE`].
    ///
    /// # Safety
    /// The descriptors are set.
    unsafe fn workspace_for(
        &self,
        dnn: &Dnn,
        algo: cs::cudnnConvolutionFwdAlgo_t,
    ) -> Option<usize> {
        let mut bytes = 0;
        let status = cs::cudnnGetConvolutionForwardWorkspaceSize(
            dnn.handle, self.x, self.w, self.conv, self.y, algo, &mut bytes,
        );
        (status == cs::cudnnStatus_t::CUDNN_STATUS_SUCCESS && bytes <= MAX_WORKSPACE)
            .then_some(bytes)
    }

    /// `y = conv(x, w)` and what `with` adds, in one cuDNN call.
    ///
    /// # Safety
    /// Device buffers must match the shapes given to `new` (z that of y); `workspace` must
    /// hold `self.workspace` bytes.
    pub unsafe fn run(
        &self,
        dnn: &Dnn,
        (x, w): (u64, u64),
        with: ConvAdds,
        y: u64,
        workspace: u64,
    ) -> Result<()> {
        let (one, zero) = (1.0f32, 0.0f32);
        let one = &one as *const f32 as *const c_void;
        let zero = &zero as *const f32 as *const c_void;
        let ws = workspace as *mut c_void;
        let status = match with {
            ConvAdds::BiasRelu(b, z) => cs::cudnnConvolutionBiasActivationForward(
                dnn.handle,
                one,
                self.x,
                x as *const c_void,
                self.w,
                w as *const c_void,
                self.conv,
                self.algo,
                ws,
                self.workspace,
                if z.is_some() { one } else { zero },
                self.y,
                z.unwrap_or(y) as *const c_void,
                self.bias,
                b as *const c_void,
                self.act,
                self.y,
                y as *mut c_void,
            ),
            ConvAdds::Nothing | ConvAdds::Y => cs::cudnnConvolutionForward(
                dnn.handle,
                one,
                self.x,
                x as *const c_void,
                self.w,
                w as *const c_void,
                self.conv,
                self.algo,
                ws,
                self.workspace,
                if with == ConvAdds::Y { one } else { zero },
                self.y,
                y as *mut c_void,
            ),
        };
        check("cuDNN convolution", status)
    }
}

/// What a cuDNN convolution adds to `conv(x, w)` ([`ConvPlan::run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvAdds {
    Nothing,
    /// y's prior value (cuDNN's `beta = 1`): `y = conv(x, w) + y`.
    Y,
    /// `y = relu(conv(x, w) + z + bias)` with (bias, z), z optional.
    BiasRelu(u64, Option<u64>),
}

impl Drop for ConvPlan {
    fn drop(&mut self) {
        // SAFETY: each non-null descriptor was created in `new` and is destroyed once.
        unsafe {
            for d in [self.x, self.y, self.bias] {
                if !d.is_null() {
                    cs::cudnnDestroyTensorDescriptor(d);
                }
            }
            if !self.w.is_null() {
                cs::cudnnDestroyFilterDescriptor(self.w);
            }
            if !self.conv.is_null() {
                cs::cudnnDestroyConvolutionDescriptor(self.conv);
            }
            if !self.act.is_null() {
                cs::cudnnDestroyActivationDescriptor(self.act);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::ops::testing::device;

    /// Needs cuDNN's libraries, not a GPU (skipped, saying so, without them).
    #[test]
    fn preload_maps_cudnns_own_libraries_from_its_directory() {
        preload();
        let Some(dir) = loaded_from("libcudnn.so") else {
            eprintln!("skipped: no cuDNN to preload");
            return;
        };
        // SAFETY: the library is loaded (found in the process's maps).
        let major = unsafe { cs::cudnnGetVersion() } / 10_000;
        let graph = dir.join(format!("libcudnn_graph.so.{major}"));
        if !graph.is_file() {
            eprintln!(
                "skipped: {} has no libcudnn_graph (cuDNN 8, or the emulated GPU)",
                dir.display()
            );
            return;
        }
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let mapped: Vec<&str> = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .filter(|p| p.contains("libcudnn_graph") || p.contains("libcudnn_engines_precompiled"))
            .collect();
        assert!(
            !mapped.is_empty(),
            "preload left cuDNN's graph and engine libraries unloaded"
        );
        let graph = graph.canonicalize().unwrap();
        assert!(
            mapped
                .iter()
                .all(|p| std::path::Path::new(p).parent() == graph.parent()),
            "loaded from elsewhere than {}: {mapped:?}",
            dir.display()
        );
    }

    /// Needs a GPU with cuDNN (skipped, saying so, without one).
    #[test]
    fn a_kept_choice_is_used_and_one_cudnn_refuses_is_asked_again() {
        let Some(dev) = device() else { return };
        let dir = std::env::temp_dir().join(format!("edgefuse-dnn-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let open = || {
            Dnn::with_choices(&dev.stream, |v| Choices::open(Some(&dir), v, "test GPU"))
                .expect("cuDNN")
        };
        let shape = ConvShape {
            n: 1,
            c: 4,
            h: 9,
            w: 9,
            k: 8,
            kh: 3,
            kw: 3,
            oh: 5,
            ow: 5,
            group: 1,
            pad: (1, 1),
            stride: (2, 2),
            dilation: (1, 1),
        };
        let first = open();
        let asked = ConvPlan::new(&first, &shape, DType::F16).unwrap();
        assert_eq!(first.choices.counts(), (0, 1));
        let second = open();
        let kept = ConvPlan::new(&second, &shape, DType::F16).unwrap();
        assert_eq!(second.choices.counts(), (1, 0));
        assert_eq!((kept.algo, kept.workspace), (asked.algo, asked.workspace));

        let third = open();
        // A poisoned entry: cuDNN implements no DIRECT algorithm, so its workspace query
        // refuses it.
        let direct = cs::cudnnConvolutionFwdAlgo_t::CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
        third.choices.put(&shape.key(DType::F16), direct);
        let redone = ConvPlan::new(&third, &shape, DType::F16).unwrap();
        assert_eq!(third.choices.counts(), (0, 1));
        assert_eq!(redone.algo, asked.algo);
        assert_eq!(open().choices.get(&shape.key(DType::F16)), Some(asked.algo));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
