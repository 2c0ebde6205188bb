//! NVRTC: compiles the embedded `.cu` sources for one GPU architecture, with a disk cache.
//!
//! The runtime and CI use the same function ([`compile`]), so a kernel that compiles in CI
//! compiles on a device with the same NVRTC. Output is a CUBIN for `sm_XX` (no JIT at load).
//! Cache key: FNV-1a of prelude + source, the arch and the NVRTC version; the cache lives in
//! `$EDGEFUSE_KERNEL_CACHE`, else `$XDG_CACHE_HOME/edgefuse/kernels`, else
//! `~/.cache/edgefuse/kernels`. A cache that cannot be written is skipped silently.

use std::ffi::{c_char, CStr, CString};
use std::path::PathBuf;

use cudarc::nvrtc::{result as nr, sys as ns};
use edgefuse_kernels::cuda::{Source, PRELUDE};

use crate::{Error, Result};

/// Whether libnvrtc can be loaded. The library found stays loaded for the process (cudarc's
/// own load of it then costs nothing; its probe would load and unload it, 5–50 ms each time).
pub fn present() -> bool {
    static KEPT: std::sync::OnceLock<Option<libloading::Library>> = std::sync::OnceLock::new();
    KEPT.get_or_init(|| super::device::first_loadable(cudarc::get_lib_name_candidates("nvrtc")))
        .is_some()
}

fn require() -> Result<()> {
    if present() {
        Ok(())
    } else {
        Err(Error::Cuda(
            "NVRTC (libnvrtc.so) not found: the CUDA backend compiles its kernels at load time"
                .into(),
        ))
    }
}

/// NVRTC's version, (major, minor).
pub fn version() -> Result<(i32, i32)> {
    require()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present; both out-pointers are valid.
    unsafe { ns::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| Error::Cuda(format!("nvrtcVersion: {e:?}")))?;
    Ok((major, minor))
}

/// The `sm_NN` targets this NVRTC can compile for (CUDA 13 dropped sm_72, for instance).
pub fn supported_archs() -> Result<Vec<String>> {
    require()?;
    let mut n = 0;
    // SAFETY: the library is present; `n` is a valid out-pointer, then the buffer holds n ints.
    let archs = unsafe {
        ns::nvrtcGetNumSupportedArchs(&mut n)
            .result()
            .map_err(|e| Error::Cuda(format!("nvrtcGetNumSupportedArchs: {e:?}")))?;
        let mut v = vec![0i32; n.max(0) as usize];
        ns::nvrtcGetSupportedArchs(v.as_mut_ptr())
            .result()
            .map_err(|e| Error::Cuda(format!("nvrtcGetSupportedArchs: {e:?}")))?;
        v
    };
    Ok(archs.into_iter().map(|a| format!("sm_{a}")).collect())
}

/// Checks an arch string (`sm_72`, `sm_87`, `sm_90`, …).
fn check_arch(arch: &str) -> Result<()> {
    let ok = arch
        .strip_prefix("sm_")
        .is_some_and(|n| n.len() >= 2 && n.chars().all(|c| c.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "GPU arch \"{arch}\" is not of the form sm_NN (e.g. sm_87)"
        )))
    }
}

