//! Helpers for the flashing tests: tiny models, keys, bundles, real agent processes on loopback,
//! and the on-disk check that a store has exactly one active model that verifies.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use edgefuse_runtime::deploy::bundle::{self, Bundle, Manifest};
use edgefuse_runtime::deploy::client::Client;
use edgefuse_runtime::deploy::http::Url;
use edgefuse_runtime::deploy::store::{read_pointer, slot_model};
use edgefuse_runtime::deploy::{selftest, PublicKey, SecretKey};
use edgefuse_runtime::ir::ops::{Binary, BinaryOp};
use edgefuse_runtime::ir::{Graph, Node, Op, TensorInfo};
use edgefuse_runtime::{format, DType, Model, Tensor};

pub const TOKEN: &str = "test-token-0123456789abcdef";

fn info(name: &str, shape: &[usize]) -> TensorInfo {
    TensorInfo {
        name: name.into(),
        dtype: DType::F32,
        shape: shape.to_vec(),
        weight: None,
        quant: None,
    }
}

/// The test certificate and key (`tests/fixtures/tls`): paths of cert.pem and key.pem.
pub fn tls_fixture() -> (String, String) {
    let fx = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
    (format!("{fx}/cert.pem"), format!("{fx}/key.pem"))
}

/// `.efm` bytes of y = x + w (w = [k, k+1, k+2]), padded with an unused constant of `pad` bytes.
pub fn tiny_model(k: f32, pad: usize) -> Vec<u8> {
    let mut tensors = vec![info("x", &[3]), info("w", &[3]), info("y", &[3])];
    let w = Tensor::from_vec(&[3], vec![k, k + 1.0, k + 2.0]).unwrap();
    let mut consts = vec![None, Some(w), None];
    if pad > 0 {
        let n = pad / 4;
        tensors.push(info("pad", &[n]));
        let v: Vec<f32> = (0..n).map(|i| (i % 251) as f32).collect();
        consts.push(Some(Tensor::from_vec(&[n], v).unwrap()));
    }
    let graph = Graph {
        tensors,
        nodes: vec![Node {
            name: "add".into(),
            op: Op::Binary(Binary { op: BinaryOp::Add }),
            inputs: vec![0, 1],
            outputs: vec![2],
        }],
        inputs: vec![0],
        outputs: vec![2],
    };
    let meta = format::Meta {
        graph,
        ..Default::default()
    };
    let refs: Vec<_> = consts.iter().map(|c| c.as_ref()).collect();
    format::write(meta, &refs).unwrap()
}

/// A signed bundle of `tiny_model(k, pad)`.
pub fn make_bundle(key: &SecretKey, version: &str, boards: &[&str], k: f32, pad: usize) -> Vec<u8> {
    let model = tiny_model(k, pad);
    let st = selftest::generate(Model::from_bytes(&model).unwrap(), 7).unwrap();
    bundle::build(manifest(version, boards, st), &model, key).unwrap()
}

pub fn manifest(version: &str, boards: &[&str], self_test: selftest::SelfTest) -> Manifest {
    Manifest {
        format: 1,
        name: "tiny".into(),
        version: version.into(),
        boards: boards.iter().map(|s| s.to_string()).collect(),
        model_sha256: String::new(),
        model_size: 0,
        created_unix: 0,
        key_id: String::new(),
        self_test,
    }
}

/// A folder with a key pair and a token file.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub key: SecretKey,
    pub public: PublicKey,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_seed([42; 32]);
        key.write_pair(&dir.path().join("keys")).unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        let public = key.public();
        Env { dir, key, public }
    }
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    pub fn pub_path(&self) -> PathBuf {
        self.path("keys/edgefuse.pub")
    }
    pub fn token_path(&self) -> PathBuf {
        self.path("token")
    }
    pub fn client(&self) -> Client {
        Client {
            token: Some(TOKEN.into()),
            tls: None,
            timeout: Duration::from_secs(20),
        }
    }
}

/// A running `edgefuse agent` process.
pub struct Agent {
    pub child: Child,
    pub url: Url,
    pub url_text: String,
}

impl Agent {
    pub fn spawn(env: &Env, store: &Path, args: &[&str], vars: &[(&str, String)]) -> Agent {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_edgefuse"));
        cmd.arg("agent")
            .args(["--listen", "127.0.0.1:0", "--store"])
            .arg(store)
            .arg("--trust")
            .arg(env.pub_path())
            .arg("--token-file")
            .arg(env.token_path())
            .args(["--timeout-s", "5"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning edgefuse agent");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url_text = line
            .split_whitespace()
            .find(|w| w.starts_with("http"))
            .unwrap_or_else(|| panic!("agent did not start: {line:?}"))
            .trim_end_matches(',')
            .to_string();
        Agent {
            child,
            url: Url::parse(&url_text).unwrap(),
            url_text,
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Asserts the store has exactly one active model, that it verifies with `trust` and passes its
/// self-test, and that no temporary file is left. Returns its version.
pub fn check_store(store: &Path, trust: &PublicKey) -> String {
    let p = read_pointer(store).expect("an active pointer");
    let model = std::fs::read(slot_model(store, &p.slot)).unwrap();
    let seal = std::fs::read(store.join("slots").join(format!("{}.seal", p.slot))).unwrap();
    let b = Bundle::parse_parts(&seal, &model).expect("active slot parses");
    b.verify(trust).expect("active slot verifies");
    assert_eq!(
        b.manifest.model_sha256, p.sha256,
        "pointer names this model"
    );
    assert_eq!(b.manifest.version, p.version);
    selftest::check(&b.manifest.self_test, Model::from_bytes(&model).unwrap())
        .expect("active model passes its self-test");
    for dir in [store.to_path_buf(), store.join("slots")] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            assert!(!n.ends_with(".tmp"), "leftover temporary {n}");
        }
    }
    p.version
}

/// Bytes of every file of a store (to show a refused install changed nothing).
pub fn snapshot(store: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for dir in [store.to_path_buf(), store.join("slots")] {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.file_type().unwrap().is_file() {
                v.push((
                    e.path().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                ));
            }
        }
    }
    v.sort();
    v
}

/// A small seeded generator for the trials.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
