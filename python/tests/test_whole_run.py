"""The whole-run hit (llm_caching/_whole_run.py), against the fake provider over real sockets: a
repeated run whose every provider request the core answers from its memory with the recorded
bytes returns a new result rebuilt from the first run's, without running agent.run; a run that
called a tool, an agent with a dynamic system prompt, an entry the core no longer holds, and
other options (namespace, tenant, mode) run agent.run."""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessagesTypeAdapter, ModelResponse

from llm_caching import ModelCosts, _core, _whole_run, cached_agent_run
from llm_caching._fresh_copy import plan


def run(coro):
    return asyncio.run(coro)


def priced_zero(result) -> list:
    """A result's messages as a hit gives them: the run's responses priced 0 (HitPricedModel)."""
    messages = copy.deepcopy(result.all_messages())
    for message in messages[len(messages) - len(result.new_messages()):]:
        if isinstance(message, ModelResponse):
            message.usage.cost = Decimal(0)
    return messages


def count_runs(agent: Agent) -> list[str]:
    """The prompts agent.run is called with, from now on."""
    prompts: list[str] = []
    original = agent.run

    async def counted(prompt, *args, **kwargs):
        prompts.append(prompt)
        return await original(prompt, *args, **kwargs)

    agent.run = counted
    return prompts


class Profile(BaseModel):
    name: str
    age: int


def test_a_repeated_run_is_a_new_result_rebuilt_without_agent_run(fake_provider):
    agent = Agent("openai:gpt-4o-mini")
    runs = count_runs(agent)
    first = run(cached_agent_run(agent, "Whole run", "whole", cache_url="memory://"))
    second = run(cached_agent_run(agent, "Whole run", "whole", cache_url="memory://"))
    assert runs == ["Whole run"] and fake_provider.calls() == 1
    assert second.output == first.output and second.output.startswith("echo: Whole run")
    # The first run's messages, with its response priced 0 as every hit is (HitPricedModel).
    assert first.all_messages()[1].usage.cost > 0
    assert second.all_messages() == priced_zero(first)
    assert second.new_messages() == priced_zero(first)[-2:]
    assert second.all_messages_json() == ModelMessagesTypeAdapter.dump_json(priced_zero(first))
    assert (second.usage.input_tokens, second.usage.output_tokens, second.usage.requests) == (
        first.usage.input_tokens, first.usage.output_tokens, first.usage.requests)
    assert first.usage.cost > 0 and second.usage.cost == 0  # a hit billed nothing
    # A new object each time: changing one result's messages leaves the next one alone.
    assert second is not first and second.all_messages() is not first.all_messages()
    second.all_messages().clear()
    third = run(cached_agent_run(agent, "Whole run", "whole", cache_url="memory://"))
    assert third.all_messages() == priced_zero(first) and runs == ["Whole run"]
    assert (first.llm_cache.cache_hit, second.llm_cache.cache_hit) == (False, True)
    assert second.llm_cache.cache_keys == first.llm_cache.cache_keys
    assert second.llm_cache.cost == 0 and second.llm_cache.provider_calls == 0
    assert second.llm_cache.avoided_cost == first.llm_cache.cost > 0


def test_typed_output_comes_back_typed_and_equal(fake_provider):
    agent = Agent("openai:gpt-4o-mini", output_type=Profile, instructions="Answer in JSON.")
    runs = count_runs(agent)
    first = run(cached_agent_run(agent, "Who is John?", "whole"))  # the test's SQLite file
    second = run(cached_agent_run(agent, "Who is John?", "whole"))
    assert runs == ["Who is John?"] and second.llm_cache.cache_hit
    assert isinstance(second.output, Profile) and second.output == first.output
    assert second.output is not first.output
    assert second.all_messages() == priced_zero(first)
    # Changing one hit's result leaves the next one alone.
    second.output.age += 1
    second.response.provider_details["changed"] = True
    second.usage.input_tokens += 1
    third = run(cached_agent_run(agent, "Who is John?", "whole"))
    assert third.output == first.output and third.all_messages() == priced_zero(first)
    assert third.usage.input_tokens == first.usage.input_tokens
    assert runs == ["Who is John?"] and fake_provider.calls() == 1


def test_a_history_is_part_of_the_fingerprint(fake_provider):
    class Note(BaseModel):
        topic: str

    agent = Agent("openai:gpt-4o-mini")
    runs = count_runs(agent)
    history = [{"role": "user", "content": "My name is Ann."},
               {"role": "assistant", "content": "Hello Ann."}, Note(topic="names")]

    async def runs_with_history():
        first = await cached_agent_run(agent, "What is my name?", "whole", history)
        again = await cached_agent_run(agent, "What is my name?", "whole", list(history))
        other = await cached_agent_run(agent, "What is my name?", "whole", history[:1])
        return first, again, other

    first, again, other = run(runs_with_history())
    assert runs == ["What is my name?", "What is my name?"]  # the first and the other history
    assert again.llm_cache.cache_hit and again.all_messages() == priced_zero(first)
    assert len(first.all_messages()) == 5  # the three history messages, the request, the answer
    assert not other.llm_cache.cache_hit and fake_provider.calls() == 2


