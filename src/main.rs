//! `edgefuse`: compile ONNX models into `.efm` files and run them on edge devices.

use std::process::ExitCode;

fn main() -> ExitCode {
    match edgefuse::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            // A cause that its wrapper's message already quotes ("PATH: No space left") is said
            // once.
            let mut said = e.to_string();
            for cause in e.chain().skip(1) {
                let text = cause.to_string();
                if !said.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                said = text;
            }
            ExitCode::FAILURE
        }
    }
}
