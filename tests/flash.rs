//! Flashing end to end on loopback: real `edgefuse agent` processes killed mid-install, every
//! refusal case, serialised concurrent pushes, fleet rollout with a canary stage, TLS, the CLI
//! round trip, and `ActiveModel` following installs. The 5 MB × 50 agents benchmark is ignored by
//! default: `cargo test --release --test flash -- --ignored --nocapture flash_bench`.

mod flash_support;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgefuse_runtime::deploy::bundle;
use edgefuse_runtime::deploy::client::Client;
use edgefuse_runtime::deploy::http;
use edgefuse_runtime::deploy::{
    selftest, ActiveModel, ErrorKind, InstallOptions, Installed, SecretKey, Store,
};
use edgefuse_runtime::Model;
use flash_support::*;

const EXE: &str = env!("CARGO_BIN_EXE_edgefuse");

#[test]
fn kill_9_during_installs_leaves_one_verified_model() {
    let env = Env::new();
    let store = env.path("store");
    let mut rng = Rng(0x5eed_f1a5);
    let client = Client {
        timeout: Duration::from_secs(5),
        ..env.client()
    };
    let bundles: Vec<Vec<u8>> = (0..=200)
        .map(|i| make_bundle(&env.key, &format!("1.0.{i}"), &[], i as f32, 0))
        .collect();
    // The first model goes in cleanly.
    {
        let a = Agent::spawn(&env, &store, &[], &[]);
        client.install(&a.url, &bundles[0], false).unwrap();
    }
    let (mut new, mut old) = (0, 0);
    let t0 = Instant::now();
    // Trials 1..=200, each installing its own bundle.
    for (trial, bundle) in bundles.iter().enumerate().skip(1) {
        let vars = if trial % 2 == 0 {
            // A crash point at every step of the install, in turn (abort: no cleanup, like kill -9).
            vec![("EDGEFUSE_FAULT_CRASH_AT", (1 + rng.below(13)).to_string())]
        } else {
            vec![("EDGEFUSE_FAULT_DELAY_MS", "2".to_string())]
        };
        let mut agent = Agent::spawn(&env, &store, &[], &vars);
        // Startup recovered whatever the previous trial left.
        let before = check_store(&store, &env.public);
        let st = client.status(&agent.url).unwrap();
        assert_eq!(st.active_version.as_deref(), Some(before.as_str()));
        let push = {
            let (c, url, b) = (client.clone(), agent.url.clone(), bundle.clone());
            std::thread::spawn(move || c.install(&url, &b, false))
        };
        if trial % 2 == 1 {
            std::thread::sleep(Duration::from_micros(rng.below(60_000)));
            agent.kill(); // SIGKILL
        }
        let r = push.join().unwrap();
        agent.kill();
        drop(agent);
        // The next start recovers; check the disk as the device would see it.
        let a = Agent::spawn(&env, &store, &[], &[]);
        let after = check_store(&store, &env.public);
        drop(a);
        let want_new = format!("1.0.{trial}");
        assert!(
            after == want_new || after == before,
            "trial {trial}: active {after}, expected {before} or {want_new}"
        );
        if r.is_ok() {
            assert_eq!(after, want_new, "trial {trial}: acknowledged install lost");
        }
        if after == want_new {
            new += 1
        } else {
            old += 1
        }
    }
    eprintln!(
        "200 crash trials in {:.1} s: {new} ended on the new model, {old} on the old one",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        new > 20 && old > 20,
        "kills should land both before and after the switch"
    );
}

fn raw_request(url: &http::Url, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect((url.host.as_str(), url.port)).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out[9..12].parse().unwrap();
    (code, out)
}

