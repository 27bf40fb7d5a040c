"""The client side of the fault runs (bench/faults/faults.py): an open-loop load at a fixed rate
of mixed hits and misses over keep-alive connections, each answer checked against the fake
provider's deterministic reply, and the hostile clients (streams dropped mid-way, slow clients
holding connections). Standard library only; loopback only."""

import asyncio
import collections
import json
import socket
import struct

MODEL = "gpt-4o-mini"
TIMEOUT = 30.0  # a request with no complete answer by then is counted as "timeout" (a hang)
# Connections of the load at most; a request waits for one when all are busy (open loop). Enough
# for the misses a failing upstream holds for the gateway's retry budget (10 s x 250/s), so that
# they do not queue the hits behind them in this client.
MAX_CONNECTIONS = 4096


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def chat_body(text: str, stream: bool = False) -> bytes:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def expected_content(text: str, body: bytes) -> str:
    """tools/fake-provider/README.md, Answers: the echo and 8 hex of FNV-1a of the body."""
    return f"echo: {text[:200]} [{fnv1a64(body):016x}"[:-8] + "]"


def request_bytes(path: str, body: bytes, headers: dict) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer sk-faults",
            "Content-Type: application/json", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def read_response(reader):
    """(status, headers, body, keep_alive) of one HTTP/1.1 answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(part[:-2] for part in parts)
    else:
        body = await reader.read()
    keep_alive = headers.get("connection", "").lower() != "close"
    return status, headers, body, keep_alive


def classify(status: int, data: bytes, text: str, body: bytes) -> str:
    if status != 200:
        return f"http-{status}"
    try:
        content = json.loads(data)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return "bad-body"
    return "ok" if content == expected_content(text, body) else "wrong"


def hard_close(writer):
    """Closes with a reset (SO_LINGER 0): a client that vanishes."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


class Load:
    """`rate` requests/s for `seconds`, alternately a hit (one of `hits` warmed texts) and a
    miss (a text never asked before). `behavior` (an x-fake-behavior value, set by a fault) goes
    on every request sent while it is set; only misses reach the upstream."""

    def __init__(self, port, rate, hits, run_id):
        self.port, self.rate, self.hits, self.run_id = port, rate, hits, run_id
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self.idle = []
        self.behavior = None
        self.results = []  # (start s, kind, outcome, latency s, text)
        self.max_open = 0
        self.open = 0

    async def ask(self, text, headers=None, start=None):
        """One request on a pooled connection: (outcome, latency from `start`, its scheduled
        time: waiting for a free connection counts)."""
        async with self.slots:
            return await self.ask_now(text, headers, start)

    async def ask_now(self, text, headers, start):
        loop = asyncio.get_running_loop()
        start = loop.time() if start is None else start
        body = chat_body(text)
        conn = self.idle.pop() if self.idle else None
        try:
            if conn is None:
                conn = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), TIMEOUT)
                self.open += 1
                self.max_open = max(self.max_open, self.open)
            conn[1].write(request_bytes("/v1/chat/completions", body, headers or {}))
            status, _, data, keep = await asyncio.wait_for(read_response(conn[0]), TIMEOUT)
            outcome = classify(status, data, text, body)
            if keep:
                self.idle.append(conn)
                conn = None
        except asyncio.TimeoutError:
            outcome = "timeout"
        except ConnectionRefusedError:
            outcome = "refused"
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            outcome = "reset"
        if conn is not None:
            conn[1].close()
            self.open -= 1
        return outcome, loop.time() - start

    async def one(self, t0, scheduled, kind, text):
        # Timed by when it is sent (the loop may run late), the fault's behaviour with it.
        sent = asyncio.get_running_loop().time() - t0
        headers = {"x-fake-behavior": self.behavior} if self.behavior else {}
        outcome, latency = await self.ask(text, headers, scheduled)
        self.results.append((sent, kind, outcome, latency, text))

    async def run(self, seconds):
        loop = asyncio.get_running_loop()
        t0 = self.t0 = loop.time()
        tasks = set()
        for i in range(int(seconds * self.rate)):
            t = i / self.rate
            delay = t0 + t - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if i % 2 == 0:
                kind, text = "hit", self.hits[(i // 2) % len(self.hits)]
            else:
                kind, text = "miss", f"faults {self.run_id} miss {i}"
            task = asyncio.create_task(self.one(t0, t0 + t, kind, text))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    def close(self):
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()
        self.open = 0


class StreamDroppers:
    """`rate` streamed misses a second, each dropped (a reset) once its first bytes arrive."""

    def __init__(self, port, rate, run_id):
        self.port, self.rate, self.run_id = port, rate, run_id
        self.counts = collections.Counter()
        self.stopping = False

    async def one(self, i):
        text = f"faults {self.run_id} dropped stream {i}"
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            self.counts["connect-failed"] += 1
            return
        try:
            writer.write(request_bytes("/v1/chat/completions", chat_body(text, stream=True),
                                       {"x-fake-behavior": "delay-50"}))
            first = await asyncio.wait_for(reader.read(64), TIMEOUT)
            self.counts["dropped-after-first-bytes" if first else "closed-by-gateway"] += 1
        except (OSError, asyncio.TimeoutError):
            self.counts["error"] += 1
        hard_close(writer)

    async def run(self):
        tasks, i = [], 0
        while not self.stopping:
            tasks.append(asyncio.create_task(self.one(i)))
            i += 1
            await asyncio.sleep(1 / self.rate)
        await asyncio.gather(*tasks)


class SlowClients:
    """`count` connections that each send a request head one header line a second and never
    finish it (slowloris); one the gateway closes is opened again."""

    def __init__(self, port, count):
        self.port, self.count = port, count
        self.counts = collections.Counter()
        self.stopping = False

    async def one(self):
        while not self.stopping:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.counts["connect-failed"] += 1
                await asyncio.sleep(1)
                continue
            self.counts["opened"] += 1
            try:
                writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                while not self.stopping:
                    try:
                        answer = await asyncio.wait_for(reader.read(1024), 1.0)
                    except asyncio.TimeoutError:
                        writer.write(b"x-slow: 1\r\n")
                        await writer.drain()
                        continue
                    # An answer (408) or the end of the stream: the gateway let go of it.
                    self.counts["answered-408" if b" 408 " in answer else "closed-by-gateway"] += 1
                    break
            except OSError:
                self.counts["closed-by-gateway"] += 1
            writer.close()

    async def run(self):
        await asyncio.gather(*(self.one() for _ in range(self.count)))
