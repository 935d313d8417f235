#!/usr/bin/env bash
# The whole architecture sweep (tests/arch_sweep.rs): every architecture name in the bundled
# llama.cpp as a synthetic model, against layerfit's memory model, and docs/architectures.md
# rewritten from the result. Prints the summary line last.
# `cargo test` runs only the architectures the page lists as exact (the regression guard).
set -euo pipefail
cd "$(dirname "$0")/.."
export LAYERFIT_SWEEP=all LAYERFIT_SWEEP_WRITE="${LAYERFIT_SWEEP_WRITE:-1}"
out="$(mktemp)"
cargo test --release --test arch_sweep architecture_sweep -- --exact --nocapture 2>&1 | tee "$out" >&2 || true
grep '^architecture sweep:' "$out" | tail -n 1
rm -f "$out"
