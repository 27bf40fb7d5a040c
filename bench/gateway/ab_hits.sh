#!/usr/bin/env bash
# A/B of gateway hits between two builds, under the same load (docs/PERFORMANCE.md): one fake
# provider, one gateway from each binary on its own SQLite file (or CACHE=redis://... for both),
# the same fixed POST (post_hit.lua), wrk -t1 -c16 against each in turn, ROUNDS times,
# alternating which goes first. Prints requests/s and p50 per run and the ratio after/before
# of the medians. SERVE_ARGS="--l1-mb 0" (say) adds flags to both serve commands.
# Usage: bench/gateway/ab_hits.sh BEFORE_CLI AFTER_CLI FAKE_PROVIDER [rounds] [seconds]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
before=$1 after=$2 fake=$3 rounds=${4:-6} seconds=${5:-3}
work=$(mktemp -d /tmp/llmc-ab-hits.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$work"' EXIT

wait_for_line() {  # FILE: prints the address of its "listening on ADDR" line
  for _ in $(seq 200); do
    grep -q "listening on" "$1" 2>/dev/null && break
    sleep 0.05
  done
  sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$1" | head -1
}

"$fake" --listen 127.0.0.1:0 >"$work/fake.out" 2>&1 &
pids+=($!)
fake_at=$(wait_for_line "$work/fake.out")
start_gateway() {  # NAME CLI (not in a $(...): the trap must see the pid)
  "$2" --cache-url "${CACHE:-sqlite://$work/$1.db}" serve --listen 127.0.0.1:0 --threads 1 \
    --log-level info --upstream "openai=http://$fake_at/v1" ${SERVE_ARGS:-} >"$work/$1.out" 2>&1 &
  pids+=($!)
}
start_gateway before "$before"
start_gateway after "$after"
before_at=$(wait_for_line "$work/before.out")
after_at=$(wait_for_line "$work/after.out")
body=$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$here/post_hit.lua")
for at in "$before_at" "$after_at"; do
  for _ in 1 2; do
    curl -s -o /dev/null -D - "http://$at/v1/chat/completions" -H 'content-type: application/json' \
      -H 'Authorization: Bearer sk-bench' -d "$body" | grep -i '^x-llm-cache:' | tr -d '\r'
  done
done

run() {  # NAME ADDR: "requests/s p50"
  wrk -t1 -c16 -d"${seconds}s" --latency -s "$here/post_hit.lua" "http://$2/v1/chat/completions" |
    awk -v name="$1" '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} END {print name, rps, p50}'
}
: >"$work/results"
for round in $(seq "$rounds"); do
  if ((round % 2)); then order="before after"; else order="after before"; fi
  for name in $order; do
    at=$before_at
    [[ $name == after ]] && at=$after_at
    run "$name" "$at" | tee -a "$work/results"
  done
done
median() { grep "^$1 " "$work/results" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
b=$(median before) a=$(median after)
echo "median requests/s: before $b, after $a, after/before $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", a/b}')"
