#!/usr/bin/env bash
# The Python front's hit benchmark (bench_hit.py): starts the fake provider and a redis-server
# on loopback, runs it with the build's Python package, stops both.
# Usage: bench/python/run.sh [BUILD_DIR]   (N=500 ROUNDS=5 by default;
#        BENCH_SCRIPT=profile_hit.py runs the profile of a hit in its place)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
python=$root/build/python-venv/bin/python
fake_log=$(mktemp)
"$build/tools/fake-provider/llm-caching-fake-provider" --listen 127.0.0.1:0 >"$fake_log" &
fake_pid=$!
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
redis_pid=$!
trap 'kill $fake_pid $redis_pid 2>/dev/null; rm -f "$fake_log"' EXIT
for _ in $(seq 50); do grep -q listening "$fake_log" && break; sleep 0.1; done
address=$(sed -n 's/^listening on //p' "$fake_log")
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
OPENAI_BASE_URL="http://$address/v1" OPENAI_API_KEY=sk-bench BENCH_REDIS_PORT=$redis_port \
  PYTHONPATH="$build/python" "$python" "$root/bench/python/${BENCH_SCRIPT:-bench_hit.py}"
