#!/usr/bin/env bash
# Prepares the CUDA toolkit that `cargo build --features cuda` needs from NVIDIA's wheels on
# PyPI, idempotently, in a private prefix (never the system's site-packages), and prints the
# environment to build with on its last lines (`eval "$(bash install/cuda-toolkit.sh)"`).
#
# The wheels are CUDA 13.0 Update 2, pinned by version and SHA-256 (x86_64): nvcc (with
# cudafe++, fatbinary, nvlink, ptxas), NVVM (cicc, libdevice), the CUDA C runtime headers,
# cudart, culibos, cuBLAS and CCCL. CUDA 12 cannot be assembled this way: the *-cu12 nvcc
# wheels carry only ptxas and libNVVM, no nvcc (docs/cuda.md). CUDA 13's wheels together are a
# toolkit root (nvidia/cu13: bin, include, lib, nvvm); the script completes it as an NVIDIA
# install would lay it out for CMake's FindCUDAToolkit and llama-cpp-sys-2's build script:
#   - lib64 -> lib, and the unversioned .so links (libcudart.so, libcublas.so, ...);
#   - lib/stubs/libcuda.so: a link-time stand-in for the driver's libcuda.so.1 (the wheels
#     have no driver stub), every cu* entry point of cuda.h returning
#     CUDA_ERROR_STUB_LIBRARY; it is never on the run-time library path;
#   - empty libcublas_static.a and libcublasLt_static.a: the wheels ship cuBLAS only as
#     shared libraries, while llama-cpp-sys-2 asks for the static archives on Linux, so
#     cuBLAS is linked as a shared library instead (LAYERFIT_CUDA_RUSTFLAGS, printed below:
#     -lcublas with an rpath to this toolkit).
#
#   bash install/cuda-toolkit.sh            # prepare (downloads about 530 MB once)
#   bash install/cuda-toolkit.sh --check    # exit 0 if ready, 1 (with the reason) if not
#   LAYERFIT_CUDA_TOOLKIT=/some/dir bash install/cuda-toolkit.sh
#
# Exit codes: 0 ready, 1 not ready (--check) or a step failed, 4 a prerequisite (python3 with
# pip, a C compiler, cmake) is missing.
set -euo pipefail

prefix="${LAYERFIT_CUDA_TOOLKIT:-${XDG_CACHE_HOME:-$HOME/.cache}/layerfit/cuda-toolkit}"
root="$prefix/nvidia/cu13"
check_only=0
[ "${1:-}" = "--check" ] && check_only=1

CUDA_RELEASE=13.0.2
# name==version sha256 (of the manylinux x86_64 wheel)
WHEELS="nvidia-cuda-nvcc==13.0.88 56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03
nvidia-nvvm==13.0.88 c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0
nvidia-cuda-crt==13.0.88 2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4
nvidia-cuda-runtime==13.0.96 7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
nvidia-cuda-culibos==13.0.85 5c178858405f485367175e14f8a7536af6c86c5c428d25301f2218406c316ba0
nvidia-cuda-cccl==13.0.85 e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649
nvidia-cublas==13.1.0.3 ee8722c1f0145ab246bccb9e452153b5e0515fd094c3678df50b2a0888b8b171"
STAMP="cuda $CUDA_RELEASE: $(echo "$WHEELS" | cut -d' ' -f1 | tr '\n' ' ')layout 1"

say() { echo "cuda-toolkit: $*" >&2; }

missing_prerequisites() {
  local miss=()
  python3 -m pip --version >/dev/null 2>&1 || miss+=("python3 with pip")
  command -v cc >/dev/null 2>&1 || miss+=("a C compiler (cc)")
  command -v cmake >/dev/null 2>&1 || miss+=(cmake)
  echo "${miss[*]:-}"
}

