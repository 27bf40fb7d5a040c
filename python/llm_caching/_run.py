"""cached_agent_run: the original library's entry point, over the C++ core."""

from __future__ import annotations

import inspect
import json
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Awaitable, Callable, Mapping, Sequence

from . import _core, _fast_path, _whole_run
from ._transport import (CallRecord, RunScope, _reachable, current_run, install, record_call,
                         run_steps)
from .exceptions import ConfigurationError, Error
from .types import ModelCosts, ModelMessage

log = logging.getLogger("llm_caching")

ExpenseRecorder = Callable[[str, str, float], Awaitable[None] | None]
MessageConverter = Callable[[list[Any]], list[Any]]

_defaults: dict[str, Any] = {"cache_url": None, "mode": None, "namespace": None}


def configure(*, cache_url: str | None = None, mode: str | None = None,
              namespace: str | None = None) -> None:
    """Process-wide defaults for calls that do not name their own (the pytest plugin sets them
    from --llm-cache-url and --llm-cache-mode). None leaves the environment's: LLM_CACHE_REDIS_URL,
    LLM_CACHE_MODE."""
    _defaults.update(cache_url=cache_url, mode=mode, namespace=namespace)


@dataclass(frozen=True)
class RunInfo:
    """What a cached_agent_run did: ``result.llm_cache`` on what it returns."""

    calls: tuple[CallRecord, ...]

    @property
    def cache_hit(self) -> bool:
        """Every provider request of the run was answered from the cache (or by a concurrent
        identical call)."""
        return bool(self.calls) and all(c.cache_hit or c.coalesced for c in self.calls)

    @property
    def cost_nano_usd(self) -> int:
        return sum(c.cost_nano_usd for c in self.calls)

    @property
    def cost(self) -> float:
        """Dollars billed by this run (0 when the cache answered)."""
        return self.cost_nano_usd / 1e9

    @property
    def avoided_cost(self) -> float:
        """Dollars the cache saved: what the cached answers cost when they were made."""
        return sum(c.avoided_cost_nano_usd for c in self.calls) / 1e9

    @property
    def provider_calls(self) -> int:
        return sum(c.attempts for c in self.calls)

    @property
    def cache_keys(self) -> tuple[str, ...]:
        return tuple(c.cache_key for c in self.calls)


