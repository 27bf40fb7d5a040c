#!/usr/bin/env bash
# `pip install ./python` works: builds the wheel from this tree with scikit-build-core (the
# pinned build packages of build/python-venv, no download), installs it into a folder of its
# own, and runs one cached_agent_run from that install against the fake provider: a miss, then
# a hit. Also checks the pytest plugin's entry point is in the installed metadata.
# Usage: check_python_wheel.sh SOURCE_DIR FAKE_PROVIDER
set -euo pipefail
root=$1
fake=$2
python=$root/build/python-venv/bin/python
work=$(mktemp -d)
trap 'kill "${fake_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

# Built in build/python-wheel (pyproject.toml): as deep in the tree as build/release, so that
# with the same ccache base (scripts/test.sh) its compile commands are the project build's.
CCACHE_BASEDIR=$root "$python" -m pip wheel -q --no-deps --no-build-isolation \
  "$root/python" -w "$work/wheel"
"$python" -m pip install -q --no-deps --no-index --target "$work/site" "$work"/wheel/*.whl

"$fake" --listen 127.0.0.1:0 >"$work/fake.out" &
fake_pid=$!
for _ in $(seq 50); do grep -q listening "$work/fake.out" && break; sleep 0.1; done
address=$(sed -n 's/^listening on //p' "$work/fake.out")

cd "$work"
OPENAI_BASE_URL="http://$address/v1" OPENAI_API_KEY=sk-wheel PYTHONPATH="$work/site" \
  "$python" - "$work" <<'PY'
import asyncio, sys
from importlib.metadata import entry_points
import llm_caching
from pydantic_ai import Agent

work = sys.argv[1]
assert llm_caching.__file__.startswith(work + "/site/"), llm_caching.__file__
plugins = [e.value for e in entry_points(group="pytest11") if e.name == "llm_caching"]
assert plugins == ["llm_caching.pytest_plugin"], plugins

async def main():
    agent = Agent("openai:gpt-4o-mini")
    url = f"sqlite:///{work}/cache.db"
    first = await llm_caching.cached_agent_run(agent, "Hello", "wheel", cache_url=url)
    second = await llm_caching.cached_agent_run(agent, "Hello", "wheel", cache_url=url)
    assert not first.llm_cache.cache_hit and second.llm_cache.cache_hit, (first, second)
    assert second.output == first.output
    print("installed wheel: miss then hit:", second.output)

asyncio.run(main())
PY
