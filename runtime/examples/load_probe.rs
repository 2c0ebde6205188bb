//! Where a model's load to first result goes, without the CLI: file load, session creation,
//! input, first and second run, in ms.
//! `cargo run --release -p edgefuse-runtime --example load_probe -- M.efm THREADS`
use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::{Model, Tensor};
use std::time::Instant;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let threads: usize = a[2].parse().unwrap();
    let t0 = Instant::now();
    let model = Model::load(&a[1]).unwrap();
    let t1 = Instant::now();
    let mut s = Session::new(model.clone(), SessionOptions::with_threads(threads)).unwrap();
    let t2 = Instant::now();
    let g = model.graph();
    for (i, &id) in g.inputs.iter().enumerate() {
        let t = Tensor::zeros(g.tensors[id].dtype, &g.tensors[id].shape);
        s.set_input(i, t.view()).unwrap();
    }
    let t3 = Instant::now();
    s.run().unwrap();
    let t4 = Instant::now();
    s.run().unwrap();
    let t5 = Instant::now();
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
    println!(
        "load {:.3} session {:.3} input {:.3} first {:.3} second {:.3} total {:.3}",
        ms(t0, t1),
        ms(t1, t2),
        ms(t2, t3),
        ms(t3, t4),
        ms(t4, t5),
        ms(t0, t4)
    );
}
