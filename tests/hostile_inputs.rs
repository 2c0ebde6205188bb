//! Hostile input, made here byte by byte: malformed HTTP requests to a real agent, connections
//! that send nothing or trickle, agent and client options that do not parse, key and token files
//! that are not keys or tokens, damaged stores on disk at agent start, and board profiles with
//! wrong types or absurd values. Each must give one clear error naming what is wrong, never a
//! panic, an abort or a hang, and must leave the store as it was. Every network read and every
//! process is bounded by a timeout.

mod flash_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use edgefuse_runtime::deploy::http::Url;
use flash_support::*;

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