#[test]
fn bad_inputs_are_refused_and_nothing_changes() {
    let env = Env::new();
    let store = env.path("store");
    let agent = Agent::spawn(
        &env,
        &store,
        &["--board", "edge-a", "--max-bundle-mb", "0.0625"],
        &[],
    );
    let c = env.client();
    c.install(
        &agent.url,
        &make_bundle(&env.key, "1.0.0", &["edge-a"], 1.0, 0),
        false,
    )
    .unwrap();
    c.install(
        &agent.url,
        &make_bundle(&env.key, "1.1.0", &[], 2.0, 0),
        false,
    )
    .unwrap();
    let before = snapshot(&store);
    let good = make_bundle(&env.key, "2.0.0", &["edge-a"], 3.0, 0);

    let mut tampered = good.clone();
    let n = tampered.len();
    tampered[n - 100] ^= 1; // inside the model
    let other = SecretKey::from_seed([7; 32]);
    let wrong_key = make_bundle(&other, "2.0.0", &[], 3.0, 0);
    let wrong_board = make_bundle(&env.key, "2.0.0", &["rpi-zero"], 3.0, 0);
    let older = make_bundle(&env.key, "1.0.5", &[], 3.0, 0);
    let same = make_bundle(&env.key, "1.1.0", &[], 3.0, 0);
    let truncated = good[..good.len() / 2].to_vec();
    let oversized = make_bundle(&env.key, "2.0.0", &[], 3.0, 100_000);
    // A correctly signed bundle whose expected output is wrong: the self-test must catch it.
    let model = tiny_model(3.0, 0);
    let mut st = selftest::generate(Model::from_bytes(&model).unwrap(), 7).unwrap();
    st.outputs[0].values[1] += 0.5;
    let bad_selftest = bundle::build(manifest("2.0.0", &[], st), &model, &env.key).unwrap();

    let cases: Vec<(&str, &[u8], ErrorKind, &str)> = vec![
        (
            "tampered",
            &tampered,
            ErrorKind::BadSignature,
            "modified after signing",
        ),
        (
            "wrong key",
            &wrong_key,
            ErrorKind::BadSignature,
            "signed by key",
        ),
        (
            "wrong board",
            &wrong_board,
            ErrorKind::WrongBoard,
            "this device is edge-a",
        ),
        (
            "older version",
            &older,
            ErrorKind::Downgrade,
            "older than the installed 1.1.0",
        ),
        (
            "same version",
            &same,
            ErrorKind::Downgrade,
            "the same as the installed 1.1.0",
        ),
        (
            "truncated bundle",
            &truncated,
            ErrorKind::BadBundle,
            "bundle truncated",
        ),
        (
            "oversized",
            &oversized,
            ErrorKind::TooLarge,
            "exceeds this agent's limit",
        ),
        (
            "self-test",
            &bad_selftest,
            ErrorKind::SelfTest,
            "self-test failed: output y[1]",
        ),
        ("not a bundle", b"hello", ErrorKind::BadBundle, "bundle"),
    ];
    for (what, bytes, kind, needle) in cases {
        let e = c.install(&agent.url, bytes, false).expect_err(what);
        assert_eq!(e.kind, kind, "{what}: {}", e.msg);
        assert!(e.msg.contains(needle), "{what}: message {:?}", e.msg);
        assert_eq!(snapshot(&store), before, "{what} changed the store");
        eprintln!("{what:>16}: {}", e.msg);
    }
    let st = c.status(&agent.url).unwrap();
    assert!(st.last_error.unwrap_or_default().contains("bundle"));

    // Tokens.
    for (token, needle) in [
        (None, "missing token"),
        (Some("x".repeat(27)), "wrong token"),
    ] {
        let c2 = Client {
            token,
            ..env.client()
        };
        let e = c2.install(&agent.url, &good, false).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert!(e.msg.contains(needle), "{}", e.msg);
        assert!(c2.status(&agent.url).is_err());
        assert_eq!(snapshot(&store), before);
    }
    // An upload that stops before its Content-Length.
    let head = format!(
        "POST /v1/install HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        good.len()
    );
    let (code, text) = raw_request(&agent.url, &head, &good[..good.len() / 3]);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("upload truncated: received"), "{text}");
    assert_eq!(snapshot(&store), before);

    // Still installable after all that, and downgrade only when asked for.
    c.install(&agent.url, &good, false).unwrap();
    assert_eq!(check_store(&store, &env.public), "2.0.0");
    c.install(&agent.url, &older, true).unwrap();
    assert_eq!(check_store(&store, &env.public), "1.0.5");
}

