#!/usr/bin/env bash
# Copies the header-only dependencies (doctest, Eigen, xsimd, stb) and their CMake
# package files from this machine's Debian packages into a git-ignored folder
# of the repository (default: <repo>/.deps), laid out as an install prefix:
#
#   .deps/include/{doctest,eigen3,xsimd,stb}
#   .deps/lib/cmake/doctest, .deps/share/eigen3/cmake, .deps/lib/<triplet>/cmake/xsimd
#   .deps/include/{zlib.h,zconf.h}   (only so that configuring tests/idx succeeds)
#
# The exported CMake files locate their headers relative to themselves, so
# `cmake -DCMAKE_PREFIX_PATH=<repo>/.deps` finds all three on a machine
# without them (scripts/gpu-check.sh does this on the GPU machine, which has
# no package registry). Usage: scripts/gather-deps.sh [DEST]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-$repo/.deps}

need() {
  if [[ ! -e $1 ]]; then
    echo "gather-deps: $1 not found (install $2 on this machine first)" >&2
    exit 1
  fi
}

triplet=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
need /usr/include/doctest/doctest.h doctest-dev
need /usr/lib/cmake/doctest libdoctest-dev
need /usr/include/eigen3/Eigen/Core libeigen3-dev
need /usr/share/eigen3/cmake libeigen3-dev
need /usr/include/xsimd/xsimd.hpp libxsimd-dev
need "/usr/lib/$triplet/cmake/xsimd" libxsimd-dev

rm -rf "$dest"
mkdir -p "$dest/include" "$dest/lib/cmake" "$dest/share/eigen3" "$dest/lib/$triplet/cmake"
cp -r /usr/include/doctest "$dest/include/"
cp -r /usr/lib/cmake/doctest "$dest/lib/cmake/"
cp -r /usr/include/eigen3 "$dest/include/"
cp -r /usr/share/eigen3/cmake "$dest/share/eigen3/"
cp -r /usr/include/xsimd "$dest/include/"
cp -r "/usr/lib/$triplet/cmake/xsimd" "$dest/lib/$triplet/cmake/"
# stb (header-only image decoding; ctnn-infer compiles its implementation in one TU).
need /usr/include/stb/stb_image.h libstb-dev
cp -r /usr/include/stb "$dest/include/"
# zlib's headers: tests/idx configures with find_package(ZLIB REQUIRED); the
# GPU build never compiles it, but configuring must not fail for want of them.
for h in zlib.h zconf.h; do
  if [[ -e /usr/include/$h ]]; then cp /usr/include/$h "$dest/include/"; fi
done
if [[ -e /usr/include/$triplet/zconf.h && ! -e $dest/include/zconf.h ]]; then
  cp "/usr/include/$triplet/zconf.h" "$dest/include/"
fi

# The copies must resolve relative to themselves. Debian's doctest export
# hard-codes its prefix; make it relative (lib/cmake/doctest -> prefix).
sed -i 's|^set(_IMPORT_PREFIX "/usr")$|get_filename_component(_IMPORT_PREFIX "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)|' \
  "$dest/lib/cmake/doctest/doctestTargets.cmake"
if grep -rqs '^set(_IMPORT_PREFIX "/' "$dest/lib" "$dest/share"; then
  echo "gather-deps: a CMake file in $dest still sets an absolute prefix:" >&2
  grep -rn '^set(_IMPORT_PREFIX "/' "$dest/lib" "$dest/share" >&2
  exit 1
fi
du -sh "$dest" | awk -v d="$dest" '{print "gather-deps: " $1 " in " d}'
