#!/usr/bin/env bash
# Redis Cluster against one Redis (issue 23), on loopback, no persistence:
#  1. hit latency with a cold L1 (bench_redis BM_RedisHitColdL1) and 64 coroutines' hits/s
#     (BM_RedisHitConcurrent64) on one redis-server, on a 6-node cluster (3 masters,
#     3 replicas) and on that cluster with read_from_replicas=true (hits read on the replicas),
#     alternating in short rounds; the ratios cluster / one Redis are taken within each round
#     (target: hit latency <= 1.2x).
#  2. aggregate hit throughput of 1, 2 and 4 `llm-caching serve` processes on that cluster
#     (--l1-mb 0, so that every hit reads the cluster; one wrk per gateway, all at once), reading
#     the masters, then the replicas.
# Usage: bench/run_cluster_bench.sh [build-dir] [rounds] [seconds]   (defaults: build/release, 3, 5)
set -euo pipefail
build=${1:-build/release}
rounds=${2:-3}
seconds=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pids=()
redis_ports=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for port in "${redis_ports[@]}"; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy

base=$((20000 + $$ % 20000))
redis() {  # port [extra args...]
  local port=$1
  shift
  mkdir -p "$work/$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/$port" \
    --daemonize yes --logfile "$work/$port/redis.log" "$@"
  redis_ports+=("$port")
  until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
}
redis "$base"
nodes=()
for i in 1 2 3 4 5 6; do
  redis $((base + i)) --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1000
  nodes+=("127.0.0.1:$((base + i))")
done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
until [[ $(redis-cli -p $((base + 1)) cluster info | tr -d '\r' | grep -c 'cluster_state:ok') == 1 ]]; do sleep 0.2; done
sleep 2  # every node agrees on the slots (redis-cli --cluster check would say so too)
single="redis://127.0.0.1:$base/0"
cluster="redis+cluster://127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
replicas="$cluster/?read_from_replicas=true"

ours() {  # url output-file
  LLMC_BENCH_REDIS_URL="$1" "$build/bench/bench_redis" \
    --benchmark_filter='BM_RedisHitColdL1|BM_RedisHitConcurrent64' --benchmark_min_time=1 \
    --benchmark_format=json --benchmark_out="$2" --benchmark_out_format=json >/dev/null
}
for round in $(seq "$rounds"); do
  ours "$single" "$work/single.$round.json"
  ours "$cluster" "$work/cluster.$round.json"
  ours "$replicas" "$work/replicas.$round.json"
done
# Where the cluster's GETs ran (the replicas' count comes from the read_from_replicas runs).
for i in 1 2 3 4 5 6; do
  role=$(redis-cli -p $((base + i)) role | head -1)
  gets=$(redis-cli -p $((base + i)) info commandstats | tr -d '\r' | sed -n 's/^cmdstat_get:calls=\([0-9]*\).*/\1/p')
  echo "node $((base + i)) ($role): ${gets:-0} GETs"
done
python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def load(path):
    return {b["name"].split("/")[0]: b for b in json.load(open(path))["benchmarks"]}
def us(b):
    return b["real_time"] * {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b["time_unit"]]
rows = []
for r in range(1, rounds + 1):
    s, c, p = (load(f"{work}/{n}.{r}.json") for n in ("single", "cluster", "replicas"))
    x = dict(s=us(s["BM_RedisHitColdL1"]), c=us(c["BM_RedisHitColdL1"]),
             p=us(p["BM_RedisHitColdL1"]),
             s64=s["BM_RedisHitConcurrent64"]["items_per_second"],
             c64=c["BM_RedisHitConcurrent64"]["items_per_second"],
             p64=p["BM_RedisHitConcurrent64"]["items_per_second"])
    x.update(r=x["c"] / x["s"], rp=x["p"] / x["s"], r64=x["c64"] / x["s64"],
             rp64=x["p64"] / x["s64"])
    rows.append(x)
print("round | hit us: one Redis | cluster | ratio | replicas | ratio"
      " | 64 hits/s: one Redis | cluster | ratio | replicas | ratio")
def line(label, x):
    print(f"{label} | {x['s']:.1f} | {x['c']:.1f} | {x['r']:.2f} | {x['p']:.1f} | {x['rp']:.2f}"
          f" | {x['s64']:,.0f} | {x['c64']:,.0f} | {x['r64']:.2f} | {x['p64']:,.0f} | {x['rp64']:.2f}")
for i, x in enumerate(rows, 1):
    line(str(i), x)
m = {k: statistics.median(x[k] for x in rows) for k in rows[0]}
line("median", m)
for name, key in (("cluster hit", "r"), ("cluster hit from a replica", "rp")):
    print(f"{name} / one-Redis hit: median {m[key]:.2f} (target <= 1.20)"
          f" {'MET' if m[key] <= 1.2 else 'NOT MET'}")
PY

# 2. Gateways on the cluster.
start() {  # log cmd... ; sets $port
  "${@:2}" >"$1.out" 2>"$1.err" &
  pids+=($!)
  for _ in $(seq 100); do
    if grep -q "listening on" "$1.out" 2>/dev/null; then
      port=$(grep -o '[0-9]*$' "$1.out" | head -1)
      return
    fi
    sleep 0.05
  done
  echo "bench: $* did not start" >&2
  cat "$1.err" >&2
  exit 1
}
start "$work/fake" "$build/tools/fake-provider/llm-caching-fake-provider" --listen 127.0.0.1:0
fake_port=$port
for url in "$cluster" "$replicas"; do
  gateway_ports=()
  gateway_pids=()
  run=$((${run:-0} + 1))  # fresh log files: start() reads the port from them
  for i in 1 2 3 4; do
    start "$work/gateway$run.$i" "$build/llm-caching" --cache-url "$url" serve --listen 127.0.0.1:0 \
      --l1-mb 0 --log-level warn --upstream "openai=http://127.0.0.1:$fake_port/v1"
    gateway_ports+=("$port")
    gateway_pids+=("${pids[-1]}")
  done
  for port in "${gateway_ports[@]}"; do  # the first request is the miss; the rest are hits
    wrk -t1 -c1 -d1s -s "$here/gateway/post_hit.lua" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
  done
  echo "gateways on $url | aggregate hits/s (64 connections in all, one wrk per gateway, ${seconds} s)"
  for n in 1 2 4; do
    outs=()
    rm -f "$work"/wrk.$n.*
    for i in $(seq 0 $((n - 1))); do
      wrk -t1 -c$((64 / n)) -d"${seconds}s" -s "$here/gateway/post_hit.lua" \
        "http://127.0.0.1:${gateway_ports[$i]}/v1/chat/completions" >"$work/wrk.$n.$i" &
      outs+=($!)
    done
    wait "${outs[@]}"
    total=$(cat "$work"/wrk.$n.* | awk '/^Requests\/sec/ {s += $2} END {printf "%.0f", s}')
    echo "$n | $total"
  done
  kill "${gateway_pids[@]}" 2>/dev/null || true
  wait "${gateway_pids[@]}" 2>/dev/null || true
done
