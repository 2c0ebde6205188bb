//! Hostile input, made here byte by byte: malformed HTTP requests to a real agent, connections
//! that send nothing or trickle, agent and client options that do not parse, key and token files
//! that are not keys or tokens, damaged stores on disk at agent start, and board profiles with
//! wrong types or absurd values. Each must give one clear error naming what is wrong, never a
//! panic, an abort or a hang, and must leave the store as it was. Every network read and every
//! process is bounded by a timeout.

mod flash_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgefuse_runtime::deploy::http::Url;
use edgefuse_runtime::deploy::selftest;
use edgefuse_runtime::ir::ops::{Binary, BinaryOp};
use edgefuse_runtime::ir::{Graph, Node, Op, TensorInfo};
use edgefuse_runtime::{format, DType};
use flash_support::*;

const EXE: &str = env!("CARGO_BIN_EXE_edgefuse");

/// Sends `bytes` as one request (write errors ignored: the agent may answer before reading it
/// all) and returns everything the agent answers, reading for at most 15 s.
fn exchange(url: &Url, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect((url.host.as_str(), url.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn malformed_requests_get_one_clear_answer_and_change_nothing() {
    let env = Env::new();
    let store = env.path("store");
    let agent = Agent::spawn(&env, &store, &[], &[]);
    env.client()
        .install(
            &agent.url,
            &make_bundle(&env.key, "1.0.0", &[], 1.0, 0),
            false,
        )
        .unwrap();
    let before = snapshot(&store);
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let install = |headers: &str| format!("POST /v1/install HTTP/1.1\r\n{auth}{headers}\r\n");
    let mut big_header = b"GET /v1/status HTTP/1.1\r\nX-Big: ".to_vec();
    big_header.resize(big_header.len() + (1 << 20), b'a');
    big_header.extend_from_slice(b"\r\n\r\n");
    let many_headers = format!(
        "GET /v1/status HTTP/1.1\r\n{auth}{}\r\n",
        "X-N: 1\r\n".repeat(5000)
    );
    let mut not_utf8 = format!("GET /v1/status HTTP/1.1\r\n{auth}X-Name: ").into_bytes();
    not_utf8.extend_from_slice(b"\xff\xfe\r\n\r\n");

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "header line without ':'",
            format!("GET /v1/status HTTP/1.1\r\n{auth}junk-line\r\n\r\n").into_bytes(),
            400,
            "\\\"junk-line\\\"",
        ),
        ("a header line of 1 MiB", big_header, 400, "16 KiB"),
        ("5000 headers", many_headers.into_bytes(), 400, "16 KiB"),
        ("non-UTF-8 header", not_utf8, 400, "UTF-8"),
        (
            "request line without a target",
            format!("GET\r\n{auth}\r\n").into_bytes(),
            400,
            "request line \\\"GET\\\"",
        ),
        ("empty head", b"\r\n\r\n".to_vec(), 400, "request line"),
        (
            "negative Content-Length",
            install("Content-Length: -1\r\n").into_bytes(),
            400,
            "Content-Length \\\"-1\\\"",
        ),
        (
            "non-numeric Content-Length",
            install("Content-Length: ten\r\n").into_bytes(),
            400,
            "Content-Length \\\"ten\\\"",
        ),
        (
            "Content-Length past 2^64",
            install("Content-Length: 99999999999999999999999\r\n").into_bytes(),
            400,
            "Content-Length \\\"99999999999999999999999\\\"",
        ),
        (
            "two different Content-Lengths",
            [
                install("Content-Length: 5\r\nContent-Length: 7\r\n").as_bytes(),
                b"hello",
            ]
            .concat(),
            400,
            "Content-Length",
        ),
        (
            "chunked upload",
            [
                install("Transfer-Encoding: chunked\r\n").as_bytes(),
                b"5\r\nhello\r\n0\r\n\r\n",
            ]
            .concat(),
            400,
            "Transfer-Encoding",
        ),
        (
            "chunked upload with a Content-Length",
            [
                install("Transfer-Encoding: chunked\r\nContent-Length: 15\r\n").as_bytes(),
                b"5\r\nhello\r\n0\r\n\r\n",
            ]
            .concat(),
            400,
            "Transfer-Encoding",
        ),
        (
            "no Content-Length",
            install("").into_bytes(),
            400,
            "needs a Content-Length",
        ),
        (
            "unknown method",
            format!("DELETE /v1/install HTTP/1.1\r\n{auth}\r\n").into_bytes(),
            400,
            "DELETE is not allowed on /v1/install",
        ),
        (
            "unknown path",
            format!("GET /../../etc/passwd HTTP/1.1\r\n{auth}\r\n").into_bytes(),
            404,
            "no such endpoint /../../etc/passwd",
        ),
        (
            "body shorter than announced",
            [install("Content-Length: 1000\r\n").as_bytes(), b"EFBUNDL1"].concat(),
            400,
            "received 8 of 1000 bytes",
        ),
    ];
    for (what, bytes, code, needle) in cases {
        let t0 = Instant::now();
        let answer = exchange(&agent.url, &bytes);
        let status = answer.get(9..12).unwrap_or("");
        assert_eq!(status, code.to_string(), "{what}: answer {answer:?}");
        assert!(answer.contains(needle), "{what}: answer {answer:?}");
        assert!(t0.elapsed() < Duration::from_secs(4), "{what}: slow answer");
        assert_eq!(snapshot(&store), before, "{what} changed the store");
        eprintln!("{what:>38}: {}", answer.lines().last().unwrap_or(""));
    }
    // The agent is still there and still installs.
    env.client()
        .install(
            &agent.url,
            &make_bundle(&env.key, "1.1.0", &[], 2.0, 0),
            false,
        )
        .unwrap();
    assert_eq!(check_store(&store, &env.public), "1.1.0");
}

/// Connections that send nothing, or a head one byte at a time, neither block other clients
/// nor hold a connection past the agent's timeout (`--timeout-s 5` from `Agent::spawn`).
#[test]
fn silent_and_trickling_connections_do_not_hold_the_agent() {
    let env = Env::new();
    let agent = Agent::spawn(&env, &env.path("store"), &[], &[]);
    let addr = (agent.url.host.clone(), agent.url.port);
    let connect = move || {
        let s = TcpStream::connect((addr.0.as_str(), addr.1)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s
    };
    let silent: Vec<TcpStream> = (0..3).map(|_| connect()).collect();
    let mut slow = connect();
    let trickle = std::thread::spawn(move || {
        let s = &mut slow;
        let t0 = Instant::now();
        for b in b"GET /v1/status HTTP/1.1\r\nX-Slow: "
            .iter()
            .chain(&[b'a'; 64])
        {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
            if t0.elapsed() > Duration::from_secs(14) {
                break;
            }
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        t0.elapsed()
    });
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let st = env.client().status(&agent.url).unwrap();
    assert_eq!(st.active_version, None);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "status waited {:?} behind idle connections",
        t0.elapsed()
    );
    for mut s in silent {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "a silent connection was held {:?}",
            t0.elapsed()
        );
    }
    let held = trickle.join().unwrap();
    assert!(
        held < Duration::from_secs(8),
        "a head sent one byte every 500 ms was read for {held:?} (the timeout is 5 s)"
    );
}

fn edgefuse(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(EXE)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("edgefuse {args:?} still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !err.contains("panicked"),
        "edgefuse {args:?} panicked: {err}"
    );
    (o.status.success(), err)
}

/// Option values that do not parse are refused at once, naming the option and the value; an
/// agent given one must not start serving with a limit nobody asked for.
#[test]
fn bad_option_values_are_refused_naming_them() {
    let env = Env::new();
    let p = |s: &str| env.path(s).display().to_string();
    let (store, trust, token) = (p("store"), p("keys/edgefuse.pub"), p("token"));
    let agent = |extra: &[&str]| {
        let mut a = vec![
            "agent",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &store,
            "--trust",
            &trust,
            "--token-file",
            &token,
        ];
        a.extend_from_slice(extra);
        edgefuse(&a)
    };
    for (value, needle) in [
        ("NaN", "NaN"),
        ("-1", "-1"),
        ("0", "0"),
        ("inf", "inf"),
        ("1e300", "1e300"),
        ("", "''"),
    ] {
        let (ok, err) = agent(&["--max-bundle-mb", value]);
        assert!(!ok, "--max-bundle-mb {value:?} was accepted");
        assert!(
            err.contains("--max-bundle-mb") && err.contains(needle),
            "--max-bundle-mb {value:?}: {err}"
        );
    }
    for (value, needle) in [("-5", "-5"), ("soon", "soon"), ("0", "0")] {
        let (ok, err) = agent(&["--timeout-s", value]);
        assert!(!ok, "--timeout-s {value:?} was accepted");
        assert!(err.contains("--timeout-s") && err.contains(needle), "{err}");
    }
    let (ok, err) = edgefuse(&[
        "agent",
        "--listen",
        "localhost:99999",
        "--store",
        &store,
        "--trust",
        &trust,
        "--token-file",
        &token,
    ]);
    assert!(!ok && err.contains("localhost:99999"), "{err}");
    for url in [
        "ftp://10.0.0.7:7443",
        "http://",
        "http://host:99999",
        "http://[::1",
        "http://[::1]7443",
        "http://host:port",
        "dir:",
    ] {
        let (ok, err) = edgefuse(&["status", "--to", url, "--timeout-s", "1"]);
        assert!(!ok && err.contains(url), "--to {url}: {err}");
    }
}

/// Key and token files that are not keys or tokens: empty, the wrong length, PEM, a directory, a
/// large file, an endless device, a token of two lines. Each is refused naming the file and
/// what is wrong with it, reading only a bounded amount (under a 2 GiB address-space limit, so an
/// unbounded read fails as "out of memory" rather than straining the machine).
#[test]
fn key_and_token_files_that_are_not_keys_are_refused() {
    let env = Env::new();
    let s = |p: std::path::PathBuf| p.display().to_string();
    let efm = s(env.path("m.efm"));
    std::fs::write(&efm, tiny_model(1.0, 0)).unwrap();
    let efb = s(env.path("m.efb"));
    std::fs::write(&efb, make_bundle(&env.key, "1.0.0", &[], 1.0, 0)).unwrap();
    let out = s(env.path("out.efb"));
    let (store, trust) = (s(env.path("store")), s(env.pub_path()));
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(env.path(name), bytes).unwrap();
        s(env.path(name))
    };
    let large = s(env.path("large"));
    std::fs::File::create(&large)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let limited = |args: &[&str]| {
        let mut a = vec!["-c", "ulimit -v 2097152; exec timeout 20 \"$@\"", "sh", EXE];
        a.extend_from_slice(args);
        let o = Command::new("sh").args(&a).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        (o.status.code(), err)
    };
    // The limit leaves room for real work.
    let (code, err) = limited(&["verify", &efb, "--trust", &trust]);
    assert_eq!(code, Some(0), "{err}");

    // (what, file, what the error must say besides the file's name)
    let unreadable = [
        ("empty", write("empty", b""), ""),
        ("binary", write("binary", &[0xff; 64]), ""),
        ("directory", s(env.path("keys")), "directory"),
        ("3 GiB file", large.clone(), "longer than"),
        ("/dev/zero", "/dev/zero".to_string(), "longer than"),
    ];
    let not_keys = [
        ("short", write("short", b"abcd\n"), "64 hex digits"),
        ("long", write("long", "ab".repeat(40).as_bytes()), "64 hex digits"),
        ("not hex", write("nothex", "zz".repeat(32).as_bytes()), "64 hex digits"),
        (
            "PEM",
            write(
                "pem",
                b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n",
            ),
            "64 hex digits",
        ),
    ];
    let bad_tokens = [
        ("empty token", write("emptytoken", b"\n"), "empty"),
        (
            "two lines",
            write("twolines", format!("{TOKEN}\r\nX-Injected: 1\n").as_bytes()),
            "one line",
        ),
    ];
    for (what, f, needle) in unreadable.iter().chain(&not_keys) {
        for args in [
            vec!["verify", &efb, "--trust", f],
            vec!["bundle", &efm, "--key", f, "--version", "1.0.0", "-o", &out],
        ] {
            let (code, err) = limited(&args);
            assert_eq!(code, Some(1), "{what} as {}: {err}", args[2]);
            assert!(
                err.starts_with("error: ") && err.contains(f.as_str()) && err.contains(needle),
                "{what} as {}: {err}",
                args[2]
            );
        }
    }
    for (what, f, needle) in unreadable.iter().chain(&bad_tokens) {
        for args in [
            vec!["status", "--to", "http://127.0.0.1:9", "--token-file", f],
            vec![
                "agent",
                "--listen",
                "127.0.0.1:0",
                "--store",
                &store,
                "--trust",
                &trust,
                "--token-file",
                f,
            ],
        ] {
            let (code, err) = limited(&args);
            assert_eq!(code, Some(1), "{what} as {} --token-file: {err}", args[0]);
            assert!(
                err.starts_with("error: ")
                    && err.contains("--token-file")
                    && err.contains(f.as_str())
                    && err.contains(needle),
                "{what} as {} --token-file: {err}",
                args[0]
            );
        }
    }
    assert!(!env.path("out.efb").exists());
}