toolkit_ready() {
  [ -f "$prefix/.layerfit-stamp" ] && [ "$(cat "$prefix/.layerfit-stamp")" = "$STAMP" ] &&
    [ -x "$root/bin/nvcc" ] && [ -x "$root/nvvm/bin/cicc" ] && [ -e "$root/include/cuda_runtime.h" ] &&
    [ -e "$root/lib64/libcudart_static.a" ] && [ -e "$root/lib64/libcublas.so" ] &&
    [ -e "$root/lib64/stubs/libcuda.so" ]
}

print_env() {
  echo "export CUDA_PATH='$root'"
  echo "export CUDAToolkit_ROOT='$root'"
  echo "export CUDACXX='$root/bin/nvcc'"
  # llama-cpp-sys-2's link search (find_cuda_helper): <dir>/lib64 and <dir>/lib64/stubs.
  echo "export CUDA_LIBRARY_PATH='$root'"
  echo "export PATH='$root/bin':\"\$PATH\""
  echo "export LAYERFIT_CUDA_RUSTFLAGS='-C link-arg=-L$root/lib64 -C link-arg=-lcublas -C link-arg=-lcublasLt -C link-arg=-Wl,-rpath,$root/lib64'"
}

missing=$(missing_prerequisites)
if [ "$check_only" = 1 ]; then
  [ -z "$missing" ] || { say "not ready: missing $missing"; exit 1; }
  toolkit_ready || { say "not ready: no CUDA $CUDA_RELEASE toolkit in $prefix (run install/cuda-toolkit.sh)"; exit 1; }
  print_env
  exit 0
fi
[ -z "$missing" ] || { say "missing $missing: install it (install/prerequisites.sh covers cc and cmake)"; exit 4; }

if toolkit_ready; then
  print_env
  exit 0
fi

case "$(uname -sm)" in
  "Linux x86_64") hashed=1 ;;
  Linux\ *) hashed=0; say "$(uname -m): the wheels are pinned by version only (the SHA-256 pins are x86_64's)" ;;
  *) say "NVIDIA's CUDA wheels are for Linux; on $(uname -s) install the CUDA toolkit from NVIDIA"; exit 1 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work" "$prefix.new"' EXIT
while read -r spec sha; do
  if [ "$hashed" = 1 ]; then echo "$spec --hash=sha256:$sha"; else echo "$spec"; fi
done <<< "$WHEELS" > "$work/requirements.txt"
say "installing CUDA $CUDA_RELEASE from NVIDIA's wheels into $prefix"
rm -rf "$prefix.new"
mkdir -p "$prefix.new"
hash_args=(); [ "$hashed" = 1 ] && hash_args=(--require-hashes)
PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
  "${hash_args[@]}" --target "$prefix.new" -r "$work/requirements.txt"

new="$prefix.new/nvidia/cu13"
[ -x "$new/bin/nvcc" ] || { say "error: the nvcc wheel has no bin/nvcc"; exit 1; }
ln -s lib "$new/lib64"
for so in "$new"/lib/lib*.so.[0-9]*; do
  base=$(basename "$so")
  ln -sf "$base" "$new/lib/${base%.so.*}.so"
done
# cuBLAS comes as shared libraries only: empty archives stand for the static ones.
for a in cublas_static cublasLt_static; do ar rc "$new/lib/lib$a.a"; done

# The driver's API for linking: every cu* name cuda.h mentions, returning
# CUDA_ERROR_STUB_LIBRARY (34). Its soname is the driver's, so the binary needs libcuda.so.1
# at run time, which only an installed NVIDIA driver provides.
mkdir -p "$new/lib/stubs"
grep -oE '\bcu[A-Z][A-Za-z0-9_]*' "$new/include/cuda.h" | sort -u |
  sed 's/.*/int &(void) { return 34; }/' > "$work/libcuda_stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$new/lib/stubs/libcuda.so" "$work/libcuda_stub.c"

echo "$STAMP" > "$prefix.new/.layerfit-stamp"
rm -rf "$prefix"
mv "$prefix.new" "$prefix"
toolkit_ready || { say "error: the toolkit in $prefix is incomplete"; exit 1; }
say "ready: $root ($("$root/bin/nvcc" --version | tail -n 2 | head -n 1))"
print_env
