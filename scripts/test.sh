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
# Room for these objects beside scripts/test-sanitizers.sh's (tsan and fuzz; its asan-coverage
# objects are never cached), and no more: the cache shares the disk with the builds.
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-6G}
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset"