#[test]
fn disk_full_is_refused_and_nothing_changes() {
    let env = Env::new();
    let store = env.path("store");
    Store::open(&store, env.public, None)
        .unwrap()
        .install(
            &make_bundle(&env.key, "1.0.0", &[], 1.0, 0),
            &InstallOptions::default(),
        )
        .unwrap();
    let before = snapshot(&store);
    let agent = Agent::spawn(&env, &store, &[], &[("EDGEFUSE_FAULT_ENOSPC", "1".into())]);
    let big = make_bundle(&env.key, "2.0.0", &[], 2.0, 3 << 20);
    let e = env.client().install(&agent.url, &big, false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::DiskFull, "{}", e.msg);
    assert!(e.msg.contains("no space left on device"), "{}", e.msg);
    assert_eq!(snapshot(&store), before);
    assert_eq!(check_store(&store, &env.public), "1.0.0");
}

#[test]
fn concurrent_pushes_are_serialised() {
    let env = Env::new();
    let store = env.path("store");
    let agent = Agent::spawn(
        &env,
        &store,
        &[],
        &[("EDGEFUSE_FAULT_DELAY_MS", "3".into())],
    );
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (1..=6)
            .map(|i| {
                let (c, url) = (env.client(), agent.url.clone());
                let b = make_bundle(&env.key, &format!("1.0.{i}"), &[], i as f32, 0);
                s.spawn(move || c.install(&url, &b, false))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ok: Vec<Installed> = results.iter().filter_map(|r| r.clone().ok()).collect();
    assert!(!ok.is_empty());
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.kind, ErrorKind::Downgrade, "{}", e.msg);
        }
    }
    // Each install saw the state the previous one left: one chain of generations.
    ok.sort_by_key(|i| i.generation);
    for (k, i) in ok.iter().enumerate() {
        assert_eq!(i.generation, k as u64 + 1, "{ok:?}");
        let prev = k.checked_sub(1).map(|p| ok[p].version.clone());
        assert_eq!(i.previous, prev, "interleaved installs: {ok:?}");
    }
    assert_eq!(check_store(&store, &env.public), ok.last().unwrap().version);
}

