//! The GPU a session runs on: context, stream, compiled kernel modules, cuBLAS and cuDNN
//! handles, raw device and pinned host buffers, and the one way kernels are launched.
//!
//! Every CUDA library is loaded at run time (cudarc `dynamic-loading`); cudarc panics when a
//! library is missing, so each is probed with `is_culib_present` before its first use.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::{result as dr, sys as ds, CudaContext, CudaFunction, CudaModule, CudaStream};

use super::{blas, dnn, nvrtc};
use crate::{Error, Result};

/// Whether libcuda (the driver) can be loaded. Says nothing about a GPU being present.
pub fn driver_present() -> bool {
    // On Linux the driver installs `libcuda.so.1` (and `libcuda.so`, the development link; on
    // Jetson boards both are in L4T's `tegra/`). cudarc's own probe tries 34 names, each a full
    // search of the library path — about 1 ms on a machine without CUDA, a fifth of a small
    // model's load to first result under `--backend auto` — so a machine with neither of the
    // two answers here at once.
    // The library found stays loaded, so cudarc's load of it at `cuInit` (same names, same
    // order: `libcuda.so` first) finds it there, where unloading it would make that a second
    // full load.
    #[cfg(target_os = "linux")]
    {
        static KEPT: std::sync::OnceLock<Option<libloading::Library>> = std::sync::OnceLock::new();
        if KEPT
            .get_or_init(|| first_loadable(["libcuda.so", "libcuda.so.1"]))
            .is_none()
        {
            return false;
        }
    }
    // SAFETY: only tries to dlopen the library; nothing is called through it.
    unsafe { ds::is_culib_present() }
}

/// The first of `names` that loads, to be kept loaded by the caller: cudarc's own later load
/// of the same library then finds it in the process instead of loading it again.
pub(crate) fn first_loadable<S: AsRef<std::ffi::OsStr>>(
    names: impl IntoIterator<Item = S>,
) -> Option<libloading::Library> {
    names
        .into_iter()
        // SAFETY: loading NVIDIA's libraries runs only their own initialisers, no code of ours.
        .find_map(|name| unsafe { libloading::Library::new(name.as_ref()) }.ok())
}

pub(crate) fn cuda_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Cuda(format!("{what}: {e:?}"))
}

/// What `probe` finds: enough to pick a backend and to print.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    /// Compute capability as an NVRTC arch, e.g. `sm_87`.
    pub arch: String,
    /// An integrated GPU sharing memory with the CPU (Jetson): inputs and outputs are mapped.
    pub integrated: bool,
    pub memory_bytes: usize,
}

