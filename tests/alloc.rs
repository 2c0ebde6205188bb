//! No heap allocation per inference: a counting global allocator around `Session::run`.

mod common;

use std::sync::atomic::Ordering;

use common::*;
use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::{Model, Tensor};

#[path = "common/counting.rs"]
mod counting;
use counting::{Counting, ALLOCS, COUNTING};

/// More than rayon's injector block (63 jobs), so a per-run queue allocation would show.
const RUNS: usize = 70;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn inference_allocates_nothing() {
    let Some(models) = models_dir() else { return };
    // Sessions with a thread pool stay alive to the end: a dropped pool's threads exit in the
    // background, and their exit (thread-local teardown) could allocate inside the next model's
    // counting window on a loaded machine, which is not an inference's allocation.
    let mut keep = Vec::new();
    for case in CASES {
        let efm = compiled(&models, case.model);
        let r = refs(&models, case.model);
        let inputs: Vec<Tensor> = r
            .inputs
            .iter()
            .map(|(_, f, _)| edgefuse::npy::read(f).unwrap())
            .collect();
        for threads in [1, 2] {
            let model = Model::load(&efm).unwrap();
            let mut s = Session::new(model, SessionOptions { threads }).unwrap();
            for (i, t) in inputs.iter().enumerate() {
                s.set_input(i, t.view()).unwrap();
            }
            s.run().unwrap(); // warm-up: thread pools and lazily initialised state
            s.run().unwrap();
            ALLOCS.store(0, Ordering::SeqCst);
            COUNTING.store(true, Ordering::SeqCst);
            for _ in 0..RUNS {
                s.run().unwrap();
            }
            COUNTING.store(false, Ordering::SeqCst);
            let n = ALLOCS.load(Ordering::SeqCst);
            eprintln!(
                "{} with {threads} thread(s): {n} allocations in 5 runs",
                case.model
            );
            assert_eq!(
                n, 0,
                "{} allocated {n} times in {RUNS} inferences with {threads} thread(s)",
                case.model
            );
            if threads > 1 {
                keep.push(s);
            }
        }
    }
}
