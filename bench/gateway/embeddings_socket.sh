#!/usr/bin/env bash
# Issue 30: an embeddings request of 100 cached inputs (1536 floats each, a 2.2 MB answer) through
# `llm-caching serve` over loopback, with hyperfine (a curl process per request) and wrk (one
# keep-alive connection), against the same bytes served by nginx as a static file in the same
# session (the floor: the socket and the client for 2.2 MB).
#   bench/gateway/embeddings_socket.sh   (RUNS=50 SECS=10 NGINX_PORT=18431; needs hyperfine, wrk, nginx)
set -euo pipefail
B=${BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build/release}
D=$(mktemp -d)
cat > $D/post.lua <<LUA
local f = io.open("$D/body.json", "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["authorization"] = "Bearer sk-perf"; wrk.headers["content-type"] = "application/json"
LUA
rm -f $D/cache.db*; mkdir -p $D/www
$B/tools/fake-provider/llm-caching-fake-provider --listen 127.0.0.1:0 > $D/fake.out & FAKE=$!
sleep 0.5; FP=$(sed 's/.*://' $D/fake.out)
$B/llm-caching --cache-url sqlite://$D/cache.db serve --listen 127.0.0.1:0 --threads 2 --log-level warn --upstream openai=http://127.0.0.1:$FP/v1 > $D/gw.out 2>$D/gw.err & GW=$!
sleep 1; GP=$(grep -o '127.0.0.1:[0-9]*' $D/gw.out $D/gw.err | head -1 | sed 's/.*://')
python3 -c 'import json;print(json.dumps({"model":"text-embedding-3-small","dimensions":1536,"input":["passage %d"%i for i in range(100)]}))' > $D/body.json
curl -s -o /dev/null -w '%{http_code} %{size_download}\n' -H 'authorization: Bearer sk-perf' -H 'content-type: application/json' --data-binary @$D/body.json http://127.0.0.1:$GP/v1/embeddings
curl -s -D - -o /dev/null -H 'authorization: Bearer sk-perf' -H 'content-type: application/json' --data-binary @$D/body.json http://127.0.0.1:$GP/v1/embeddings | grep -i x-llm-cache
hyperfine -N --warmup 5 --runs ${RUNS:-50} --export-json $D/hf.json "curl -s -o /dev/null -H 'authorization: Bearer sk-perf' -H 'content-type: application/json' --data-binary @$D/body.json http://127.0.0.1:$GP/v1/embeddings" 2>&1 | tail -6
wrk -t1 -c1 -d${SECS:-10}s --latency -s $D/post.lua http://127.0.0.1:$GP/v1/embeddings 2>&1 | grep -E "Latency|50%|90%|99%|Requests/sec" 
# Baseline, same session: nginx serving the same answer bytes as a static file (the socket and
# curl's own work for 2.2 MB, with no cache behind it).
curl -s -o $D/www/answer.json -H 'authorization: Bearer sk-perf' -H 'content-type: application/json' --data-binary @$D/body.json http://127.0.0.1:$GP/v1/embeddings
kill $GW $FAKE
cat > $D/nginx.conf <<NG
worker_processes 1;
daemon off;
pid $D/nginx.pid;
error_log $D/nginx.err warn;
events { worker_connections 64; }
http { access_log off; client_body_temp_path $D/cb; proxy_temp_path $D/pt; fastcgi_temp_path $D/ft; uwsgi_temp_path $D/ut; scgi_temp_path $D/st;
  server { listen 127.0.0.1:${NGINX_PORT:-18431}; root $D/www; } }
NG
nginx -c $D/nginx.conf & NGX=$!
sleep 0.5
hyperfine -N --warmup 5 --runs ${RUNS:-50} --export-json $D/hf_nginx.json "curl -s -o /dev/null http://127.0.0.1:${NGINX_PORT:-18431}/answer.json" 2>&1 | tail -6
wrk -t1 -c1 -d${SECS:-10}s --latency http://127.0.0.1:${NGINX_PORT:-18431}/answer.json 2>&1 | grep -E "Latency|50%|90%|99%|Requests/sec"
kill $NGX