/// A store damaged on disk while the agent was down: it opens, reports what it repaired, never
/// makes an unverified slot active, and installs again afterwards.
#[test]
fn a_damaged_store_opens_reports_and_never_activates_an_unverified_slot() {
    use edgefuse_runtime::deploy::store::{read_pointer, Pointer};
    use edgefuse_runtime::deploy::{InstallOptions, Store};
    use std::path::Path;

    let env = Env::new();
    let b100 = make_bundle(&env.key, "1.0.0", &[], 1.0, 0);
    let b110 = make_bundle(&env.key, "1.1.0", &[], 2.0, 0);
    let b200 = make_bundle(&env.key, "2.0.0", &[], 3.0, 0);
    let write_ptr = |root: &Path, p: serde_json::Value| {
        std::fs::write(root.join("active"), p.to_string()).unwrap()
    };
    type Damage = Box<dyn Fn(&Path)>;
    // (what, damage, the version active after opening)
    let cases: Vec<(&str, Damage, Option<&str>)> = vec![
        (
            "active is not JSON",
            Box::new(|r| std::fs::write(r.join("active"), "{{{").unwrap()),
            Some("1.1.0"),
        ),
        (
            "active is empty",
            Box::new(|r| std::fs::write(r.join("active"), "").unwrap()),
            Some("1.1.0"),
        ),
        (
            "active removed",
            Box::new(|r| std::fs::remove_file(r.join("active")).unwrap()),
            Some("1.1.0"),
        ),
        (
            "active names ../../etc",
            Box::new(move |r| {
                let mut p = read_pointer(r).unwrap();
                p.slot = "../../etc".into();
                write_ptr(r, serde_json::to_value(p).unwrap())
            }),
            Some("1.1.0"),
        ),
        (
            "active claims another version",
            Box::new(move |r| {
                let mut p = read_pointer(r).unwrap();
                p.version = "9.9.9".into();
                write_ptr(r, serde_json::to_value(p).unwrap())
            }),
            Some("1.1.0"),
        ),
        (
            "active's version is not a version",
            Box::new(move |r| {
                let mut p = read_pointer(r).unwrap();
                p.version = "latest".into();
                write_ptr(r, serde_json::to_value(p).unwrap())
            }),
            Some("1.1.0"),
        ),
        (
            "active's generation is the largest",
            Box::new(move |r| {
                let mut p = read_pointer(r).unwrap();
                p.generation = u64::MAX;
                write_ptr(r, serde_json::to_value(p).unwrap())
            }),
            Some("1.1.0"),
        ),
        (
            "active names slot a with b's hash",
            Box::new(move |r| {
                let mut p: Pointer = read_pointer(r).unwrap();
                p.slot = "a".into();
                write_ptr(r, serde_json::to_value(p).unwrap())
            }),
            Some("1.1.0"),
        ),
        (
            "active model truncated",
            Box::new(|r| {
                let m = r.join("slots/b.efm");
                let n = std::fs::metadata(&m).unwrap().len();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&m)
                    .unwrap()
                    .set_len(n / 2)
                    .unwrap();
            }),
            Some("1.0.0"),
        ),
        (
            "active seal missing",
            Box::new(|r| std::fs::remove_file(r.join("slots/b.seal")).unwrap()),
            Some("1.0.0"),
        ),
        (
            "active model swapped for another of the same size",
            Box::new(|r| {
                std::fs::copy(r.join("slots/a.efm"), r.join("slots/b.efm"))
                    .map(|_| ())
                    .unwrap()
            }),
            Some("1.0.0"),
        ),
        (
            "seals swapped",
            Box::new(|r| {
                std::fs::rename(r.join("slots/a.seal"), r.join("slots/x")).unwrap();
                std::fs::rename(r.join("slots/b.seal"), r.join("slots/a.seal")).unwrap();
                std::fs::rename(r.join("slots/x"), r.join("slots/b.seal")).unwrap();
            }),
            None,
        ),
        (
            "slots removed",
            Box::new(|r| std::fs::remove_dir_all(r.join("slots")).unwrap()),
            None,
        ),
    ];
    for (what, damage, want) in cases {
        let root = env.path(&what.replace(' ', "_"));
        {
            let s = Store::open(&root, env.public, None).unwrap();
            s.install(&b100, &InstallOptions::default()).unwrap();
            s.install(&b110, &InstallOptions::default()).unwrap();
        }
        damage(&root);
        let s = Store::open(&root, env.public, None)
            .unwrap_or_else(|e| panic!("{what}: the store did not open: {e}"));
        let st = s.status();
        assert_eq!(st.active_version.as_deref(), want, "{what}: {st:?}");
        match want {
            Some(v) => assert_eq!(check_store(&root, &env.public), v, "{what}"),
            None => assert!(read_pointer(&root).is_none(), "{what}"),
        }
        assert!(
            st.last_error
                .as_deref()
                .is_some_and(|e| e.contains("recovered"))
                || what.contains("generation"),
            "{what}: nothing reported: {st:?}"
        );
        s.install(&b200, &InstallOptions::default())
            .unwrap_or_else(|e| panic!("{what}: install after recovery: {e}"));
        assert_eq!(check_store(&root, &env.public), "2.0.0", "{what}");
        eprintln!("{what:>50}: {}", st.last_error.unwrap_or_default());
    }
    // A real agent starts on a damaged store and says what it repaired.
    let root = env.path("agent-store");
    Store::open(&root, env.public, None)
        .unwrap()
        .install(&b100, &InstallOptions::default())
        .unwrap();
    std::fs::write(root.join("active"), "garbage").unwrap();
    let agent = Agent::spawn(&env, &root, &[], &[]);
    let st = env.client().status(&agent.url).unwrap();
    assert_eq!(st.active_version.as_deref(), Some("1.0.0"));
    assert!(st
        .last_error
        .unwrap_or_default()
        .contains("active pointer repaired"));
}