fn edgefuse(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(EXE).args(args).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn fleet_flash_honours_canary_and_stops_on_failure() {
    let env = Env::new();
    let boards = ["edge-a", "edge-b", "edge-a", "edge-a", "edge-a", "edge-a"];
    let agents: Vec<Agent> = boards
        .iter()
        .enumerate()
        .map(|(i, b)| Agent::spawn(&env, &env.path(&format!("s{i}")), &["--board", b], &[]))
        .collect();
    let efb = env.path("m.efb");
    std::fs::write(&efb, make_bundle(&env.key, "1.0.0", &["edge-a"], 1.0, 0)).unwrap();
    let token = env.token_path();
    let base = |urls: &[&Agent]| {
        let mut v = vec![
            "flash".to_string(),
            efb.display().to_string(),
            "--token-file".into(),
            token.display().to_string(),
            "--json".into(),
        ];
        for a in urls {
            v.push("--to".into());
            v.push(a.url_text.clone());
        }
        v
    };
    // Agent 1 is the wrong board and sits in the canary stage: nothing after it is touched.
    let mut args = base(&agents.iter().collect::<Vec<_>>());
    args.extend(["--canary", "2", "--concurrency", "1"].map(String::from));
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (ok, out, err) = edgefuse(&argv);
    assert!(!ok);
    assert!(err.contains("rollout of tiny 1.0.0 stopped"), "{err}");
    let rep: serde_json::Value = serde_json::from_str(&out).unwrap();
    let results: Vec<&str> = rep["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["ok", "failed", "skipped", "skipped", "skipped", "skipped"]
    );
    let c = env.client();
    for a in &agents[2..] {
        assert_eq!(c.status(&a.url).unwrap().active_version, None);
    }

    // The good agents plus a mounted store: canary first, then the rest.
    let good: Vec<&Agent> = agents
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, a)| a)
        .collect();
    let mut args = base(&good);
    let dir = env.path("card");
    args.extend(["--to".into(), format!("dir:{}", dir.display())]);
    args.extend(["--trust".into(), env.pub_path().display().to_string()]);
    args.extend(["--canary", "2", "--concurrency", "3", "--allow-downgrade"].map(String::from));
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (ok, out, err) = edgefuse(&argv);
    assert!(ok, "{err}{out}");
    let rep: serde_json::Value = serde_json::from_str(&out).unwrap();
    let t = rep["targets"].as_array().unwrap();
    let canary_end = t[..2]
        .iter()
        .map(|x| x["end_ms"].as_f64().unwrap())
        .fold(0.0, f64::max);
    for x in &t[2..] {
        assert!(x["start_ms"].as_f64().unwrap() >= canary_end, "{x}");
    }
    assert_eq!(check_store(&dir, &env.public), "1.0.0");
    for (i, a) in agents.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(
            check_store(&env.path(&format!("s{i}")), &env.public),
            "1.0.0"
        );
        assert_eq!(
            c.status(&a.url).unwrap().active_version.as_deref(),
            Some("1.0.0")
        );
    }

    // rollback and status through the CLI.
    std::fs::write(&efb, make_bundle(&env.key, "1.1.0", &[], 2.0, 0)).unwrap();
    let tok = token.display().to_string();
    let url = agents[0].url_text.as_str();
    let (ok, _, err) = edgefuse(&[
        "flash",
        efb.to_str().unwrap(),
        "--to",
        url,
        "--token-file",
        &tok,
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = edgefuse(&["rollback", "--to", url, "--token-file", &tok]);
    assert!(
        ok && out.contains("rolled back to tiny 1.0.0"),
        "{out}{err}"
    );
    let (ok, out, _) = edgefuse(&["status", "--to", url, "--token-file", &tok]);
    assert!(
        ok && out.contains("active 1.0.0") && out.contains("previous 1.1.0"),
        "{out}"
    );
    let (ok, _, err) = edgefuse(&["status", "--to", url]);
    assert!(!ok && err.contains("missing token"), "{err}");
}

#[test]
fn agent_serves_https() {
    let env = Env::new();
    let (cert, key) = tls_fixture();
    let agent = Agent::spawn(
        &env,
        &env.path("store"),
        &["--tls-cert", &cert, "--tls-key", &key],
        &[],
    );
    assert!(agent.url_text.starts_with("https://"));
    let efb = env.path("m.efb");
    std::fs::write(&efb, make_bundle(&env.key, "1.0.0", &[], 1.0, 0)).unwrap();
    let tok = env.token_path().display().to_string();
    let (ok, out, _) = edgefuse(&[
        "flash",
        efb.to_str().unwrap(),
        "--to",
        &agent.url_text,
        "--token-file",
        &tok,
    ]);
    assert!(!ok && out.contains("https needs --ca"), "{out}");
    let (ok, out, err) = edgefuse(&[
        "flash",
        efb.to_str().unwrap(),
        "--to",
        &agent.url_text,
        "--token-file",
        &tok,
        "--ca",
        &cert,
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(check_store(&env.path("store"), &env.public), "1.0.0");
    let c = Client {
        tls: Some(http::client_tls(std::path::Path::new(&cert)).unwrap()),
        ..env.client()
    };
    assert_eq!(
        c.status(&agent.url).unwrap().active_version.as_deref(),
        Some("1.0.0")
    );
}

#[test]
fn keygen_bundle_verify_through_the_cli() {
    let env = Env::new();
    let keys = env.path("k");
    let (ok, out, err) = edgefuse(&["keygen", "--out", keys.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keys.join("edgefuse.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (ok, _, err) = edgefuse(&["keygen", "--out", keys.to_str().unwrap()]);
    assert!(!ok && err.contains("refusing to overwrite"), "{err}");
    let efm = env.path("tiny.efm");
    std::fs::write(&efm, tiny_model(1.0, 0)).unwrap();
    let efb = env.path("tiny.efb");
    let (key, public) = (keys.join("edgefuse.key"), keys.join("edgefuse.pub"));
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (ok, out, err) = edgefuse(&[
        "bundle",
        &s(&efm),
        "--key",
        &s(&key),
        "--version",
        "1.2.3",
        "--board",
        "edge-a",
        "-o",
        &s(&efb),
    ]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = edgefuse(&["verify", &s(&efb), "--trust", &s(&public)]);
    assert!(
        ok && out.contains("OK: tiny 1.2.3 for edge-a") && out.contains("self-test passed"),
        "{out}{err}"
    );
    let (ok, _, err) = edgefuse(&["verify", &s(&efb), "--trust", &s(&env.pub_path())]);
    assert!(!ok && err.contains("signature does not verify"), "{err}");
    let mut b = std::fs::read(&efb).unwrap();
    let n = b.len();
    b[n - 80] ^= 4;
    std::fs::write(&efb, &b).unwrap();
    let (ok, _, err) = edgefuse(&["verify", &s(&efb), "--trust", &s(&public)]);
    assert!(!ok && err.contains("modified after signing"), "{err}");
    let (ok, _, err) = edgefuse(&[
        "bundle",
        &s(&efm),
        "--key",
        &s(&key),
        "--version",
        "v1",
        "-o",
        &s(&efb),
    ]);
    assert!(!ok && err.contains("not a semantic version"), "{err}");
}

#[test]
fn active_model_follows_installs_without_restart() {
    let env = Env::new();
    let root = env.path("store");
    let store = Store::open(&root, env.public, None).unwrap();
    let opts = InstallOptions::default();
    store
        .install(&make_bundle(&env.key, "1.0.0", &[], 1.0, 0), &opts)
        .unwrap();
    let mut active = ActiveModel::open(&root).unwrap();
    let w = |m: &Arc<Model>| m.constant(1).unwrap().typed::<f32>()[0];
    assert_eq!((active.version(), w(active.model())), ("1.0.0", 1.0));
    // Per-frame checks cost a stat while nothing changes.
    let t = Instant::now();
    for _ in 0..1000 {
        assert!(!active.refresh().unwrap());
    }
    let per_frame = t.elapsed() / 1000;
    assert!(
        per_frame < Duration::from_millis(1),
        "{per_frame:?} per check"
    );
    store
        .install(&make_bundle(&env.key, "1.1.0", &[], 5.0, 0), &opts)
        .unwrap();
    assert!(active.refresh().unwrap());
    assert_eq!((active.version(), w(active.model())), ("1.1.0", 5.0));
    assert!(!active.refresh().unwrap());
    store.rollback().unwrap();
    assert!(active.refresh().unwrap());
    assert_eq!((active.version(), active.generation()), ("1.0.0", 3));
}

#[test]
#[ignore = "benchmark: 50 agents, 5 MB bundle; run with --ignored --nocapture"]
fn flash_bench_5mb_to_50_agents() {
    let env = Env::new();
    let agents: Vec<Agent> = (0..50)
        .map(|i| Agent::spawn(&env, &env.path(&format!("s{i}")), &[], &[]))
        .collect();
    let efb = env.path("m.efb");
    let bytes = make_bundle(&env.key, "1.0.0", &[], 1.0, 5 << 20);
    std::fs::write(&efb, &bytes).unwrap();
    let mut args = vec![
        "flash".to_string(),
        efb.display().to_string(),
        "--token-file".into(),
        env.token_path().display().to_string(),
        "--canary".into(),
        "5".into(),
        "--concurrency".into(),
        "16".into(),
        "--json".into(),
    ];
    for a in &agents {
        args.extend(["--to".into(), a.url_text.clone()]);
    }
    let t = Instant::now();
    let o = Command::new(EXE).args(&args).output().unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tg = rep["targets"].as_array().unwrap();
    let canary_end = tg[..5]
        .iter()
        .map(|x| x["end_ms"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let first_rollout = tg[5..]
        .iter()
        .map(|x| x["start_ms"].as_f64().unwrap())
        .fold(f64::MAX, f64::min);
    assert!(first_rollout >= canary_end);
    let mut per: Vec<f64> = tg
        .iter()
        .map(|x| x["end_ms"].as_f64().unwrap() - x["start_ms"].as_f64().unwrap())
        .collect();
    per.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "FLASH_BENCH bundle_bytes={} agents=50 canary=5 concurrency=16 wall_s={wall:.2} flash_elapsed_s={:.2} canary_done_s={:.2} per_agent_ms_median={:.0} per_agent_ms_max={:.0}",
        bytes.len(),
        rep["elapsed_ms"].as_f64().unwrap() / 1e3,
        canary_end / 1e3,
        per[per.len() / 2],
        per[per.len() - 1]
    );
    for i in 0..50 {
        assert_eq!(
            check_store(&env.path(&format!("s{i}")), &env.public),
            "1.0.0"
        );
    }
    assert!(wall <= 10.0, "flash took {wall:.2} s");
}