/// Compiles `src` (with the prelude) to a CUBIN for `arch`. Errors carry NVRTC's log.
pub fn compile(src: &Source, arch: &str) -> Result<Vec<u8>> {
    require()?;
    check_arch(arch)?;
    let code = CString::new(format!("{PRELUDE}\n{}", src.code))
        .map_err(|_| Error::invalid(format!("kernel source {} holds a NUL byte", src.name)))?;
    let name = CString::new(format!("{}.cu", src.name)).expect("no NUL in a file name");
    let prog = nr::create_program(&code, Some(&name))
        .map_err(|e| Error::Cuda(format!("nvrtcCreateProgram({}): {e:?}", src.name)))?;
    let options = [
        format!("--gpu-architecture={arch}"),
        "--std=c++14".to_string(),
        "--fmad=true".to_string(),
    ];
    // SAFETY: `prog` is a valid program until destroyed below; options are plain strings.
    let compiled = unsafe { nr::compile_program(prog, &options) };
    let result = match compiled {
        Err(e) => {
            // SAFETY: as above; the log is a NUL-terminated string NVRTC wrote.
            let log = unsafe { nr::get_program_log(prog) }
                .map(|l| {
                    unsafe { CStr::from_ptr(l.as_ptr()) }
                        .to_string_lossy()
                        .into_owned()
                })
                .unwrap_or_default();
            Err(Error::Cuda(format!(
                "NVRTC could not compile kernels/cuda/{}.cu for {arch} ({e:?}):\n{log}",
                src.name
            )))
        }
        // SAFETY: compilation succeeded, so the CUBIN is available.
        Ok(()) => unsafe { cubin(prog) },
    };
    // SAFETY: destroyed once; errors at teardown are ignored.
    let _ = unsafe { nr::destroy_program(prog) };
    result
}

/// # Safety
/// `prog` must be a successfully compiled program.
unsafe fn cubin(prog: ns::nvrtcProgram) -> Result<Vec<u8>> {
    let mut size = 0usize;
    ns::nvrtcGetCUBINSize(prog, &mut size)
        .result()
        .map_err(|e| Error::Cuda(format!("nvrtcGetCUBINSize: {e:?}")))?;
    let mut buf = vec![0u8; size];
    ns::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut c_char)
        .result()
        .map_err(|e| Error::Cuda(format!("nvrtcGetCUBIN: {e:?}")))?;
    Ok(buf)
}

/// FNV-1a, 64 bits: a stable cache key (not a security boundary; the cache is the user's own).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The cache directory, if one can be named.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("EDGEFUSE_KERNEL_CACHE") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("edgefuse/kernels"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/edgefuse/kernels"))
}

/// [`compile`], through the disk cache.
pub fn compile_cached(src: &Source, arch: &str) -> Result<Vec<u8>> {
    let (major, minor) = version()?;
    let key = fnv1a(&[
        PRELUDE.as_bytes(),
        src.code.as_bytes(),
        arch.as_bytes(),
        format!("{major}.{minor}").as_bytes(),
    ]);
    let path = cache_dir().map(|d| d.join(format!("{}-{arch}-{key:016x}.cubin", src.name)));
    if let Some(p) = &path {
        if let Ok(bytes) = std::fs::read(p) {
            if !bytes.is_empty() {
                return Ok(bytes);
            }
        }
    }
    let image = compile(src, arch)?;
    if let Some(p) = &path {
        let _ = store(p, &image);
    }
    Ok(image)
}