/// Finds GPU `ordinal`, or says in one sentence why there is none usable. Asks the device
/// itself, without a context: creating (and, on drop, destroying) a context here would cost
/// as much as the session's own context again (~0.25 s on an H200).
pub fn probe(ordinal: usize) -> Result<DeviceInfo> {
    if !driver_present() {
        return Err(Error::Cuda(
            "no CUDA driver on this machine (libcuda.so not found)".into(),
        ));
    }
    dr::init().map_err(|e| cuda_err("cannot initialise the CUDA driver", e))?;
    let count = dr::device::get_count().map_err(|e| cuda_err("cannot count GPUs", e))?;
    if count <= ordinal as i32 {
        return Err(Error::Cuda(format!(
            "no GPU #{ordinal} (the driver reports {count})"
        )));
    }
    let dev = dr::device::get(ordinal as i32).map_err(|e| cuda_err("cannot find the GPU", e))?;
    use ds::CUdevice_attribute as A;
    // SAFETY: `dev` is a valid device handle from `device::get`.
    let attr = |a: A| {
        unsafe { dr::device::get_attribute(dev, a) }.map_err(|e| cuda_err("device attribute", e))
    };
    let (major, minor) = (
        attr(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
        attr(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
    );
    Ok(DeviceInfo {
        ordinal,
        name: dr::device::get_name(dev).unwrap_or_else(|_| "unknown GPU".into()),
        arch: format!("sm_{major}{minor}"),
        integrated: attr(A::CU_DEVICE_ATTRIBUTE_INTEGRATED)? != 0,
        // SAFETY: as above.
        memory_bytes: unsafe { dr::device::total_mem(dev) }.unwrap_or(0),
    })
}

/// Named wall-clock steps of a load, each measured from the end of the one before.
#[derive(Debug, Clone)]
pub struct Phases {
    last: std::time::Instant,
    pub steps: Vec<(String, f64)>,
}

impl Default for Phases {
    fn default() -> Self {
        Phases {
            last: std::time::Instant::now(),
            steps: Vec::new(),
        }
    }
}

impl Phases {
    /// Records the time since the previous mark (or creation) as step `name`, in ms.
    pub fn mark(&mut self, name: impl Into<String>) {
        let now = std::time::Instant::now();
        self.steps
            .push((name.into(), (now - self.last).as_secs_f64() * 1e3));
        self.last = now;
    }
}

/// An open GPU: one context, one (non-default) stream every node is launched on, the kernel
/// modules compiled for its arch, and library handles bound to that stream.
pub struct Device {
    /// How long each step of `open` took.
    pub phases: Phases,
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub info: DeviceInfo,
    modules: HashMap<&'static str, Arc<CudaModule>>,
    functions: std::sync::Mutex<HashMap<String, CudaFunction>>,
    /// Created by the first node that asks (its handle costs ~0.1 s; cuDNN-only models skip it).
    blas: std::sync::OnceLock<Option<blas::Blas>>,
    /// Created by the first convolution that asks (models without cuDNN layers skip loading
    /// the library).
    dnn: std::sync::OnceLock<Option<dnn::Dnn>>,
}

impl Device {
    /// Opens GPU `ordinal` and compiles (or loads from the disk cache) every kernel module for
    /// `arch` (default: the device's); the cuBLAS and cuDNN handles are made when a node first
    /// needs them (nodes needing a missing library fall back to the CPU).
    pub fn open(ordinal: usize, arch: Option<&str>) -> Result<Device> {
        let mut phases = Phases::default();
        let mut info = probe(ordinal)?;
        phases.mark("CUDA driver initialised");
        let ctx = CudaContext::new(ordinal).map_err(|e| cuda_err("cannot open the GPU", e))?;
        // SAFETY: this backend never hands cudarc-tracked slices to kernels; all memory is raw
        // and ordered by the one stream, so cudarc's per-slice events are not needed (and would
        // get in the way of graph capture).
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx
            .new_stream()
            .map_err(|e| cuda_err("cannot create a stream", e))?;
        if let Some(a) = arch {
            info.arch = a.to_string();
        }
        phases.mark("CUDA context and stream");
        let mut modules = HashMap::new();
        for src in edgefuse_kernels::cuda::SOURCES {
            let image = nvrtc::compile_cached(src, &info.arch)?;
            let module = ctx
                .load_module(cudarc::nvrtc::Ptx::from_binary(image))
                .map_err(|e| cuda_err(&format!("loading kernel module \"{}\"", src.name), e))?;
            modules.insert(src.name, module);
        }
        phases.mark("kernel modules (NVRTC or disk cache) loaded");
        Ok(Device {
            phases,
            ctx,
            stream,
            info,
            modules,
            functions: Default::default(),
            blas: std::sync::OnceLock::new(),
            dnn: std::sync::OnceLock::new(),
        })
    }

    /// The kernel named `{family}_{op}_{dtype}` (its module is the family's `.cu` file).
    pub fn function(&self, name: &str) -> Result<CudaFunction> {
        if let Some(f) = self.functions.lock().unwrap().get(name) {
            return Ok(f.clone());
        }
        let family = name.split('_').next().unwrap_or("");
        let module = self
            .modules
            .get(family)
            .ok_or_else(|| Error::Cuda(format!("no kernel module \"{family}\" for {name}")))?;
        let f = module
            .load_function(name)
            .map_err(|e| cuda_err(&format!("kernel {name}"), e))?;
        self.functions
            .lock()
            .unwrap()
            .insert(name.to_string(), f.clone());
        Ok(f)
    }

    pub fn blas(&self) -> Result<&blas::Blas> {
        self.blas
            .get_or_init(|| blas::Blas::new(&self.ctx, &self.stream).ok())
            .as_ref()
            .ok_or_else(|| Error::Cuda("cuBLAS (libcublas) could not be loaded".into()))
    }
    pub fn dnn(&self) -> Result<&dnn::Dnn> {
        self.dnn
            .get_or_init(|| dnn::Dnn::new(&self.stream, &self.info.name).ok())
            .as_ref()
            .ok_or_else(|| Error::Cuda("cuDNN (libcudnn) could not be loaded".into()))
    }

    /// The cuDNN handle if a node has made it.
    pub fn dnn_if_loaded(&self) -> Option<&dnn::Dnn> {
        self.dnn.get().and_then(Option::as_ref)
    }

    pub fn cu_stream(&self) -> ds::CUstream {
        self.stream.cu_stream()
    }

    /// Launches `f` over `threads` threads (blocks of 256, grid capped; kernels use grid-stride
    /// loops). `params` points at each argument in the kernel's parameter order.
    ///
    /// # Safety
    /// Each pointer in `params` must point at a live value whose type matches the kernel's
    /// parameter at that position, and every device pointer passed must cover what the kernel
    /// reads and writes.
    pub unsafe fn launch(
        &self,
        f: &CudaFunction,
        threads: usize,
        params: &mut [*mut c_void],
    ) -> Result<()> {
        let block = 256usize;
        let grid = threads.div_ceil(block).clamp(1, 65_535);
        self.launch_grid(f, grid as u32, block as u32, params)
    }

    /// Like [`Device::launch`] with an explicit grid and block size.
    ///
    /// # Safety
    /// As for [`Device::launch`].
    pub unsafe fn launch_grid(
        &self,
        f: &CudaFunction,
        grid: u32,
        block: u32,
        params: &mut [*mut c_void],
    ) -> Result<()> {
        dr::launch_kernel(
            f.cu_function(),
            (grid, 1, 1),
            (block, 1, 1),
            0,
            self.cu_stream(),
            params,
        )
        .map_err(|e| cuda_err("kernel launch", e))
    }

    /// Like [`Device::launch_grid`] with a three-dimensional grid.
    ///
    /// # Safety
    /// As for [`Device::launch`].
    pub unsafe fn launch_grid3(
        &self,
        f: &CudaFunction,
        grid: (u32, u32, u32),
        block: u32,
        params: &mut [*mut c_void],
    ) -> Result<()> {
        dr::launch_kernel(
            f.cu_function(),
            grid,
            (block, 1, 1),
            0,
            self.cu_stream(),
            params,
        )
        .map_err(|e| cuda_err("kernel launch", e))
    }

    /// How many blocks of `block` threads of `f` (no dynamic shared memory) the whole GPU
    /// holds at once.
    pub fn resident_blocks(&self, f: &CudaFunction, block: usize) -> Result<usize> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| cuda_err("binding the context", e))?;
        // SAFETY: `f` is a loaded function of this context.
        let per_sm = unsafe {
            dr::occupancy::max_active_block_per_multiprocessor(f.cu_function(), block as i32, 0)
        }
        .map_err(|e| cuda_err("occupancy", e))?;
        Ok(per_sm.max(0) as usize * self.sm_count()?)
    }

    /// The GPU's streaming multiprocessors.
    pub fn sm_count(&self) -> Result<usize> {
        let sms = self
            .ctx
            .attribute(ds::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| cuda_err("device attribute", e))?;
        Ok(sms.max(0) as usize)
    }

    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| cuda_err("GPU execution failed", e))
    }
}

