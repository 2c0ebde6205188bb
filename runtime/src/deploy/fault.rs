//! Test-only fault hooks, read once from the environment. They exist so the crash and disk-full
//! tests can drive a real agent process; with none of the variables set they cost nothing.
//!
//! - `EDGEFUSE_FAULT_DELAY_MS=N`: sleep N ms at every install step and between write chunks,
//!   so that a `kill -9` lands in the middle of an install.
//! - `EDGEFUSE_FAULT_CRASH_AT=K`: abort the process (no cleanup, like `kill -9`) at install step K.
//! - `EDGEFUSE_FAULT_ENOSPC=1`: writes into the store fail with "no space left on device" after
//!   their first chunk.

use std::sync::OnceLock;
use std::time::Duration;

struct Faults {
    delay: Option<Duration>,
    crash_at: Option<u32>,
    enospc: bool,
}

fn faults() -> &'static Faults {
    static F: OnceLock<Faults> = OnceLock::new();
    F.get_or_init(|| {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Faults {
            delay: var("EDGEFUSE_FAULT_DELAY_MS")
                .filter(|&v| v > 0)
                .map(Duration::from_millis),
            crash_at: var("EDGEFUSE_FAULT_CRASH_AT").map(|v| v as u32),
            enospc: var("EDGEFUSE_FAULT_ENOSPC") == Some(1),
        }
    })
}

/// Marks install step `n`: delays and crash points apply here.
pub fn step(n: u32) {
    let f = faults();
    if let Some(d) = f.delay {
        std::thread::sleep(d);
    }
    if f.crash_at == Some(n) {
        eprintln!("edgefuse: EDGEFUSE_FAULT_CRASH_AT={n}: aborting");
        std::process::abort();
    }
}

/// Between write chunks: the delay, and the simulated full disk after the first chunk.
pub fn chunk(written: usize) -> std::io::Result<()> {
    let f = faults();
    if let Some(d) = f.delay {
        std::thread::sleep(d);
    }
    if f.enospc && written > 0 {
        return Err(std::io::Error::from_raw_os_error(28));
    }
    Ok(())
}
