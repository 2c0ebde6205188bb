//! Camera preprocessing on the GPU: the frame is copied (or, on integrated GPUs, mapped) once,
//! and one NVRTC kernel (`kernels/cuda/preprocess.cu`) converts, resamples, crops or
//! letterboxes, normalises and lays out the model input in device memory. The tap tables are
//! the CPU path's (`preprocess::geometry`), uploaded when the frame size changes, so both paths
//! sample the same pixels with the same weights.
//!
//! Scope: f32 and f16 model inputs (NCHW or NHWC, RGB, BGR or gray) from every raw pixel
//! format (`preprocess_frame_{f32,f16}`); MJPEG frames are decoded on the CPU first (as the CPU
//! path does). int8 inputs use the CPU preprocessor.

use cudarc::driver::{result as dr, CudaFunction};

use super::device::{arg, cuda_err, Device, DeviceBuffer, HostBuffer};
use crate::capture::decode::Decoder;
use crate::capture::frame::{Frame, PixelFormat};
use crate::preprocess::geometry::Geometry;
use crate::preprocess::{pixel, Color, Layout, PreprocessSpec, Target};
use crate::{Error, Result};

/// Tables and buffers for one frame size.
struct Sized {
    src: (usize, usize, usize, PixelFormat),
    geo: Geometry,
    tables: DeviceBuffer,
    frame: HostBuffer,
    frame_dev: Option<DeviceBuffer>,
    /// The uploaded frame's device address and the launch's integer arguments.
    last: Option<(u64, Args)>,
}

/// A preprocessing step on the GPU writing the model input into device memory.
pub struct CudaPreprocessor {
    spec: PreprocessSpec,
    target: Target,
    f: CudaFunction,
    scale: [f32; 3],
    bias: [f32; 3],
    sized: Option<Sized>,
    decoder: Decoder,
    out: DeviceBuffer,
}

fn format_code(f: PixelFormat) -> Option<i32> {
    Some(match f {
        PixelFormat::Yuyv => 0,
        PixelFormat::Uyvy => 1,
        PixelFormat::Nv12 => 2,
        PixelFormat::Rgb24 => 3,
        PixelFormat::Bgr24 => 4,
        PixelFormat::Grey => 5,
        PixelFormat::Mjpeg => return None,
    })
}

impl CudaPreprocessor {
    pub fn new(dev: &Device, spec: PreprocessSpec, target: Target) -> Result<CudaPreprocessor> {
        spec.validate()?;
        target.check(&spec)?;
        let Some(suffix) = super::ops::float_suffix(target.dtype) else {
            return Err(Error::invalid(format!(
                "GPU preprocessing writes f32 or f16 inputs; this input is {} (use the CPU path)",
                target.dtype
            )));
        };
        let mut scale = [1.0; 3];
        let mut bias = [0.0; 3];
        for c in 0..target.channels.min(3) {
            let (m, s) = spec.mean_std(c);
            (scale[c], bias[c]) = pixel::norm_coeffs(m, s);
        }
        let out = DeviceBuffer::zeroed(dev, target.byte_len())?;
        Ok(CudaPreprocessor {
            f: dev.function(&format!("preprocess_frame_{suffix}"))?,
            spec,
            target,
            scale,
            bias,
            sized: None,
            decoder: Decoder::default(),
            out,
        })
    }

    /// The device buffer holding the last preprocessed input (`target.byte_len()` bytes).
    pub fn output(&self) -> &DeviceBuffer {
        &self.out
    }

    /// Uploads the frame (bad frames are an error for that frame only) and enqueues the kernel
    /// on the device's stream; `Device::synchronize` (or the next work on the stream) orders it.
    pub fn run(&mut self, dev: &Device, frame: &Frame) -> Result<()> {
        frame.check()?;
        // The previous frame's upload reads the pinned buffer this one is written into.
        dev.synchronize()?;
        let CudaPreprocessor {
            spec,
            target,
            sized,
            decoder,
            ..
        } = self;
        let frame = if frame.format == PixelFormat::Mjpeg {
            decoder.decode(frame)?
        } else {
            frame
        };
        let fmt = format_code(frame.format).expect("MJPEG decoded above");
        let key = (frame.width, frame.height, frame.stride, frame.format);
        if sized.as_ref().map(|s| s.src) != Some(key) {
            *sized = None;
            *sized = Some(size_for(spec, target, dev, frame)?);
        }
        let s = sized.as_mut().expect("set above");
        let len = frame.data.len().min(s.frame.as_slice().len());
        s.frame.as_mut_slice()[..len].copy_from_slice(&frame.data[..len]);
        let src_ptr = match (&s.frame.dev_ptr, &s.frame_dev) {
            (Some(mapped), _) => *mapped,
            (None, Some(d)) => {
                // SAFETY: the device buffer holds the frame's bytes; the pinned source stays
                // alive and unchanged until the stream passes this copy (the next `run` waits
                // for the stream before writing it again: see below).
                unsafe {
                    dr::memcpy_htod_async(d.ptr, &s.frame.as_slice()[..len], dev.cu_stream())
                }
                .map_err(|e| cuda_err("uploading the frame", e))?;
                d.ptr
            }
            (None, None) => unreachable!("a frame buffer is always set up"),
        };
        let (gx, gy) = (&s.geo.x, &s.geo.y);
        s.last = Some((
            src_ptr,
            Args {
                fmt,
                width: frame.width as i32,
                height: frame.height as i32,
                stride: frame.stride as i32,
                xtaps: gx.taps as i32,
                xlo: gx.inside.start as i32,
                xhi: gx.inside.end as i32,
                ytaps: gy.taps as i32,
                ylo: gy.inside.start as i32,
                yhi: gy.inside.end as i32,
                ow: target.width as i32,
                oh: target.height as i32,
                color: match spec.color {
                    Color::Rgb => 0,
                    Color::Bgr => 1,
                    Color::Gray => 2,
                },
                layout: i32::from(spec.layout == Layout::Nhwc),
            },
        ));
        self.run_uploaded(dev)
    }