/// Profiles with wrong types or absurd values are refused naming the field and the value,
/// never taken with a memory size that wraps (`total_mb` of 2^44 MB was 0 bytes).
#[test]
fn profiles_with_wrong_types_or_absurd_values_are_refused() {
    let good = include_str!("../boards/x86-64-cuda.toml");
    assert!(good.contains("total_mb = 32768") && good.contains("memory_mb = 12288"));
    let cases = [
        ("cores = 8", "cores = \"four\"", "cores"),
        ("cores = 8", "cores = -1", "cores"),
        ("cores = 8", "cores = 0", "cpu.cores 0"),
        ("total_mb = 32768", "total_mb = 0", "memory.total_mb 0"),
        (
            "total_mb = 32768",
            "total_mb = 17592186044416",
            "17592186044416",
        ),
        ("total_mb = 32768", "total_mb = 3.5", "total_mb"),
        ("memory_mb = 12288", "memory_mb = 0", "gpu.memory_mb 0"),
        (
            "memory_mb = 12288",
            "memory_mb = 9223372036854775807",
            "9223372036854775807",
        ),
        ("width = 1920", "width = 0", "camera.width 0"),
        ("fps = 30", "fps = 0", "camera.fps 0"),
        ("features = [\"avx2\", \"fma\"]", "features = 7", "features"),
    ];
    for (from, to, needle) in cases {
        assert!(good.contains(from), "{from}");
        let text = good.replacen(from, to, 1);
        match edgefuse_runtime::board::Board::parse(&text, "t") {
            Ok(b) => panic!(
                "{to}: accepted; {} bytes for models",
                b.model_memory_bytes()
            ),
            Err(e) => {
                let e = e.to_string();
                assert!(
                    e.contains("board profile t") && e.contains(needle),
                    "{to}: {e}"
                );
            }
        }
    }
}

