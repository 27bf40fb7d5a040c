"""The pytest plugin: a suite records its answers into dir:// files with a key, then replays
them with no key and no provider."""

from __future__ import annotations

import os

import pytest

SUITE = '''
import asyncio
from pydantic_ai import Agent
from llm_caching import cached_agent_run

def test_asks():
    result = asyncio.run(cached_agent_run(Agent("openai:gpt-4o-mini"), "What is 2+2?", "math"))
    assert result.output.startswith("echo: What is 2+2?")
'''


def test_a_suite_records_then_replays_without_keys(pytester: pytest.Pytester, fake_provider,
                                                   monkeypatch: pytest.MonkeyPatch):
    pytester.makepyfile(test_suite=SUITE)
    plugin = ["-p", "llm_caching.pytest_plugin"]
    recorded = pytester.runpytest_subprocess(*plugin, "--llm-cache-url", "dir://llm-cache",
                                             "--llm-cache-mode", "use")
    recorded.assert_outcomes(passed=1)
    assert any("llm-caching: mode=use cache=dir://llm-cache" in line
               for line in recorded.outlines)
    files = list((pytester.path / "llm-cache").rglob("*.json"))
    assert len(files) == 1 and "sk-test" not in files[0].read_text()
    assert '"task": "math"' in files[0].read_text()  # the task that recorded it
    assert fake_provider.calls() == 1

    # CI: no key. (The base URL stays: an endpoint other than the recording's is another key.)
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    before = os.listdir(pytester.path / "llm-cache")
    replayed = pytester.runpytest_subprocess(*plugin, "--llm-cache-url", "dir://llm-cache",
                                             "--llm-cache-mode", "replay_only")
    replayed.assert_outcomes(passed=1)
    assert os.listdir(pytester.path / "llm-cache") == before
    assert fake_provider.calls() == 1  # the replay never reached the provider


def test_replay_only_fails_a_test_whose_answer_was_never_recorded(pytester: pytest.Pytester,
                                                                  fake_provider):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-p", "llm_caching.pytest_plugin", "--llm-cache-url",
                                           "dir://empty-cache", "--llm-cache-mode",
                                           "replay_only")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CacheMissError*task 'math'*"])
    assert fake_provider.calls() == 0


CHANGED_SUITE = SUITE.replace("What is 2+2?", "What is 2+3?")


def test_a_replay_miss_names_the_nearest_recording_and_what_changed(
        pytester: pytest.Pytester, fake_provider, monkeypatch: pytest.MonkeyPatch):
    plugin = ["-p", "llm_caching.pytest_plugin", "--llm-cache-url", "dir://llm-cache"]
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest_subprocess(*plugin, "--llm-cache-mode", "use").assert_outcomes(passed=1)
    recorded = list((pytester.path / "llm-cache").rglob("*.json"))
    assert len(recorded) == 1
    assert '"content": "What is 2+2?"' in recorded[0].read_text()  # the request, reviewable

    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    pytester.makepyfile(test_suite=CHANGED_SUITE)
    result = pytester.runpytest_subprocess(*plugin, "--llm-cache-mode", "replay_only")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*CacheMissError*task 'math'*",
        f"*nearest recorded entry: llm-caching:v1:*{recorded[0].name}*",
        '*.content: "What is 2+2?" → "What is 2+3?"*',
    ])
    assert fake_provider.calls() == 1


def test_the_plugin_options_show_in_help(pytester: pytest.Pytester):
    result = pytester.runpytest_subprocess("-p", "llm_caching.pytest_plugin", "--help")
    result.stdout.fnmatch_lines(["*--llm-cache-mode*", "*--llm-cache-url*"])
