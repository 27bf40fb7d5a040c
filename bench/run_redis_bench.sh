#!/bin/sh
# Runs redis-benchmark and bench_redis against one fresh redis-server (loopback, no persistence)
# and prints the two ratios of issue 5:
#   hit latency (cold L1) / raw GET round trip (redis-benchmark -c 1 -d 2048 -t get)   target <= 1.2
#   64-coroutine hits/s / redis-benchmark -c 64 GET requests/s                          target >= 0.8
# Usage: bench/run_redis_bench.sh [build-dir]   (default build/release)
set -eu
build=${1:-build/release}
port=${REDIS_BENCH_PORT:-$((20000 + $$ % 20000))}
dir=$(mktemp -d)
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  --daemonize yes --logfile "$dir/redis.log"
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done

# redis-benchmark -t get reads the key "key:__rand_int__"; give it a 2048-byte value first.
redis-cli -p "$port" set key:__rand_int__ "$(head -c 2048 /dev/zero | tr '\0' x)" >/dev/null
raw1=$(redis-benchmark -p "$port" -c 1 -d 2048 -t get -n 50000 --csv | awk -F'"' '/^"GET"/ {print $4}')
raw64=$(redis-benchmark -p "$port" -c 64 -d 2048 -t get -n 300000 --csv | awk -F'"' '/^"GET"/ {print $4}')

LLMC_BENCH_REDIS_URL="redis://127.0.0.1:$port/0" "$build/bench/bench_redis" \
  --benchmark_min_time=2 --benchmark_format=json --benchmark_out="$dir/bench.json" \
  --benchmark_out_format=json >/dev/null

python3 - "$dir/bench.json" "$raw1" "$raw64" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
raw1, raw64 = float(sys.argv[2]), float(sys.argv[3])
by = {b["name"].split("/")[0]: b for b in data["benchmarks"]}
def us(b):
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b["time_unit"]]
    return b["real_time"] * scale
raw_rtt_us = 1e6 / raw1
hit_us = us(by["BM_RedisHitColdL1"])
get_us = us(by["BM_RedisClientGet"])
hits_per_s = by["BM_RedisHitConcurrent64"]["items_per_second"]
print(f"redis-benchmark -c 1 -d 2048 -t get : {raw1:,.0f} req/s = {raw_rtt_us:.1f} us per GET")
print(f"redis-benchmark -c 64 -d 2048 -t get: {raw64:,.0f} req/s")
print(f"our client GET (hop + round trip)   : {get_us:.1f} us")
print(f"our hit, cold L1 (GET + decode)     : {hit_us:.1f} us -> ratio {hit_us / raw_rtt_us:.2f} (target <= 1.20) {'MET' if hit_us / raw_rtt_us <= 1.2 else 'NOT MET'}")
print(f"our 64 coroutines                   : {hits_per_s:,.0f} hits/s -> ratio {hits_per_s / raw64:.2f} (target >= 0.80) {'MET' if hits_per_s / raw64 >= 0.8 else 'NOT MET'}")
PY