/// A kernel argument: a pointer to `v` as the driver wants it. `v` must outlive the launch call
/// (pass locals or fields, or temporaries of the same statement).
pub fn arg<T>(v: &T) -> *mut c_void {
    v as *const T as *mut c_void
}

/// A device allocation of `len` bytes, freed on drop.
pub struct DeviceBuffer {
    pub ptr: ds::CUdeviceptr,
    pub len: usize,
}

impl DeviceBuffer {
    pub fn zeroed(dev: &Device, len: usize) -> Result<DeviceBuffer> {
        dev.ctx
            .bind_to_thread()
            .map_err(|e| cuda_err("binding the context", e))?;
        // SAFETY: a plain allocation of at least one byte; freed exactly once in Drop.
        let ptr = unsafe { dr::malloc_sync(len.max(1)) }
            .map_err(|e| cuda_err(&format!("allocating {len} bytes on the GPU"), e))?;
        let b = DeviceBuffer { ptr, len };
        // SAFETY: `ptr` covers `len.max(1)` bytes.
        unsafe { dr::memset_d8_sync(ptr, 0, len.max(1)) }.map_err(|e| cuda_err("memset", e))?;
        dev.ctx.synchronize().map_err(|e| cuda_err("memset", e))?;
        Ok(b)
    }

