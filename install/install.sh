#!/usr/bin/env bash
# layerfit installer: checks the build prerequisites, picks the engine features for this
# machine, builds and installs layerfit, then runs `layerfit check-requirements` as a gate.
#
# Exit codes: 0 installed (or --check-only: compatible), 10 degraded and not accepted,
# 20 incompatible, 2 bad usage, 4 build prerequisites missing, 1 build/install failed.
# See docs/installer.md.
set -u

YES=0
CHECK_ONLY=0
FEATURES=""
FEATURES_SET=0
PROFILE=""
MIN_CONTEXT=""
MODEL=""
HARDWARE="${LAYERFIT_HARDWARE:-}"
BIN="${LAYERFIT_BIN:-}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'EOF'
usage: install/install.sh [--yes] [--features cpu|cuda|vulkan|metal|rocm] [--profile P]
                          [--min-context N] [--model M] [--hardware FILE] [--check-only]
                          [--bin PATH]
  --yes           install missing prerequisites and accept a degraded machine without asking
  --features F    engine features instead of the detected ones (cpu = none)
  --profile P     gate on this profile (default: layerfit ranks every tier and recommends one)
  --min-context N context the gate requires (default: each profile's own)
  --model M       gate on this model (file or catalog name) instead of a profile's models
  --hardware FILE simulate a machine (also LAYERFIT_HARDWARE)
  --check-only    only run the gate, with an already-built binary (--bin, LAYERFIT_BIN,
                  layerfit on PATH, or target/release/layerfit)
EOF
}

say() { printf '%s\n' "$*"; }
err() { printf 'error: %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --yes|-y) YES=1 ;;
    --check-only) CHECK_ONLY=1 ;;
    --features) FEATURES="${2:-}"; FEATURES_SET=1; shift ;;
    --profile) PROFILE="${2:-}"; shift ;;
    --min-context) MIN_CONTEXT="${2:-}"; shift ;;
    --model) MODEL="${2:-}"; shift ;;
    --hardware) HARDWARE="${2:-}"; shift ;;
    --bin) BIN="${2:-}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) err "unknown option '$1'"; usage >&2; exit 2 ;;
  esac
  shift
done

case "$MIN_CONTEXT" in '') ;; *[!0-9kKmM]*) err "--min-context needs a token count, got '$MIN_CONTEXT'"; exit 2 ;; esac
if [ -n "$HARDWARE" ] && [ ! -r "$HARDWARE" ]; then
  err "hardware description '$HARDWARE' cannot be read"; exit 2
fi

interactive() { [ -t 0 ] && [ -t 1 ]; }

# ask "question": 0 for yes. Non-interactive without --yes is a no.
ask() {
  if [ "$YES" = 1 ]; then return 0; fi
  if ! interactive; then return 1; fi
  printf '%s [y/N] ' "$1"
  read -r answer || return 1
  case "$answer" in y|Y|yes|YES) return 0 ;; *) return 1 ;; esac
}

# The build prerequisites: one script shared with the README, tests/run.sh and .ci/run.
check_prerequisites() {
  local args=()
  [ "$YES" = 1 ] && args+=(--yes)
  bash "$REPO/install/prerequisites.sh" "${args[@]}" || exit 4
}

detect_features() {
  if [ "$FEATURES_SET" = 1 ]; then
    [ "$FEATURES" = cpu ] && FEATURES=""
    say "engine features: ${FEATURES:-none (CPU)} (given with --features)"
    return
  fi
  if [ "$(uname -s)" = Darwin ]; then
    FEATURES=metal; say "engine features: metal (macOS: Apple GPUs through Metal)"
  elif command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
    FEATURES=cuda; say "engine features: cuda (the CUDA toolkit's nvcc is installed)"
  elif command -v hipcc >/dev/null 2>&1 || [ -x /opt/rocm/bin/hipcc ]; then
    FEATURES=rocm; say "engine features: rocm (ROCm's hipcc is installed)"
  elif command -v glslc >/dev/null 2>&1 && { pkg-config --exists vulkan 2>/dev/null || [ -n "${VULKAN_SDK:-}" ]; }; then
    FEATURES=vulkan; say "engine features: vulkan (Vulkan loader/headers and glslc found)"
  else
    FEATURES=""; say "engine features: none (CPU): no CUDA toolkit, ROCm, Vulkan SDK or macOS found"
  fi
}