/// Two repairs that must keep what the operator chose and what is on disk:
/// - an `active` pointer right about its slot and hash but wrong about the version keeps that
///   slot (it used to switch to the newest slot, undoing a rollback);
/// - a signed slot this runtime cannot load (here a model from a newer format major) is kept
///   for a runtime that can, and never made active (it used to be deleted).
#[test]
fn store_repairs_keep_a_rollback_and_a_signed_model_this_runtime_cannot_load() {
    use edgefuse_runtime::deploy::store::{read_pointer, slot_model};
    use edgefuse_runtime::deploy::{InstallOptions, Store};

    let env = Env::new();
    let b100 = make_bundle(&env.key, "1.0.0", &[], 1.0, 0);
    let b110 = make_bundle(&env.key, "1.1.0", &[], 2.0, 0);
    let fresh = |name: &str| {
        let root = env.path(name);
        let s = Store::open(&root, env.public, None).unwrap();
        s.install(&b100, &InstallOptions::default()).unwrap();
        s.install(&b110, &InstallOptions::default()).unwrap();
        (root, s)
    };

    let (root, s) = fresh("rolled-back");
    s.rollback().unwrap();
    drop(s);
    let mut p = read_pointer(&root).unwrap();
    p.version = "9.9.9".into();
    std::fs::write(root.join("active"), serde_json::to_vec(&p).unwrap()).unwrap();
    let s = Store::open(&root, env.public, None).unwrap();
    assert_eq!(s.status().active_version.as_deref(), Some("1.0.0"));
    assert_eq!(check_store(&root, &env.public), "1.0.0");
    drop(s);

    // Slot b (1.1.0, active) re-signed around a model whose header says format 99.
    let (root, s) = fresh("newer-format");
    drop(s);
    let mut model = std::fs::read(slot_model(&root, "b")).unwrap();
    model[8..10].copy_from_slice(&99u16.to_le_bytes());
    let count = u32::from_le_bytes(model[12..16].try_into().unwrap()) as usize;
    model[16..20].fill(0);
    let crc = crc32fast::hash(&model[..64 + 32 * count]);
    model[16..20].copy_from_slice(&crc.to_le_bytes());
    let st = edgefuse_runtime::deploy::selftest::generate(
        edgefuse_runtime::Model::from_bytes(&tiny_model(2.0, 0)).unwrap(),
        7,
    )
    .unwrap();
    let signed =
        edgefuse_runtime::deploy::bundle::build(manifest("1.1.0", &[], st), &model, &env.key)
            .unwrap();
    let parts = edgefuse_runtime::deploy::Bundle::parse(&signed).unwrap();
    let seal = parts.seal();
    std::fs::write(root.join("slots/b.efm"), &model).unwrap();
    std::fs::write(root.join("slots/b.seal"), seal).unwrap();
    let s = Store::open(&root, env.public, None).unwrap();
    let st = s.status();
    assert_eq!(st.active_version.as_deref(), Some("1.0.0"), "{st:?}");
    let note = st.last_error.unwrap_or_default();
    assert!(
        note.contains("slot b (1.1.0) is signed but does not load here"),
        "{note}"
    );
    assert_eq!(
        std::fs::read(root.join("slots/b.efm")).unwrap(),
        model,
        "slot b was cleared"
    );
}

