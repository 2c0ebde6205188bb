//! A thread pool whose inferences enter without allocating.
//!
//! `rayon::ThreadPool::install` from outside the pool pushes a job onto the pool's global
//! injector queue, which allocates a new block every 63 pushes. To keep `Session::run` free of
//! allocation, one long-lived job sits on a pool worker and takes requests through an atomic
//! state (neither side allocates); kernels then fork with `rayon::join`/`par_*` from a worker
//! thread, which uses the worker's own deque.
//!
//! The worker spins briefly on the state before sleeping on a condition variable, so an
//! application that runs inferences back to back finds it awake: waking a sleeping thread
//! costs tens of microseconds on a virtual machine, a tenth of a small model's inference.
//! (onnxruntime's pool spins the same way.) The pool's other threads, idle between a model's
//! forks, spin as long before sleeping: rayon-core is the patched copy in `vendor/`, see
//! `vendor/README.md`.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const IDLE: u8 = 0;
/// A request: the caller's closure (in `Handoff::job`), called once on the worker while the
/// caller waits.
const WORK: u8 = 1;
const DONE: u8 = 2;
const EXIT: u8 = 3;

/// How long the worker spins for the next request before sleeping. (The caller sleeps at
/// once while the inference runs: it would spin on a core the pool's threads need.)
const SPIN: Duration = Duration::from_micros(200);

struct Handoff {
    state: AtomicU8,
    /// The request's closure, written by the caller before it publishes `WORK`.
    job: UnsafeCell<Option<*mut (dyn FnMut() + Send)>>,
    /// For sleeping: a side that changes `state` then takes and releases `lock` before
    /// notifying, and a sleeper checks `state` while holding it, so no wake-up is lost.
    lock: Mutex<()>,
    cv: Condvar,
}

// SAFETY: `job` is written by the caller only while the state is IDLE (the worker does not read
// it then) and read by the worker only after it observed WORK (Acquire, paired with the caller's
// Release); the closure pointer is only dereferenced on the worker while the caller that owns
// the closure waits for DONE; the closure itself is `Send`.
unsafe impl Send for Handoff {}
// SAFETY: as above.
unsafe impl Sync for Handoff {}

impl Handoff {
    /// Sets the state and wakes any sleeper.
    fn publish(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        drop(self.lock.lock().unwrap_or_else(|e| e.into_inner()));
        self.cv.notify_all();
    }

    /// Waits until `done(state)` holds, spinning for `spin` first; returns the state.
    fn wait(&self, spin: Duration, done: impl Fn(u8) -> bool) -> u8 {
        let start = Instant::now();
        let mut spins = 0u32;
        while !spin.is_zero() {
            let s = self.state.load(Ordering::Acquire);
            if done(s) {
                return s;
            }
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(64) && start.elapsed() >= spin {
                break;
            }
        }
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let s = self.state.load(Ordering::Acquire);
            if done(s) {
                return s;
            }
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
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
            state: AtomicU8::new(IDLE),
            job: UnsafeCell::new(None),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        });
        let h = handoff.clone();
        pool.spawn(move || loop {
            if h.wait(SPIN, |s| s == WORK || s == EXIT) == EXIT {
                return;
            }
            // SAFETY: WORK was observed (Acquire): the caller wrote `job` before publishing it
            // and waits for DONE, so the closure is alive and nobody else touches it.
            let job = unsafe { *h.job.get() };
            // A panicking closure is caught so the caller is always released.
            let ok = job.is_some_and(|f| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*f)() })).is_ok()
            });
            h.publish(if ok { DONE } else { EXIT });
        });
        Ok(Worker {
            _pool: pool,
            handoff,
        })
    }

    /// Runs `f` on the pool's resident worker and waits for it, asleep (the inference needs the
    /// cores). Returns false if the worker is gone (a previous closure panicked); `f` has then
    /// not run.
    pub fn run(&self, f: &mut (dyn FnMut() + Send)) -> bool {
        self.hand(f, || (), Duration::ZERO)
    }

    /// Runs `f` on the pool's resident worker while `mine` runs on the calling thread, then
    /// waits for `f`, spinning first (it is about as long as `mine`). Returns false if the worker
    /// is gone (a previous closure panicked, or `f` did); `f` has then not run or not finished.
    /// A panic in `mine` is held until `f` is done (it may borrow what `mine` unwinds past),
    /// then resumed.
    pub fn run_beside(&self, f: &mut (dyn FnMut() + Send), mine: impl FnOnce()) -> bool {
        self.hand(f, mine, SPIN)
    }

    /// Publishes `f`, runs `mine`, waits for `f` (spinning for `spin` first).
    fn hand(&self, f: &mut (dyn FnMut() + Send), mine: impl FnOnce(), spin: Duration) -> bool {
        let h = &self.handoff;
        if h.state.load(Ordering::Acquire) == EXIT {
            return false;
        }
        // SAFETY: only the lifetime is erased; `f` outlives its use because this function
        // returns (or unwinds) only after DONE or EXIT. The state is IDLE (`run` takes `&self`
        // but a session runs one inference at a time: `Session::run` takes `&mut self`), so
        // the worker is not reading `job`.
        let ptr: *mut (dyn FnMut() + Send + 'static) =
            unsafe { std::mem::transmute(f as *mut (dyn FnMut() + Send)) };
        unsafe { *h.job.get() = Some(ptr) };
        h.publish(WORK);
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(mine));
        let done = h.wait(spin, |s| s == DONE || s == EXIT) == DONE;
        if done {
            h.state.store(IDLE, Ordering::Release);
        }
        if let Err(panic) = mine {
            std::panic::resume_unwind(panic);
        }
        done
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.handoff.publish(EXIT);
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
            // Now and then long enough apart that both sides fall asleep.
            if i % 25 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    #[test]
    fn the_caller_works_beside_the_pool() {
        let w = Worker::new(1).unwrap();
        for i in 0..100u64 {
            let (mut theirs, mut mine) = (0u64, 0u64);
            let mut on_pool = false;
            assert!(w.run_beside(
                &mut || {
                    on_pool = rayon::current_thread_index().is_some();
                    theirs = (0..1000 + i).sum();
                },
                || mine = (0..1000 + 2 * i).sum(),
            ));
            assert!(on_pool);
            assert_eq!(
                (theirs, mine),
                ((0..1000 + i).sum(), (0..1000 + 2 * i).sum())
            );
            if i % 25 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // A panic on the caller's side comes back to the caller once the pool's side is done.
        let mut finished = false;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            w.run_beside(
                &mut || {
                    std::thread::sleep(Duration::from_millis(5));
                    finished = true;
                },
                || panic!("mine"),
            )
        }));
        assert!(r.is_err());
        assert!(
            finished,
            "the pool's side ran to its end before the panic came back"
        );
        // A panic on the pool's side retires the worker.
        assert!(!w.run_beside(&mut || panic!("theirs"), || ()));
        assert!(!w.run_beside(&mut || (), || ()));
    }

    #[test]
    fn a_panicking_closure_releases_the_caller_and_retires_the_worker() {
        let w = Worker::new(2).unwrap();
        assert!(!w.run(&mut || panic!("boom")));
        let mut ran = false;
        assert!(!w.run(&mut || ran = true));
        assert!(!ran);
    }
}