    /// Runs the kernel again on the frame the last `run` uploaded (for timing the kernel alone).
    pub fn run_uploaded(&self, dev: &Device) -> Result<()> {
        let Some(s) = &self.sized else {
            return Err(Error::invalid("GPU preprocessing: no frame uploaded yet"));
        };
        let Some((src_ptr, args)) = &s.last else {
            return Err(Error::invalid("GPU preprocessing: no frame uploaded yet"));
        };
        let (gx, gy) = (&s.geo.x, &s.geo.y);
        let (w, h) = (self.target.width, self.target.height);
        let xi = s.tables.ptr;
        let xw = xi + (gx.idx.len() * 4) as u64;
        let yi = xw + (gx.w.len() * 4) as u64;
        let yw = yi + (gy.idx.len() * 4) as u64;
        let out = self.out.ptr;
        let [s0, s1, s2] = self.scale;
        let [b0, b1, b2] = self.bias;
        let pad = self.spec.pad;
        // SAFETY: the parameter list of `preprocess_frame_{f32,f16}`, in order; the tables hold
        // taps × out_w (x) and taps × out_h (y) entries whose indices are inside the frame
        // (built by `Geometry` for this frame size); `out` holds the target's bytes, in the
        // element type the kernel was chosen for.
        unsafe {
            dev.launch(
                &self.f,
                w * h,
                &mut [
                    arg(src_ptr),
                    arg(&args.fmt),
                    arg(&args.width),
                    arg(&args.height),
                    arg(&args.stride),
                    arg(&xi),
                    arg(&xw),
                    arg(&args.xtaps),
                    arg(&args.xlo),
                    arg(&args.xhi),
                    arg(&yi),
                    arg(&yw),
                    arg(&args.ytaps),
                    arg(&args.ylo),
                    arg(&args.yhi),
                    arg(&args.ow),
                    arg(&args.oh),
                    arg(&args.color),
                    arg(&args.layout),
                    arg(&s0),
                    arg(&s1),
                    arg(&s2),
                    arg(&b0),
                    arg(&b1),
                    arg(&b2),
                    arg(&pad),
                    arg(&out),
                ],
            )
        }
    }

    /// Copies the last output to the host (waits for the stream).
    pub fn download(&self, dev: &Device) -> Result<Vec<u8>> {
        dev.synchronize()?;
        let mut host = vec![0u8; self.out.len];
        // SAFETY: `out` holds `len` bytes; the stream is idle.
        unsafe { dr::memcpy_dtoh_sync(&mut host, self.out.ptr) }
            .map_err(|e| cuda_err("downloading the preprocessed input", e))?;
        Ok(host)
    }

    pub fn target(&self) -> &Target {
        &self.target
    }
}

/// The integer kernel arguments, kept alive for the launch.
struct Args {
    fmt: i32,
    width: i32,
    height: i32,
    stride: i32,
    xtaps: i32,
    xlo: i32,
    xhi: i32,
    ytaps: i32,
    ylo: i32,
    yhi: i32,
    ow: i32,
    oh: i32,
    color: i32,
    layout: i32,
}

