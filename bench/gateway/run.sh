#!/usr/bin/env bash
# Gateway benchmarks (docs/PERFORMANCE.md):
#   1. hits: wrk, one fixed POST, 64 connections, against the gateway and against nginx as a
#      caching reverse proxy of the same POST (proxy_cache keyed on the body), same fake upstream;
#   2. pass-through: distinct POSTs (all misses) paced to ~1,000 requests/s, straight to the fake
#      provider, through the gateway, through nginx's caching proxy (the reference) and through
#      nginx as a plain proxy without a cache (the floor: what one more hop costs on this
#      machine); the p99 difference to the direct run is the added latency. The gateway's own
#      time (its llmc_gateway_overhead_seconds histogram: the request's time in the gateway minus
#      the wait for the upstream) is printed too, and the request's whole time inside the
#      gateway (llmc_gateway_request_duration_seconds: with its p99 next to wrk's, whether the
#      tail is spent inside the gateway or in reaching it); and the same misses through the
#      gateway with `x-llm-cache: no-store` (it reads its cache but never writes it, nor takes
#      the cross-process lock): the difference to the storing run is what storing costs;
#   3. memory: RSS of the gateway after 100,000 distinct cached entries with a 64 MB L1;
#   4. spread (only when asked for, PHASES=spread): hits over few connections, where how the
#      server spreads connections over its threads shows: 2 keep-alive connections, and 16
#      connections that each carry one request (Connection: close), gateway against nginx.
# Usage: bench/gateway/run.sh [build-dir] [seconds-per-run]
#   ROUNDS=N repeats the hit and miss pairs N times, alternating (default 1). Hits and misses are
#   also reported pooled: every request of every round in one distribution per target. Many short
#   rounds (`ROUNDS=12 PHASES=misses bench/gateway/run.sh build/release 2`, or PHASES=hits) are
#   the fair comparison on a noisy host, as a slow spell falls on every target alike.
#   CACHE_URL=memory:// (say) replaces the first gateway's SQLite file, to isolate the L2 write.
#   PHASES="hits misses memory" (the default) selects what runs; "spread" runs only when named.
#   SERVE_ARGS="--threads 1" (say) adds flags to the first gateway's serve command.
#   BASELINE=/path/to/another/llm-caching runs a second gateway from that binary (same flags,
#   its own SQLite file) beside the first in every miss and spread round, for an A/B of two
#   builds under the same load (baseline-miss, pooled too; baseline-* in the spread runs).
#   MISS_LOAD=even (default) sends the misses at a fixed rate spread evenly in time
#   (post_paced.lua); MISS_LOAD=bursts gives each of the 10 connections a 10 ms pause after each
#   answer (post_unique.lua), which lets them fall into step and send in bursts of 10.
#   PROBE=1 runs bench/wakeup_probe beside each miss run and prints how often the machine woke a
#   sleeping thread late (a stall there delays every request in flight; off by default, as the
#   probe's own 1,000 wake-ups a second are load too).
set -euo pipefail
phases=${PHASES:-hits misses memory}
has_phase() { [[ " $phases " == *" $1 "* ]]; }

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build/release}
seconds=${2:-10}
cli=$build/llm-caching
fake=$build/tools/fake-provider/llm-caching-fake-provider
work=$(mktemp -d /tmp/llmc-gateway-bench.XXXXXX)
threads=$(nproc)
server_pids=""
# shellcheck source=servers.sh
source "$here/servers.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Prints "requests/s p50 p99" of a wrk --latency run.
summarise() {
  awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print rps, p50, p99}'
}

# CPU time (user + system, in clock ticks) of the given processes and all their threads.
cpu_ticks() {
  local total=0 stat
  for pid in "$@"; do
    for stat in /proc/"$pid"/task/*/stat; do
      total=$((total + $(awk '{print $14 + $15}' "$stat" 2>/dev/null || echo 0)))
    done
  done
  echo "$total"
}

# wrk_run LABEL CONNECTIONS SCRIPT URL [env...]; $server_pids: the server's processes, whose CPU
# time per request is printed too (load-independent, unlike requests/s on a shared machine).
wrk_run() {
  local label=$1 connections=$2 script=$3 url=$4
  shift 4
  local out before after requests probe_pid=""
  if [[ ${PROBE:-0} == 1 ]]; then
    "$build/bench/wakeup-probe" "$seconds" >"$work/$label.probe" &
    probe_pid=$!
  fi
  before=$(cpu_ticks $server_pids)
  out=$(env "$@" wrk -t"${wrk_threads:-$threads}" -c"$connections" -d"${seconds}s" --latency -s "$script" "$url")
  after=$(cpu_ticks $server_pids)
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$out" >"$work/$label.wrk"
  echo "$label $(echo "$out" | summarise) $(((after - before) * 1000000 / $(getconf CLK_TCK) / requests))us"
  echo "$out" | grep "^tail_us" || true
  if [[ -n $probe_pid ]]; then
    wait "$probe_pid"
    echo "machine stalls during $label: $(cat "$work/$label.probe")"
  fi
  last_p99_us=$(echo "$out" | sed -n 's/^tail_us.* p99=\([0-9]*\).*/\1/p')
}

