#!/usr/bin/env bash
# The whole test suite: fetches (or reuses) the two real models, then runs every test with
# the bundled llama.cpp built in release mode (the same build `cargo run --release` uses).
# First the build prerequisites (install/prerequisites.sh, shared with .ci/run and install.sh).
# Then the GPU path on a real Vulkan device: layerfit built with `--features vulkan` against
# Mesa's software Vulkan device (lavapipe), toolchain prepared by install/vulkan-toolchain.sh.
# That stage is skipped, loudly, only outside CI when the toolchain cannot be prepared (no
# root, no apt-get); in CI (CI=true) or with LAYERFIT_REQUIRE_VULKAN=1 it must run.
set -euo pipefail
cd "$(dirname "$0")/.."
# cmake, make, a C++ compiler, libclang, pip and Mesa's Vulkan drivers (asks first on a terminal).
bash install/prerequisites.sh --tests
LAYERFIT_MODELS="$(bash tests/fetch-models.sh | tail -n 1)"
export LAYERFIT_MODELS
# The official openai client (PyPI) that tests/serve.rs drives `layerfit serve` with, and the
# jsonschema validator it checks structured output with, kept
# under target/ (nothing is installed into the system Python).
pydeps="$PWD/target/test-python"
if ! PYTHONPATH="$pydeps" python3 -c "import openai, jsonschema" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --upgrade --target "$pydeps" "openai==3.57.0" "jsonschema==4.26.0"
fi
export PYTHONPATH="$pydeps${PYTHONPATH:+:$PYTHONPATH}"
cargo test --release --all-targets "$@"

if vulkan_env="$(bash install/vulkan-toolchain.sh)"; then
  eval "$vulkan_env"
  echo "== Vulkan offload tests (layerfit --features vulkan on Mesa's lavapipe) ==" >&2
  start=$(date +%s)
  cargo test --release --features vulkan --test vulkan_offload "$@"
  echo "== Vulkan stage took $(( $(date +%s) - start )) s ==" >&2
elif [ "${CI:-}" = true ] || [ "${LAYERFIT_REQUIRE_VULKAN:-}" = 1 ]; then
  echo "error: the Vulkan toolchain could not be prepared (install/vulkan-toolchain.sh)" >&2
  exit 1
else
  echo "SKIPPED: Vulkan offload tests (install/vulkan-toolchain.sh could not prepare the toolchain; run it as root)" >&2
fi
