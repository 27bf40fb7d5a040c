#!/usr/bin/env bash
# The sanitizer and coverage half of CI (.ci/run runs it after scripts/test.sh):
#   1. the test suite (all but the Debian package test, which scripts/test.sh runs) on the
#      asan-coverage preset: AddressSanitizer + UndefinedBehaviorSanitizer at -O1, with gcov;
#   2. gcovr's line coverage of src/ from that run, printed;
#   3. the concurrency tests (tests/CMakeLists.txt, LLMC_TSAN_TESTS) on the tsan preset;
#   4. each libFuzzer target for LLMC_FUZZ_SECONDS (default 30; 0 skips) from its seed corpus.
# Any sanitizer report fails the run, even one from a child process (a gateway, the fake
# provider, the CLI) whose test passed: every report is written to build/sanitizer-reports/,
# printed at the end, and counted.
# Usage: scripts/test-sanitizers.sh [asan] [coverage] [tsan] [fuzz]   (no argument: all four)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The instrumented builds are configured and built through one fixed path, a symlink to this
# tree, so that ccache shares their objects between clones in different folders (CI's fresh
# clone reuses the objects of a run in another clone on the same machine): `--coverage` objects
# embed the absolute path of their .gcda file and -g1 ones their build folder, which ccache hashes.
# CMake and ccache keep the path as given ($PWD), not the symlink's target.
tree=${LLMC_SANITIZE_TREE:-/tmp/llm-caching-sanitize-tree}
ln -sfn "$PWD" "$tree"
cd "$tree"
export PWD="$tree"
root=$tree
export CCACHE_NOHASHDIR=1
# Room for the Release, tsan and fuzz objects together, and no more: the cache shares the disk
# with the builds. (ccache 4.7 never caches the asan-coverage objects: it calls
# -fprofile-update=atomic unsupported.)
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-6G}
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(asan coverage tsan fuzz)
wants() { [[ " ${steps[*]} " == *" $1 "* ]]; }

export CCACHE_BASEDIR="$root"
reports="$root/build/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
# log_path: each process writes its reports to <prefix>.<pid>, which the end of this script
# reads. The tests' own output stays readable, and no report goes unnoticed.
export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1"
export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="log_path=$reports/tsan:second_deadlock_stack=1"
status=0
# Each step's time, printed as it ends and again in the summary at the end, with the disk space
# left: a full disk stops a build midway (it did stop CI once, docs/RELIABILITY.md).
timings=()
# Whole GB free on this disk; nothing when df prints no figure.
free_gb() { df -BG --output=avail . 2>/dev/null | tail -1 | tr -dc '0-9' || true; }
elapsed() {
  timings+=("$1: $((SECONDS - $2)) s")
  echo "test-sanitizers: $1 took $((SECONDS - $2)) s; $(free_gb) GB free on disk"
}
# These three builds and scripts/test.sh's Release one take about 4 GB together (the figures:
# docs/RELIABILITY.md, "CI's whole run").
free_gb=$(free_gb)
if [[ -n "$free_gb" ]] && ((free_gb < 6)); then
  echo "test-sanitizers: warning: only ${free_gb} GB free on disk here; the builds need about" \
       "4 GB and ccache up to CCACHE_MAXSIZE ($CCACHE_MAXSIZE)" >&2
fi
coverage_line=""

if wants asan || wants coverage; then
  start=$SECONDS
  cmake --preset asan-coverage >/dev/null
  cmake --build --preset asan-coverage -j "$(nproc)"
  elapsed "the asan-coverage build" "$start"
fi
if wants asan; then
  start=$SECONDS
  # Counts from this run only.
  find build/asan-coverage -name '*.gcda' -delete
  ctest --preset asan-coverage -E '^package\.' || status=1
  elapsed "the suite under ASan+UBSan" "$start"
fi
if wants coverage; then
  start=$SECONDS
  echo "test-sanitizers: line coverage of src/ (gcovr)"
  # Per file, the least covered last, then the total (also in build/asan-coverage/coverage.txt).
  # gcovr matches its filter against the sources' real paths, not the symlinked tree's.
  real_root=$(pwd -P)
  # One gcov at a time: gcovr 5.2 with -j never ends once a worker fails (the failed worker keeps
  # its directory's lock), which let CI run into its time limit. A line gcov writes that gcovr
  # cannot parse is reported on stderr and skipped, not fatal; a gcovr that still hangs is killed.
  if ! timeout 900 gcovr --root "$real_root" --filter "$real_root/src/" \
    --object-directory build/asan-coverage --gcov-ignore-parse-errors --sort-percentage \
    --print-summary > build/asan-coverage/coverage.txt; then
    echo "test-sanitizers: gcovr failed or ran past 900 s" >&2
    status=1
  fi
  cat build/asan-coverage/coverage.txt
  # gcovr's summary line, "lines: 91.2% (12345 out of 13536)", printed again at the end.
  coverage_line=$(grep -m1 '^lines:' build/asan-coverage/coverage.txt || true)
  elapsed "coverage" "$start"
fi
if wants tsan; then
  start=$SECONDS
  cmake --preset tsan >/dev/null
  cmake --build --preset tsan -j "$(nproc)"
  elapsed "the tsan build" "$start"
  start=$SECONDS
  ctest --preset tsan || status=1
  elapsed "the concurrency tests under TSan" "$start"
fi
if wants fuzz && [[ "${LLMC_FUZZ_SECONDS:-30}" != 0 ]]; then
  start=$SECONDS
  # scripts/fuzz.sh sets its own sanitizer options: reports go to its findings' logs.
  env -u ASAN_OPTIONS -u UBSAN_OPTIONS scripts/fuzz.sh "${LLMC_FUZZ_SECONDS:-30}" || status=1
  elapsed "fuzzing" "$start"
fi

shopt -s nullglob
found=("$reports"/*)
if ((${#found[@]} > 0)); then
  echo "test-sanitizers: ${#found[@]} sanitizer report(s):" >&2
  for report in "${found[@]}"; do
    echo "==== $report" >&2
    head -80 "$report" >&2
  done
  status=1
fi
echo "test-sanitizers: times: $(IFS=';'; echo "${timings[*]}")"
[[ -z "$coverage_line" ]] || echo "test-sanitizers: line coverage of src/: $coverage_line"
if ((status == 0)); then
  echo "test-sanitizers: passed (${steps[*]}), no sanitizer report"
else
  echo "test-sanitizers: FAILED" >&2
fi
exit $status