# The gateway's buckets for misses of histogram $2 (default llmc_gateway_overhead_seconds):
# "le cumulative" lines.
histogram_snapshot() {
  curl -s "http://127.0.0.1:$1/metrics" |
    sed -n "s/^${2:-llmc_gateway_overhead_seconds}_bucket{outcome=\"miss\",le=\"\([^\"]*\)\"} \([0-9]*\)\$/\1 \2/p"
}

# p50 and p99 (us) of the misses between two snapshots, interpolated within a bucket as
# Prometheus' histogram_quantile does.
histogram_quantiles() {
  paste <(echo "$1") <(echo "$2") | awk '
    { le[NR] = ($1 == "+Inf") ? 1e9 : $1; n[NR] = $4 - $2 }
    END {
      total = n[NR]
      split("50 99", qs, " ")
      for (i = 1; i <= 2; ++i) {
        want = total * qs[i] / 100; lo = 0; below = 0
        for (b = 1; b <= NR; ++b) {
          if (n[b] >= want) { v = lo + (le[b] - lo) * (want - below) / (n[b] - below); break }
          lo = le[b]; below = n[b]
        }
        printf "%s%d", (i > 1 ? " " : ""), v * 1e6
      }
      printf "\n"
    }'
}

# Median of the arguments (integers).
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }

echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo)"
echo "label requests/s p50 p99 server-cpu-per-request"

start "$work/fake" "$fake" --listen 127.0.0.1:0
fake_port=$port
fake_pid=$last_pid
start "$work/gateway" "$cli" --cache-url "${CACHE_URL:-sqlite://$work/cache.db}" serve --listen 127.0.0.1:0 \
  --log-level warn --upstream "openai=http://127.0.0.1:$fake_port/v1" ${SERVE_ARGS:-}
gateway_port=$port
gateway_pid=$last_pid
if [[ -n ${BASELINE:-} ]] && { has_phase misses || has_phase spread; }; then
  start "$work/baseline" "$BASELINE" --cache-url "${CACHE_URL:-sqlite://$work/cache-baseline.db}" \
    serve --listen 127.0.0.1:0 --log-level warn --upstream "openai=http://127.0.0.1:$fake_port/v1" \
    ${SERVE_ARGS:-}
  baseline_port=$port
  baseline_pid=$last_pid
fi

nginx_port=$(free_port)
nginx_plain_port=$(free_port)
mkdir -p "$work/nginx"
user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user root;"
sed -e "s|@DIR@|$work/nginx|g" -e "s|@FAKE_PORT@|$fake_port|g" -e "s|@NGINX_PORT@|$nginx_port|g" \
  -e "s|@NGINX_PLAIN_PORT@|$nginx_plain_port|g" \
  -e "s|@WORKERS@|$threads|g" -e "s|@USER_LINE@|$user_line|g" \
  "$here/nginx.conf.template" >"$work/nginx/nginx.conf"
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx.err" &
nginx_pid=$!
pids+=($nginx_pid)
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$nginx_port/" && break
  sleep 0.05
done

# pooled_p99 LABEL: the p99 (us) of every request of every round of LABEL's runs together.
pooled_p99() {
  cat "$work"/latency."$1".* | sort -n | awk '
    { v[NR] = $1; c[NR] = $2; total += $2 }
    END { want = total * 0.99; for (i = 1; i <= NR; ++i) { seen += c[i]; if (seen >= want) { print v[i]; exit } } }'
}

# warm_up PORT...: post_hit.lua's request twice to each server, printing the cache status of
# the answers (the second must be a hit).
warm_up() {
  local body port
  body=$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$here/post_hit.lua")
  for port in "$@"; do
    for _ in 1 2; do
      curl -s -D - -o /dev/null -H 'content-type: application/json' -H 'authorization: Bearer sk-bench' \
        --data-binary "$body" "http://127.0.0.1:$port/v1/chat/completions" |
        grep -iE '^(x-llm-cache|x-cache-status):' || true
    done
  done
}