def wait_until_not_in_memory(url: str, ttl: float, prompt: str, why: str) -> None:
    """Waits (bounded) until the core's memory no longer answers the one recorded step of the
    whole run remembered for `prompt`."""
    (step,) = next(record.steps for key, record in _whole_run._memo.items() if key[1] == prompt)
    options = _core.make_options(url, None, "", ttl, 10.0, 1.0, False, True, None, None, {},
                                 False, "", [], [])
    deadline = time.monotonic() + 30
    while _core.from_memory(options, step.method, step.url, step.headers, step.body) is not None:
        assert time.monotonic() < deadline, why
        time.sleep(0.05)


def test_a_run_that_called_a_tool_runs_the_tool_again(fake_provider):
    agent = Agent("openai:gpt-4o-mini+tool-first")
    runs = count_runs(agent)
    looked_up: list[str] = []

    @agent.tool_plain
    def lookup_weather(city: str) -> str:
        """The weather in a city."""
        looked_up.append(city)
        return f"sunny in {city}"

    costs = {"gpt-4o-mini+tool-first": ModelCosts(0.15, 0.6)}
    results = [run(cached_agent_run(agent, "Weather in Rome?", "whole", custom_costs=costs))
               for _ in range(3)]
    assert len(runs) == 3 and len(looked_up) == 3  # agent.run, and the tool, each time
    assert [r.llm_cache.cache_hit for r in results] == [False, True, True]
    assert results[2].output == results[0].output and fake_provider.calls() == 2


@pytest.mark.parametrize("decorator", ["system_prompt", "instructions"])
def test_an_agent_with_a_dynamic_system_prompt_runs_agent_run(fake_provider, decorator):
    agent = Agent("openai:gpt-4o-mini")
    runs = count_runs(agent)

    @getattr(agent, decorator)
    def today() -> str:
        return "Today is a fine day."

    first = run(cached_agent_run(agent, "Dynamic", "whole"))
    second = run(cached_agent_run(agent, "Dynamic", "whole"))
    assert runs == ["Dynamic", "Dynamic"]  # replayed step by step
    assert second.llm_cache.cache_hit and second.output == first.output
    assert fake_provider.calls() == 1


def test_an_agent_changed_since_runs_agent_run(fake_provider):
    agent = Agent("openai:gpt-4o-mini")
    runs = count_runs(agent)
    run(cached_agent_run(agent, "Changed", "whole"))

    @agent.tool_plain
    def added() -> str:
        """A tool added after the first run."""
        return "added"

    second = run(cached_agent_run(agent, "Changed", "whole"))
    assert runs == ["Changed", "Changed"]
    # The tool is in the request: another key, another provider call.
    assert not second.llm_cache.cache_hit and fake_provider.calls() == 2


def test_an_entry_the_core_no_longer_holds_is_not_replayed_whole(fake_provider):
    agent = Agent("openai:gpt-4o-mini")
    runs = count_runs(agent)
    url = "memory://"
    first = run(cached_agent_run(agent, "Expiring", "whole", cache_url=url, ttl=0.2))
    assert "sk-test" not in repr(_whole_run._memo)  # the credential is never in a repr
    wait_until_not_in_memory(url, 0.2, "Expiring", "the entry never expired")
    second = run(cached_agent_run(agent, "Expiring", "whole", cache_url=url))
    assert runs == ["Expiring", "Expiring"]
    assert not second.llm_cache.cache_hit and second.llm_cache.cost > 0
    assert second.output == first.output and fake_provider.calls() == 2
    refreshed = run(cached_agent_run(agent, "Expiring", "whole", cache_url=url, mode="refresh"))
    assert not refreshed.llm_cache.cache_hit and fake_provider.calls() == 3
    bypassed = run(cached_agent_run(agent, "Expiring", "whole", cache_url=url, mode="bypass"))
    assert not bypassed.llm_cache.cache_hit and fake_provider.calls() == 4
    assert len(runs) == 4


