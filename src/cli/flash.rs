//! `edgefuse flash`: push one bundle to many devices: a canary stage first, then the rest, with
//! bounded concurrency; the first failure stops the rollout (targets not yet started are skipped).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use edgefuse_runtime::deploy::Bundle;
use serde::Serialize;

use super::target::{Conn, Ctx, Target};

#[derive(clap::Args)]
#[command(
    about = "Push a signed bundle to devices: canary stage first, bounded concurrency, stop on failure"
)]
pub struct Args {
    /// The bundle (`edgefuse bundle`).
    bundle: PathBuf,
    /// Target: http(s)://HOST:PORT of an agent, or dir:/path of a mounted store (repeatable).
    #[arg(long = "to", value_name = "URL", required = true)]
    to: Vec<String>,
    /// The first N targets form the canary stage; the rest start only when all of them succeeded.
    #[arg(long, default_value_t = 1)]
    canary: usize,
    /// Pushes in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Install even when the bundle is not newer than what a device runs.
    #[arg(long)]
    allow_downgrade: bool,
    /// Print one JSON report instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Serialize)]
struct Outcome {
    target: String,
    stage: &'static str,
    /// "ok", "failed" or "skipped".
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    slot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    start_ms: f64,
    end_ms: f64,
}

pub fn run(a: Args) -> Result<()> {
    let bytes =
        std::fs::read(&a.bundle).with_context(|| format!("reading {}", a.bundle.display()))?;
    let b = Bundle::parse(&bytes).with_context(|| a.bundle.display().to_string())?;
    let targets =
        a.to.iter()
            .map(|s| Target::parse(s))
            .collect::<Result<Vec<_>>>()?;
    let ctx = Ctx::new(&a.conn)?;
    let t0 = Instant::now();
    let ms = |t: Instant| t.duration_since(t0).as_secs_f64() * 1e3;
    let outcomes: Vec<Mutex<Option<Outcome>>> = targets.iter().map(|_| Mutex::new(None)).collect();
    let stop = AtomicBool::new(false);
    let canary = a.canary.min(targets.len());
    let k = a.concurrency.max(1);
    for (stage, range) in [("canary", 0..canary), ("rollout", canary..targets.len())] {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let next = AtomicUsize::new(range.start);
        std::thread::scope(|s| {
            for _ in 0..k.min(range.len()) {
                s.spawn(|| loop {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= range.end {
                        break;
                    }
                    let start = Instant::now();
                    let r = ctx.install(&targets[i], &bytes, a.allow_downgrade);
                    if r.is_err() {
                        stop.store(true, Ordering::SeqCst);
                    }
                    let (slot, previous, error) = match r {
                        Ok(i) => (Some(i.slot), i.previous, None),
                        Err(e) => (None, None, Some(e.msg)),
                    };
                    *outcomes[i].lock().unwrap() = Some(Outcome {
                        target: a.to[i].clone(),
                        stage,
                        result: if error.is_none() { "ok" } else { "failed" },
                        slot,
                        previous,
                        error,
                        start_ms: ms(start),
                        end_ms: ms(Instant::now()),
                    });
                });
            }
        });
    }
    let elapsed = ms(Instant::now());
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            o.into_inner().unwrap().unwrap_or(Outcome {
                target: a.to[i].clone(),
                stage: if i < canary { "canary" } else { "rollout" },
                result: "skipped",
                slot: None,
                previous: None,
                error: None,
                start_ms: 0.0,
                end_ms: 0.0,
            })
        })
        .collect();
    let count = |r: &str| outcomes.iter().filter(|o| o.result == r).count();
    let (ok, failed, skipped) = (count("ok"), count("failed"), count("skipped"));
    let m = &b.manifest;
    if a.json {
        let report = serde_json::json!({
            "name": m.name, "version": m.version, "bundle_bytes": bytes.len(),
            "canary": canary, "concurrency": k, "elapsed_ms": elapsed,
            "ok": ok, "failed": failed, "skipped": skipped, "targets": outcomes,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for o in &outcomes {
            match o.result {
                "ok" => println!(
                    "ok       {} [{}] slot {} ({:.0} ms)",
                    o.target,
                    o.stage,
                    o.slot.as_deref().unwrap_or("?"),
                    o.end_ms - o.start_ms
                ),
                "failed" => println!(
                    "FAILED   {} [{}]: {}",
                    o.target,
                    o.stage,
                    o.error.as_deref().unwrap_or("")
                ),
                _ => println!("skipped  {} [{}]", o.target, o.stage),
            }
        }
        println!(
            "{} {}: {ok} ok, {failed} failed, {skipped} skipped in {:.2} s",
            m.name,
            m.version,
            elapsed / 1e3
        );
    }
    if failed + skipped > 0 {
        bail!(
            "rollout of {} {} stopped: {failed} target(s) failed, {skipped} not attempted",
            m.name,
            m.version
        );
    }
    Ok(())
}
