//! `edgefuse`: compile ONNX models into `.efm` files and run them on edge devices.

use std::process::ExitCode;

fn main() -> ExitCode {
    match edgefuse::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
