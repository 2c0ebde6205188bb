//! Truncated, bit-flipped and foreign files, made from every reference model, fed to the loader
//! and to the CLI: each must give a clear error, never a panic. Also thread counts past what
//! the machine can use.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::*;
use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::{Error, Model};

/// Loads `bytes` and, if they load, plans and runs them: must not panic. Returns the load error.
fn load_never_panics(bytes: &[u8], what: &str) -> Option<Error> {
    let r = catch_unwind(AssertUnwindSafe(|| match Model::from_bytes(bytes) {
        Err(e) => Some(e),
        Ok(m) => {
            if let Ok(mut s) = Session::new(m.clone(), SessionOptions::with_threads(1)) {
                let _ = s.run();
            }
            None
        }
    }));
    match r {
        Ok(e) => e,
        Err(_) => panic!("{what}: the runtime panicked"),
    }
}

fn fix_header_crc(b: &mut [u8]) {
    let count = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    let end = 64 + 32 * count;
    b[16..20].fill(0);
    let crc = crc32fast::hash(&b[..end]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
}

/// The same model with its metadata stored as plain JSON (section kind 1, which readers still
/// accept), so mutations reach the JSON checks rather than stopping at inflation.
fn with_plain_meta(good: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let at = |o: usize| u64::from_le_bytes(good[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(
        u32::from_le_bytes(good[64..68].try_into().unwrap()),
        3,
        "deflated metadata first"
    );
    let (moff, mlen, woff, wlen) = (at(72), at(80), at(104), at(112));
    let mut json = Vec::new();
    flate2::read::DeflateDecoder::new(&good[moff..moff + mlen])
        .read_to_end(&mut json)
        .unwrap();
    plain_efm(&json, &good[woff..woff + wlen])
}

/// Rewrites the metadata section's checksum so corrupt contents get past the crc check.
fn fix_meta_crc(b: &mut [u8]) {
    let off = u64::from_le_bytes(b[72..80].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(b[80..88].try_into().unwrap()) as usize;
    let crc = crc32fast::hash(&b[off..off + len]);
    b[88..92].copy_from_slice(&crc.to_le_bytes());
    fix_header_crc(b);
}

fn cli_refuses(path: &std::path::Path, what: &str) {
    for args in [vec!["inspect"], vec!["bench", "--iters", "1"]] {
        let o = edgefuse().args(&args).arg(path).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "{what}: `edgefuse {}` accepted a bad file",
            args[0]
        );
        assert!(err.starts_with("error: "), "{what}: unclear error: {err}");
        assert!(!err.contains("panicked"), "{what}: the CLI panicked: {err}");
    }
}

#[test]
fn every_damaged_file_is_refused_with_a_clear_error() {
    let Some(models) = models_dir() else { return };
    let mut checked = 0;
    for case in CASES {
        let efm = compiled(&models, case.model);
        let good = std::fs::read(&efm).unwrap();
        assert!(
            load_never_panics(&good, "intact").is_none(),
            "{}: the intact file does not load",
            case.model
        );
        let n = good.len();

        // Truncations: empty, inside the header, inside the table, inside each section, one short.
        for cut in [0, 7, 63, 64, 100, 128, n / 3, n / 2, n - 64, n - 1] {
            let e = load_never_panics(&good[..cut], "truncated")
                .unwrap_or_else(|| panic!("{}: truncated to {cut} loaded", case.model));
            assert!(
                matches!(e, Error::BadFile(_)),
                "{}: truncated to {cut}: {e}",
                case.model
            );
            checked += 1;
        }
        // Single bit flips across the file: caught by a checksum (or the magic/version check).
        for k in 0..24 {
            let pos = (k * 7919 + 13) % n;
            let mut b = good.clone();
            b[pos] ^= 1 << (k % 8);
            let e = load_never_panics(&b, "bit flip")
                .unwrap_or_else(|| panic!("{}: flip at {pos} loaded", case.model));
            assert!(
                matches!(e, Error::BadFile(_) | Error::NewerVersion { .. }),
                "{}: flip at {pos}: {e}",
                case.model
            );
            checked += 1;
        }
        // Corrupt metadata with a valid checksum: the reader's own checks must stop it, both
        // in the deflated stream and (through a plain-JSON copy that loads) in the JSON.
        let plain = with_plain_meta(&good);
        assert!(
            load_never_panics(&plain, "plain metadata").is_none(),
            "plain copy refused"
        );
        for base in [&good, &plain] {
            let meta_off = u64::from_le_bytes(base[72..80].try_into().unwrap()) as usize;
            let meta_len = u64::from_le_bytes(base[80..88].try_into().unwrap()) as usize;
            let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ n as u64;
            for _ in 0..40 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let pos = meta_off + (seed >> 33) as usize % meta_len;
                let mut b = base.clone();
                b[pos] = b"0123456789[]{},:\"-9e"[(seed >> 20) as usize % 20];
                fix_meta_crc(&mut b);
                load_never_panics(&b, "metadata mutation");
                checked += 1;
            }
        }
        // A newer major version is refused with the version it needs.
        let mut b = good.clone();
        b[8..10].copy_from_slice(&2u16.to_le_bytes());
        fix_header_crc(&mut b);
        let e = load_never_panics(&b, "newer version").expect("newer version loaded");
        assert!(e.to_string().contains("version 2"), "{e}");

        // The CLI on a damaged copy.
        let bad = scratch_dir().join(format!("{}-damaged.efm", case.model));
        std::fs::write(&bad, &good[..n / 2]).unwrap();
        cli_refuses(&bad, "truncated file");
    }
    // Foreign files: the ONNX model itself, an image, a .npy, random bytes, a directory.
    let foreign = [
        models.join("seed_cnn_mnist.onnx"),
        models.join("../data/images/chelsea.png"),
        models.join("refs/seed_cnn_mnist/input_0.npy"),
    ];
    for f in &foreign {
        let bytes = std::fs::read(f).unwrap();
        let e = load_never_panics(&bytes, "foreign").expect("a foreign file loaded");
        assert!(e.to_string().contains("EDGEFUSE"), "{}: {e}", f.display());
        cli_refuses(f, "foreign file");
    }
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    assert!(load_never_panics(&noise, "noise").is_some());
    cli_refuses(&models, "a directory");
    let e = Model::load(&models).err().expect("a directory loaded");
    assert!(
        e.to_string().contains("a directory, not a .efm file"),
        "{e}"
    );
    eprintln!("{checked} damaged files refused");
}

/// `compile -o` replaces an earlier compiled model, never the ONNX model it reads (`-o
/// model.onnx` destroyed it) or any other file; `--report`, `bundle -o` and `classify
/// --save-input` likewise. Refused before any work, the file left as it was.
#[test]
fn outputs_never_replace_the_model_or_a_foreign_file() {
    let Some(models) = models_dir() else { return };
    let dir = scratch_dir().join("compile-outputs");
    std::fs::create_dir_all(&dir).unwrap();
    let onnx = dir.join("m.onnx");
    std::fs::copy(models.join("seed_cnn_mnist.onnx"), &onnx).unwrap();
    let original = std::fs::read(&onnx).unwrap();
    let note = dir.join("notes.txt");
    std::fs::write(&note, "keep me").unwrap();
    let efm = dir.join("m.efm");
    let _ = std::fs::remove_file(&efm);
    let compile = |extra: &[&std::path::Path]| {
        let mut c = edgefuse();
        c.arg("compile").arg(&onnx).arg("-o");
        for e in extra {
            c.arg(e);
        }
        c.output().unwrap()
    };
    for (out, what) in [(&onnx, "the model itself"), (&note, "a text file")] {
        let o = compile(&[out]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "-o {what} was written");
        assert!(
            err.starts_with("error: -o ") && err.contains("refusing to replace"),
            "{what}: {err}"
        );
    }
    assert_eq!(std::fs::read(&onnx).unwrap(), original, "the model changed");
    assert_eq!(std::fs::read_to_string(&note).unwrap(), "keep me");
    // A device is not replaced by a file renamed over it.
    let o = compile(&[std::path::Path::new("/dev/null")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("not a regular file"),
        "{err}"
    );
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    // A new file, then the same compiled file again, are written.
    for _ in 0..2 {
        let o = compile(&[&efm]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // --report onto the model is refused too.
    let mut c = edgefuse();
    c.arg("compile")
        .arg(&onnx)
        .arg("-o")
        .arg(&efm)
        .arg("--report")
        .arg(&onnx);
    let o = c.output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--report"));
    assert_eq!(std::fs::read(&onnx).unwrap(), original, "the model changed");
    // `bundle -o` onto the compiled model, `classify --save-input` onto it: refused as well.
    let compiled = std::fs::read(&efm).unwrap();
    let keys = dir.join("keys");
    let _ = std::fs::remove_dir_all(&keys);
    let o = edgefuse()
        .arg("keygen")
        .arg("--out")
        .arg(&keys)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = keys.join("edgefuse.key");
    let bundle = |out: &std::path::Path| {
        let mut c = edgefuse();
        c.arg("bundle").arg(&efm).arg("--key").arg(&key);
        c.args(["--version", "1.0.0", "-o"]).arg(out);
        c.output().unwrap()
    };
    let o = bundle(&efm);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("refusing to replace"),
        "{err}"
    );
    let o = edgefuse()
        .arg("classify")
        .arg(&efm)
        .args(["--source", "synthetic", "--save-input"])
        .arg(&efm)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--save-input"), "{err}");
    assert_eq!(
        std::fs::read(&efm).unwrap(),
        compiled,
        "the compiled model changed"
    );
    // A bundle is written, and written again over itself.
    for _ in 0..2 {
        let o = bundle(&dir.join("m.bundle"));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// A count of 0 (threads, iterations, labels, frames) is refused naming the option, before any
/// file is read; it used to run as 1 (threads, iterations) or print nothing (labels).
#[test]
fn zero_counts_are_refused_naming_the_option() {
    for args in [
        ["bench", "m.efm", "--iters", "0"],
        ["bench", "m.efm", "--threads", "0"],
        ["run", "m.efm", "--threads", "0"],
        ["classify", "m.efm", "--top", "0"],
        ["classify", "m.efm", "--frames", "0"],
    ] {
        let o = edgefuse().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "`{}` ran", args.join(" "));
        assert!(
            err.starts_with("error: ") && err.contains(args[2]) && err.contains("at least 1"),
            "`{}`: {err}",
            args.join(" ")
        );
    }
}

#[test]
fn thread_counts_past_the_machine_are_refused_at_once() {
    let Some(models) = models_dir() else { return };
    let efm = compiled(&models, "seed_cnn_mnist");
    let too_many = edgefuse_runtime::cpu::max_threads() + 1;
    let r = refs(&models, "seed_cnn_mnist");
    let out_dir = scratch_dir().join("too-many-threads-out");
    for cmd in ["bench", "run"] {
        let t = std::time::Instant::now();
        let mut c = if cmd == "run" {
            r.run_cmd(&efm, &out_dir)
        } else {
            let mut c = edgefuse();
            c.arg(cmd).arg(&efm);
            c
        };
        let o = c
            .args(["--threads", &too_many.to_string()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "`{cmd} --threads {too_many}` ran");
        assert!(
            err.starts_with("error: ") && err.contains(&format!("at most {}", too_many - 1)),
            "`{cmd} --threads {too_many}`: unclear error: {err}"
        );
        assert!(
            t.elapsed().as_secs() < 10,
            "`{cmd}`: took {:?}",
            t.elapsed()
        );
    }
    // The limit itself is allowed.
    let o = edgefuse()
        .args([
            "bench",
            "--iters",
            "1",
            "--warmup-ms",
            "0",
            "--backend",
            "cpu",
            "--threads",
        ])
        .arg((too_many - 1).to_string())
        .arg(&efm)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn run_refuses_an_output_dir_that_is_a_file_and_leaves_it_alone() {
    let Some(models) = models_dir() else { return };
    let efm = compiled(&models, "seed_cnn_mnist");
    let r = refs(&models, "seed_cnn_mnist");
    let file = scratch_dir().join("not-a-dir.txt");
    std::fs::write(&file, b"keep me").unwrap();
    let o = r.run_cmd(&efm, &file).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "run wrote into a file");
    assert!(
        err.contains("exists and is not a directory"),
        "unclear error: {err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

/// `edgefuse inspect M | head` must not panic when `head` has gone: the report ends quietly
/// (SIGPIPE, as Unix tools do). The pipe's read end is closed before the command starts, so
/// its first line already meets the closed pipe.
#[cfg(unix)]
#[test]
fn a_report_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let Some(models) = models_dir() else { return };
    let efm = compiled(&models, "seed_cnn_mnist");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = edgefuse()
        .arg("inspect")
        .arg(&efm)
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "inspect panicked: {err}");
    assert_eq!(
        o.status.signal(),
        Some(libc::SIGPIPE),
        "{:?} {err}",
        o.status
    );
}

/// `run` writes NAME.npy per output into --output-dir: it replaces an earlier array there, but
/// never an input of the same run (it used to: `--input image=out/probs.npy --output-dir out`
/// overwrote the input with the model's output) nor a file that is not an array.
#[test]
fn run_outputs_never_replace_an_input_or_a_foreign_file() {
    let Some(models) = models_dir() else { return };
    let efm = compiled(&models, "seed_cnn_mnist");
    let r = refs(&models, "seed_cnn_mnist");
    let (name, file, _) = &r.inputs[0];
    let output = &r.outputs[0].0;
    let dir = scratch_dir().join("run-outputs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let clash = dir.join(format!("{output}.npy"));
    let run = |input: &std::path::Path| {
        edgefuse()
            .arg("run")
            .arg(&efm)
            .arg("--input")
            .arg(format!("{name}={}", input.display()))
            .arg("--output-dir")
            .arg(&dir)
            .output()
            .unwrap()
    };
    // The input given under the output's own name.
    std::fs::copy(file, &clash).unwrap();
    let original = std::fs::read(&clash).unwrap();
    let o = run(&clash);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("would replace an input"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&clash).unwrap(),
        original,
        "the input changed"
    );
    // A file of another kind under that name.
    std::fs::write(&clash, "keep me").unwrap();
    let o = run(file);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("--output-dir") && err.contains("refusing to replace"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&clash).unwrap(), "keep me");
    // An earlier output is replaced, and no temporary file is left beside it.
    std::fs::remove_file(&clash).unwrap();
    for _ in 0..2 {
        let o = run(file);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from(format!("{output}.npy"))]);
}

/// Labels must name the classes one to one: a list longer or shorter than the classifier's
/// output (ImageNet's 1001 with "background" for a 1000-class model) is refused by `compile`
/// before anything is written, and by `classify --labels`; it used to shift or drop names
/// silently. Blank lines after the last label are not classes.
#[test]
fn labels_that_do_not_fit_the_classes_are_refused() {
    let Some(models) = models_dir() else { return };
    let dir = scratch_dir().join("labels");
    std::fs::create_dir_all(&dir).unwrap();
    let digits: String = (0..10).map(|d| format!("digit {d}\n")).collect();
    let eleven = dir.join("eleven.txt");
    std::fs::write(&eleven, format!("background\n{digits}")).unwrap();
    let ten = dir.join("ten.txt");
    std::fs::write(&ten, format!("{digits}\n\n")).unwrap();
    let efm = dir.join("m.efm");
    let compile = |labels: &std::path::Path| {
        edgefuse()
            .arg("compile")
            .arg(models.join("seed_cnn_mnist.onnx"))
            .arg("-o")
            .arg(&efm)
            .args(["--preprocess", "mnist", "--labels"])
            .arg(labels)
            .output()
            .unwrap()
    };
    let _ = std::fs::remove_file(&efm);
    let o = compile(&eleven);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("--labels")
            && err.contains("11 labels for output \"probs\" [1, 10], which scores 10 classes"),
        "{err}"
    );
    assert!(!efm.exists(), "a model was written");
    let o = compile(&ten);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let classify = |labels: &std::path::Path| {
        edgefuse()
            .arg("classify")
            .arg(&efm)
            .args(["--source", "synthetic", "--frames", "1", "--labels"])
            .arg(labels)
            .output()
            .unwrap()
    };
    let o = classify(&eleven);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("11 labels"), "{err}");
    let o = classify(&ten);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("digit "), "{out}");
    // A model compiled before trailing blank lines were dropped stored them as labels: it
    // still classifies with its own labels.
    let bytes = std::fs::read(&efm).unwrap();
    let parsed = edgefuse_runtime::format::parse(&bytes).unwrap();
    let mut meta = parsed.meta.clone();
    meta.labels
        .as_mut()
        .unwrap()
        .extend(["".to_string(), "".to_string()]);
    let old = dir.join("old.efm");
    std::fs::write(
        &old,
        plain_efm(
            &serde_json::to_vec(&meta).unwrap(),
            &bytes[parsed.weights.clone()],
        ),
    )
    .unwrap();
    let o = edgefuse()
        .arg("classify")
        .arg(&old)
        .args(["--source", "synthetic", "--frames", "1"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("digit "),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A write that fails part way (here a file-size limit, as a full disk would) leaves the file
/// that was there and no temporary file beside it (the partial copy used to stay), and the
/// error says the cause once.
#[test]
fn a_failed_write_leaves_the_old_file_and_no_partial_copy() {
    let Some(models) = models_dir() else { return };
    let dir = scratch_dir().join("full-disk");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let efm = dir.join("m.efm");
    let o = edgefuse()
        .arg("compile")
        .arg(models.join("seed_cnn_mnist.onnx"))
        .arg("-o")
        .arg(&efm)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = std::fs::read(&efm).unwrap();
    // 100 blocks of 512 bytes: less than the file. SIGXFSZ ignored, so the write fails with EFBIG.
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 100; exec \"$0\" compile \"$1\" -o \"$2\"")
        .arg(env!("CARGO_BIN_EXE_edgefuse"))
        .arg(models.join("seed_cnn_fashion.onnx"))
        .arg(&efm)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("File too large") && !err.contains("caused by"),
        "{err}"
    );
    assert_eq!(std::fs::read(&efm).unwrap(), before, "the model changed");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("m.efm")]);
}