/// The head's deadline holds under TLS too: a peer that opens a 16 KiB handshake record and
/// trickles it a byte every 500 ms is cut at the 5 s timeout. The limit used to be set once
/// per read above rustls, whose own loop then read the socket for as long as bytes kept coming.
#[test]
fn a_trickled_tls_handshake_does_not_hold_the_agent() {
    let env = Env::new();
    let (cert, key) = tls_fixture();
    let agent = Agent::spawn(
        &env,
        &env.path("store"),
        &["--tls-cert", &cert, "--tls-key", &key],
        &[],
    );
    let mut s = TcpStream::connect((agent.url.host.as_str(), agent.url.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let t0 = Instant::now();
    // A handshake record header announcing 16 KiB, then its body one byte at a time.
    let _ = s.write_all(&[0x16, 0x03, 0x01, 0x40, 0x00]);
    while t0.elapsed() < Duration::from_secs(14) {
        std::thread::sleep(Duration::from_millis(500));
        if s.write_all(&[0x01]).is_err() {
            break;
        }
        // The agent closing shows as a read that ends (or fails) at once.
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 64];
        let closed = matches!(s.read(&mut b), Ok(0)) || t0.elapsed() > Duration::from_secs(14);
        s.set_nonblocking(false).unwrap();
        if closed {
            break;
        }
    }
    let held = t0.elapsed();
    assert!(
        held < Duration::from_secs(8),
        "a TLS handshake trickled one byte every 500 ms was read for {held:?} (the timeout is 5 s)"
    );
}

/// An authenticated upload must keep up 1 KiB/s after the first timeout: a client that sends a
/// good head announcing 1 MB and then trickles the body a byte every 500 ms is cut at about the
/// 5 s timeout, and the store is as it was. The body used to have only the per-read limit, so
/// such a client held its connection for ever.
#[test]
fn a_trickled_upload_body_is_cut_and_installs_nothing() {
    let env = Env::new();
    let store = env.path("store");
    let agent = Agent::spawn(&env, &store, &[], &[]);
    let before = snapshot(&store);
    let mut s = TcpStream::connect((agent.url.host.as_str(), agent.url.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let head = format!(
        "POST /v1/install HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(14) {
        std::thread::sleep(Duration::from_millis(500));
        if s.write_all(&[0x42]).is_err() {
            break;
        }
        // The agent answering or closing shows as a read that returns at once.
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 64];
        let answered =
            !matches!(s.read(&mut b), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock);
        s.set_nonblocking(false).unwrap();
        if answered {
            break;
        }
    }
    let held = t0.elapsed();
    assert!(
        held < Duration::from_secs(8),
        "an upload trickled one byte every 500 ms was read for {held:?} (the timeout is 5 s)"
    );
    assert_eq!(snapshot(&store), before, "the store changed");
}

/// A bundle signed with the trusted key whose model is too large for this machine: y = x + x
/// with x of 40% of its memory (whose arena, inputs and outputs need about twice the memory
/// there is). `verify` and the agent refuse it naming the memory, before they allocate the
/// self-test's input — which used to be written whole first, taking the memory and then the
/// process (by `abort` or the OOM killer). The agent keeps serving and installs nothing.
#[test]
fn a_signed_model_too_large_for_the_machine_is_refused_before_its_self_test_runs() {
    use edgefuse_runtime::deploy::bundle;
    use selftest::{SelfTest, TestInput, TestOutput};
    let Some(total) = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        let l = t.lines().find(|l| l.starts_with("MemTotal:"))?;
        l.split_whitespace().nth(1)?.parse::<u64>().ok()
    }) else {
        eprintln!("skipped: no /proc/meminfo, so no memory size to exceed");
        return;
    };
    let n = (total * 1024 * 2 / 5 / 4) as usize;
    let shape = [n];
    let graph = Graph {
        tensors: vec![
            TensorInfo {
                name: "x".into(),
                dtype: DType::F32,
                shape: shape.to_vec(),
                weight: None,
                quant: None,
            },
            TensorInfo {
                name: "y".into(),
                dtype: DType::F32,
                shape: shape.to_vec(),
                weight: None,
                quant: None,
            },
        ],
        nodes: vec![Node {
            name: "double".into(),
            op: Op::Binary(Binary { op: BinaryOp::Add }),
            inputs: vec![0, 0],
            outputs: vec![1],
        }],
        inputs: vec![0],
        outputs: vec![1],
    };
    let model = format::write(
        format::Meta {
            graph,
            ..Default::default()
        },
        &[None, None],
    )
    .unwrap();
    let test = SelfTest {
        generator: selftest::GENERATOR.into(),
        seed: 7,
        tolerance: selftest::TOLERANCE,
        inputs: vec![TestInput {
            name: "x".into(),
            dtype: DType::F32,
            shape: shape.to_vec(),
            sha256: "0".repeat(64),
        }],
        outputs: vec![TestOutput {
            name: "y".into(),
            dtype: DType::F32,
            shape: shape.to_vec(),
            values: Vec::new(),
        }],
    };
    let env = Env::new();
    let bundle = bundle::build(manifest("1.0.0", &[], test), &model, &env.key).unwrap();
    let path = env.path("huge.efb");
    std::fs::write(&path, &bundle).unwrap();
    let (ok, err) = edgefuse(&[
        "verify",
        &path.display().to_string(),
        "--trust",
        &env.pub_path().display().to_string(),
    ]);
    let refused = |err: &str| {
        err.contains("self-test") && (err.contains("available") || err.contains("could allocate"))
    };
    assert!(!ok && refused(&err), "verify: {err}");

    let store = env.path("store");
    let agent = Agent::spawn(&env, &store, &[], &[]);
    let before = snapshot(&store);
    let err = env
        .client()
        .install(&agent.url, &bundle, false)
        .unwrap_err()
        .to_string();
    assert!(refused(&err), "install: {err}");
    assert_eq!(snapshot(&store), before, "the store changed");
    env.client()
        .status(&agent.url)
        .expect("the agent stopped serving");
}
