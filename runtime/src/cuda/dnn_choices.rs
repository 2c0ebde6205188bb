//! cuDNN's convolution algorithm choices, kept on disk beside the kernel cache
//! ([`nvrtc::cache_dir`](super::nvrtc::cache_dir)), so a warm load skips cuDNN's heuristic query:
//! on an H200 that query and the plan behind it were most of the 355 ms that EfficientNet-Lite0's
//! 33 f16 layers took to prepare (BENCHMARKS.md, "Load to first result").
//!
//! One small text file per cuDNN version and GPU model (the heuristic's answer depends on both),
//! one line per convolution: `key algorithm-number`. [`ConvPlan::new`](super::dnn::ConvPlan::new)
//! uses a choice read back only when cuDNN still accepts it for that convolution (its workspace
//! query succeeds within the limit); otherwise it asks the heuristic again and rewrites the
//! entry. A file that cannot be read, written or parsed costs only the queries: lines that do
//! not parse, and numbers that name no algorithm, are skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use cudarc::cudnn::sys::cudnnConvolutionFwdAlgo_t as Algo;

/// Files past this size are not ours (a model has at most a few hundred convolutions).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The choices of one cuDNN version on one GPU model, and how often each way was taken.
pub struct Choices {
    path: Option<PathBuf>,
    map: Mutex<HashMap<String, Algo>>,
    /// Plans that took their algorithm from the file.
    pub hits: AtomicUsize,
    /// Plans that asked cuDNN's heuristic.
    pub queries: AtomicUsize,
}

impl Choices {
    /// The choices stored in `dir` for cuDNN `version` on `gpu` (a device name); empty, and
    /// never written, when `dir` is None.
    pub fn open(dir: Option<&Path>, version: usize, gpu: &str) -> Choices {
        let path = dir.map(|d| d.join(file_name(version, gpu)));
        let map = path.as_deref().and_then(read).unwrap_or_default();
        Choices {
            path,
            map: Mutex::new(map),
            hits: AtomicUsize::new(0),
            queries: AtomicUsize::new(0),
        }
    }

    pub fn get(&self, key: &str) -> Option<Algo> {
        self.map.lock().unwrap().get(key).copied()
    }

    /// Records `algo` for `key` and rewrites the file (atomically; failures are ignored: the
    /// next load asks again).
    pub fn put(&self, key: &str, algo: Algo) {
        let text = {
            let mut map = self.map.lock().unwrap();
            if map.insert(key.to_string(), algo) == Some(algo) {
                return;
            }
            format(&map)
        };
        if let Some(p) = &self.path {
            let _ = super::nvrtc::store(p, text.as_bytes());
        }
    }

    pub fn counts(&self) -> (usize, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.queries.load(Ordering::Relaxed),
        )
    }
}

/// `cudnn-<version>-<gpu name with every character but ASCII letters and digits as '-'>.txt`.
fn file_name(version: usize, gpu: &str) -> String {
    let gpu: String = gpu
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("cudnn-{version}-{gpu}.txt")
}

fn read(path: &Path) -> Option<HashMap<String, Algo>> {
    let file = std::fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() > MAX_FILE_BYTES {
        return None;
    }
    Some(parse(&std::io::read_to_string(file).ok()?))
}

fn parse(text: &str) -> HashMap<String, Algo> {
    text.lines()
        .filter_map(|line| {
            let (key, n) = line.trim().split_once(' ')?;
            Some((key.to_string(), algo(n.parse().ok()?)?))
        })
        .collect()
}

/// Sorted, so the same choices always write the same file.
fn format(map: &HashMap<String, Algo>) -> String {
    let mut lines: Vec<String> = map
        .iter()
        .map(|(k, &a)| format!("{k} {}\n", a as u32))
        .collect();
    lines.sort();
    lines.concat()
}

/// The algorithm numbered `n` in cuDNN's enum (`COUNT` is not one).
fn algo(n: u32) -> Option<Algo> {
    Some(match n {
        0 => Algo::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
        1 => Algo::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
        2 => Algo::CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
        3 => Algo::CUDNN_CONVOLUTION_FWD_ALGO_DIRECT,
        4 => Algo::CUDNN_CONVOLUTION_FWD_ALGO_FFT,
        5 => Algo::CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
        6 => Algo::CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD,
        7 => Algo::CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("edgefuse-dnn-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn every_algorithm_number_round_trips_and_count_is_none() {
        for n in 0..8 {
            assert_eq!(algo(n).map(|a| a as u32), Some(n));
        }
        assert!(algo(8).is_none());
        assert!(algo(u32::MAX).is_none());
    }

    #[test]
    fn a_choice_put_is_read_back_by_the_next_load_of_the_same_gpu_and_version_only() {
        let dir = temp_dir("roundtrip");
        let winograd = Algo::CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD;
        let c = Choices::open(Some(&dir), 91000, "NVIDIA H200");
        assert_eq!(c.get("f16:a"), None);
        c.put("f16:a", winograd);
        c.put("f32:b", Algo::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
        let again = Choices::open(Some(&dir), 91000, "NVIDIA H200");
        assert_eq!(again.get("f16:a"), Some(winograd));
        assert_eq!(
            again.get("f32:b"),
            Some(Algo::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM)
        );
        assert_eq!(
            Choices::open(Some(&dir), 91001, "NVIDIA H200").get("f16:a"),
            None
        );
        assert_eq!(
            Choices::open(Some(&dir), 91000, "Orin (nvgpu)").get("f16:a"),
            None
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["cudnn-91000-NVIDIA-H200.txt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_lines_and_unknown_numbers_are_skipped() {
        let map = parse("good 3\nno-number\nbad x\ncount 8\nhuge 99999999999\n\n  spaced 1  \n");
        assert_eq!(map.len(), 2);
        assert_eq!(map["good"], Algo::CUDNN_CONVOLUTION_FWD_ALGO_DIRECT);
        assert_eq!(
            map["spaced"],
            Algo::CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM
        );
    }

    #[test]
    fn an_oversized_or_binary_file_is_ignored_and_replaced() {
        let dir = temp_dir("junk");
        let path = dir.join(file_name(1, "g"));
        std::fs::write(&path, vec![0xffu8; 64]).unwrap();
        let c = Choices::open(Some(&dir), 1, "g");
        assert_eq!(c.get("k"), None);
        c.put("k", Algo::CUDNN_CONVOLUTION_FWD_ALGO_GEMM);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "k 2\n");
        std::fs::write(&path, vec![b'a'; (MAX_FILE_BYTES + 1) as usize]).unwrap();
        assert_eq!(Choices::open(Some(&dir), 1, "g").get("k"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_directory_nothing_is_written() {
        let c = Choices::open(None, 1, "g");
        c.put("k", Algo::CUDNN_CONVOLUTION_FWD_ALGO_GEMM);
        assert_eq!(c.get("k"), Some(Algo::CUDNN_CONVOLUTION_FWD_ALGO_GEMM));
    }
}
