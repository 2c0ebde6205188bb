//! A thread pool whose inferences enter without allocating.
//!
//! `rayon::ThreadPool::install` from outside the pool pushes a job onto the pool's global
//! injector queue, which allocates a new block every 63 pushes. To keep `Session::run` free of
//! allocation, one long-lived job sits on a pool worker and takes requests through a mutex and a
//! condition variable (neither allocates); kernels then fork with `rayon::join`/`par_*` from a
//! worker thread, which uses the worker's own deque.

use std::sync::{Arc, Condvar, Mutex};

enum State {
    Idle,
    /// A request: the caller's closure, called once on the worker while the caller waits.
    Work(*mut (dyn FnMut() + Send)),
    Done,
    Exit,
}

// SAFETY: the raw closure pointer is only dereferenced on the worker while the caller that owns
// the closure is blocked in `Worker::run`, which waits for `Done` before returning; the closure
// itself is `Send`.
unsafe impl Send for State {}

struct Handoff {
    state: Mutex<State>,
    cv: Condvar,
}

/// A rayon pool plus one resident job that runs callers' closures inside it.
pub struct Worker {
    /// Owned so the threads live as long as the session; only the resident job uses them.
    _pool: rayon::ThreadPool,
    handoff: Arc<Handoff>,
}

impl Worker {
    pub fn new(threads: usize) -> Result<Worker, rayon::ThreadPoolBuildError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("edgefuse-cpu-{i}"))
            .build()?;
        // Every thread runs once before the session exists: a thread that a light model
        // never needed during warm-up would otherwise start (and allocate its thread-local
        // bookkeeping) in the middle of a later inference, and its start-up would count
        // against that inference's latency.
        pool.broadcast(|_| ());
        let handoff = Arc::new(Handoff {
            state: Mutex::new(State::Idle),
            cv: Condvar::new(),
        });
        let h = handoff.clone();
        pool.spawn(move || loop {
            let mut s = h.state.lock().unwrap_or_else(|e| e.into_inner());
            while !matches!(*s, State::Work(_) | State::Exit) {
                s = h.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            let job = match *s {
                State::Work(f) => f,
                _ => return,
            };
            drop(s);
            // SAFETY: see `unsafe impl Send for State`: the caller is blocked until `Done`.
            // A panicking closure is caught so the caller is always released.
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*job)() }))
                .is_ok();
            let mut s = h.state.lock().unwrap_or_else(|e| e.into_inner());
            *s = if ok { State::Done } else { State::Exit };
            h.cv.notify_all();
        });
        Ok(Worker {
            _pool: pool,
            handoff,
        })
    }

    /// Runs `f` on the pool's resident worker and waits for it. Returns false if the worker is gone
    /// (a previous closure panicked); `f` has then not run.
    pub fn run(&self, f: &mut (dyn FnMut() + Send)) -> bool {
        let h = &self.handoff;
        let mut s = h.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*s, State::Exit) {
            return false;
        }
        // SAFETY: only the lifetime is erased; `f` outlives its use because we wait for `Done`.
        let ptr: *mut (dyn FnMut() + Send + 'static) =
            unsafe { std::mem::transmute(f as *mut (dyn FnMut() + Send)) };
        *s = State::Work(ptr);
        h.cv.notify_all();
        while matches!(*s, State::Work(_)) {
            s = h.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        let done = matches!(*s, State::Done);
        if done {
            *s = State::Idle;
        }
        done
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let mut s = self.handoff.state.lock().unwrap_or_else(|e| e.into_inner());
        *s = State::Exit;
        self.handoff.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_closures_on_the_pool_and_forks_inside_it() {
        let w = Worker::new(2).unwrap();
        for i in 0..100 {
            let mut out = 0usize;
            let mut on_pool = false;
            assert!(w.run(&mut || {
                on_pool = rayon::current_thread_index().is_some();
                let (a, b) = rayon::join(|| i * 2, || i + 1);
                out = a + b;
            }));
            assert!(on_pool);
            assert_eq!(out, 3 * i + 1);
        }
    }
}
