//! `edgefuse boards`: the built-in board profiles.

use anyhow::Result;
use edgefuse_runtime::board::Board;

#[derive(clap::Args)]
#[command(about = "List the board profiles (target, CPU, GPU and CUDA, memory, defaults)")]
pub struct Args {
    /// Show one board in full.
    name: Option<String>,
}

pub fn run(a: Args) -> Result<()> {
    if let Some(name) = a.name {
        let b = Board::find(&name)?;
        println!("{} — {}", b.name, b.description);
        println!("target    {}", b.target);
        println!(
            "cpu       {} × {} ({})",
            b.cpu.cores,
            b.cpu.core,
            b.cpu.features.join(", ")
        );
        match &b.gpu {
            Some(g) => {
                let jp = g
                    .jetpack
                    .as_deref()
                    .map(|j| format!("JetPack {j}, "))
                    .unwrap_or_default();
                println!(
                    "gpu       {} {} ({jp}CUDA {}, cuDNN {}); fast: {}",
                    g.vendor,
                    g.arch,
                    g.cuda,
                    g.cudnn,
                    g.fast_precisions.join(", ")
                );
                if let Some(why) = &g.unsupported {
                    println!("          not usable: {why}");
                }
            }
            None => println!("gpu       none (CPU backend)"),
        }
        println!(
            "memory    {} MB{}",
            b.memory.total_mb,
            if b.memory.shared_with_gpu {
                ", shared with the GPU"
            } else {
                ""
            }
        );
        println!(
            "defaults  backend {}, precision {}",
            b.defaults.backend, b.defaults.precision
        );
        println!(
            "camera    {} {}x{} @ {} fps {}",
            b.camera.source, b.camera.width, b.camera.height, b.camera.fps, b.camera.format
        );
        println!(
            "build     cross build --profile device --target {} --no-default-features --features {}",
            b.target,
            b.build.cargo_features.join(",")
        );
        return Ok(());
    }
    println!(
        "{:<18} {:<27} {:<22} {:<8} {:<9} notes",
        "board", "target", "gpu", "memory", "default"
    );
    for b in Board::builtin() {
        let gpu = match &b.gpu {
            Some(g) => format!("{} CUDA {}", g.arch, g.cuda),
            None => "—".into(),
        };
        let note = b
            .gpu
            .as_ref()
            .and_then(|g| g.unsupported.as_ref())
            .map(|_| "CPU only: CUDA too old for cudarc")
            .unwrap_or("");
        println!(
            "{:<18} {:<27} {:<22} {:<8} {:<9} {}",
            b.name,
            b.target,
            gpu,
            format!("{} GB", (b.memory.total_mb + 512) / 1024),
            format!("{}/{}", b.defaults.backend, b.defaults.precision),
            note
        );
    }
    Ok(())
}
