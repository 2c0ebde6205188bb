//! Board profiles: what a target device is (CPU, GPU, CUDA stack, memory) and the defaults the
//! compiler and runtime use for it. The profiles in `boards/*.toml` are built into the binary;
//! `Board::load` reads another file of the same form.

use serde::Deserialize;

use crate::{Error, Result};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    pub cores: u32,
    pub core: String,
    /// ISA features the kernels may use: neon, dotprod, fp16 (aarch64); avx2, fma, avx512f, vnni.
    pub features: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    pub vendor: String,
    /// CUDA compute capability, e.g. "sm_87".
    pub arch: String,
    #[serde(default)]
    pub jetpack: Option<String>,
    pub cuda: String,
    pub cudnn: String,
    /// Precisions this GPU runs fast (tensor cores, DP4A).
    #[serde(default)]
    pub fast_precisions: Vec<String>,
    /// Dedicated GPU memory (discrete GPUs); Jetsons share `memory.total_mb`.
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// Why edgefuse cannot use this GPU, when it cannot.
    #[serde(default)]
    pub unsupported: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    pub total_mb: u64,
    pub shared_with_gpu: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// cpu or cuda.
    pub backend: String,
    /// fp32, fp16 or int8.
    pub precision: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    pub source: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub format: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// Cargo features of the device binary (`--no-default-features --features ...`).
    pub cargo_features: Vec<String>,
}

/// One board profile.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    pub description: String,
    /// Rust target triple of the device binary.
    pub target: String,
    pub cpu: Cpu,
    #[serde(default)]
    pub gpu: Option<Gpu>,
    pub memory: Memory,
    pub defaults: Defaults,
    pub camera: Camera,
    pub build: Build,
}

/// Largest memory size a profile may give, in MB (16 TiB).
const MAX_MB: u64 = 16 << 20;

const BUILTIN: &[(&str, &str)] = &[
    (
        "jetson-orin-nano",
        include_str!("../../boards/jetson-orin-nano.toml"),
    ),
    (
        "jetson-orin-nx",
        include_str!("../../boards/jetson-orin-nx.toml"),
    ),
    (
        "jetson-agx-orin",
        include_str!("../../boards/jetson-agx-orin.toml"),
    ),
    (
        "jetson-xavier-nx",
        include_str!("../../boards/jetson-xavier-nx.toml"),
    ),
    ("jetson-nano", include_str!("../../boards/jetson-nano.toml")),
    (
        "raspberry-pi-4",
        include_str!("../../boards/raspberry-pi-4.toml"),
    ),
    (
        "raspberry-pi-5",
        include_str!("../../boards/raspberry-pi-5.toml"),
    ),
    ("x86-64-cuda", include_str!("../../boards/x86-64-cuda.toml")),
    ("x86-64-cpu", include_str!("../../boards/x86-64-cpu.toml")),
];

impl Board {
    /// Parses and checks one profile.
    pub fn parse(text: &str, origin: &str) -> Result<Board> {
        let b: Board = toml::from_str(text)
            .map_err(|e| Error::Invalid(format!("board profile {origin}: {e}")))?;
        let bad = |m: String| Err(Error::Invalid(format!("board profile {origin}: {m}")));
        if !["cpu", "cuda"].contains(&b.defaults.backend.as_str()) {
            return bad(format!(
                "defaults.backend \"{}\" is not cpu or cuda",
                b.defaults.backend
            ));
        }
        if !["fp32", "fp16", "int8"].contains(&b.defaults.precision.as_str()) {
            return bad(format!(
                "defaults.precision \"{}\" is not fp32, fp16 or int8",
                b.defaults.precision
            ));
        }
        if b.defaults.backend == "cuda" && !b.cuda_usable() {
            return bad("defaults.backend is cuda but the board has no usable CUDA GPU".into());
        }
        // Counts and sizes: above 0, and memory sizes that stay sizes in bytes (at most 16 TiB).
        let counts = [
            ("cpu.cores", u64::from(b.cpu.cores), 1 << 16),
            ("memory.total_mb", b.memory.total_mb, MAX_MB),
            (
                "gpu.memory_mb",
                b.gpu.as_ref().and_then(|g| g.memory_mb).unwrap_or(1),
                MAX_MB,
            ),
            ("camera.width", u64::from(b.camera.width), 1 << 16),
            ("camera.height", u64::from(b.camera.height), 1 << 16),
            ("camera.fps", u64::from(b.camera.fps), 1 << 16),
        ];
        if let Some((name, v, max)) = counts.iter().find(|(_, v, max)| *v == 0 || v > max) {
            return bad(format!("{name} {v} is not between 1 and {max}"));
        }
        Ok(b)
    }

