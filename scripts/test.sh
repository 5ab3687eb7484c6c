#!/usr/bin/env bash
# Configures, builds everything and runs the whole test suite.
#   BUILD_DIR  build folder (default: build/ in the repository)
#   JOBS       parallel compile jobs and ctest jobs (default: 2)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
jobs="${JOBS:-2}"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$jobs"
cd "$build"
ctest --output-on-failure -j "$jobs"