    /// Uploads `bytes` (synchronously: load time only).
    pub fn from_bytes(dev: &Device, bytes: &[u8]) -> Result<DeviceBuffer> {
        let b = Self::zeroed(dev, bytes.len())?;
        if !bytes.is_empty() {
            // SAFETY: the buffer holds `bytes.len()` bytes.
            unsafe { dr::memcpy_htod_sync(b.ptr, bytes) }
                .map_err(|e| cuda_err("uploading weights", e))?;
            // The copy ran on the legacy stream; finish it before any other stream reads.
            dev.ctx
                .synchronize()
                .map_err(|e| cuda_err("uploading weights", e))?;
        }
        Ok(b)
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated by malloc_sync and freed once. Errors at teardown are ignored.
        let _ = unsafe { dr::free_sync(self.ptr) };
    }
}

/// Page-locked host memory, optionally mapped into the GPU's address space (integrated GPUs
/// read it in place). Freed on drop.
pub struct HostBuffer {
    ptr: *mut u8,
    len: usize,
    /// The device-side address when mapped.
    pub dev_ptr: Option<ds::CUdeviceptr>,
}

// SAFETY: the buffer is plain memory owned by this value; access goes through &self / &mut self.
unsafe impl Send for HostBuffer {}
// SAFETY: shared references only read.
unsafe impl Sync for HostBuffer {}

impl HostBuffer {
    pub fn new(dev: &Device, len: usize, mapped: bool) -> Result<HostBuffer> {
        dev.ctx
            .bind_to_thread()
            .map_err(|e| cuda_err("binding the context", e))?;
        let flags = if mapped {
            ds::CU_MEMHOSTALLOC_DEVICEMAP | ds::CU_MEMHOSTALLOC_PORTABLE
        } else {
            ds::CU_MEMHOSTALLOC_PORTABLE
        };
        // SAFETY: allocation of at least one byte, freed once in Drop.
        let ptr = unsafe { dr::malloc_host(len.max(1), flags) }
            .map_err(|e| cuda_err(&format!("allocating {len} bytes of pinned host memory"), e))?
            as *mut u8;
        // SAFETY: `ptr` covers `len.max(1)` bytes.
        unsafe { std::ptr::write_bytes(ptr, 0, len.max(1)) };
        let dev_ptr = if mapped {
            let mut d: ds::CUdeviceptr = 0;
            // SAFETY: `ptr` was allocated with DEVICEMAP in the current context.
            unsafe { ds::cuMemHostGetDevicePointer_v2(&mut d, ptr as *mut c_void, 0) }
                .result()
                .map_err(|e| cuda_err("mapping host memory", e))?;
            Some(d)
        } else {
            None
        };
        Ok(HostBuffer { ptr, len, dev_ptr })
    }
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` covers `len` initialised bytes owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated by malloc_host and freed once.
        let _ = unsafe { dr::free_host(self.ptr as *mut c_void) };
    }
}
