//! `edgefuse status`: what devices run: active version, slot states, last error.

use anyhow::{bail, Result};

use super::target::{Conn, Ctx, Target};

#[derive(clap::Args)]
#[command(about = "Show devices' active model, slot states and last error")]
pub struct Args {
    /// Target: http(s)://HOST:PORT of an agent, or dir:/path of a mounted store (repeatable).
    #[arg(long = "to", value_name = "URL", required = true)]
    to: Vec<String>,
    /// Print JSON (one document per target, in a list).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

pub fn run(a: Args) -> Result<()> {
    let ctx = Ctx::new(&a.conn)?;
    let mut all = Vec::new();
    let mut failed = 0;
    for s in &a.to {
        match ctx.status(&Target::parse(s)?) {
            Ok(st) if a.json => all.push(serde_json::json!({"target": s, "status": st})),
            Ok(st) => {
                println!(
                    "{s}: active {} (slot {}, generation {}){}",
                    st.active_version.as_deref().unwrap_or("none"),
                    st.active_slot.as_deref().unwrap_or("-"),
                    st.generation,
                    st.board
                        .as_deref()
                        .map_or(String::new(), |b| format!(", board {b}"))
                );
                for slot in &st.slots {
                    println!(
                        "  slot {}: {} {}",
                        slot.slot,
                        slot.state,
                        slot.version
                            .as_deref()
                            .or(slot.error.as_deref())
                            .unwrap_or("")
                    );
                }
                if let Some(e) = &st.last_error {
                    println!("  last error: {e}");
                }
            }
            Err(e) => {
                if a.json {
                    all.push(serde_json::json!({"target": s, "error": e.msg}));
                }
                eprintln!("{e}");
                failed += 1;
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    if failed > 0 {
        bail!("status failed on {failed} of {} target(s)", a.to.len());
    }
    Ok(())
}
