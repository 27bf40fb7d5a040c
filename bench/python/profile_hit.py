"""Where a cached_agent_run hit spends its time: cProfile over N hits, self time summed by the
package of the function that spent it (pydantic_ai, openai, httpx2, pydantic, llm_caching,
asyncio, ...), then the functions with the most self time and the most cumulative time.

Usage: bench/python/run.sh [BUILD_DIR] with BENCH_SCRIPT=profile_hit.py (the same fake provider
and environment as bench_hit.py). N hits (default 300) after 50 warm-up runs; PROFILE_TOP
functions in each list (default 25). The hits are whole-run hits (llm_caching/_whole_run.py);
WHOLE_RUN=0 profiles the step-by-step replay of agent.run instead. The profiler's own overhead
inflates the absolute times (about 2x); the shares are what to read."""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import sys
from collections import defaultdict

from pydantic_ai import Agent

from llm_caching import _whole_run, cached_agent_run

N = int(os.environ.get("N", "300"))
TOP = int(os.environ.get("PROFILE_TOP", "25"))


def package_of(filename: str) -> str:
    """The top-level package of a profiled function's file ("~" for builtins)."""
    if filename == "~" or filename.startswith("<"):
        return "builtins"
    parts = filename.replace("\\", "/").split("/")
    for marker in ("site-packages", "python"):
        if marker in parts:
            after = parts[len(parts) - 1 - parts[::-1].index(marker) + 1:]
            if after:
                return after[0].removesuffix(".py")
    return parts[-2] if len(parts) > 1 else filename


async def main() -> None:
    _whole_run.ENABLED = os.environ.get("WHOLE_RUN", "1") != "0"
    agent = Agent("openai:gpt-4o-mini")
    for _ in range(50):
        result = await cached_agent_run(agent, "Hello", "profile", cache_url="memory://")
    assert result.llm_cache.cache_hit
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(N):
        await cached_agent_run(agent, "Hello", "profile", cache_url="memory://")
    profiler.disable()
    stats = pstats.Stats(profiler)
    by_package: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, _, _), (_, _, self_time, _, _) in stats.stats.items():
        by_package[package_of(filename)] += self_time
        total += self_time
    print(f"{N} hits, {total / N * 1e6:.0f} us per hit under the profiler; self time by package:")
    for name, spent in sorted(by_package.items(), key=lambda item: -item[1]):
        if spent / total >= 0.005:
            print(f"  {name:24s} {spent / N * 1e6:8.0f} us  {spent / total:6.1%}")
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
