#!/usr/bin/env python3
"""Faults under load (issue 25 part 4; results in docs/RELIABILITY.md).

For each fault: a fresh gateway (release build) on a fresh fake provider, its hit texts warmed,
then 60 s of load at 500 requests/s (half hits, half misses, bench/faults/load.py) with the fault
from second 20 to second 40. Printed per fault: requests served, errors by class, recovery time
(from the fault's end to the start of the last failed request), the gateway's RSS and open file
descriptors before the load, after it (once the clients have closed) and once its idle upstream
connections have closed (--upstream-idle-timeout-ms, 30 s; waited for at most --idle-wait),
whether it is still
running, and a poison check: every text that failed or was asked during the fault is asked again
afterwards and must get the fake provider's deterministic answer. Loopback only; every loop is
bounded; every process started here is stopped here.

  bench/faults/faults.py [--build build/release] [--seconds 60] [--rate 500] [--idle-wait 40] [FAULT...]

FAULTs (default all): none redis-kill sentinel-failover upstream-reset upstream-drop upstream-429 upstream-500
upstream-garbage upstream-truncated upstream-slow stream-drop slow-clients disk-full.
disk-full needs root (it mounts a 64 MiB tmpfs for the SQLite file and fills it)."""

import argparse
import asyncio
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402

UPSTREAM_FAULTS = {"upstream-reset": "reset", "upstream-drop": "drop", "upstream-429": "429-1000000", "upstream-500": "500",
                   "upstream-garbage": "invalid-json", "upstream-truncated": "truncated",
                   "upstream-slow": "delay-3000"}
ALL = (["none", "redis-kill", "sentinel-failover"] + list(UPSTREAM_FAULTS)
       + ["stream-drop", "slow-clients", "disk-full"])


