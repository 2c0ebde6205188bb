//! CUDA C sources of the CUDA backend, embedded so the binary carries them (`kernels/cuda/*.cu`).
//!
//! The runtime compiles each module with NVRTC for the device's architecture at load time
//! (`edgefuse_runtime::cuda::nvrtc`), prepending [`PRELUDE`]. Kernel names read
//! `{family}_{op}_{dtype}`; `dtype` is `f32` or `f16` for arithmetic kernels and the element size
//! class (`f32`, `f16`, `i64`, `u8`) for data movement.

/// Shared definitions prepended to every module: fp16 load/store, `Dims`, activation codes.
pub const PRELUDE: &str = include_str!("../cuda/prelude.cuh");

/// One `.cu` file: a module the runtime compiles and loads as a whole.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// The file stem, which is also the kernel family (`elementwise`, `nn`, …).
    pub name: &'static str,
    pub code: &'static str,
}

/// Every kernel source, in a fixed order.
pub const SOURCES: &[Source] = &[
    Source {
        name: "elementwise",
        code: include_str!("../cuda/elementwise.cu"),
    },
    Source {
        name: "nn",
        code: include_str!("../cuda/nn.cu"),
    },
    Source {
        name: "reduce",
        code: include_str!("../cuda/reduce.cu"),
    },
    Source {
        name: "shape",
        code: include_str!("../cuda/shape.cu"),
    },
    Source {
        name: "quant",
        code: include_str!("../cuda/quant.cu"),
    },
    Source {
        name: "linalg",
        code: include_str!("../cuda/linalg.cu"),
    },
    Source {
        name: "recurrent",
        code: include_str!("../cuda/recurrent.cu"),
    },
    Source {
        name: "preprocess",
        code: include_str!("../cuda/preprocess.cu"),
    },
];

/// The source named `name`.
pub fn source(name: &str) -> Option<&'static Source> {
    SOURCES.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.cu` file in `kernels/cuda/` is embedded, so none escapes the NVRTC check.
    #[test]
    fn every_cu_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/cuda");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                (p.extension()? == "cu").then(|| p.file_stem().unwrap().to_string_lossy().into())
            })
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = SOURCES.iter().map(|s| s.name.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    /// Kernel entry points follow `{family}_{op}_{dtype}`: each starts with its file's family.
    #[test]
    fn kernel_names_start_with_their_family() {
        for s in SOURCES {
            for line in s.code.lines() {
                if let Some(rest) = line.split("__global__ void ").nth(1) {
                    assert!(
                        rest.starts_with(&format!("{}_", s.name)),
                        "{}: {line}",
                        s.name
                    );
                }
            }
        }
    }
}
