#!/bin/sh
# Runs redis-benchmark and bench_redis against one fresh redis-server (loopback, no persistence)
# and prints the two ratios of issue 5:
#   hit latency (cold L1) / raw GET round trip (redis-benchmark -c 1 -d 2048 -t get)   target <= 1.2
#   64-coroutine hits/s / redis-benchmark -c 64 GET requests/s                          target >= 0.8
# On a shared machine a single pair of measurements says little (other processes come and go
# within seconds), so baseline and ours alternate in short rounds and each ratio is taken within
# its round; the verdict uses the median round.
# Usage: bench/run_redis_bench.sh [build-dir] [rounds]   (defaults: build/release, 5)
set -eu
build=${1:-build/release}
rounds=${2:-5}
port=${REDIS_BENCH_PORT:-$((20000 + $$ % 20000))}
dir=$(mktemp -d)
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  --daemonize yes --logfile "$dir/redis.log"
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done

# redis-benchmark -t get reads the key "key:__rand_int__"; give it a 2048-byte value first.
redis-cli -p "$port" set key:__rand_int__ "$(head -c 2048 /dev/zero | tr '\0' x)" >/dev/null
raw_get() {  # clients requests -> requests per second
  redis-benchmark -p "$port" -c "$1" -d 2048 -t get -n "$2" --csv | awk -F'"' '/^"GET"/ {print $4}'
}
ours() {  # filter output-file
  LLMC_BENCH_REDIS_URL="redis://127.0.0.1:$port/0" "$build/bench/bench_redis" \
    --benchmark_filter="$1" --benchmark_min_time=1 --benchmark_format=json \
    --benchmark_out="$2" --benchmark_out_format=json >/dev/null
}

for round in $(seq "$rounds"); do
  echo "$(raw_get 1 30000)" >"$dir/raw1.$round"
  ours 'BM_RedisHitColdL1|BM_RedisClientGet|BM_RedisGetFreshIoContext' "$dir/single.$round.json"
  echo "$(raw_get 64 200000)" >"$dir/raw64.$round"
  ours 'BM_RedisHitConcurrent64' "$dir/concurrent.$round.json"
done

python3 - "$dir" "$rounds" <<'PY'
import json, statistics, sys
dir, rounds = sys.argv[1], int(sys.argv[2])
def us(b):
    return b["real_time"] * {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b["time_unit"]]
def load(path):
    return {b["name"].split("/")[0]: b for b in json.load(open(path))["benchmarks"]}
rows = []
for r in range(1, rounds + 1):
    raw1 = float(open(f"{dir}/raw1.{r}").read())
    raw64 = float(open(f"{dir}/raw64.{r}").read())
    single, concurrent = load(f"{dir}/single.{r}.json"), load(f"{dir}/concurrent.{r}.json")
    rtt = 1e6 / raw1
    hit = us(single["BM_RedisHitColdL1"])
    hits = concurrent["BM_RedisHitConcurrent64"]["items_per_second"]
    rows.append(dict(rtt=rtt, get=us(single["BM_RedisClientGet"]),
                     fresh=us(single["BM_RedisGetFreshIoContext"]), hit=hit, raw64=raw64,
                     hits=hits, r1=hit / rtt, r64=hits / raw64))
print("round | raw GET us (-c 1) | our GET us | our GET, new io_context us | our hit us | ratio | "
      "raw -c 64 req/s | our 64 hits/s | ratio")
for i, x in enumerate(rows, 1):
    print(f"{i} | {x['rtt']:.1f} | {x['get']:.1f} | {x['fresh']:.1f} | {x['hit']:.1f} | "
          f"{x['r1']:.2f} | {x['raw64']:,.0f} | {x['hits']:,.0f} | {x['r64']:.2f}")
m = {k: statistics.median(x[k] for x in rows) for k in rows[0]}
print(f"median | {m['rtt']:.1f} | {m['get']:.1f} | {m['fresh']:.1f} | {m['hit']:.1f} | "
      f"{m['r1']:.2f} | {m['raw64']:,.0f} | {m['hits']:,.0f} | {m['r64']:.2f}")
print(f"hit latency / raw GET round trip: median {m['r1']:.2f} (target <= 1.20) "
      f"{'MET' if m['r1'] <= 1.2 else 'NOT MET'}; rounds met {sum(x['r1'] <= 1.2 for x in rows)}/{rounds}")
print(f"64-coroutine hits/s / redis-benchmark -c 64: median {m['r64']:.2f} (target >= 0.80) "
      f"{'MET' if m['r64'] >= 0.8 else 'NOT MET'}; rounds met {sum(x['r64'] >= 0.8 for x in rows)}/{rounds}")
PY