if has_phase hits; then
# 1. Hits. One warm-up request each, then check both really serve from their cache.
warm_up "$gateway_port" "$nginx_port"
nginx_workers=$(pgrep -P "$nginx_pid" | tr '\n' ' ')
for round in $(seq "${ROUNDS:-1}"); do  # alternating, so both see the same machine load
  server_pids=$gateway_pid wrk_run gateway-hit 64 "$here/post_hit.lua" \
    "http://127.0.0.1:$gateway_port/v1/chat/completions" LATENCY_OUT="$work/latency.gateway-hit.$round"
  server_pids=$nginx_workers wrk_run nginx-hit 64 "$here/post_hit.lua" \
    "http://127.0.0.1:$nginx_port/v1/chat/completions" LATENCY_OUT="$work/latency.nginx-hit.$round"
done
# Pooled, as for the misses: with many short rounds a slow spell falls on both alike.
echo "hits: pooled over ${ROUNDS:-1} round(s), p99 (us): gateway-hit $(pooled_p99 gateway-hit), nginx-hit $(pooled_p99 nginx-hit)"
fi

if has_phase spread; then
# 4. Few connections: 2 keep-alive ones (the kernel's SO_REUSEPORT hash alone puts both on one
# thread half the time), then 16 that each carry one request (every request a new connection).
spread_targets="gateway:$gateway_pid:$gateway_port"
[[ -n ${baseline_pid:-} ]] && spread_targets+=" baseline:$baseline_pid:$baseline_port"
spread_targets+=" nginx:$(pgrep -P "$nginx_pid" | tr '\n' ','):$nginx_port"
warm_up $(for target in $spread_targets; do echo "${target##*:}"; done)
for round in $(seq "${ROUNDS:-1}"); do
  for target in $spread_targets; do
    # (not `pids`: that array lists what cleanup stops)
    IFS=: read -r name target_pids target_port <<<"$target"
    server_pids=${target_pids//,/ } wrk_run "$name-keepalive-2" 2 "$here/post_hit.lua" \
      "http://127.0.0.1:$target_port/v1/chat/completions"
    server_pids=${target_pids//,/ } wrk_run "$name-close-16" 16 "$here/post_hit.lua" \
      "http://127.0.0.1:$target_port/v1/chat/completions" CONNECTION_CLOSE=1
  done
done
fi

if has_phase misses; then
# 2. Pass-through overhead at 1,000 requests/s over 10 connections, from one wrk thread (enough
# for this rate; a second would only compete for the 2 cores): evenly spaced by default, in
# bursts with MISS_LOAD=bursts. nginx-miss is the reference: the same misses through nginx's
# caching proxy (it stores every answer too); nginx-plain-miss, a proxy that stores nothing.
nginx_workers=$(pgrep -P "$nginx_pid" | tr '\n' ' ')
miss_script=$here/post_paced.lua
[[ ${MISS_LOAD:-even} == bursts ]] && miss_script=$here/post_unique.lua
echo "misses: load $(basename "$miss_script")"
gateway_added=()
nostore_added=()
gateway_own=()
nginx_added=()
plain_added=()
baseline_added=()
# miss_run LABEL SERVER_PIDS PORT [VAR=VALUE...]: one run of the misses, with the variables in
# wrk's environment; sets last_p99_us.
miss_run() {
  wrk_threads=1 server_pids=$2 wrk_run "$1" 10 "$miss_script" \
    "http://127.0.0.1:$3/v1/chat/completions" PACE_MS=10 LATENCY_OUT="$work/latency.$1.$round" \
    "${@:4}"
}
# baseline_turn PARITY: the baseline build's run (BASELINE), in the rounds of that parity; with
# one call before the gateway's run and one after, it goes first in every other round.
baseline_turn() {
  [[ -n ${baseline_pid:-} && $((round % 2)) == "$1" ]] || return 0
  miss_run baseline-miss "$baseline_pid" "$baseline_port"
  baseline_added+=($((last_p99_us - direct_p99)))
}
for round in $(seq "${ROUNDS:-1}"); do
  miss_run direct-miss "$fake_pid" "$fake_port"
  direct_p99=$last_p99_us
  before=$(histogram_snapshot "$gateway_port")
  before_duration=$(histogram_snapshot "$gateway_port" llmc_gateway_request_duration_seconds)
  baseline_turn 0
  miss_run gateway-miss "$gateway_pid" "$gateway_port"
  gateway_added+=($((last_p99_us - direct_p99)))
  baseline_turn 1
  read -r own_p50 own_p99 <<<"$(histogram_quantiles "$before" "$(histogram_snapshot "$gateway_port")")"
  echo "gateway-miss own time (llmc_gateway_overhead_seconds): p50=${own_p50}us p99=${own_p99}us"
  # The time inside the gateway, upstream wait included (coarser buckets): when its p99 is close
  # to wrk's, the tail is spent in the gateway, not in reaching it.
  read -r inside_p50 inside_p99 <<<"$(histogram_quantiles "$before_duration" \
    "$(histogram_snapshot "$gateway_port" llmc_gateway_request_duration_seconds)")"
  echo "gateway-miss time inside the gateway (llmc_gateway_request_duration_seconds): p50=${inside_p50}us p99=${inside_p99}us"
  gateway_own+=("$own_p99")
  miss_run gateway-miss-no-store "$gateway_pid" "$gateway_port" LLMC_CACHE_HEADER=no-store
  nostore_added+=($((last_p99_us - direct_p99)))
  miss_run nginx-miss "$nginx_workers" "$nginx_port"
  nginx_added+=($((last_p99_us - direct_p99)))
  miss_run nginx-plain-miss "$nginx_workers" "$nginx_plain_port"
  plain_added+=($((last_p99_us - direct_p99)))
done
echo "misses: p99 added over direct, per round (us): gateway ${gateway_added[*]}; gateway not storing ${nostore_added[*]}; nginx ${nginx_added[*]}; nginx without cache ${plain_added[*]}"
echo "misses: median p99 added (us): gateway $(median "${gateway_added[@]}"), gateway not storing $(median "${nostore_added[@]}"), nginx $(median "${nginx_added[@]}"), nginx without cache $(median "${plain_added[@]}")"
echo "misses: the gateway's own time, p99 per round (us): ${gateway_own[*]}; median $(median "${gateway_own[@]}")"
if [[ -n ${baseline_pid:-} ]]; then
  echo "misses: baseline ($BASELINE) p99 added per round (us): ${baseline_added[*]}; median $(median "${baseline_added[@]}")"
fi
# Pooled: the runs of all rounds as one distribution per target. Many short rounds (ROUNDS=15,
# 2 s each, say) interleave the targets finely, so a slow spell of the host, which lasts seconds,
# falls on all of them alike instead of on whichever run it happened to meet.
direct_pooled=$(pooled_p99 direct-miss)
pooled_line="misses: pooled over ${ROUNDS:-1} round(s), p99 (us): direct $direct_pooled"
pooled_labels="gateway-miss gateway-miss-no-store nginx-miss nginx-plain-miss"
[[ -n ${baseline_pid:-} ]] && pooled_labels+=" baseline-miss"
for label in $pooled_labels; do
  p99=$(pooled_p99 "$label")
  pooled_line+=", $label $p99 (added $((p99 - direct_pooled)))"
done
echo "$pooled_line"
fi
has_phase memory || exit 0

# 3. Memory: a fresh gateway, 100,000 distinct entries (misses), 64 MB L1, then its RSS.
kill "$gateway_pid"
start "$work/gateway2" "$cli" --cache-url "sqlite://$work/cache2.db" serve --listen 127.0.0.1:0 \
  --log-level warn --l1-mb 64 --upstream "openai=http://127.0.0.1:$fake_port/v1"
per_thread=$(((100000 + threads - 1) / threads))
# wrk runs for its whole duration even after its threads stop: stop it once the entries exist.
env STOP_AFTER=$per_thread wrk -t"$threads" -c"$((threads * 8))" -d600s -s "$here/post_unique.lua" \
  "http://127.0.0.1:$port/v1/chat/completions" >"$work/memory.wrk" &
wrk_pid=$!
while :; do
  misses=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^llmc_gateway_cache_misses_total\{provider="openai"\}/ {print $2}')
  [[ ${misses:-0} -ge 100000 ]] && break
  sleep 1
done
kill "$wrk_pid" 2>/dev/null || true
wait "$wrk_pid" 2>/dev/null || true
entries=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^llmc_gateway_cache_misses_total\{provider="openai"\}/ {print $2}')
# Every miss must land in the SQLite file too (written behind the answers, by the idle writer or,
# on a machine kept busy, by the catch-up writer): wait up to 60 s for the last ones.
l2_entries() { "$cli" --cache-url "sqlite://$work/cache2.db" cache stats 2>/dev/null | awk '/^entries:/ {print $2}'; }
for _ in $(seq 60); do
  landed=$(l2_entries)
  [[ ${landed:-0} -ge $entries ]] && break
  sleep 1
done
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$last_pid/status")
# RssFile is mostly the SQLite file mapped by the backend (PRAGMA mmap_size): page cache the
# kernel can drop, shared with every process that reads the file. RssAnon is the gateway's own.
anon_kb=$(awk '/RssAnon/ {print $2}' "/proc/$last_pid/status")
file_kb=$(awk '/RssFile/ {print $2}' "/proc/$last_pid/status")
echo "memory entries=$entries landed_in_sqlite=$landed rss_mb=$((rss_kb / 1024)) anon_mb=$((anon_kb / 1024)) file_mb=$((file_kb / 1024))"
if [[ $landed -lt $entries ]]; then
  echo "memory: $((entries - landed)) of $entries entries never reached the SQLite file" >&2
  exit 1
fi
