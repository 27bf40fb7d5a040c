"""The hit fast path (llm_caching/_fast_path.py) and the price of a hit, against the fake provider
over real sockets: a repeated SDK call the cache holds in memory sends no HTTP request through
the SDK's client, keys exactly as the wire request did, and gives the same result; anything the
cache does not answer from memory takes the SDK's path. The whole-run hit is switched off here."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent

from llm_caching import ModelCosts, _fast_path, _whole_run, cached_agent_run


@pytest.fixture(autouse=True)
def step_by_step(monkeypatch):
    """These tests are about a hit that runs agent.run: no run is answered whole
    (test_whole_run.py tests that)."""
    monkeypatch.setattr(_whole_run, "ENABLED", False)


def run(coro):
    return asyncio.run(coro)


def count_sdk_requests(agent: Agent) -> list[str]:
    """The URLs of the requests the agent's OpenAI SDK puts on its httpx client, from now on."""
    sent: list[str] = []

    async def hook(request):
        sent.append(str(request.url))

    agent.model.client._client.event_hooks["request"].append(hook)
    return sent


@pytest.mark.parametrize("model", ["openai:gpt-4o-mini", "openai-chat:gpt-4o-mini"])
def test_a_repeated_call_is_answered_without_an_sdk_request(fake_provider, model):
    agent = Agent(model)

    async def twice():
        first = await cached_agent_run(agent, "Fast path", "fast", cache_url="memory://")
        sent = count_sdk_requests(agent)  # the client of this event loop
        second = await cached_agent_run(agent, "Fast path", "fast", cache_url="memory://")
        return first, second, sent

    first, second, sent = run(twice())
    assert sent == []  # the hit never reached the SDK's HTTP client
    assert second.output == first.output and second.output.startswith("echo: Fast path")
    assert (first.llm_cache.cache_hit, second.llm_cache.cache_hit) == (False, True)
    # The core keyed the recorded request: the wire request's key.
    assert second.llm_cache.cache_keys == first.llm_cache.cache_keys
    assert second.llm_cache.avoided_cost == first.llm_cache.cost > 0
    assert fake_provider.calls() == 1


def test_other_arguments_and_other_options_take_the_sdks_path(fake_provider, tmp_path):
    agent = Agent("openai:gpt-4o-mini")

    async def runs():
        await cached_agent_run(agent, "One", "fast", cache_url="memory://")
        sent = count_sdk_requests(agent)
        other_prompt = await cached_agent_run(agent, "Two", "fast", cache_url="memory://")
        other_settings = await cached_agent_run(agent, "One", "fast", cache_url="memory://",
                                                model_settings={"temperature": 0.5})
        refreshed = await cached_agent_run(agent, "One", "fast", cache_url="memory://",
                                           mode="refresh")
        other_namespace = await cached_agent_run(agent, "One", "fast", cache_url="memory://",
                                                 namespace="elsewhere")
        return sent, other_prompt, other_settings, refreshed, other_namespace

    sent, *results = run(runs())
    assert [r.llm_cache.cache_hit for r in results] == [False, False, False, False]
    assert len(sent) == 4  # each went through the SDK and the transport
    assert fake_provider.calls() == 5


def test_typed_output_and_tools_come_back_the_same_through_the_fast_path(fake_provider):
    class Profile(BaseModel):
        name: str
        age: int

    typed = Agent("openai:gpt-4o-mini", output_type=Profile)
    tooled = Agent("openai:gpt-4o-mini+tool-first")
    costs = {"gpt-4o-mini+tool-first": ModelCosts(0.15, 0.6)}
    looked_up: list[str] = []

    @tooled.tool_plain
    def lookup_weather(city: str) -> str:
        """The weather in a city."""
        looked_up.append(city)
        return f"sunny in {city}"

    async def runs():
        typed_first = await cached_agent_run(typed, "Who is John?", "fast", cache_url="memory://")
        tooled_first = await cached_agent_run(tooled, "Weather in Oslo?", "fast",
                                              cache_url="memory://", custom_costs=costs)
        sent = (count_sdk_requests(typed), count_sdk_requests(tooled))
        typed_second = await cached_agent_run(typed, "Who is John?", "fast",
                                              cache_url="memory://")
        tooled_second = await cached_agent_run(tooled, "Weather in Oslo?", "fast",
                                               cache_url="memory://", custom_costs=costs)
        return typed_first, typed_second, tooled_first, tooled_second, sent

    typed_first, typed_second, tooled_first, tooled_second, sent = run(runs())
    assert sent == ([], [])
    assert isinstance(typed_second.output, Profile) and typed_second.output == typed_first.output
    assert tooled_second.output == tooled_first.output
    assert [c.cache_hit for c in tooled_second.llm_cache.calls] == [True, True]
    assert len(looked_up) == 2  # the tool runs again: only provider calls are cached
    assert fake_provider.calls() == 3


def test_a_hit_is_priced_at_what_it_billed_and_a_miss_as_pydantic_ai_estimates_it(
        fake_provider):
    agent = Agent("openai:gpt-4o-mini")
    first = run(cached_agent_run(agent, "Price me", "fast"))  # the test's SQLite file
    second = run(cached_agent_run(agent, "Price me", "fast"))
    assert first.usage.cost is not None and first.usage.cost > 0  # genai-prices' estimate
    assert second.llm_cache.cache_hit and second.usage.cost == 0
    # Outside cached_agent_run the agent is pydantic_ai's own: a new run is a provider call.
    plain = run(agent.run("Price me"))
    assert plain.usage.cost > 0 and fake_provider.calls() == 2


def test_the_fast_path_remembers_a_bounded_number_of_calls(fake_provider, monkeypatch):
    monkeypatch.setattr(_fast_path, "MEMO_LIMIT", 2)
    agent = Agent("openai:gpt-4o-mini")

    async def runs():
        for prompt in ("a", "b", "c"):
            await cached_agent_run(agent, prompt, "fast", cache_url="memory://")
        sent = count_sdk_requests(agent)
        for prompt in ("c", "b", "a"):  # "a" was forgotten: it goes through the SDK again
            result = await cached_agent_run(agent, prompt, "fast", cache_url="memory://")
            assert result.llm_cache.cache_hit
        return sent

    sent = run(runs())
    assert len(sent) == 1 and sent[0].endswith("/responses")
    assert len(agent.model.client.responses.create.memo) == 2
    assert fake_provider.calls() == 3