    /// Reads a profile from a file.
    pub fn load(path: &std::path::Path) -> Result<Board> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Board::parse(&text, &path.display().to_string())
    }

    /// Every built-in profile.
    pub fn builtin() -> Vec<Board> {
        BUILTIN
            .iter()
            .map(|(name, text)| {
                Board::parse(text, name).expect("built-in board profiles are valid")
            })
            .collect()
    }

    /// A built-in profile by name, or an error listing the names.
    pub fn find(name: &str) -> Result<Board> {
        match BUILTIN.iter().find(|(n, _)| *n == name) {
            Some((n, text)) => Board::parse(text, n),
            None => {
                let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
                Err(Error::Invalid(format!(
                    "unknown board \"{name}\" (boards: {})",
                    names.join(", ")
                )))
            }
        }
    }

    /// True when edgefuse can run on this board's GPU (an NVIDIA GPU with a supported CUDA).
    pub fn cuda_usable(&self) -> bool {
        self.gpu
            .as_ref()
            .is_some_and(|g| g.vendor == "nvidia" && g.unsupported.is_none())
    }

    /// Memory available to a model at run time, in bytes (the GPU's own memory for discrete GPUs).
    pub fn model_memory_bytes(&self) -> u64 {
        let mb = match &self.gpu {
            Some(g) if self.cuda_usable() && self.defaults.backend == "cuda" => {
                g.memory_mb.unwrap_or(self.memory.total_mb)
            }
            _ => self.memory.total_mb,
        };
        mb * 1024 * 1024
    }
}

/// What `compile --board` found: notes for the user; an error when the model cannot run there.
impl Board {
    /// Checks a compiled model against this board: the precision its GPU runs well and the memory
    /// the model needs at run time (weights + the CPU plan's arena) against what the board has.
    pub fn check(&self, model: &std::sync::Arc<crate::Model>) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        if let Some(g) = &self.gpu {
            if let Some(why) = &g.unsupported {
                notes.push(format!("{}: {why}", self.name));
            }
        } else {
            notes.push(format!(
                "{}: no CUDA GPU; the model runs on the {}-core {} CPU",
                self.name, self.cpu.cores, self.cpu.core
            ));
        }
        let precision = model.meta().provenance.precision.as_str();
        if let Some(g) = self.gpu.as_ref().filter(|_| self.cuda_usable()) {
            if !g.fast_precisions.iter().any(|p| p == precision) {
                notes.push(format!(
                    "{}: the {} GPU runs {} fastest; this model is {precision}",
                    self.name,
                    g.arch,
                    g.fast_precisions.join(" and ")
                ));
            }
        }
        let session =
            crate::cpu::Session::new(model.clone(), crate::cpu::SessionOptions::with_threads(1))?;
        let need = (model.weights_len() + session.plan().arena_bytes()) as u64;
        let have = self.model_memory_bytes();
        if need > have {
            return Err(Error::Invalid(format!(
                "{} has {} MB for models, this one needs {:.1} MB (weights + activations)",
                self.name,
                have / (1024 * 1024),
                need as f64 / 1e6
            )));
        }
        notes.push(format!(
            "{}: needs {:.1} MB at run time (weights {:.1} MB + activations {:.1} MB) of {} MB",
            self.name,
            need as f64 / 1e6,
            model.weights_len() as f64 / 1e6,
            session.plan().arena_bytes() as f64 / 1e6,
            have / (1024 * 1024)
        ));
        Ok(notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_parses_and_jetson_nano_is_cpu_only() {
        let all = Board::builtin();
        assert_eq!(all.len(), 9);
        let nano = Board::find("jetson-nano").unwrap();
        assert!(!nano.cuda_usable());
        assert_eq!(nano.defaults.backend, "cpu");
        assert!(nano.gpu.unwrap().unsupported.unwrap().contains("CUDA 10.2"));
        let orin = Board::find("jetson-orin-nano").unwrap();
        assert!(orin.cuda_usable() && orin.memory.shared_with_gpu);
        assert!(orin
            .build
            .cargo_features
            .contains(&"cuda-12020".to_string()));
        for b in &all {
            let aarch64 = b.target.starts_with("aarch64");
            assert_eq!(
                aarch64,
                b.cpu.features.contains(&"neon".to_string()),
                "{}",
                b.name
            );
        }
    }

    #[test]
    fn bad_profiles_are_refused_with_the_reason() {
        let e = Board::find("jetson-tx9").unwrap_err().to_string();
        assert!(
            e.contains("unknown board") && e.contains("jetson-orin-nano"),
            "{e}"
        );
        let text = include_str!("../../boards/raspberry-pi-4.toml")
            .replace("backend = \"cpu\"", "backend = \"cuda\"");
        let e = Board::parse(&text, "x").unwrap_err().to_string();
        assert!(e.contains("no usable CUDA GPU"), "{e}");
        let e = Board::parse("name = 1", "y").unwrap_err().to_string();
        assert!(e.contains("board profile y"), "{e}");
    }
}
