#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` as a test fixture, for the tests and benchmarks that
# compare layerfit with llama-server (issue 34). The `llama-cpp-sys-2` crate that layerfit
# bundles ships no server sources, so the server comes from llama-cpp-python's source package
# on PyPI, whose `vendor/llama.cpp` is a whole llama.cpp tree (tools/server included).
#
# The version: llama-cpp-python 0.3.36 (the newest on PyPI when this was written). Its
# vendored llama.cpp is the closest to the bundled one (llama-cpp-sys-2 0.1.160): neither
# tree carries a build number or commit (no .git in either package), so they were compared
# by their sources. Lines differing in src/, include/ and common/: 3,014 for 0.3.36 against
# 14,942 for 0.3.35 and 22,696 to 23,875 for 0.3.32-0.3.34. 0.3.36 knows the same recent
# architectures as the bundled tree (qwen35, gemma4, deepseek4 in src/llama-arch.cpp; 0.3.32
# lacks deepseek4) and the same `n_outputs_max` context parameters. The bundled tree is a
# little newer (it adds src/models/clef.cpp and a session format 11 against 10); the server
# defaults the parity tests rely on are the same. docs/llama-server.md has the details.
#
# Only the `llama-server` target is built: CPU, Release, static (one self-contained binary),
# no OpenSSL, no Web UI download, nothing fetched at build time. It takes 15-28 minutes
# on 2 cores, so tests/run.sh does not call it; the tests that need the binary skip, loudly,
# without it. Idempotent: a second run prints the cached binary at once.
#
#   bash tests/build-llama-server.sh          # prints the binary's path on its last line
#   LAYERFIT_LLAMA_SERVER_VERSION=0.3.35 JOBS=4 bash tests/build-llama-server.sh
#   export LAYERFIT_LLAMA_SERVER="$(bash tests/build-llama-server.sh | tail -n 1)"
set -euo pipefail

version="${LAYERFIT_LLAMA_SERVER_VERSION:-0.3.36}"
dest="${XDG_CACHE_HOME:-$HOME/.cache}/layerfit/llama-server/$version"
bin="$dest/llama-server"
py="${PYTHON:-python3}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

for tool in cmake make c++; do
  command -v "$tool" >/dev/null || {
    echo "error: $tool not found (bash install/prerequisites.sh --tests installs it)" >&2
    exit 1
  }
done

mkdir -p "$dest"
work="$(mktemp -d "$dest/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "fetching llama-cpp-python==$version (source package) from PyPI..." >&2
# --no-binary for this package only: its build backend (scikit-build-core), which pip asks
# for the package's metadata, may still come as a wheel.
"$py" -m pip download --quiet --disable-pip-version-check --no-deps \
  --no-binary llama-cpp-python -d "$work" "llama-cpp-python==$version"
sdist="$work/llama_cpp_python-$version.tar.gz"
[ -f "$sdist" ] || { echo "error: $sdist not downloaded" >&2; exit 1; }
tar -xzf "$sdist" -C "$work" "llama_cpp_python-$version/vendor/llama.cpp"
src="$work/llama_cpp_python-$version/vendor/llama.cpp"
[ -f "$src/tools/server/server-context.cpp" ] || {
  echo "error: llama-cpp-python $version vendors no tools/server" >&2
  exit 1
}

echo "building llama-server from llama-cpp-python $version's llama.cpp ($jobs jobs; 15-28 min on 2 cores)..." >&2
start=$(date +%s)
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_COMMON=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DGGML_VULKAN=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF >&2
cmake --build "$work/build" --config Release --target llama-server -j "$jobs" >&2
secs=$(( $(date +%s) - start ))

"$work/build/bin/llama-server" --version >&2
install -m 755 "$work/build/bin/llama-server" "$bin.part"
mv "$bin.part" "$bin"
printf 'llama-cpp-python %s (vendor/llama.cpp), llama-server built in %d s with %s jobs on %s, %s\n' \
  "$version" "$secs" "$jobs" "$(uname -m)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$dest/BUILD-INFO"
echo "llama-server built in $secs s" >&2
echo "$bin"
