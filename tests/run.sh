#!/usr/bin/env bash
# The whole test suite: fetches (or reuses) the two real models, then runs every test with
# the bundled llama.cpp built in release mode (the same build `cargo run --release` uses).
set -euo pipefail
cd "$(dirname "$0")/.."
LAYERFIT_MODELS="$(bash tests/fetch-models.sh | tail -n 1)"
export LAYERFIT_MODELS
cargo test --release --all-targets "$@"
