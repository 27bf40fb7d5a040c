#!/usr/bin/env bash
# The main job of the README: installs what is missing, builds Release, and starts the caching
# gateway (`llm-caching serve`) on the embedded cache, at 127.0.0.1:8080, with no configuration.
# Arguments, if any, are passed to llm-caching instead (e.g. `scripts/run.sh cache stats`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target llm-caching >/dev/null
[[ $# -eq 0 ]] && set -- serve
exec build/release/llm-caching "$@"
