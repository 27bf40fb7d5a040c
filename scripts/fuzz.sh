#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, the `fuzz` preset: Debian's clang-14 with ASan and
# UBSan) and runs each for SECONDS on a copy of its seed corpus (tests/fuzz/corpus/<target>).
#   scripts/fuzz.sh 60             every target, 60 s each
#   scripts/fuzz.sh 600 entry sse  those targets only
# Exits non-zero when a target crashes or a sanitizer reports; the input that did it is left in
# build/fuzz/findings/<target>/ (make it a regression test: see docs/RELIABILITY.md). The corpus
# a run grows stays in build/fuzz/corpus/<target>; the seeds in the tree are not modified.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}"
shift
command -v clang++-14 >/dev/null ||
  { echo "clang++-14 not found: apt-get install clang-14 libclang-rt-14-dev" >&2; exit 2; }
cmake --preset fuzz >/dev/null
if [[ $# -gt 0 ]]; then targets=("$@"); else
  mapfile -t targets < <(ls tests/fuzz/fuzz_*.cpp | sed 's|.*/fuzz_||; s|\.cpp$||')
fi
cmake --build --preset fuzz --target "${targets[@]/#/fuzz_}"
status=0
for target in "${targets[@]}"; do
  corpus="build/fuzz/corpus/$target"
  findings="build/fuzz/findings/$target"
  mkdir -p "$corpus" "$findings"
  cp -n "tests/fuzz/corpus/$target"/* "$corpus"/ 2>/dev/null || true
  log="build/fuzz/findings/$target.log"
  if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      "build/fuzz/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -artifact_prefix="$findings/" -print_final_stats=1 "$corpus" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    echo "$target: OK, $runs runs in ${seconds}s, corpus $(ls "$corpus" | wc -l) inputs"
  else
    echo "$target: FAILED (log: $log, input: $(ls "$findings" | head -1))"
    status=1
  fi
done
exit $status
