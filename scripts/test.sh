#!/usr/bin/env bash
# The test command of the README: installs what is missing, builds Release, runs every test.
# Usage: scripts/test.sh [--asan]   (--asan: the Debug build with AddressSanitizer + UBSan)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=release
[[ "${1:-}" == "--asan" ]] && preset=debug-asan

scripts/install-deps.sh
# Paths relative to the tree in ccache's keys: the Python wheel's build (a test) reuses the
# objects of this one.
export CCACHE_BASEDIR="$PWD"
# Room for these objects beside scripts/test-sanitizers.sh's (ccache's default is 5 GB).
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-20G}
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset"
