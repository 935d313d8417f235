#!/usr/bin/env bash
# Builds layerfit with the CUDA engine, `cargo build --release --locked --features cuda`,
# against the toolkit of install/cuda-toolkit.sh (NVIDIA's CUDA 13 wheels), for the GPU
# architectures in LAYERFIT_CUDA_ARCHS, in a target directory of its own, then checks that
# the binary links and starts. Prints the time it took. No GPU or driver is needed to build;
# docs/cuda.md has the measured times. Too slow for the default test run (tests/run.sh, .ci/run).
#
#   bash install/build-cuda.sh
#   LAYERFIT_CUDA_ARCHS="86-real;89" bash install/build-cuda.sh
#   nice -n 19 env CMAKE_BUILD_PARALLEL_LEVEL=2 bash install/build-cuda.sh   # on a shared machine
#
# LAYERFIT_CUDA_ARCHS   CMAKE_CUDA_ARCHITECTURES for ggml-cuda (default 89-real: sm_89 code,
#                       RTX 40 / L4 / L40S; CUDA 13 builds 75 and up)
# CARGO_TARGET_DIR      default ${XDG_CACHE_HOME:-~/.cache}/layerfit/cuda-target/<archs>:
#                       one per architecture list (llama-cpp-sys-2 does not rebuild when
#                       only CMAKE_* variables change), never the CPU build's target/
#
# Exit codes: 0 built and linked, 1 the build or the link check failed, 4 the toolkit's
# prerequisites are missing.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
archs="${LAYERFIT_CUDA_ARCHS:-89-real}"
say() { echo "build-cuda: $*" >&2; }
start=$(date +%s)
elapsed() { local s=$(($(date +%s) - start)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

toolkit_env=$(bash "$REPO/install/cuda-toolkit.sh") || exit $?
eval "$toolkit_env"
export CMAKE_CUDA_ARCHITECTURES="$archs"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/layerfit/cuda-target/${archs//[^A-Za-z0-9-]/_}}"
# cuBLAS from the wheels is shared-only: link it as such (see install/cuda-toolkit.sh).
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }$LAYERFIT_CUDA_RUSTFLAGS"
say "toolkit ready after $(elapsed): $(nvcc --version | tail -n 2 | head -n 1)"
say "cargo build --release --locked --features cuda (CMAKE_CUDA_ARCHITECTURES=$archs, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
cd "$REPO"
if ! cargo build --release --locked --features cuda; then
  say "error: the build failed after $(elapsed)"; exit 1
fi
bin="$CARGO_TARGET_DIR/release/layerfit"
say "built in $(elapsed): $bin ($(du -h "$bin" | cut -f1))"

# What ggml-cuda was compiled for, from its CMake build.
flags=$(find "$CARGO_TARGET_DIR/release/build" -path '*ggml-cuda*/flags.make' -print -quit 2>/dev/null || true)
[ -n "$flags" ] && say "device code: $(grep -oE -- '--generate-code=[^ ]+' "$flags" | sort -u | tr '\n' ' ')"

# Link check: cuBLAS from the toolkit, cudart linked in statically, libcuda.so.1 from the driver.
libs=$(ldd "$bin")
echo "$libs" | grep -E 'cublas|cudart|libcuda' >&2 || true
echo "$libs" | grep -q "libcublas.so.13 => $CUDA_PATH/lib" || { say "error: libcublas.so.13 does not resolve to $CUDA_PATH/lib"; exit 1; }
if echo "$libs" | grep -q 'libcuda.so.1 => not found'; then
  # No NVIDIA driver here: the binary cannot start without libcuda.so.1. Run it against the
  # toolkit's link stub (every driver call fails) to show it starts and finds no GPU.
  say "libcuda.so.1 (the NVIDIA driver) is not installed: layerfit needs it to start; running against the link stub instead"
  stubdir=$(mktemp -d)
  trap 'rm -rf "$stubdir"' EXIT
  ln -s "$CUDA_PATH/lib64/stubs/libcuda.so" "$stubdir/libcuda.so.1"
  run() { LD_LIBRARY_PATH="$stubdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$bin" "$@"; }
else
  run() { "$bin" "$@"; }
fi
version=$(run --version) || { say "error: layerfit --version failed"; exit 1; }
echo "$version"
echo "$version" | grep -q 'back-ends:.*cuda' || { say "error: the binary does not report the cuda back-end"; exit 1; }
run hardware --json > "$CARGO_TARGET_DIR/hardware.json" 2> "$CARGO_TARGET_DIR/hardware.err" ||
  { cat "$CARGO_TARGET_DIR/hardware.err" >&2; say "error: layerfit hardware --json failed"; exit 1; }
say "layerfit hardware --json ran: $(python3 -c 'import json, sys; d = json.load(sys.stdin)
print("gpus:", [g.get("name") for g in d["gpus"]], "| notes:", "; ".join(d["notes"]))' < "$CARGO_TARGET_DIR/hardware.json")"
say "done in $(elapsed)"