def test_a_cache_cleared_by_another_process_is_not_replayed_whole(fake_provider, tmp_path):
    agent = Agent("openai:gpt-4o-mini")
    runs = count_runs(agent)
    url = f"sqlite:///{tmp_path}/cleared.db"
    first = run(cached_agent_run(agent, "Cleared", "whole", cache_url=url))
    assert run(cached_agent_run(agent, "Cleared", "whole", cache_url=url)).llm_cache.cache_hit
    assert len(runs) == 1  # the second ran whole
    cli = str(Path(__file__).resolve().parents[2] / "build" / "release" / "llm-caching")
    subprocess.run([cli, "cache", "clear", "--cache-url", url], check=True, capture_output=True)
    # This process's memory drops the cleared entries once it reads the store's clear mark
    # (every 250 ms).
    wait_until_not_in_memory(url, 60.0, "Cleared", "the clear never reached this process")
    third = run(cached_agent_run(agent, "Cleared", "whole", cache_url=url))
    assert len(runs) == 2 and not third.llm_cache.cache_hit
    assert third.output == first.output and fake_provider.calls() == 2


def test_namespaces_and_caches_never_share_a_whole_run(fake_provider, tmp_path):
    agent = Agent("openai:gpt-4o-mini")
    runs = count_runs(agent)

    def once(**options):
        return run(cached_agent_run(agent, "Scoped", "whole", **options))

    first = once(cache_url="memory://", namespace="a")
    assert not once(cache_url="memory://", namespace="b").llm_cache.cache_hit
    assert not once(cache_url=f"sqlite:///{tmp_path}/other.db", namespace="a").llm_cache.cache_hit
    # A tenant is the ledger's label, not a partition of the cache: the core serves the same
    # entry, and so does the whole-run hit.
    again = once(cache_url="memory://", namespace="a", tenant="another")
    assert again.llm_cache.cache_hit and again.output == first.output
    assert fake_provider.calls() == 3 and len(runs) == 3  # the last one ran whole from memory


def test_the_expense_recorder_and_run_info_of_a_whole_run_hit(fake_provider):
    agent = Agent("openai:gpt-4o-mini")
    runs = count_runs(agent)
    expenses: list[tuple[str, str, float]] = []

    async def recorder(model: str, task: str, cost: float) -> None:
        expenses.append((model, task, cost))

    first = run(cached_agent_run(agent, "Priced", "pricing", expense_recorder=recorder))
    second = run(cached_agent_run(agent, "Priced", "pricing", expense_recorder=recorder))
    assert len(runs) == 1
    assert expenses == [("gpt-4o-mini", "pricing", first.llm_cache.cost),
                        ("gpt-4o-mini", "pricing", 0.0)]
    (call,) = second.llm_cache.calls
    assert (call.cache_hit, call.coalesced, call.cost_nano_usd, call.attempts) == (
        True, False, 0, 0)
    assert (call.provider, call.model) == ("openai", "gpt-4o-mini")
    assert call.cache_key == first.llm_cache.calls[0].cache_key
    # The same tokens; a hit made no provider request (usage's last figure).
    assert call.usage == first.llm_cache.calls[0].usage[:4] + (0,)
    assert call.avoided_cost_nano_usd == first.llm_cache.calls[0].cost_nano_usd > 0
    assert second.usage.cost == Decimal(0)


def test_the_ledger_records_a_whole_run_hit(fake_provider, tmp_path):
    agent = Agent("openai:gpt-4o-mini")
    runs = count_runs(agent)
    url = f"sqlite:///{tmp_path}/ledger.db"
    first = run(cached_agent_run(agent, "Ledgered", "books", cache_url=url, ledger=True,
                                 tenant="team-b"))
    second = run(cached_agent_run(agent, "Ledgered", "books", cache_url=url, ledger=True,
                                  tenant="team-b"))
    assert len(runs) == 1 and second.llm_cache.cache_hit and not first.llm_cache.cache_hit
    cli = str(Path(__file__).resolve().parents[2] / "build" / "release" / "llm-caching")
    # The ledger's writer stores every 100 ms: ask until both records are there (bounded).
    for _ in range(200):
        report = subprocess.run([cli, "costs", "--cache-url", url, "--by", "outcome", "--json"],
                                capture_output=True, text=True, check=True)
        text = json.dumps(json.loads(report.stdout))
        if '"hit"' in text and '"miss"' in text:
            break
        time.sleep(0.05)
    assert '"hit"' in text and '"miss"' in text, text


def test_the_whole_run_memo_is_bounded(fake_provider, monkeypatch):
    monkeypatch.setattr(_whole_run, "MEMO_LIMIT", 2)
    monkeypatch.setattr(_whole_run, "_memo", {})
    agent = Agent("openai:gpt-4o-mini")
    runs = count_runs(agent)

    async def prompts():
        for prompt in ("memo a", "memo b", "memo c", "memo c", "memo b", "memo a"):
            result = await cached_agent_run(agent, prompt, "whole", cache_url="memory://")
            assert result.output.startswith(f"echo: {prompt}")
    run(prompts())
    # "memo a" was forgotten: agent.run again (a hit, step by step)
    assert runs == ["memo a", "memo b", "memo c", "memo a"]
    assert len(_whole_run._memo) == 2 and fake_provider.calls() == 3


