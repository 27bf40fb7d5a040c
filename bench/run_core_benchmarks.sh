#!/usr/bin/env bash
# Runs the core benchmarks (issues 2 and 3) and prints their medians. Figures go to
# docs/PERFORMANCE.md with the machine they were measured on.
#   bench/run_core_benchmarks.sh [build-dir]     (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
cmake --build "$build" --target bench_key bench_entry bench_cache_hit bench_agent_hit >/dev/null

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"
args=(--benchmark_repetitions=5 --benchmark_report_aggregates_only=true)
for b in bench_key bench_entry bench_agent_hit bench_cache_hit; do
  echo "== $b"
  "$build/bench/$b" "${args[@]}" 2>/dev/null | awk '/_median/ {print "  " $1, $2, $3}'
done
