#!/usr/bin/env bash
# The build prerequisites of layerfit, checked and installed in one place: the README's two
# commands, `.ci/run`, `tests/run.sh` and `install/install.sh` all call this script, so a fresh
# machine that has only Rust, git and Python 3 can build and test layerfit.
#
# What the bundled llama.cpp build needs: cmake, make, a C/C++ compiler, and libclang for
# bindgen. libclang is detected as bindgen's loader (clang-sys) finds it: a file named
# libclang.so, libclang.so.N, libclang-N.so or libclang-N.so.M. libclang-cpp.so.N (LLVM's C++
# library, present on many machines that lack libclang) does not count.
#
#   bash install/prerequisites.sh            # check; install what is missing (asks first on a terminal)
#   bash install/prerequisites.sh --yes      # install without asking
#   bash install/prerequisites.sh --check    # only report; exit 0 ready, 4 missing
#   bash install/prerequisites.sh --tests    # also what the tests need (Python's pip, Mesa's Vulkan drivers)
#
# LAYERFIT_LIBCLANG_DIRS (space-separated folders) replaces the folders searched for libclang
# (the tests use it to feed the detection a folder).
#
# Exit codes: 0 ready, 4 prerequisites missing and not installed (no package manager, no
# permission, declined, or the install failed), 2 bad usage.
set -u

YES=0
CHECK_ONLY=0
FOR_TESTS=0
for arg in "$@"; do
  case "$arg" in
    --yes|-y) YES=1 ;;
    --check) CHECK_ONLY=1 ;;
    --tests) FOR_TESTS=1 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: install/prerequisites.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

say() { printf 'prerequisites: %s\n' "$*" >&2; }

# Folders where bindgen's loader looks for libclang (clang-sys's Linux and macOS defaults).
libclang_dirs() {
  if [ -n "${LAYERFIT_LIBCLANG_DIRS+x}" ]; then echo "$LAYERFIT_LIBCLANG_DIRS"; return; fi
  local dirs="${LIBCLANG_PATH:-}"
  if command -v llvm-config >/dev/null 2>&1; then dirs="$dirs $(llvm-config --libdir 2>/dev/null)"; fi
  dirs="$dirs $(ls -d /usr/lib/llvm-*/lib /usr/lib64/llvm*/lib 2>/dev/null | tr '\n' ' ')"
  dirs="$dirs /usr/lib /usr/lib64 /usr/local/lib /usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
  dirs="$dirs /opt/homebrew/opt/llvm/lib /usr/local/opt/llvm/lib /Library/Developer/CommandLineTools/usr/lib"
  echo "$dirs"
}

# True when one of the folders holds a libclang bindgen can load.
have_libclang() {
  local d f name
  for d in $(libclang_dirs); do
    [ -d "$d" ] || continue
    for f in "$d"/libclang*; do
      [ -e "$f" ] || continue
      name="${f##*/}"
      if printf '%s\n' "$name" | grep -Eq '^libclang(-[0-9]+(\.[0-9]+)*)?\.(so(\.[0-9]+)*|dylib)$'; then
        return 0
      fi
    done
  done
  return 1
}

have() { command -v "$1" >/dev/null 2>&1; }

package_manager() {
  local pm
  for pm in apt-get dnf pacman brew; do
    if have "$pm"; then echo "$pm"; return; fi
  done
}

# The package that provides a prerequisite, per package manager ("" = part of the base system).
package_for() {
  case "$1:$2" in
    cmake:*) echo cmake ;;
    make:brew) echo "" ;;
    make:*) echo make ;;
    compiler:apt-get) echo g++ ;;
    compiler:dnf) echo gcc-c++ ;;
    compiler:pacman) echo gcc ;;
    compiler:brew) echo "" ;;
    libclang:apt-get) echo libclang-dev ;;
    libclang:dnf) echo clang-devel ;;
    libclang:pacman) echo clang ;;
    libclang:brew) echo llvm ;;
    pip:apt-get) echo python3-pip ;;
    pip:dnf) echo python3-pip ;;
    pip:pacman) echo python-pip ;;
    pip:brew) echo "" ;;
    vulkan-drivers:apt-get) echo mesa-vulkan-drivers ;;
    vulkan-drivers:dnf) echo mesa-vulkan-drivers ;;
    vulkan-drivers:pacman) echo vulkan-swrast ;;
    vulkan-drivers:brew) echo "" ;;
  esac
}

