#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian 12 (bookworm).
# Only missing packages are installed, so on a prepared machine this does
# nothing (and needs no network). Uses sudo unless already root.
set -euo pipefail

packages=(
  build-essential cmake g++            # the build (g++ 12, cmake 3.25)
  clang-14 libomp-14-dev               # the compile-fail tests also run with clang 14 (+ its OpenMP)
  libclang-rt-14-dev                   # libFuzzer and the sanitizer runtimes for the fuzz/sanitize tests
  libxsimd-dev                         # CPU backend (SIMD)
  doctest-dev                          # tests
  libbenchmark-dev                     # benchmarks
  libstb-dev pkg-config                # image decoding (stb, found through pkg-config)
  libopenmpi-dev openmpi-bin           # the MPI component (data-parallel training) and its tests
  zlib1g-dev dataset-fashion-mnist     # the demo's images (gzip'd IDX)
)

missing=()
for p in "${packages[@]}"; do
  if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]]; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
