"""The Python front beyond the README: tools, typed output, the three providers, concurrency,
replay, and errors, against the fake provider over real sockets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelHTTPError

import llm_caching
from llm_caching import CacheMissError, ModelCosts, ProviderError, cached_agent_run


def run(coro):
    return asyncio.run(coro)


def test_an_agent_with_a_tool_replays_its_whole_run_from_the_cache(fake_provider):
    agent = Agent("openai:gpt-4o-mini+tool-first")
    looked_up: list[str] = []

    @agent.tool_plain
    def lookup_weather(city: str) -> str:
        """The weather in a city."""
        looked_up.append(city)
        return f"sunny in {city}"

    costs = {"gpt-4o-mini+tool-first": ModelCosts(0.15, 0.6)}
    first = run(cached_agent_run(agent, "Weather in Paris?", "weather", custom_costs=costs))
    assert len(first.llm_cache.calls) == 2  # the tool call, then the answer
    assert [c.cache_hit for c in first.llm_cache.calls] == [False, False]
    assert fake_provider.calls() == 2 and len(looked_up) == 1

    second = run(cached_agent_run(agent, "Weather in Paris?", "weather", custom_costs=costs))
    assert second.llm_cache.cache_hit and second.llm_cache.cost == 0
    assert [c.cache_hit for c in second.llm_cache.calls] == [True, True]
    assert second.output == first.output
    assert fake_provider.calls() == 2  # nothing more reached the provider
    assert len(looked_up) == 2  # the tool itself runs again: only provider calls are cached


def test_typed_output_comes_back_typed_from_a_hit(fake_provider):
    class Profile(BaseModel):
        name: str
        age: int

    agent = Agent("openai:gpt-4o-mini", output_type=Profile)
    first = run(cached_agent_run(agent, "Who is John?", "profile"))
    second = run(cached_agent_run(agent, "Who is John?", "profile"))
    assert isinstance(second.output, Profile) and second.output == first.output
    assert second.llm_cache.cache_hit


@pytest.mark.parametrize("model", ["anthropic:claude-3-5-haiku-latest",
                                   "google-gla:gemini-2.0-flash", "openai-chat:gpt-4o-mini"])
def test_each_provider_is_cached(fake_provider, model):
    if model.startswith("google-gla:"):
        model = "google:" + model.split(":", 1)[1]  # pydantic_ai 2's name for it
    agent = Agent(model)
    first = run(cached_agent_run(agent, "Hello there", "providers"))
    second = run(cached_agent_run(agent, "Hello there", "providers"))
    assert first.output.startswith("echo: Hello there")
    assert (first.llm_cache.cache_hit, second.llm_cache.cache_hit) == (False, True)
    assert first.llm_cache.cost > 0
    assert fake_provider.calls() == 1


def test_identical_concurrent_runs_make_one_provider_call(fake_provider):
    agent = Agent("openai:gpt-4o-mini+delay-200")
    costs = {"gpt-4o-mini+delay-200": ModelCosts(0.15, 0.6)}

    async def hundred():
        return await asyncio.gather(*[
            cached_agent_run(agent, "Same question", "burst", custom_costs=costs)
            for _ in range(100)])

    results = run(hundred())
    assert fake_provider.calls() == 1
    assert len({r.output for r in results}) == 1
    billed = [r for r in results if r.llm_cache.cost > 0]
    assert len(billed) == 1  # the others were answered by that call, billed 0
    assert all(r.llm_cache.cache_hit for r in results if r is not billed[0])


def test_replay_only_miss_names_the_task_and_never_calls_the_provider(fake_provider):
    agent = Agent("openai:gpt-4o-mini")
    with pytest.raises(CacheMissError) as error:
        run(cached_agent_run(agent, "Never recorded", "nightly-eval", mode="replay_only"))
    assert "nightly-eval" in str(error.value) and "llm-caching:v1:" in str(error.value)
    assert fake_provider.calls() == 0


def test_dir_backend_records_reviewable_files_and_replays_them(fake_provider, tmp_path):
    agent = Agent("openai:gpt-4o-mini")
    url = f"dir://{tmp_path}/llm-cache"
    recorded = run(cached_agent_run(agent, "Record me", "suite", cache_url=url))
    files = list(Path(tmp_path, "llm-cache").rglob("*.json"))
    assert len(files) == 1
    document = json.loads(files[0].read_text())
    assert "sk-test-openai" not in files[0].read_text()
    assert json.dumps(document).find("echo: Record me") >= 0
    replayed = run(cached_agent_run(agent, "Record me", "suite", cache_url=url,
                                    mode="replay_only"))
    assert replayed.output == recorded.output and replayed.llm_cache.cache_hit
    assert fake_provider.calls() == 1


def test_a_provider_refusal_reaches_the_caller_as_pydantic_ai_reports_it(fake_provider):
    agent = Agent("openai:gpt-4o-mini+500")
    costs = {"gpt-4o-mini+500": ModelCosts(0.15, 0.6)}
    with pytest.raises(ModelHTTPError) as error:
        run(cached_agent_run(agent, "Hello", "errors", custom_costs=costs, max_wait=0.3,
                             initial_wait=0.05))
    assert error.value.status_code == 500
    calls = fake_provider.calls()
    assert 1 <= calls <= 5  # our retries only: the SDK's own were switched off
    # Nothing was cached: the next run asks again.
    with pytest.raises(ModelHTTPError):
        run(cached_agent_run(agent, "Hello", "errors", custom_costs=costs, max_wait=0.3,
                             initial_wait=0.05))
    assert fake_provider.calls() > calls


def test_an_unreachable_provider_is_a_provider_error(fake_provider, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    agent = Agent("openai:gpt-4o-mini")
    with pytest.raises(ProviderError) as error:
        run(cached_agent_run(agent, "Hello", "errors", max_wait=0.2, initial_wait=0.05))
    assert "sk-test" not in str(error.value)


def test_a_bad_argument_is_a_configuration_error_naming_it(fake_provider):
    agent = Agent("openai:gpt-4o-mini")
    with pytest.raises(llm_caching.ConfigurationError, match="max_wait"):
        run(cached_agent_run(agent, "Hello", "chat", max_wait=-1))
    with pytest.raises(llm_caching.ConfigurationError, match="sometimes"):
        run(cached_agent_run(agent, "Hello", "chat", mode="sometimes"))
    with pytest.raises(llm_caching.ConfigurationError, match="cache URL|scheme|nosuch"):
        run(cached_agent_run(agent, "Hello", "chat", cache_url="nosuch://x"))


@pytest.mark.parametrize("model", ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"])
def test_a_streamed_run_is_recorded_and_replayed_as_a_stream(fake_provider, model):
    events: list[str] = []

    async def handler(ctx, stream):
        async for event in stream:
            events.append(type(event).__name__)

    agent = Agent(model)
    first = run(cached_agent_run(agent, "Stream me", "streams", event_stream_handler=handler))
    streamed_first = list(events)
    events.clear()
    second = run(cached_agent_run(agent, "Stream me", "streams", event_stream_handler=handler))
    assert first.output.startswith("echo: Stream me") and second.output == first.output
    assert (first.llm_cache.cache_hit, second.llm_cache.cache_hit) == (False, True)
    assert first.llm_cache.cost > 0  # the stream's usage was read
    assert "PartDeltaEvent" in streamed_first and "PartDeltaEvent" in events
    assert fake_provider.calls() == 1


def test_a_budget_refuses_before_the_provider_and_the_ledger_records_each_request(
        fake_provider, tmp_path):
    import subprocess
    agent = Agent("openai:gpt-4o-mini")
    url = f"sqlite:///{tmp_path}/ledger.db"
    # Worth one call's worst case at most (every request byte an input token, plus max_tokens).
    budget = ["task=capped:0.01usd/day"]
    first = run(cached_agent_run(agent, "Hello", "capped", cache_url=url, budgets=budget,
                                 ledger=True, tenant="team-a", tags=["py"],
                                 model_settings={"max_tokens": 100}))
    assert first.llm_cache.cost > 0
    with pytest.raises(llm_caching.BudgetExceededError) as refused:
        run(cached_agent_run(agent, "Hello again", "capped", cache_url=url,
                             budgets=["task=capped:0.000001usd/day"], ledger=True,
                             model_settings={"max_tokens": 100}))
    assert "capped" in refused.value.budget and refused.value.remaining >= 0
    assert fake_provider.calls() == 1  # the refused call never reached the provider
    hit = run(cached_agent_run(agent, "Hello", "capped", cache_url=url,
                               budgets=["task=capped:0.000001usd/day"], ledger=True,
                               model_settings={"max_tokens": 100}))
    assert hit.llm_cache.cache_hit  # hits never spend
    cli = str(Path(__file__).resolve().parents[2] / "build" / "release" / "llm-caching")
    # The ledger's writer stores every 100 ms: ask until the three records are there (bounded).
    import time
    for _ in range(100):
        report = subprocess.run([cli, "costs", "--cache-url", url, "--by", "outcome", "--json"],
                                capture_output=True, text=True, check=True)
        text = json.dumps(json.loads(report.stdout))
        if all(outcome in text for outcome in ('"miss"', '"hit"', '"failed"')):
            break
        time.sleep(0.05)
    assert all(outcome in text for outcome in ('"miss"', '"hit"', '"failed"')), text
