//! `sgemm` allocates nothing once warmed up: a counting global allocator (this file is its own
//! test binary, so no other test's allocations are counted) around repeated calls of the same
//! shapes, on 1 and 2 threads, through every path (blocked, pre-packed, matrix-vector).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use edgefuse_kernels::gemm::{pack_a, sgemm, sgemm_packed, MatRef};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (m, n, k, b transposed): blocked along N and M, deep K, and both matrix-vector loops.
const SHAPES: &[(usize, usize, usize, bool)] = &[
    (32, 676, 9, false),
    (300, 40, 600, false),
    (64, 121, 288, true),
    (1, 2048, 512, false),
    (1, 1000, 1280, true),
    (20, 512, 128, false),
];

#[test]
fn repeated_calls_allocate_nothing() {
    // Both pools live to the end: a dropped pool's threads exit asynchronously, and an exiting
    // thread's crossbeam-epoch state allocates as it is torn down — inside the next pool's
    // counting window on a loaded machine (seen 3 times in 40 runs beside two busy loops).
    let pools: Vec<(usize, rayon::ThreadPool)> = [1, 2]
        .into_iter()
        .map(|threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            // Every worker has started (thread start-up allocates, and the counter is global).
            pool.broadcast(|_| ());
            (threads, pool)
        })
        .collect();
    for (threads, pool) in &pools {
        let threads = *threads;
        for &(m, n, k, bt) in SHAPES {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32).collect();
            let mut c = vec![0.0f32; m * n];
            let av = MatRef::row_major(&a, m, k);
            let bv = if bt {
                MatRef::transposed(&b, k, n)
            } else {
                MatRef::row_major(&b, k, n)
            };
            let packed = pack_a(av, m, k);
            let run = |c: &mut [f32]| {
                sgemm(m, n, k, av, bv, c, n, 0.0, 1.0, threads);
                sgemm_packed(&packed, bv, c, n, 1.0, 1.0, threads);
            };
            // One `install` per shape: rayon's injector queue itself allocates a block every
            // 63 jobs injected from outside the pool, which is not ours to count.
            pool.install(|| {
                run(&mut c); // warm-up: the workspace buffers
                ALLOCS.store(0, Ordering::SeqCst);
                COUNTING.store(true, Ordering::SeqCst);
                for _ in 0..20 {
                    run(&mut c);
                }
            });
            COUNTING.store(false, Ordering::SeqCst);
            let n_allocs = ALLOCS.load(Ordering::SeqCst);
            assert_eq!(
                n_allocs, 0,
                "{m}×{n}×{k} on {threads} threads allocated {n_allocs} times"
            );
        }
    }
}