/// Tap tables and frame buffers for this frame size (the stream is idle: `run` synchronised).
fn size_for(spec: &PreprocessSpec, target: &Target, dev: &Device, frame: &Frame) -> Result<Sized> {
    let geo = Geometry::new(spec, frame.width, frame.height, target.width, target.height)?;
    let mut tables = Vec::new();
    tables.extend(geo.x.idx.iter().flat_map(|&i| (i as i32).to_le_bytes()));
    tables.extend(geo.x.w.iter().flat_map(|w| w.to_le_bytes()));
    tables.extend(geo.y.idx.iter().flat_map(|&i| (i as i32).to_le_bytes()));
    tables.extend(geo.y.w.iter().flat_map(|w| w.to_le_bytes()));
    let tables = DeviceBuffer::from_bytes(dev, &tables)?;
    let mapped = dev.info.integrated;
    let frame_buf = HostBuffer::new(dev, frame.data.len(), mapped)?;
    let frame_dev = if mapped {
        None
    } else {
        Some(DeviceBuffer::zeroed(dev, frame.data.len())?)
    };
    Ok(Sized {
        src: (frame.width, frame.height, frame.stride, frame.format),
        geo,
        tables,
        frame: frame_buf,
        frame_dev,
        last: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::encode::encode;
    use crate::cuda::ops::testing::device;
    use crate::ir::TensorInfo;
    use crate::preprocess::CpuPreprocessor;
    use crate::tensor::{DType, Tensor};

    /// A 1920×1080 test picture (smooth gradients and a few edges) as RGB24.
    fn picture(w: usize, h: usize) -> Vec<u8> {
        let mut v = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let p = &mut v[(y * w + x) * 3..][..3];
                p[0] = (x * 255 / w) as u8;
                p[1] = (y * 255 / h) as u8;
                p[2] = if (x / 97 + y / 61) % 2 == 0 { 40 } else { 220 };
            }
        }
        v
    }

    fn target(spec: &PreprocessSpec, c: usize, dtype: DType) -> Target {
        let shape = if spec.layout == Layout::Nhwc {
            vec![1, 224, 224, c]
        } else {
            vec![1, c, 224, 224]
        };
        let info = TensorInfo {
            name: "x".into(),
            dtype,
            shape,
            weight: None,
            quant: None,
        };
        Target::for_input(spec, &info).unwrap()
    }

    /// Every pixel format and the spec variants against the CPU path, f32 and f16 outputs
    /// (within 1e-3 and 4e-3 of the normalised values), then the median time of the 1080p YUYV → 224 NCHW case.
    #[test]
    fn gpu_preprocessing_matches_the_cpu_path() {
        let Some(dev) = device() else { return };
        let (w, h) = (1920, 1080);
        let rgb = picture(w, h);
        let specs = [
            "efficientnet_lite0",
            "imagenet,layout=nhwc",
            "mean=127,std=128,fit=letterbox",
            "color=gray,fit=stretch,mean=0,std=255",
            "imagenet,color=bgr,interp=area",
        ];
        for fmt in [
            PixelFormat::Yuyv,
            PixelFormat::Uyvy,
            PixelFormat::Nv12,
            PixelFormat::Rgb24,
            PixelFormat::Bgr24,
            PixelFormat::Grey,
        ] {
            let frame = Frame::new(fmt, w, h, encode(&rgb, w, h, fmt).unwrap());
            for text in specs {
                // f16 output within f16 rounding of the normalised values (|v| < 3).
                for (dtype, tol) in [(DType::F32, 1e-3), (DType::F16, 4e-3)] {
                    let spec = PreprocessSpec::parse(text).unwrap();
                    let c = if spec.color == Color::Gray { 1 } else { 3 };
                    let t = target(&spec, c, dtype);
                    let mut cpu = CpuPreprocessor::new(spec.clone(), t).unwrap();
                    let mut want = vec![0u8; t.byte_len()];
                    cpu.run(&frame, &mut want).unwrap();
                    let mut gpu = CudaPreprocessor::new(&dev, spec, t).unwrap();
                    gpu.run(&dev, &frame).unwrap();
                    let got = gpu.download(&dev).unwrap();
                    let floats = |b: &[u8]| {
                        let shape = [b.len() / dtype.size()];
                        Tensor::from_bytes(dtype, &shape, b)
                            .unwrap()
                            .to_f32_vec()
                            .unwrap()
                    };
                    let (g, r) = (floats(&got), floats(&want));
                    let worst = g
                        .iter()
                        .zip(&r)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    assert!(
                        worst <= tol,
                        "{fmt:?} {text} {dtype}: max |gpu − cpu| = {worst}"
                    );
                }
            }
        }
        let spec = PreprocessSpec::parse("efficientnet_lite0").unwrap();
        let frame = Frame::new(
            PixelFormat::Yuyv,
            w,
            h,
            encode(&rgb, w, h, PixelFormat::Yuyv).unwrap(),
        );
        let t = target(&spec, 3, DType::F32);
        let mut gpu = CudaPreprocessor::new(&dev, spec.clone(), t).unwrap();
        let mut times = Vec::new();
        for i in 0..220 {
            gpu.run(&dev, &frame).unwrap();
            dev.synchronize().unwrap();
            // Kernel alone: the frame is already on the device, so time a second launch.
            let t0 = std::time::Instant::now();
            gpu.run_uploaded(&dev).unwrap();
            dev.synchronize().unwrap();
            if i >= 20 {
                times.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "gpu preprocess 1080p YUYV -> 224x224 f32 NCHW ({}): kernel median {:.4} ms",
            dev.info.name,
            times[times.len() / 2]
        );
    }
}