class Processes:
    """Servers started for one fault; each is stopped by its own pid."""

    def __init__(self, work):
        self.work, self.procs = work, []

    def start(self, name, argv, wait_line=None):
        out = open(os.path.join(self.work, name + ".out"), "w+")
        err = open(os.path.join(self.work, name + ".err"), "w")
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=self.work)
        self.procs.append(proc)
        for _ in range(200):
            if wait_line is None:
                break
            out.seek(0)
            text = out.read()
            if wait_line in text:
                return proc, int(text.strip().rsplit(":", 1)[1])
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        if wait_line is not None:
            raise RuntimeError(f"{name} did not start: {open(err.name).read()[-2000:]}")
        return proc, None

    def stop_all(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_argv(port, *extra):
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", *extra]


def wait_redis(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if r.stdout.strip() == "PONG":
            return
        time.sleep(0.1)
    raise RuntimeError(f"redis on {port} did not answer")


def tcp_sockets():
    """inode -> (local port, remote port) of every TCP socket on the machine."""
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
                sockets[fields[9]] = (int(local, 16), int(remote, 16))
    return sockets


def gauges(pid, port, upstream_port=None):
    """(RSS in MiB, open file descriptors, of which connections from clients to `port`, and of
    which connections to `upstream_port`)."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    fds, clients, upstream, sockets = 0, 0, 0, tcp_sockets()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        fds += 1
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            ends = sockets.get(target[8:-1])
            clients += bool(ends and ends[0] == port and ends[1] != 0)
            upstream += bool(ends and ends[1] == upstream_port)
    return round(rss / 1024, 1), fds, clients, upstream


class Fault:
    """What happens at second 20 (start) and second 40 (stop); `setup` names the cache URL."""

    def __init__(self, name, ctx):
        self.name, self.ctx, self.side = name, ctx, None

    def cache_url(self):
        if self.name == "redis-kill":
            self.ctx.redis_port = free_port()
            self.ctx.procs.start("redis", redis_argv(self.ctx.redis_port))
            wait_redis(self.ctx.redis_port)
            return f"redis://127.0.0.1:{self.ctx.redis_port}/0"
        if self.name == "sentinel-failover":
            return self.ctx.start_sentinel()
        if self.name == "disk-full":
            disk = os.path.join(self.ctx.work, "disk")
            os.makedirs(disk)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", disk], check=True)
            self.ctx.mounted = disk
            return f"sqlite://{disk}/cache.db"
        return f"sqlite://{self.ctx.work}/cache.db"

    async def start(self, load_):
        ctx = self.ctx
        if self.name == "redis-kill":
            ctx.procs.procs[0].kill()
            ctx.procs.procs[0].wait()
        elif self.name == "sentinel-failover":
            out = subprocess.run(["redis-cli", "-p", str(ctx.sentinel_port), "SENTINEL",
                                  "failover", "m"], capture_output=True, text=True).stdout
            ctx.notes.append(f"SENTINEL failover: {out.strip()}")
        elif self.name in UPSTREAM_FAULTS:
            load_.behavior = UPSTREAM_FAULTS[self.name]
        elif self.name == "stream-drop":
            self.side = load.StreamDroppers(ctx.port, 50, ctx.run_id)
        elif self.name == "slow-clients":
            self.side = load.SlowClients(ctx.port, 500)
        elif self.name == "disk-full":
            ctx.fill_disk()
        if self.side:
            self.side_task = asyncio.create_task(self.side.run())

    async def stop(self, load_):
        ctx = self.ctx
        if self.name == "redis-kill":
            proc, _ = ctx.procs.start("redis-again", redis_argv(ctx.redis_port))
            ctx.procs.procs.insert(0, ctx.procs.procs.pop())
            await asyncio.to_thread(wait_redis, ctx.redis_port)
        elif self.name in UPSTREAM_FAULTS:
            load_.behavior = None
        elif self.name == "disk-full":
            os.remove(os.path.join(ctx.mounted, "filler"))
        if self.side:
            self.side.stopping = True
            await self.side_task
            ctx.notes.append(f"{self.name}: {dict(self.side.counts)}")


class Context:
    def __init__(self, args, work, name):
        self.args, self.work, self.name = args, work, name
        self.procs = Processes(work)
        self.run_id = f"{name}-{int(time.time())}"
        self.notes, self.mounted = [], None

    def start_sentinel(self):
        master, replica, self.sentinel_port = free_port(), free_port(), free_port()
        self.procs.start("master", redis_argv(master))
        self.procs.start("replica", redis_argv(replica, "--replicaof", "127.0.0.1", str(master)))
        wait_redis(master)
        wait_redis(replica)
        conf = os.path.join(self.work, "sentinel.conf")
        with open(conf, "w") as f:
            f.write(f"port {self.sentinel_port}\nbind 127.0.0.1\n"
                    f"sentinel monitor m 127.0.0.1 {master} 1\n"
                    "sentinel down-after-milliseconds m 2000\nsentinel failover-timeout m 10000\n")
        self.procs.start("sentinel", ["redis-sentinel", conf])
        wait_redis(self.sentinel_port)
        for _ in range(100):  # the sentinel has seen the replica
            r = subprocess.run(["redis-cli", "-p", str(self.sentinel_port), "SENTINEL", "replicas",
                                "m"], capture_output=True, text=True).stdout
            if str(replica) in r:
                break
            time.sleep(0.1)
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/m"

    def fill_disk(self):
        fd = os.open(os.path.join(self.mounted, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 65536) > 0:
                pass
        except OSError:  # ENOSPC: the disk is full
            pass
        finally:
            os.close(fd)


async def drive(ctx, fault, gateway_pid):
    hits = [f"faults hit {k}" for k in range(100)]
    load_ = load.Load(ctx.port, ctx.args.rate, hits, ctx.run_id)
    for chunk in range(0, len(hits), 20):  # warm: each hit text asked once (a miss)
        await asyncio.gather(*(load_.ask(text) for text in hits[chunk:chunk + 20]))
    load_.close()
    await asyncio.sleep(1)
    before = gauges(gateway_pid, ctx.port)
    seconds = ctx.args.seconds
    fault_start, fault_end = seconds / 3, 2 * seconds / 3

    window = []  # when the fault really started and ended, from the load's start

    async def timeline():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(fault_start)
        window.append(loop.time() - load_.t0)
        await fault.start(load_)
        await asyncio.sleep(fault_end - fault_start)
        await fault.stop(load_)
        window.append(loop.time() - load_.t0)

    await asyncio.gather(load_.run(seconds), timeline())
    load_.close()
    # The gateway lets go of the closed client connections (a hung one would stay; 20 s at most).
    settle_start = time.time()
    while True:
        await asyncio.sleep(0.5)
        after = gauges(gateway_pid, ctx.port)
        if after[2] == 0 or time.time() - settle_start > 20:
            break
    ctx.notes.append(f"client connections closed within {time.time() - settle_start:.1f} s")
    # The idle upstream connections close after the gateway's --upstream-idle-timeout-ms (30 s):
    # wait for them (at most --idle-wait seconds), then measure again.
    idle_start = time.time()
    while True:
        idle = gauges(gateway_pid, ctx.port, ctx.fake_port)
        if idle[3] == 0 or time.time() - idle_start > ctx.args.idle_wait:
            break
        await asyncio.sleep(0.5)
    ctx.notes.append(f"upstream connections closed within {time.time() - idle_start:.1f} s"
                     f" ({idle[3]} left)")
    # Poison check: what failed, and every miss asked during the fault, asked again now.
    again = sorted({text for t, _, outcome, _, text in load_.results
                    if outcome != "ok" or window[0] <= t < window[1]})
    recheck = collections.Counter()
    for chunk in range(0, len(again), 50):
        outcomes = await asyncio.gather(*(load_.ask(text) for text in again[chunk:chunk + 50]))
        recheck.update(outcome for outcome, _ in outcomes)
    load_.close()
    return load_, before, after, idle, recheck, window


def summarise(name, load_, before, after, idle, recheck, window, alive, notes):
    results = load_.results
    by_class = collections.Counter(outcome for _, _, outcome, _, _ in results)
    phase = lambda t: "before" if t < window[0] else ("during" if t < window[1] else "after")
    errors = collections.Counter((phase(t), kind, outcome)
                                 for t, kind, outcome, _, _ in results if outcome != "ok")
    late = [t for t, _, outcome, _, _ in results if outcome != "ok" and t >= window[1]]
    latencies = sorted(latency for _, _, _, latency, _ in results)
    failed = sorted(latency for _, _, outcome, latency, _ in results if outcome != "ok")
    span = {p: [r for r in results if phase(r[0]) == p] for p in ("before", "during", "after")}
    p99 = {p: round(1000 * sorted(r[3] for r in rs)[int(len(rs) * 0.99)], 1) if rs else None
           for p, rs in span.items()}
    return {
        "fault": name, "requests": len(results), "served_ok": by_class["ok"],
        "by_class": dict(by_class),
        "errors": {f"{p}/{k}/{o}": n for (p, k, o), n in sorted(errors.items())},
        "recovery_s": round(max(late) - window[1], 2) if late else 0.0,
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1),
        "p99_ms_by_phase": p99,
        "failed_p50_ms": round(1000 * failed[len(failed) // 2], 1) if failed else None,
        "client_connections_max": load_.max_open,
        "rss_mib": [before[0], after[0]], "fds": [before[1], after[1]],
        "client_sockets_after": after[2],
        "rss_mib_idle": idle[0], "fds_idle": idle[1], "upstream_sockets_idle": idle[3],
        "gateway_alive": alive, "recheck": dict(recheck), "notes": notes,
    }


def run_fault(args, name):
    work = tempfile.mkdtemp(prefix=f"llmc-faults-{name}-")
    ctx = Context(args, work, name)
    fault = Fault(name, ctx)
    try:
        cache_url = fault.cache_url()
        fake = os.path.join(args.build, "tools/fake-provider/llm-caching-fake-provider")
        _, fake_port = ctx.procs.start("fake", [fake, "--listen", "127.0.0.1:0"], "listening on")
        ctx.fake_port = fake_port
        cli = os.path.join(args.build, "llm-caching")
        gateway, ctx.port = ctx.procs.start(
            "gateway", [cli, "--cache-url", cache_url, "serve", "--listen", "127.0.0.1:0",
                        "--upstream", f"openai=http://127.0.0.1:{fake_port}/v1",
                        "--log-level", "warn"], "listening on")
        load_, before, after, idle, recheck, window = asyncio.run(drive(ctx, fault, gateway.pid))
        alive = gateway.poll() is None
        gateway.send_signal(signal.SIGTERM)
        code = gateway.wait(timeout=40)
        ctx.notes.append(f"gateway exit code after SIGTERM: {code}")
        with open(os.path.join(work, "gateway.err")) as f:
            log = f.read().splitlines()
        ctx.notes.append(f"gateway log: {len(log)} lines; last: {log[-1][:200] if log else ''}")
        return summarise(name, load_, before, after, idle, recheck, window, alive, ctx.notes)
    finally:
        ctx.procs.stop_all()
        if ctx.mounted:
            subprocess.run(["umount", ctx.mounted], check=False)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "../../build/release"))
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep each fault's work directory")
    parser.add_argument("--idle-wait", type=float, default=40,
                        help="seconds to wait, after the load, for idle upstream connections to close")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("faults", nargs="*", metavar="FAULT", help="default: all; " + " ".join(ALL))
    args = parser.parse_args()
    args.build = os.path.abspath(args.build)
    unknown = set(args.faults) - set(ALL)
    if unknown:
        parser.error(f"unknown fault(s) {sorted(unknown)}; known: {' '.join(ALL)}")
    results = []
    for name in args.faults or ALL:
        print(f"== {name}", flush=True)
        result = run_fault(args, name)
        print(json.dumps(result, indent=1), flush=True)
        results.append(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print("| fault | requests | served (right answer) | errors (phase/kind/class: n) | recovery | "
          "p99 | RSS MiB before → after → idle | FDs before → after (client sockets left) → idle "
          "(upstream sockets left) | alive | recheck |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        errors = ", ".join(f"{k}: {n}" for k, n in r["errors"].items()) or "none"
        print(f"| {r['fault']} | {r['requests']} | {r['served_ok']} | {errors} | {r['recovery_s']} s"
              f" | {r['p99_ms']} ms | {r['rss_mib'][0]} → {r['rss_mib'][1]} → {r['rss_mib_idle']} | "
              f"{r['fds'][0]} → {r['fds'][1]} ({r['client_sockets_after']}) → {r['fds_idle']} "
              f"({r['upstream_sockets_idle']}) | {'yes' if r['gateway_alive'] else 'NO'} | "
              f"{', '.join(f'{k}: {n}' for k, n in r['recheck'].items())} |")
    bad = [r["fault"] for r in results
           if not r["gateway_alive"] or r["by_class"].get("wrong") or set(r["recheck"]) - {"ok"}
           or r["client_sockets_after"] or r["upstream_sockets_idle"]]
    print("faults: " + ("FAILED: " + ", ".join(bad) if bad else "no crash, no wrong answer, no poisoned entry"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