def _seconds(value: float | timedelta | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigurationError(f"{name} must be a duration >= 0 (seconds or timedelta), "
                                 f"not {value!r}")
    return seconds


def _rates(costs: Any, model: str) -> tuple[float, float, float, float]:
    if isinstance(costs, Mapping):
        costs = ModelCosts(**costs)
    if not isinstance(costs, ModelCosts):
        raise ConfigurationError(f"custom_costs['{model}'] must be a ModelCosts, not "
                                 f"{type(costs).__name__}")
    return (costs.cost_per_million_input_tokens, costs.cost_per_million_output_tokens,
            costs.cost_per_million_caching_input_tokens, costs.cost_per_million_caching_hit_tokens)


def default_message_converter(messages: list[Any]) -> list[ModelMessage]:
    """The original library's conversion: {"role", "content"} dicts keep their role (default
    "user"); anything else becomes a user message with its text (pydantic models as JSON)."""
    converted = []
    for item in messages:
        if isinstance(item, Mapping):
            content = item.get("content", "")
            text = content if isinstance(content, str) else json.dumps(content, sort_keys=True)
            converted.append(ModelMessage(role=str(item.get("role", "user")), content=text))
        elif hasattr(item, "model_dump_json"):
            converted.append(ModelMessage(role="user", content=item.model_dump_json()))
        else:
            converted.append(ModelMessage(role="user", content=str(item)))
    return converted


def _message_history(items: Sequence[Any]) -> list[Any]:
    """pydantic_ai's messages for the converted history; its own messages pass as they are."""
    from pydantic_ai.messages import (ModelRequest, ModelResponse, SystemPromptPart, TextPart,
                                      UserPromptPart)
    history: list[Any] = []
    for message in items:
        if isinstance(message, (ModelRequest, ModelResponse)):
            history.append(message)
            continue
        role, content = _whole_run.role_and_content(message)
        if role == "assistant":
            history.append(ModelResponse(parts=[TextPart(content=str(content))]))
        elif role == "system":
            history.append(ModelRequest(parts=[SystemPromptPart(content=str(content))]))
        else:
            history.append(ModelRequest(parts=[UserPromptPart(content=str(content))]))
    return history


def _resolved_model(agent: Any) -> Any:
    model = getattr(agent, "model", None)
    if model is None:
        raise ConfigurationError("the agent has no model: give Agent(...) one, e.g. "
                                 "Agent('openai:gpt-4o-mini')")
    if isinstance(model, str):
        from pydantic_ai.models import infer_model
        model = infer_model(model)
    # pydantic_ai gives a provider a new HTTP client when a run is on another event loop than
    # the last; do that now, so that the client this run uses is the one wrapped below.
    refresh = getattr(model, "_refresh_http_client", None)
    if callable(refresh):
        refresh()
    reachable = _reachable(model)
    _fast_path.install(reachable)
    if install(model, reachable) == 0:
        log.warning("llm_caching: model %r sends no HTTP requests the cache can see; "
                    "its calls are not cached", getattr(model, "model_name", model))
    return model


async def _record_expense(recorder: ExpenseRecorder | None, model: str, task_name: str,
                          cost: float) -> None:
    if recorder is None:
        return
    try:
        outcome = recorder(model, task_name, cost)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception:  # the answer is paid for and cached: a failing recorder must not lose it
        log.exception("llm_caching: expense recorder failed for task '%s' (%s)", task_name, model)


def _core_error(exc: BaseException) -> Error | None:
    """Our error inside an SDK's or pydantic_ai's wrapping, if there is one."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, Error):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


async def cached_agent_run(
    agent: Any,
    prompt: str,
    task_name: str,
    transcript_history: list[Any] | None = None,
    message_converter: MessageConverter | None = None,
    expense_recorder: ExpenseRecorder | None = None,
    redis_url: str | None = None,
    custom_costs: Mapping[str, ModelCosts] | None = None,
    max_wait: float = 10.0,
    initial_wait: float = 1.0,
    *,
    cache_url: str | None = None,
    mode: str | None = None,
    namespace: str | None = None,
    ttl: float | timedelta = timedelta(days=15),
    stale_while_revalidate: float | timedelta | None = None,
    stale_if_error: float | timedelta | None = None,
    strict_cache: bool = False,
    coalesce: bool = True,
    ledger: bool = False,
    tenant: str = "",
    tags: Sequence[str] = (),
    budgets: Sequence[str] = (),
    **run_kwargs: Any,
) -> Any:
    """Runs ``agent.run(prompt, message_history=...)`` with every provider request it makes
    answered from the cache when it can be. Returns what ``agent.run`` returns, with
    ``result.llm_cache`` (a RunInfo: cache_hit, cost, avoided_cost, calls).

    The original library's arguments keep their names and meaning; ``cache_url`` (any URL the C++
    library takes: sqlite:///, memory://, dir://, redis://, rediss://, redis+sentinel://) wins
    over ``redis_url``, then LLM_CACHE_REDIS_URL, then the embedded SQLite file. Further keyword
    arguments (deps, output_type, model_settings, ...) go to ``agent.run``. ``ledger`` writes a
    record of each provider request into the cache's ledger (``llm-caching costs`` reports it),
    with ``tenant`` and ``tags``; ``budgets`` ("task=nightly:20usd/day", ...) refuse a request
    whose worst case would pass one, with BudgetExceededError, before the provider is called."""
    if not task_name:
        raise ConfigurationError("task_name must be a non-empty string")
    settings = [
        cache_url or redis_url or _defaults["cache_url"] or "", mode or _defaults["mode"],
        namespace if namespace is not None else (_defaults["namespace"] or ""),
        _seconds(ttl, "ttl"), _seconds(max_wait, "max_wait"),
        _seconds(initial_wait, "initial_wait"), strict_cache, coalesce,
        _seconds(stale_while_revalidate, "stale_while_revalidate"),
        _seconds(stale_if_error, "stale_if_error"),
        {name: _rates(costs, name) for name, costs in (custom_costs or {}).items()},
        ledger, tenant, list(tags), list(budgets)]
    options = _make_options(settings)
    history = (message_converter or default_message_converter)(list(transcript_history or []))
    whole = _whole_run.fingerprint(agent, prompt, history, run_kwargs)
    if whole is not None:
        result = await _answered_whole(whole, agent, settings, options, task_name,
                                       expense_recorder)
        if result is not None:
            return result
    model = _resolved_model(agent)
    from ._hit_priced import HitPricedModel  # imports pydantic_ai, as agent.run will
    scope = RunScope(options, task_name)
    steps: list | None = [] if whole is not None else None
    token, steps_token = current_run.set(scope), run_steps.set(steps)
    try:
        result = await agent.run(prompt, message_history=_message_history(history) or None,
                                 model=HitPricedModel(model), **run_kwargs)
    except Error:
        raise
    except Exception as exc:
        ours = _core_error(exc)
        if ours is not None:
            raise ours from exc
        raise
    finally:
        run_steps.reset(steps_token)
        current_run.reset(token)
    model_name = getattr(model, "model_name", str(model))
    if whole is not None:
        _whole_run.remember(whole, agent, model_name, steps, result)
    return await _finish(result, RunInfo(tuple(scope.calls)), expense_recorder, model_name,
                         task_name)


async def _answered_whole(whole: _whole_run.Fingerprint, agent: Any, settings: list[Any],
                          options: Any, task_name: str,
                          recorder: ExpenseRecorder | None) -> Any | None:
    """The whole-run hit's result (llm_caching/_whole_run.py), or None: run agent.run."""
    ledger = settings[11]
    # A run with a ledger reads the core's memory without writing it first (_whole_run.replay).
    lookup = _make_options(settings[:11] + [False] + settings[12:]) if ledger else None
    replayed = await _whole_run.replay(whole, agent, options, lookup, task_name)
    if replayed is None:
        return None
    result, answers, model_name = replayed
    return await _finish(result, RunInfo(tuple(record_call(a) for a in answers)), recorder,
                         model_name, task_name)


def _make_options(settings: list[Any]) -> Any:
    try:
        return _core.make_options(*settings)
    except RuntimeError as error:  # the core's ConfigurationError: names the setting
        raise ConfigurationError(str(error)) from None


async def _finish(result: Any, info: RunInfo, recorder: ExpenseRecorder | None, model_name: str,
                  task_name: str) -> Any:
    try:
        result.llm_cache = info
    except AttributeError:  # a result type without attributes of its own
        pass
    await _record_expense(recorder, model_name, task_name, info.cost)
    return result
