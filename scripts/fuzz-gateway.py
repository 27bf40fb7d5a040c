#!/usr/bin/env python3
"""Throws mutated requests at a running `llm-caching serve` over raw sockets and checks that it
stays up (GET /healthz every 200 requests). Nothing a client sends may crash the gateway.

Usage: scripts/fuzz-gateway.py PORT [COUNT] [SEED]      (defaults: 1000 requests, seed 1)

Run the gateway from the debug-asan build (AddressSanitizer and UBSan) or a ThreadSanitizer
build, in front of the fake provider, with every upstream pointed at it, for instance:
  build/debug-asan/tools/fake-provider/llm-caching-fake-provider --listen 127.0.0.1:0
  build/debug-asan/llm-caching --cache-url sqlite:///tmp/fuzz.db serve --listen 127.0.0.1:0 \
    --max-wait-ms 2000 --initial-wait-ms 10 --upstream openai=http://127.0.0.1:FAKE/v1 \
    --upstream anthropic=http://127.0.0.1:FAKE --upstream gemini=http://127.0.0.1:FAKE
then read the gateway's stderr for sanitizer reports. The requests: the three APIs' routes and
others, the fake provider's behaviours (429, 500, garbage, truncated and dropped answers),
mutated JSON (wrong types, missing members, deep nesting, random bytes), every control header
with good and bad values, chunked and mismatched bodies, pipelining, slow senders and clients
that leave early. Prints the count of each status seen (empty: no answer within 1 s, as for a
body that never comes or a retry still waiting).
"""
import json, random, socket, sys
if len(sys.argv) < 2:
    sys.exit(__doc__)
host, port = "127.0.0.1", int(sys.argv[1])
n_iter = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
rnd = random.Random(seed)
behaviors = ["", "+429-1", "+429ms-1", "+500", "+529", "+invalid-json", "+truncated", "+drop",
             "+wrong-schema", "+delay-5", "+gemini-exhausted-1", "+bogus"]
def openai_body():
    b = {"model": "gpt-4o-mini" + rnd.choice(behaviors), "messages": [{"role": "user", "content": "hi %d" % rnd.randint(0, 50)}]}
    if rnd.random() < 0.4: b["stream"] = True
    if rnd.random() < 0.2: b["stream_options"] = {"include_usage": rnd.choice([True, False, 1, None])}
    if rnd.random() < 0.2: b["temperature"] = rnd.choice([0, 0.5, 1e308, -1, "x", None])
    if rnd.random() < 0.1: b["response_format"] = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}
    if rnd.random() < 0.1: b["tools"] = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]; b["tool_choice"] = "required"
    return "/v1/chat/completions", b, {"authorization": "Bearer sk-" + rnd.choice(["a", "b", "c"])}
def anthropic_body():
    b = {"model": "claude-3-5-haiku-latest" + rnd.choice(behaviors), "max_tokens": rnd.choice([16, 0, -1, "x"]), "messages": [{"role": "user", "content": rnd.choice(["hi", [{"type": "text", "text": "hi"}], 5, None])}]}
    if rnd.random() < 0.4: b["stream"] = True
    h = {"x-api-key": "k" + rnd.choice(["1", "2"])}
    if rnd.random() < 0.9: h["anthropic-version"] = "2023-06-01"
    return "/v1/messages", b, h
