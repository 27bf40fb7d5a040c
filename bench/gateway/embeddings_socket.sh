#!/usr/bin/env bash
# Issue 30: an embeddings request of 100 cached inputs (1536 floats each, a 2.2 MB answer) through
# `llm-caching serve` over loopback, with wrk (one keep-alive connection), against the same bytes
# served by nginx as a static file (the floor: the socket and the client for 2.2 MB) and, with
# BASELINE=<another llm-caching binary> (main's build), against that gateway too: ROUNDS rounds,
# each running every server for SECS seconds in turn (interleaved, as the machine is noisy).
# Prints per run: requests, p50/p90/p99/max (µs, from wrk's own histogram, which wrk corrects for
# coordinated omission: one stall of 200 ms adds samples up to it), the server's CPU per request
# (µs: its threads' on-CPU time, /proc/<pid>/task/*/schedstat, over the requests), and the
# machine's TCP timeouts and loss probes during the run (nstat; every process counts).
#   bench/gateway/embeddings_socket.sh   (ROUNDS=3 SECS=10 NGINX_PORT=18431 BASELINE=; needs wrk, nginx)
set -euo pipefail
B=${BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build/release}
D=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
cat > $D/report.lua <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("requests %d p50 %d p90 %d p99 %d max %d\n", summary.requests,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
LUA
cat > $D/post.lua <<LUA
local f = io.open("$D/body.json", "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["authorization"] = "Bearer sk-perf"; wrk.headers["content-type"] = "application/json"
$(cat $D/report.lua)
LUA
mkdir -p $D/www
python3 -c 'import json;print(json.dumps({"model":"text-embedding-3-small","dimensions":1536,"input":["passage %d"%i for i in range(100)]}))' > $D/body.json
$B/tools/fake-provider/llm-caching-fake-provider --listen 127.0.0.1:0 > $D/fake.out & PIDS+=($!)
sleep 0.5; FP=$(sed 's/.*://' $D/fake.out)

# start_gateway NAME BINARY: serves on its own SQLite file; sets PORT_<NAME> and PID_<NAME>.
start_gateway() {
  "$2" --cache-url sqlite://$D/$1.db serve --listen 127.0.0.1:0 --threads 2 --log-level warn \
    --upstream openai=http://127.0.0.1:$FP/v1 > $D/$1.out 2> $D/$1.err & PIDS+=($!)
  local pid=$! port=
  for _ in $(seq 50); do
    port=$(grep -o '127.0.0.1:[0-9]*' $D/$1.out $D/$1.err 2>/dev/null | head -1 | sed 's/.*://') || true
    [[ -n $port ]] && break; sleep 0.1
  done
  printf -v "PORT_$1" %s "$port"; printf -v "PID_$1" %s "$pid"
  # Fill the cache, then check the request is an all-cached hit.
  curl -s -o /dev/null -H 'authorization: Bearer sk-perf' -H 'content-type: application/json' --data-binary @$D/body.json http://127.0.0.1:$port/v1/embeddings
  echo "$1: $(curl -s -D - -o $D/$1.answer -H 'authorization: Bearer sk-perf' -H 'content-type: application/json' --data-binary @$D/body.json http://127.0.0.1:$port/v1/embeddings | grep -i 'x-llm-cache' | tr -d '\r' | tr '\n' ' ') $(wc -c < $D/$1.answer) bytes"
}

# cpu_ns PID: the on-CPU time of every thread of the process, in ns.
cpu_ns() { cat /proc/$1/task/*/schedstat | awk '{s += $1} END {printf "%.0f", s}'; }

# run NAME PID URL [wrk args]: one wrk run with the server's CPU per request.
run() {
  local name=$1 pid=$2 url=$3; shift 3
  local before after out timeouts
  before=$(cpu_ns $pid)
  nstat -n >/dev/null 2>&1 || true
  out=$(wrk -t1 -c1 -d${SECS:-10}s "$@" $url 2>&1 | grep '^requests')
  after=$(cpu_ns $pid)
  # The machine's TCP retransmission timeouts and loss probes during the run (all processes).
  timeouts=$(nstat 2>/dev/null | awk '/TcpExtTCPTimeouts|TcpExtTCPLossProbes/ {printf "%s %s ", $1, $2}') || true
  local requests=$(echo "$out" | awk '{print $2}')
  echo "$name $out cpu_us_per_request $(( (after - before) / 1000 / (requests > 0 ? requests : 1) )) $timeouts"
}

start_gateway gateway $B/llm-caching
cp $D/gateway.answer $D/www/answer.json
# nginx's workers run as nobody: mktemp's folder is 0700.
chmod 755 $D $D/www; chmod 644 $D/www/answer.json
if [[ -n ${BASELINE:-} ]]; then
  start_gateway baseline $BASELINE
  cmp -s $D/gateway.answer $D/baseline.answer && echo "baseline: the same answer bytes" || echo "baseline: DIFFERENT answer bytes"
fi
cat > $D/nginx.conf <<NG
worker_processes 1;
daemon off;
pid $D/nginx.pid;
error_log $D/nginx.err warn;
events { worker_connections 64; }
http { access_log off; client_body_temp_path $D/cb; proxy_temp_path $D/pt; fastcgi_temp_path $D/ft; uwsgi_temp_path $D/ut; scgi_temp_path $D/st;
  server { listen 127.0.0.1:${NGINX_PORT:-18431}; root $D/www; } }
NG
nginx -c $D/nginx.conf & PIDS+=($!)
sleep 0.5
NGINX_WORKER=$(pgrep -P ${PIDS[-1]} | head -1)
echo "nginx: $(curl -s -o $D/nginx.answer -w '%{http_code}' http://127.0.0.1:${NGINX_PORT:-18431}/answer.json) $(wc -c < $D/nginx.answer) bytes"
cmp -s $D/gateway.answer $D/nginx.answer || { echo "nginx does not serve the answer's bytes"; exit 1; }

for round in $(seq ${ROUNDS:-3}); do
  echo "round $round (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  run gateway $PID_gateway http://127.0.0.1:$PORT_gateway/v1/embeddings -s $D/post.lua
  [[ -n ${BASELINE:-} ]] && run baseline $PID_baseline http://127.0.0.1:$PORT_baseline/v1/embeddings -s $D/post.lua
  run nginx $NGINX_WORKER http://127.0.0.1:${NGINX_PORT:-18431}/answer.json -s $D/report.lua
done
