#!/usr/bin/env bash
# Instructions the gateway executes per request, counted by valgrind's callgrind (user space, all
# of the gateway's threads). Unlike the timings of run.sh this count does not move with the
# machine's load: two runs of one build agree within 2-3 % on a noisy machine (the totals; for a
# smaller change, compare the functions it touches with KEEP and callgrind_annotate). It is how a
# change to the request path is checked before the timed runs (docs/PERFORMANCE.md).
#
# Usage: bench/gateway/instructions.sh [build-dir] [seconds]      (defaults: build/release, 8)
#   BASELINE=/path/to/another/llm-caching measures that binary too, in the same session, and
#   prints each phase's ratio to it.
#   PHASES="misses hits" (the default) selects what runs: misses are distinct POSTs
#   (post_unique.lua) at a fixed 100 requests/s, so that both builds batch their SQLite writes
#   alike; hits are one fixed POST (post_hit.lua), as fast as they come. 2 connections each.
#   CACHE_URL=memory:// (say) replaces the fresh SQLite file each run gets.
#   KEEP=DIR keeps the callgrind files there, for callgrind_annotate.
#   SERVE_ARGS="--no-ledger" (say) adds flags to the measured gateway's serve command.
# The gateway runs with one worker thread (--threads 1) under callgrind, 20-50x slower than
# normal: the counts are per request, the request rate does not matter.
set -euo pipefail
phases=${PHASES:-misses hits}
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build/release}
seconds=${2:-8}
fake=$build/tools/fake-provider/llm-caching-fake-provider
for tool in valgrind callgrind_annotate callgrind_control wrk; do
  command -v "$tool" >/dev/null || {
    echo "bench: $tool is needed (Debian packages valgrind and wrk)" >&2
    exit 1
  }
done
work=$(mktemp -d /tmp/llmc-instructions.XXXXXX)
start_seconds=30 # valgrind takes seconds to start
# shellcheck source=servers.sh
source "$here/servers.sh"

start "$work/fake" "$fake" --listen 127.0.0.1:0
fake_port=$port

# Sets $measured to "instructions-per-request (per thread; requests)" for one binary and phase.
measure() {
  local binary=$1 phase=$2 label=$3 script pace
  if [[ $phase == misses ]]; then
    script=post_unique.lua pace=20 # ms per connection after each answer: 100 misses/s
  else
    script=post_hit.lua pace=0
  fi
  local out=$work/cg.$label.$phase
  rm -f "$work"/c.db*
  start "$work/gw.$label.$phase" valgrind --tool=callgrind --separate-threads=yes \
    --callgrind-out-file="$out" "$binary" --cache-url "${CACHE_URL:-sqlite://$work/c.db}" \
    serve --threads 1 --listen 127.0.0.1:0 --log-level warn \
    --upstream "openai=http://127.0.0.1:$fake_port/v1" ${SERVE_ARGS:-}
  local gateway=$last_pid url=http://127.0.0.1:$port/v1/chat/completions
  # Warm up (connections, caches, the first hit's miss), then count only what follows.
  PACE_MS=$pace wrk -t1 -c2 -d2s -s "$here/$script" "$url" >/dev/null
  callgrind_control -z "$gateway" >/dev/null 2>&1
  local requests
  requests=$(PACE_MS=$pace wrk -t1 -c2 -d"${seconds}s" -s "$here/$script" "$url" | awk '/requests in/ {print $1}')
  callgrind_control -d "$gateway" >/dev/null 2>&1
  kill "$gateway"
  wait "$gateway" 2>/dev/null || true
  local total=0 threads=""
  for file in "$out".*-*; do
    local n
    n=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    [[ -n $n && $n -gt 0 ]] || continue
    total=$((total + n))
    threads+="${threads:+ + }$((n / requests))"
  done
  if [[ -n ${KEEP:-} ]]; then mkdir -p "$KEEP" && cp "$out".* "$KEEP"/; fi
  measured="$((total / requests)) ($threads; $requests requests)"
}

for phase in $phases; do
  measure "$build/llm-caching" "$phase" this
  this=$measured
  echo "$phase: instructions per request: $this"
  if [[ -n ${BASELINE:-} ]]; then
    measure "$BASELINE" "$phase" baseline
    base=$measured
    echo "$phase: baseline $BASELINE: $base"
    awk -v a="${this%% *}" -v b="${base%% *}" -v p="$phase" \
      'BEGIN {printf "%s: ratio to the baseline: %.3f\n", p, a / b}'
  fi
done