def test_run_arguments_that_are_not_plain_json_run_agent_run(fake_provider):
    agent = Agent("openai:gpt-4o-mini", deps_type=dict)
    runs = count_runs(agent)
    for _ in range(2):
        result = run(cached_agent_run(agent, "Deps", "whole", deps={"user": object()}))
    assert len(runs) == 2 and result.llm_cache.cache_hit
    settings = {"temperature": 0.5}
    for _ in range(2):
        result = run(cached_agent_run(agent, "Deps", "whole", model_settings=settings,
                                      usage_limits=None))
    assert len(runs) == 3 and result.llm_cache.cache_hit  # plain JSON: the second ran whole


def test_concurrent_whole_run_hits_are_each_their_own_result(fake_provider):
    ttl = timedelta(days=1)
    agent = Agent("openai:gpt-4o-mini", output_type=Profile)
    run(cached_agent_run(agent, "Many", "whole", ttl=ttl))
    runs = count_runs(agent)

    async def many():
        return await asyncio.gather(*[cached_agent_run(agent, "Many", "whole", ttl=ttl)
                                      for _ in range(20)])

    results = run(many())
    assert runs == [] and fake_provider.calls() == 1
    assert len({id(r.output) for r in results}) == 20
    assert all(r.output == results[0].output and r.llm_cache.cache_hit for r in results)


def test_a_fresh_copy_shares_only_what_never_changes():
    from dataclasses import dataclass, field

    @dataclass
    class Part:
        text: str
        details: dict = field(default_factory=dict)

    class Opaque:
        def __init__(self) -> None:
            self.items = [1]

    stamp = datetime.now(timezone.utc)
    value = {"parts": [Part("a", {"when": stamp, "list": [1, 2]})], "pair": (Part("b"), 1),
             "opaque": Opaque(), "cost": Decimal("0.5"), "name": "x"}
    copied = plan(value)(value)
    assert copied["parts"] == value["parts"] and copied["parts"][0] is not value["parts"][0]
    assert copied["parts"][0].details is not value["parts"][0].details
    assert copied["parts"][0].details["list"] is not value["parts"][0].details["list"]
    assert copied["parts"][0].details["when"] is stamp and copied["cost"] is value["cost"]
    assert copied["pair"][0] is not value["pair"][0] and copied["pair"][0] == value["pair"][0]
    assert copied["opaque"] is not value["opaque"]  # copy.deepcopy
    assert copied["opaque"].items == [1] and copied["opaque"].items is not value["opaque"].items
    assert plan("text") is None and plan((1, "a", stamp)) is None  # shared: never changed


def _agents_not_answered_whole():
    from pydantic_ai import NativeOutput, ToolOutput

    validated = Agent("openai:gpt-4o-mini", output_type=Profile)
    validated.output_validator(lambda output: output)
    overridden = Agent("openai:gpt-4o-mini")
    prepared = Agent("openai:gpt-4o-mini")

    async def only_sometimes(ctx, definition):
        return definition

    @prepared.tool_plain(prepare=only_sometimes)
    def sometimes() -> str:
        """A tool whose definition a function prepares for each run."""
        return "x"

    return {
        "an output validator": (validated, {}),
        "ToolOutput": (Agent("openai:gpt-4o-mini", output_type=ToolOutput(Profile)), {}),
        "NativeOutput": (Agent("openai:gpt-4o-mini", output_type=NativeOutput(Profile)), {}),
        "a list of outputs": (Agent("openai:gpt-4o-mini", output_type=[Profile, str]), {}),
        "a prepared tool": (prepared, {}),
        "an override": (overridden, {}),
        "metadata from a function": (Agent("openai:gpt-4o-mini", metadata=lambda ctx: {}), {}),
        "deps": (Agent("openai:gpt-4o-mini"), {"deps": object()}),
        "a subclass of Agent": (type("MyAgent", (Agent,), {})("openai:gpt-4o-mini"), {}),
    }


def test_what_the_whole_run_hit_does_not_take(fake_provider):
    cases = _agents_not_answered_whole()
    overridden = cases["an override"][0]
    with overridden.override(instructions="Overridden."):
        for name, (agent, kwargs) in cases.items():
            assert _whole_run.fingerprint(agent, "Hi", [], kwargs) is None, name
    assert _whole_run.fingerprint(overridden, "Hi", [], {}) is not None  # once it is over
    assert _whole_run.fingerprint(Agent("openai:gpt-4o-mini"), ["Hi"], [], {}) is None
    plain = Agent("openai:gpt-4o-mini", output_type=list[int], model_settings={"seed": 1})
    assert _whole_run.fingerprint(plain, "Hi", [], {"model_settings": {"top_p": 1}}) is not None
