#!/usr/bin/env bash
# The test command: the whole workspace, release profile (the golden tests run real models).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --workspace "$@"