find_binary() {
  if [ -n "$BIN" ]; then echo "$BIN"; return; fi
  if command -v layerfit >/dev/null 2>&1; then command -v layerfit; return; fi
  if [ -x "$REPO/target/release/layerfit" ]; then echo "$REPO/target/release/layerfit"; return; fi
}

# gate BIN: runs check-requirements and acts on its exit code. The choice of tier, model,
# variant and placement is layerfit's own (the same ranking as plan and run): without
# --profile or --model it ranks every built-in tier; this script keeps no ranking.
gate() {
  local bin="$1" args=(check-requirements --yes)
  [ -n "$MIN_CONTEXT" ] && args+=(--ctx "$MIN_CONTEXT")
  [ -n "$HARDWARE" ] && args+=(--hardware "$HARDWARE")
  [ -n "$MODEL" ] && args+=(--model "$MODEL")
  [ -n "$PROFILE" ] && args+=(--profile "$PROFILE")
  local out code
  out="$("$bin" "${args[@]}" 2>&1)"; code=$?
  say "$out"
  case $code in
    0) say "compatible: run the 'start it with' line above" ;;
    10)
      say "degraded: layerfit will run, with the warnings above (every answer will say so)"
      if ask "Continue with degraded experience?"; then
        say "accepted: run the 'start it with' line above"
        return 0
      fi
      err "degraded machine not accepted (use --yes to accept it non-interactively)"
      exit 10 ;;
    20)
      err "this machine cannot run the required context${PROFILE:+ with profile $PROFILE}${MODEL:+ with $MODEL}: see what is missing above"
      exit 20 ;;
    *) err "layerfit check-requirements failed (exit $code)"; exit "$code" ;;
  esac
}

if [ "$CHECK_ONLY" = 1 ]; then
  bin="$(find_binary)"
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    err "--check-only needs a built layerfit (--bin PATH, LAYERFIT_BIN, PATH, or cargo build --release)"
    exit 2
  fi
  gate "$bin"
  exit 0
fi

check_prerequisites
detect_features
cd "$REPO" || exit 1
feat_args=(); [ -n "$FEATURES" ] && feat_args=(--features "$FEATURES")
if [ "$FEATURES" = vulkan ]; then
  # The bundled llama.cpp needs Vulkan headers newer than some distributions ship (Debian 12):
  # the toolchain script checks them and, where needed, provides them in a private prefix.
  if ! vulkan_env="$(bash "$REPO/install/vulkan-toolchain.sh")"; then
    err "the Vulkan toolchain is not ready (see above); or install with --features cpu"
    exit 4
  fi
  eval "$vulkan_env"
fi
if [ "$FEATURES" = cuda ] && ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  # No CUDA toolkit: NVIDIA's CUDA 13 wheels make one in a private prefix (docs/cuda.md).
  if ! ask "No CUDA toolkit (nvcc) here. Install CUDA 13 from NVIDIA's wheels (about 530 MB) into ~/.cache/layerfit?" ||
     ! cuda_env="$(bash "$REPO/install/cuda-toolkit.sh")"; then
    err "--features cuda needs the CUDA toolkit: install it, run install/cuda-toolkit.sh, or install with --features cpu"
    exit 4
  fi
  eval "$cuda_env"
  export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }$LAYERFIT_CUDA_RUSTFLAGS"
fi
say "building and installing: cargo install --path . --locked ${feat_args[*]}"
if ! cargo install --path . --locked "${feat_args[@]}"; then
  err "the build failed (see cargo's output above)"; exit 1
fi
bin="${CARGO_HOME:-$HOME/.cargo}/bin/layerfit"
gate "$bin"
exit 0