def gemini_body():
    model = "gemini-2.0-flash" + rnd.choice(behaviors).replace("+", rnd.choice(["+", "%2B"]))
    method = rnd.choice(["generateContent", "streamGenerateContent", "streamGenerateContent?alt=sse", "bogus"])
    b = {"contents": [{"role": "user", "parts": [{"text": "hi %d" % rnd.randint(0, 20)}]}]}
    if rnd.random() < 0.1: b["generationConfig"] = {"responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}}
    return "/v1beta/models/%s:%s" % (model, method), b, {"x-goog-api-key": "g" + rnd.choice(["1", "2"])}
def mutate_json(v):
    r = rnd.random()
    if r < 0.05: return rnd.choice([None, True, 1, -1, 1.5, 1e300, "", "\u0000", "\ud7ff", [], {}, "x" * rnd.randint(0, 3000)])
    if isinstance(v, dict):
        v = dict(v)
        if v and rnd.random() < 0.2: del v[rnd.choice(list(v))]
        for k in list(v):
            if rnd.random() < 0.3: v[k] = mutate_json(v[k])
        return v
    if isinstance(v, list): return [mutate_json(x) for x in v]
    return v
def build():
    path, body, headers = rnd.choice([openai_body, anthropic_body, gemini_body])()
    if rnd.random() < 0.5: body = mutate_json(body)
    raw = json.dumps(body).encode()
    r = rnd.random()
    if r < 0.05: raw = raw[:rnd.randint(0, len(raw))]
    elif r < 0.1: raw = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 200)))
    elif r < 0.13: raw = b"[" * rnd.randint(1, 5000)
    elif r < 0.15: raw = ('{"a":' * 300 + '1' + '}' * 300).encode()
    elif r < 0.2:
        b = bytearray(raw)
        for _ in range(rnd.randint(1, 5)):
            if b: b[rnd.randrange(len(b))] = rnd.getrandbits(8)
        raw = bytes(b)
    headers = dict(headers)
    if rnd.random() < 0.5: headers["content-type"] = rnd.choice(["application/json", "text/plain", ""])
    for name, values in [("x-llm-cache", ["no-cache", "no-store", "refresh", "only-if-cached", "bogus", "", "NO-STORE, refresh"]),
                         ("x-llm-cache-ttl", ["0", "-1", "10", "99999999999999999999", "abc", ""]),
                         ("x-llm-cache-namespace", ["ns", "", "a/b", "x" * 300, "\x7f"]),
                         ("x-llm-task", ["t", "", "x" * 1000]),
                         ("x-llm-max-wait-ms", ["0", "50", "-5", "x", "1e9"]),
                         ("cache-control", ["no-cache", "no-store", "max-age=0", ""])]:
        if rnd.random() < 0.15: headers[name] = rnd.choice(values)
    method = rnd.choice(["POST"] * 10 + ["GET", "PUT", "DELETE", "OPTIONS", "HEAD"])
    if rnd.random() < 0.05: path = rnd.choice(["/", "/v1/models", "/healthz", "/metrics", "/v1/chat/completions?x=1", "//v1/messages", "/v1beta/models/:generateContent", "/v1beta/models/a%ZZ:generateContent", "/" + "a" * 10000])
    head = "%s %s HTTP/1.1\r\nhost: x\r\n" % (method, path)
    if rnd.random() < 0.9: headers["connection"] = "close"
    for k, v in headers.items(): head += "%s: %s\r\n" % (k, v)
    te = rnd.random()
    if te < 0.05:
        head += "transfer-encoding: chunked\r\n\r\n"
        body = b"%x\r\n" % len(raw) + raw + b"\r\n0\r\n\r\n"
        if rnd.random() < 0.3: body = body[:rnd.randint(0, len(body))]
        return head.encode() + body
    cl = len(raw)
    if te < 0.08: cl = rnd.choice([0, cl + 10, max(0, cl - 3), 10**12])
    if te < 0.1 and rnd.random() < 0.5: head += "expect: 100-continue\r\n"
    head += "content-length: %d\r\n\r\n" % cl
    return head.encode() + raw
def send(data, pipeline=1):
    s = socket.create_connection((host, port), timeout=5)
    try:
        payload = data * pipeline
        if rnd.random() < 0.1:  # drip
            for i in range(0, len(payload), 7): s.sendall(payload[i:i + 7])
        else:
            s.sendall(payload)
        if rnd.random() < 0.1: s.close(); return b"closed-early"  # disconnect mid-way
        s.settimeout(1)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk: break
                out += chunk
                if len(out) > 2_000_000: break
                if pipeline == 1 and b"\r\n\r\n" in out and rnd.random() < 0.05: break  # leave mid-answer
        except socket.timeout:
            pass
        return out
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        return b"reset"
    finally:
        s.close()
def healthy():
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    s.settimeout(5); out = b""
    while True:
        c = s.recv(4096)
        if not c: break
        out += c
    s.close()
    return b"200" in out.split(b"\r\n", 1)[0]
statuses = {}
for i in range(n_iter):
    data = build()
    out = send(data, pipeline=rnd.choice([1, 1, 1, 2, 3]))
    st = out.split(b"\r\n", 1)[0][9:12] if out.startswith(b"HTTP/1.1") else out[:12]
    statuses[st] = statuses.get(st, 0) + 1
    if i % 200 == 0 and not healthy():
        print("UNHEALTHY at", i); sys.exit(1)
print("ok", n_iter, sorted(((k.decode(errors="replace"), v) for k, v in statuses.items()), key=lambda kv: -kv[1])[:15])