/// Writes under a temporary name and renames, so a reader never sees half a file.
pub(crate) fn store(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            // A full disk leaves no partial cache entry behind.
            let _ = std::fs::remove_file(&tmp);
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI's kernel check: every source compiles for Xavier (sm_72), Orin (sm_87) and H100
    /// (sm_90) through the runtime's own path. Skips without libnvrtc unless
    /// EDGEFUSE_REQUIRE_NVRTC=1.
    #[test]
    fn every_kernel_compiles_for_jetson_and_h100() {
        if !present() {
            assert!(
                std::env::var("EDGEFUSE_REQUIRE_NVRTC").as_deref() != Ok("1"),
                "EDGEFUSE_REQUIRE_NVRTC=1 but libnvrtc.so cannot be loaded (LD_LIBRARY_PATH?)"
            );
            eprintln!("skipped: libnvrtc not found (scripts/ci-nvrtc.sh installs it)");
            return;
        }
        let (major, minor) = version().unwrap();
        let supported = supported_archs().unwrap();
        for arch in ["sm_72", "sm_87", "sm_90"] {
            if !supported.iter().any(|a| a == arch) {
                // CI pins NVRTC 12.x, which has all three; a newer toolkit on a GPU machine may not.
                assert!(
                    std::env::var("EDGEFUSE_REQUIRE_NVRTC").as_deref() != Ok("1"),
                    "NVRTC {major}.{minor} cannot target {arch}"
                );
                eprintln!("skipped {arch}: NVRTC {major}.{minor} does not support it");
                continue;
            }
            let mut count = 0;
            for src in edgefuse_kernels::cuda::SOURCES {
                let cubin = compile(src, arch).unwrap_or_else(|e| panic!("{e}"));
                assert!(
                    cubin.starts_with(b"\x7fELF"),
                    "{} {arch}: not an ELF cubin",
                    src.name
                );
                let text = String::from_utf8_lossy(&cubin);
                let names = entry_points(src.code);
                assert!(!names.is_empty(), "{}: no entry points found", src.name);
                count += names.len();
                for name in names {
                    assert!(
                        text.contains(&format!("{name}\0")),
                        "{} {arch}: {name} missing",
                        src.name
                    );
                }
            }
            eprintln!("NVRTC {major}.{minor}: all {count} kernels compile for {arch}");
        }
    }

    /// Kernel entry points of a source: each `__global__ void name(` outside a macro, and for
    /// a macro `#define M(P, ..)` declaring `name_##P`, one name per `M(arg, ..)` line, with
    /// the parameters substituted (so every f32 and f16 instance is checked by name).
    fn entry_points(code: &str) -> Vec<String> {
        let ident = |s: &str| s.split('(').next().unwrap().trim().to_string();
        let mut macros: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
        let mut names = Vec::new();
        let mut in_macro = false;
        for line in code.lines() {
            let declared = line.split("__global__ void ").nth(1).map(ident);
            if let Some(def) = line.strip_prefix("#define ") {
                let (name, rest) = def.split_once('(').unwrap_or((def, ""));
                let params = rest.split(')').next().unwrap_or("");
                let params = params.split(',').map(|p| p.trim().to_string()).collect();
                macros.push((name.trim().to_string(), params, Vec::new()));
                in_macro = line.trim_end().ends_with('\\');
                continue;
            }
            if in_macro {
                macros.last_mut().unwrap().2.extend(declared);
                in_macro = line.trim_end().ends_with('\\');
                continue;
            }
            if let Some(n) = declared {
                names.push(n);
                continue;
            }
            for (m, params, templates) in &macros {
                let Some(args) = line.strip_prefix(&format!("{m}(")) else {
                    continue;
                };
                let args: Vec<&str> = args.trim_end().trim_end_matches(')').split(',').collect();
                for t in templates {
                    let name = t.split("##").map(|part| {
                        params
                            .iter()
                            .position(|p| p == part)
                            .map_or(part, |k| args[k].trim())
                    });
                    names.push(name.collect());
                }
            }
        }
        names
    }

    #[test]
    fn entry_points_expand_macro_instances() {
        let code =
            "#define K(T, S) \\\n    extern \"C\" __global__ void fam_op_##S(T* x) {} \\\n\n\
                    K(float, f32)\nK(f16_t, f16)\n#define C(A, SA, B, SB) \\\n    \
                    extern \"C\" __global__ void fam_cast_##SA##_##SB(A* x) {}\n\
                    C(float, f32, f16_t, f16)\nextern \"C\" __global__ void fam_plain(int n) {}\n";
        assert_eq!(
            entry_points(code),
            ["fam_op_f32", "fam_op_f16", "fam_cast_f32_f16", "fam_plain"]
        );
        let nn = edgefuse_kernels::cuda::source("nn").unwrap();
        assert!(entry_points(nn.code).contains(&"nn_pool_max_f16".to_string()));
    }

    #[test]
    fn bad_arch_is_an_error_not_a_panic() {
        assert!(check_arch("sm_87").is_ok());
        assert!(check_arch("compute_87").is_err());
        assert!(check_arch("sm_").is_err());
    }

    #[test]
    fn cache_key_depends_on_every_part() {
        let a = fnv1a(&[b"x", b"sm_87"]);
        assert_ne!(a, fnv1a(&[b"x", b"sm_90"]));
        assert_ne!(a, fnv1a(&[b"xs", b"m_87"]));
        assert_eq!(a, fnv1a(&[b"x", b"sm_87"]));
    }
}
