#!/usr/bin/env bash
# The main job of the README: installs what is missing, builds Release, and runs llm-caching on
# the embedded cache (no configuration needed). Arguments are passed to llm-caching.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target llm-caching >/dev/null
[[ $# -eq 0 ]] && set -- cache stats
exec build/release/llm-caching "$@"
