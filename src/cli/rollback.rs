//! `edgefuse rollback`: switch devices back to the model in their other slot.

use anyhow::{bail, Result};

use super::target::{Conn, Ctx, Target};

#[derive(clap::Args)]
#[command(about = "Switch devices back to their previous model (the other slot)")]
pub struct Args {
    /// Target: http(s)://HOST:PORT of an agent, or dir:/path of a mounted store (repeatable).
    #[arg(long = "to", value_name = "URL", required = true)]
    to: Vec<String>,
    #[command(flatten)]
    conn: Conn,
}

pub fn run(a: Args) -> Result<()> {
    let ctx = Ctx::new(&a.conn)?;
    let mut failed = 0;
    for s in &a.to {
        match ctx.rollback(&Target::parse(s)?) {
            Ok(i) => println!(
                "{s}: rolled back to {} {} (slot {}), was {}",
                i.name,
                i.version,
                i.slot,
                i.previous.as_deref().unwrap_or("none")
            ),
            Err(e) => {
                eprintln!("{e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("rollback failed on {failed} of {} target(s)", a.to.len());
    }
    Ok(())
}
