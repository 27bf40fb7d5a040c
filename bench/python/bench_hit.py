"""What a cache hit costs through the Python front, against two baselines, in one session:

  function_model  agent.run() of the same agent shape on pydantic_ai's in-memory FunctionModel,
                  returning the same answer (no HTTP, no cache): the floor an agent run costs;
  seed_redis      the original library's hit: an asyncio Redis GET of the pickled result and
                  pickle.loads (over a raw asyncio socket: cheaper than redis-py, so a
                  conservative baseline);
  run_hit         cached_agent_run() answered whole (llm_caching/_whole_run.py): the core
                  answers the run's recorded request from its memory with the recorded bytes,
                  and the result is rebuilt from the first run's JSON; agent.run does not run;
  cached_run      cached_agent_run() answered step by step (the whole-run hit switched off, as
                  for a run that called a tool): agent.run runs for real, each provider request
                  answered by the core from its L1 (the hit fast path);
  transport_hit   the cache's own share of that: the SDK's HTTP request in, the recorded HTTP
                  response out (CachingTransport.handle_async_request alone).

Usage: bench/python/run.sh [BUILD_DIR] (starts the fake provider and a redis-server).
Prints per-call medians over ROUNDS rounds of N calls, and the ratios; then function_model,
cached_run, seed_redis and run_hit alternated call by call (ALTERNATE calls each, default
N * ROUNDS), in wall and CPU time.

Rounds of N calls of one case let each case run with its own code and data in the CPU's caches;
function_model, the smallest, gains most from that. Alternating call by call puts the cases on
the same footing, as in a program whose hits come between other work, and the thread's CPU
time leaves out the time the process waits for a CPU on a loaded machine (in rounds, a case
that follows one that slept on a socket runs on the scheduler's credit, the next one does not:
on a machine at load 10 that alone moves a round's wall figure 3-5x)."""

from __future__ import annotations

import asyncio
import os
import pickle
import statistics
import sys
import time

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import httpx2

from llm_caching import CachingTransport, cached_agent_run
from llm_caching import _core, _whole_run
from llm_caching._transport import RunScope

N = int(os.environ.get("N", "500"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))


async def per_call(fn) -> float:
    for _ in range(50):  # warm-up
        await fn()
    start = time.perf_counter()
    for _ in range(N):
        await fn()
    return (time.perf_counter() - start) / N * 1e6


class RawRedis:
    """GET over one asyncio connection (RESP, as redis-py's asyncio client sends it)."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    async def command(self, *parts: bytes) -> bytes | None:
        out = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        self.writer.write(out)
        line = await self.reader.readline()
        if line.startswith(b"$-1"):
            return None
        if line.startswith(b"$"):
            data = await self.reader.readexactly(int(line[1:]) + 2)
            return data[:-2]
        return line


def _capture_model(transport):
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider
    client = httpx2.AsyncClient(transport=transport)
    return OpenAIResponsesModel("gpt-4o-mini", provider=OpenAIProvider(http_client=client))


async def alternate(cases) -> None:
    """The cases one call each in turn, ALTERNATE times; wall and thread CPU time per call."""
    calls = int(os.environ.get("ALTERNATE", str(N * ROUNDS)))
    wall = dict.fromkeys(cases, 0.0)
    cpu = dict.fromkeys(cases, 0.0)
    for _ in range(calls):
        for name, fn in cases.items():
            started, started_cpu = time.perf_counter(), time.thread_time()
            await fn()
            for _ in range(2):  # what the call left on the event loop runs in its own window
                await asyncio.sleep(0)
            wall[name] += time.perf_counter() - started
            cpu[name] += time.thread_time() - started_cpu
    for name in cases:
        print(f"alternating {name:15s} wall {wall[name] / calls * 1e6:8.1f} us/call  "
              f"cpu {cpu[name] / calls * 1e6:8.1f} us/call")
    for case, baseline in (("cached_run", "function_model"), ("run_hit", "seed_redis"),
                           ("run_hit", "function_model")):
        if case in cases and baseline in cases:
            print(f"alternating {case} / {baseline} = {wall[case] / wall[baseline]:.2f} wall, "
                  f"{cpu[case] / cpu[baseline]:.2f} cpu")


async def agent_hits(agent):
    """The two hits of cached_agent_run: whole (run_hit) and step by step (cached_run)."""
    async def run_hit():
        result = await cached_agent_run(agent, "Hello", "bench", cache_url="memory://")
        assert result.llm_cache.cache_hit

    async def cached_run():
        _whole_run.ENABLED = False
        try:
            result = await cached_agent_run(agent, "Hello", "bench", cache_url="memory://")
        finally:
            _whole_run.ENABLED = True
        assert result.llm_cache.cache_hit

    runs = []
    original_run = agent.run

    async def counted_run(*args, **kwargs):
        runs.append(1)
        return await original_run(*args, **kwargs)

    agent.run = counted_run
    await run_hit()  # recorded (a hit step by step: the first run in main was another agent's)
    await run_hit()
    assert len(runs) == 1, "the whole-run hit was not taken"
    del agent.run  # the agent's own method again
    return run_hit, cached_run


async def main() -> None:
    answer = (await cached_agent_run(Agent("openai:gpt-4o-mini"), "Hello", "bench",
                                     cache_url="memory://")).output

    def reply(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[TextPart(answer)])

    function_agent = Agent(FunctionModel(reply))
    cached_agent = Agent("openai:gpt-4o-mini")
    redis_port = int(os.environ["BENCH_REDIS_PORT"])
    reader, writer = await asyncio.open_connection("127.0.0.1", redis_port)
    redis = RawRedis(reader, writer)
    stored = await function_agent.run("Hello")
    await redis.command(b"SET", b"seed:key", pickle.dumps(stored))

    async def function_model():
        await function_agent.run("Hello")

    async def seed_redis():
        pickle.loads(await redis.command(b"GET", b"seed:key"))

    run_hit, cached_run = await agent_hits(cached_agent)

    # The request the SDK sent for that run, replayed at the transport.
    captured: list[httpx2.Request] = []

    class Capture(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request):
            captured.append(request)
            return httpx2.Response(599)

    try:
        await Agent("openai:gpt-4o-mini").run("Hello", model=_capture_model(Capture()))
    except Exception:
        pass
    request = captured[0]
    await request.aread()
    scope = RunScope(_core.make_options("memory://", None, "", 3600.0, 10.0, 1.0, False, True,
                                        None, None, {}, False, "", [], []), "bench")
    transport = CachingTransport(scope=scope)
    await transport.handle_async_request(request)  # recorded (a miss) once

    async def transport_hit():
        await transport.handle_async_request(request)

    cases = {"function_model": function_model, "seed_redis": seed_redis, "run_hit": run_hit,
             "cached_run": cached_run, "transport_hit": transport_hit}
    figures: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):  # interleaved, so the machine's noise falls on all cases alike
        for name, fn in cases.items():
            figures[name].append(await per_call(fn))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    for name, values in figures.items():
        print(f"{name:15s} median {medians[name]:8.1f} us/call  rounds "
              + " ".join(f"{v:.1f}" for v in values))
    for case, baseline in (("run_hit", "seed_redis"), ("run_hit", "function_model"),
                           ("cached_run", "function_model"), ("cached_run", "seed_redis"),
                           ("transport_hit", "seed_redis")):
        print(f"{case} / {baseline} = {medians[case] / medians[baseline]:.2f}")
    await alternate({"function_model": function_model, "cached_run": cached_run,
                     "seed_redis": seed_redis, "run_hit": run_hit})
    writer.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
