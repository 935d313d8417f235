#!/usr/bin/env bash
# Prepares what `cargo build --features vulkan` needs on Debian/Ubuntu, idempotently, and
# prints the environment to build with on its last lines (`eval "$(bash install/vulkan-toolchain.sh)"`).
#
# The bundled llama.cpp's Vulkan backend needs Vulkan headers that know VK_EXT_layer_settings
# (`vk::LayerSettingEXT`, Vulkan 1.3.261+) and SPIRV-Headers' CMake package. Debian 12 ships
# 1.3.239, so when the system headers are too old the script fetches Debian 13's
# libvulkan-dev and spirv-headers (pinned versions, checked by SHA-256) with `apt-get download`
# through a private, temporary package list (the system's sources are never touched) and
# unpacks them into a private prefix used as VULKAN_SDK. The Vulkan loader, the shader
# compiler (glslc) and Mesa's drivers (lavapipe: a software Vulkan device on the CPU, which
# the offload tests run on) come from the system's own packages.
#
#   bash install/vulkan-toolchain.sh            # prepare (installs system packages as root)
#   bash install/vulkan-toolchain.sh --check    # exit 0 if ready, 1 (with the reason) if not
#   LAYERFIT_VULKAN_SDK=/some/dir bash install/vulkan-toolchain.sh
#
# Exit codes: 0 ready, 1 not ready (--check) or a step failed, 4 system packages are missing
# and this user cannot install them.
set -euo pipefail

prefix="${LAYERFIT_VULKAN_SDK:-${XDG_CACHE_HOME:-$HOME/.cache}/layerfit/vulkan-sdk}"
check_only=0
[ "${1:-}" = "--check" ] && check_only=1

# Debian 13 (trixie) packages, pinned: name, version, SHA-256 of the .deb (amd64 for the
# arch-specific one; other architectures are checked against the package list's own hash).
VK_DEV_VERSION=1.4.309.0-1
VK_DEV_SHA_AMD64=8d329d465e16168afff58b1bd0dd6db46aac2cc3f56054a481b25a04e90b345a
SPIRV_VERSION=1.6.1+1.4.309.0-1
SPIRV_SHA=dc18db866d63680351c40ac6b6bece34cb52da64a7799ce1cc4f16f6bff4d064
STAMP="libvulkan-dev=$VK_DEV_VERSION spirv-headers=$SPIRV_VERSION"

say() { echo "vulkan-toolchain: $*" >&2; }

multiarch() { gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu; }

# The system's Vulkan loader (libvulkan.so.1), wherever the distribution puts it.
system_loader() {
  local ma
  ma=$(multiarch)
  for f in "/usr/lib/$ma/libvulkan.so.1" /usr/lib64/libvulkan.so.1 /usr/lib/libvulkan.so.1; do
    [ -e "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

# True when the system's own headers are new enough (then no private prefix is needed).
system_headers_ok() {
  grep -q VkLayerSettingEXT /usr/include/vulkan/vulkan_core.h 2>/dev/null &&
    [ -e /usr/include/vulkan/vulkan.hpp ] &&
    ls /usr/share/cmake/SPIRV-Headers/SPIRV-HeadersConfig.cmake >/dev/null 2>&1
}

missing_system_parts() {
  local miss=()
  command -v glslc >/dev/null 2>&1 || miss+=(glslc)
  system_loader >/dev/null || miss+=(libvulkan1)
  ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || miss+=(mesa-vulkan-drivers)
  command -v cmake >/dev/null 2>&1 || miss+=(cmake)
  echo "${miss[*]:-}"
}

prefix_ready() {
  [ -f "$prefix/.layerfit-stamp" ] && [ "$(cat "$prefix/.layerfit-stamp")" = "$STAMP" ] &&
    [ -e "$prefix/include/vulkan/vulkan.hpp" ] && [ -e "$prefix/lib/libvulkan.so" ] &&
    [ -x "$prefix/bin/glslc" ]
}

print_env() {
  if system_headers_ok; then
    echo "# system Vulkan headers are recent enough"
    echo "unset VULKAN_SDK"
  else
    echo "export VULKAN_SDK='$prefix'"
    echo "export CMAKE_PREFIX_PATH='$prefix/usr'\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}"
  fi
}

missing=$(missing_system_parts)
if [ "$check_only" = 1 ]; then
  [ -z "$missing" ] || { say "not ready: missing system packages: $missing"; exit 1; }
  system_headers_ok || prefix_ready || { say "not ready: no Vulkan headers with VK_EXT_layer_settings in /usr/include or $prefix"; exit 1; }
  print_env
  exit 0
fi

if [ -n "$missing" ]; then
  command -v apt-get >/dev/null 2>&1 || {
    say "missing $missing and no apt-get here: install glslc, the Vulkan loader, Mesa's Vulkan drivers and cmake with your package manager, and a Vulkan SDK >= 1.3.261 (set VULKAN_SDK)"
    exit 4
  }
  [ "$(id -u)" = 0 ] || { say "missing system packages: $missing; run as root or: sudo apt-get install -y $missing"; exit 4; }
  say "installing $missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $missing >/dev/null
fi

if system_headers_ok || prefix_ready; then
  print_env
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || { say "the Vulkan headers here are older than 1.3.261 and there is no apt-get: install a Vulkan SDK and set VULKAN_SDK"; exit 1; }
say "fetching Debian 13's libvulkan-dev $VK_DEV_VERSION and spirv-headers $SPIRV_VERSION into $prefix"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etc" "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
cat > "$work/etc/trixie.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_private=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/etc"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=root")
apt-get "${apt_private[@]}" update -qq >/dev/null
(cd "$work/debs" && apt-get "${apt_private[@]}" download -qq \
  "libvulkan-dev=$VK_DEV_VERSION" "spirv-headers=$SPIRV_VERSION" >/dev/null)

check_sha() {
  local f=$1 want=$2
  [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$want" ] || { say "error: $f: checksum mismatch"; exit 1; }
}
check_sha "$work/debs"/spirv-headers_*.deb "$SPIRV_SHA"
[ "$(dpkg --print-architecture)" = amd64 ] && check_sha "$work/debs"/libvulkan-dev_*.deb "$VK_DEV_SHA_AMD64"

rm -rf "$prefix.new"
mkdir -p "$prefix.new/lib" "$prefix.new/bin"
for deb in "$work/debs"/*.deb; do dpkg-deb -x "$deb" "$prefix.new"; done
ln -s usr/include "$prefix.new/include"
# Link against the system's loader: it finds the installed drivers (the headers' version only
# decides which declarations exist at compile time).
ln -s "$(system_loader)" "$prefix.new/lib/libvulkan.so"
ln -s "$(command -v glslc)" "$prefix.new/bin/glslc"
echo "$STAMP" > "$prefix.new/.layerfit-stamp"
rm -rf "$prefix"
mv "$prefix.new" "$prefix"
say "ready: $prefix"
print_env