# What is missing, one word each, on stdout.
find_missing() {
  have cargo || echo rust
  have cmake || echo cmake
  have make || have ninja || echo make
  { have c++ || have g++ || have clang++; } || echo compiler
  have_libclang || echo libclang
  if [ "$FOR_TESTS" = 1 ]; then
    python3 -m pip --version >/dev/null 2>&1 || echo pip
    if [ "$(uname -s)" = Linux ]; then
      ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || echo vulkan-drivers
    fi
  fi
}

# shellcheck disable=SC2207
missing=($(find_missing))
if [ ${#missing[@]} -eq 0 ]; then
  say "ready (cargo, cmake, make, a C++ compiler, libclang$([ "$FOR_TESTS" = 1 ] && echo ', pip, Mesa Vulkan drivers'))"
  exit 0
fi
say "missing: ${missing[*]}"
if [ "$CHECK_ONLY" = 1 ]; then exit 4; fi

for m in "${missing[@]}"; do
  if [ "$m" = rust ]; then
    echo "error: no Rust toolchain (cargo): install it with rustup (https://rustup.rs), then run this again" >&2
    exit 4
  fi
done

pm="$(package_manager)"
if [ -z "$pm" ]; then
  echo "error: no supported package manager (apt-get, dnf, pacman, brew): install ${missing[*]} yourself" >&2
  exit 4
fi
pkgs=()
for m in "${missing[@]}"; do
  p="$(package_for "$m" "$pm")"
  [ -n "$p" ] && pkgs+=("$p")
done
if [ ${#pkgs[@]} -eq 0 ]; then
  echo "error: ${missing[*]} missing and $pm has no package for it here: install it yourself" >&2
  exit 4
fi

sudo=()
if [ "$pm" != brew ] && [ "$(id -u)" != 0 ]; then
  if have sudo; then sudo=(sudo); else
    echo "error: installing ${pkgs[*]} needs root (no sudo here)" >&2; exit 4
  fi
fi
case "$pm" in
  apt-get) install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}") ;;
  dnf) install=(dnf install -y "${pkgs[@]}") ;;
  pacman) install=(pacman -S --needed --noconfirm "${pkgs[@]}") ;;
  brew) install=(brew install "${pkgs[@]}") ;;
esac

# Ask only a person at a terminal who did not say --yes.
if [ "$YES" = 0 ] && [ -t 0 ] && [ -t 2 ]; then
  printf 'prerequisites: install them now with: %s ? [y/N] ' "${sudo[*]:+${sudo[*]} }${install[*]}" >&2
  read -r answer || answer=""
  case "$answer" in y|Y|yes|YES) ;; *)
    echo "error: cannot build without: ${missing[*]} (install: ${sudo[*]:+${sudo[*]} }${install[*]})" >&2
    exit 4 ;;
  esac
fi

say "installing: ${pkgs[*]} ($pm)"
if [ "$pm" = apt-get ]; then "${sudo[@]}" apt-get update -qq >/dev/null || true; fi
if ! "${sudo[@]}" "${install[@]}" >/dev/null; then
  echo "error: '${install[*]}' failed" >&2
  exit 4
fi
# shellcheck disable=SC2207
still=($(find_missing))
if [ ${#still[@]} -gt 0 ]; then
  echo "error: still missing after '${install[*]}': ${still[*]}$(printf '%s\n' "${still[@]}" | grep -qx libclang && echo ' (if libclang is installed elsewhere, set LIBCLANG_PATH to its folder)')" >&2
  exit 4
fi
say "ready"
