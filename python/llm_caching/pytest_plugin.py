"""The pytest plugin (entry point ``pytest11``): a test suite records its agents' answers once
and replays them in CI with no keys.

    pytest --llm-cache-url dir://tests/llm-cache --llm-cache-mode use          # record
    pytest --llm-cache-url dir://tests/llm-cache --llm-cache-mode replay_only  # CI, no keys

Every cached_agent_run in the session that names no cache_url or mode takes these. In
replay_only a missing answer fails the test with CacheMissError naming the task, the call and
the key; the provider is never called, so placeholder keys are set for the SDKs that insist on
one. The ini options ``llm_cache_url`` and ``llm_cache_mode`` work as the flags do.
"""

from __future__ import annotations

import os

import pytest

from . import _run

_MODES = ("use", "refresh", "bypass", "read_only", "replay_only")
_KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llm-caching", "llm-caching: recorded LLM answers")
    group.addoption("--llm-cache-mode", choices=_MODES, default=None,
                    help="cache mode of every cached_agent_run that sets none: use (record what "
                         "is missing), refresh, bypass, read_only, replay_only (CI: never call "
                         "the provider). Default: LLM_CACHE_MODE, else use.")
    group.addoption("--llm-cache-url", default=None,
                    help="cache of every cached_agent_run that names none, e.g. "
                         "dir://tests/llm-cache (files to commit). Default: "
                         "LLM_CACHE_REDIS_URL, else the embedded SQLite file.")
    parser.addini("llm_cache_mode", "default of --llm-cache-mode", default=None)
    parser.addini("llm_cache_url", "default of --llm-cache-url", default=None)


def _setting(config: pytest.Config, name: str) -> str | None:
    value = config.getoption("--" + name.replace("_", "-")) or config.getini(name)
    return value or None


def pytest_configure(config: pytest.Config) -> None:
    mode = _setting(config, "llm_cache_mode")
    url = _setting(config, "llm_cache_url")
    if mode is not None and mode not in _MODES:
        raise pytest.UsageError(f"llm_cache_mode = {mode!r}: use one of {', '.join(_MODES)}")
    if url is not None and url.startswith("dir://") and not url.startswith("dir:///"):
        # Relative to the suite's root, not to wherever pytest was started.
        url = "dir://" + os.path.join(str(config.rootpath), url[len("dir://"):])
    if mode is None and url is None:
        return
    _run.configure(cache_url=url, mode=mode)
    if (mode or os.environ.get("LLM_CACHE_MODE")) == "replay_only":
        for variable in _KEY_VARIABLES:
            os.environ.setdefault(variable, "llm-cache-replay-only-no-key")


def pytest_report_header(config: pytest.Config) -> list[str]:
    mode = _setting(config, "llm_cache_mode")
    url = _setting(config, "llm_cache_url")
    if mode is None and url is None:
        return []
    return [f"llm-caching: mode={mode or 'use'} cache={url or '(default)'}"]
