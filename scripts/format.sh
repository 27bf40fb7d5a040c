#!/usr/bin/env bash
# clang-format over the tracked C++ sources with the repo's .clang-format.
#   scripts/format.sh          rewrite files in place
#   scripts/format.sh --check  list files that differ, exit 1 if any
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
if [[ "${1:-}" == "--check" ]]; then
  status=0
  for f in "${files[@]}"; do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "$f"; status=1; }
  done
  exit $status
fi
clang-format -i "${files[@]}"
