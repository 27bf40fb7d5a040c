"""The whole-run hit: a repeated cached_agent_run answered without running ``agent.run``.

A hit that replays ``agent.run`` step by step (each provider request answered by the core)
costs what pydantic_ai's run costs, about 1.8 ms here, where the original library's hit (a
Redis GET and an unpickle of the whole result) skips ``agent.run`` and costs about 0.1 ms.
So, after a run through ``agent.run``, cached_agent_run remembers in this process (at most
MEMO_LIMIT runs, the oldest forgotten first) the run's record under its fingerprint: each
provider request of the run as the core saw it (method, URL, headers, body) with the bytes of
the answer, and the run's result as pydantic_ai's own JSON (``AgentRunResult``'s serializer).

A later call with the same fingerprint hands each recorded request to the core
(``_core.from_memory``, as the hit fast path does): the key, the entry, the mode, the tenant,
the namespace, the TTL, the signing and the costs stay the core's, and nothing is decided here.
When every answer's bytes are the recorded ones, ``agent.run`` would replay to the recorded
result, so a new result object is returned: a copy (_fresh_copy.py) of the result rebuilt once
from the JSON, never the same mutable object twice. Anything else (an answer not in the core's
memory, another answer, an error) runs ``agent.run``.

The fingerprint: the agent object and its shape (its model object, model name and base URL, its
literal instructions and system prompts, its tools, its output type, model settings, metadata,
retries), the prompt, the history, and the keyword arguments for ``agent.run`` (plain JSON only).
Runs whose replay could differ from their record are never remembered (``agent_shape``,
``remember``): an agent with system prompt or instruction functions, toolsets other than its own
function tools, tools with a prepare function, output validators, an output type that is not
a type (output functions, ToolOutput, ...), capabilities of its own, event hooks, instrumentation or an active ``override``; a run that called one of the
agent's function tools (a tool has side effects: such runs replay step by step, and the tool
runs again); a run with a request the cache did not handle, a streamed answer or an error.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import typing
import weakref
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping, Sequence

from . import _core
from ._fresh_copy import ResultCopier
from ._transport import RunScope, call_core

#: Runs remembered in this process (the oldest is forgotten first).
MEMO_LIMIT = 256
#: False: every run runs agent.run (the step-by-step replay); for tests and benchmarks of it.
ENABLED = True



@dataclass(frozen=True)
class _Step:
    method: str
    url: str
    headers: list[tuple[str, str]] = field(repr=False)  # the credential: never in a repr
    body: bytes = field(repr=False)
    answer: bytes = field(repr=False)  # the bytes of the core's answer when it was recorded


@dataclass(frozen=True)
class _Record:
    agent: weakref.ref
    shape: tuple
    keep: tuple  # the objects whose ids are in the shape, alive while the record is
    steps: tuple[_Step, ...]
    #: Copies of the result as a hit gives it (the run's responses priced 0), rebuilt from
    #: pydantic_ai's JSON of the run's result: each hit returns a new one (_fresh_copy.py).
    new_result: ResultCopier
    model_name: str


@dataclass(frozen=True)
class Fingerprint:
    key: tuple
    shape: tuple
    keep: tuple


_memo: dict[tuple, _Record] = {}
_overrides: tuple[str, ...] | None = None
_adapters: dict[int, tuple[Any, Any]] = {}
_Agent: Any = None  # pydantic_ai's Agent and Model, imported on first use
_Model: Any = None
#: The capabilities pydantic_ai gives every agent; an agent with any other runs agent.run.
_plain_capabilities: tuple[type, ...] = ()


class _NotPlain(TypeError):
    pass


def _refuse(value: Any) -> Any:
    raise _NotPlain(type(value).__name__)


def _plain_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_refuse, ensure_ascii=False, allow_nan=False)


def _is_plain_output_type(output_type: Any) -> bool:
    """A type (str, a pydantic model, a dataclass, list[int], a Union, ...): pydantic_ai
    validates the model's answer into it. Output functions and output markers (ToolOutput,
    TextOutput, a list of outputs, ...) are not taken."""
    return isinstance(output_type, type) or typing.get_origin(output_type) is not None


def _static_texts(instructions: Sequence[Any]) -> tuple[str, ...] | None:
    texts = tuple(getattr(item, "instruction", None) for item in instructions)
    return texts if all(type(text) is str for text in texts) else None


def _changes_runs(agent: Any) -> bool:
    """What makes a run depend on more than its inputs and the provider's answers, or makes
    running it do more than asking the provider."""
    global _overrides
    if _overrides is None:
        _overrides = tuple(name for name in vars(agent) if name.startswith("_override_"))
    return bool(
        agent._system_prompt_functions or agent._system_prompt_dynamic_functions
        or agent._dynamic_toolsets or agent._user_toolsets or agent._cap_toolsets
        or agent._output_validators or agent._event_stream_handler is not None
        or agent._instrument or type(agent)._instrument_default or agent._entered_count
        or agent._validation_context is not None
        or callable(agent.model_settings) or callable(agent._metadata)
        or any(agent._event_hooks._registry.values())
        or any(type(c) not in _plain_capabilities for c in agent._root_capability.capabilities)
        or _overridden(agent))


def _overridden(agent: Any) -> bool:
    """An ``agent.override(...)`` is in effect in this context."""
    for name in _overrides:
        if getattr(agent, name).get() is not None:
            return True
    return False


def agent_shape(agent: Any) -> tuple[tuple, tuple] | None:
    """(shape, objects it names by id), or None when a run of this agent must run agent.run."""
    global _Agent, _Model, _plain_capabilities
    if _Agent is None:
        try:
            from pydantic_ai.capabilities._pending_messages import PendingMessageDrainCapability
            from pydantic_ai.capabilities._tool_search import ToolSearch
            _plain_capabilities = (ToolSearch, PendingMessageDrainCapability)
        except ImportError:  # another pydantic_ai: its agents' capabilities are unknown here
            pass
        from pydantic_ai import Agent as _Agent
        from pydantic_ai.models import Model as _Model
    if type(agent) is not _Agent:
        return None
    try:
        if _changes_runs(agent):
            return None
        model, output_type = agent._model, agent._output_type
        instructions = _static_texts(agent._instructions)
        from_capabilities = _static_texts(agent._cap_instructions)
        tools = agent._function_toolset.tools
        if (not isinstance(model, _Model) or instructions is None or from_capabilities is None
                or not _is_plain_output_type(output_type)
                or any(tool.prepare is not None for tool in tools.values())):
            return None
        settings = (agent.model_settings, agent._cap_model_settings, agent._metadata)
        settings = _plain_json(settings) if any(item is not None for item in settings) else ""
        # The client's base URL object (OpenAI's and Anthropic's SDKs make a new one when it is
        # set): the endpoint the recorded requests went to.
        endpoint = getattr(getattr(model, "client", None), "base_url", None)
        shape = (id(model), model.model_name, id(endpoint), instructions,
                 from_capabilities, agent._system_prompts, id(output_type),
                 tuple((name, id(tool)) for name, tool in tools.items()),
                 tuple(id(tool) for tool in agent._cap_native_tools), settings,
                 agent.end_strategy, agent._max_tool_retries, agent._max_output_retries,
                 agent._tool_timeout)
    except Exception:  # another pydantic_ai, a property that needs what is not there: no path
        return None
    return shape, (model, endpoint, output_type, tuple(tools.values()),
                   tuple(agent._cap_native_tools))


def role_and_content(message: Any) -> tuple[Any, Any]:
    """A history item's role ("user" when it has none) and content, from its attributes or its
    keys (a ModelMessage, a {"role", "content"} dict, ...)."""
    role = getattr(message, "role", None) or (message.get("role") if isinstance(
        message, Mapping) else None) or "user"
    content = getattr(message, "content", None)
    if content is None and isinstance(message, Mapping):
        content = message.get("content", "")
    return role, content


def _history_text(history: Sequence[Any]) -> str | None:
    """The history as cached_agent_run hands it to agent.run (_run._message_history), as text;
    None when an item is neither pydantic_ai's message nor a role and a content."""
    if not history:
        return ""
    from pydantic_ai.messages import ModelMessagesTypeAdapter, ModelRequest, ModelResponse
    items: list[Any] = []
    for message in history:
        if isinstance(message, (ModelRequest, ModelResponse)):
            items.append(ModelMessagesTypeAdapter.dump_json([message]).decode())
            continue
        role, content = role_and_content(message)
        if not isinstance(role, str) or not isinstance(content, (str, int, float)):
            return None
        items.append([role, str(content)])
    return json.dumps(items, ensure_ascii=False)


def fingerprint(agent: Any, prompt: Any, history: Sequence[Any],
                run_kwargs: Mapping[str, Any]) -> Fingerprint | None:
    """The run's fingerprint, or None when this run must run agent.run (module text)."""
    if not ENABLED or type(prompt) is not str:
        return None
    shaped = agent_shape(agent)
    if shaped is None:
        return None
    history_text = _history_text(history)
    if history_text is None:
        return None
    try:
        kwargs_text = _plain_json(run_kwargs) if run_kwargs else ""
    except (_NotPlain, ValueError, TypeError):
        return None
    return Fingerprint((id(agent), prompt, history_text, kwargs_text), *shaped)


async def replay(found: Fingerprint, agent: Any, options: Any, lookup: Any | None,
                 task_name: str) -> tuple[Any, list[Any], str] | None:
    """(a new result, the core's answers, the model's name) when the core answers every
    recorded request of the run with the recorded bytes; else None. ``lookup``: options
    without the ledger, for a run with one (the core's memory is then read first without
    writing the ledger, and each request then goes through the core's full path, which writes
    it)."""
    record = _memo.get(found.key)
    if record is None or record.agent() is not agent or record.shape != found.shape:
        return None
    answers = []
    for step in record.steps:
        answer = _core.from_memory(lookup or options, step.method, step.url, step.headers,
                                   step.body)
        if answer is None or answer.status != 200 or answer.body != step.answer:
            return None
        answers.append(answer)
    if lookup is not None:
        scope = RunScope(options, task_name)
        answers = [await call_core(scope, step.method, step.url, step.headers, step.body)
                   for step in record.steps]
        if any(a.status != 200 or a.body != s.answer for a, s in zip(answers, record.steps)):
            return None
    return record.new_result(), answers, record.model_name


def _adapter(output_type: Any) -> Any:
    known = _adapters.get(id(output_type))
    if known is None or known[0] is not output_type:
        from pydantic import TypeAdapter
        from pydantic_ai.run import AgentRunResult
        known = (output_type, TypeAdapter(AgentRunResult[output_type]))
        _adapters[id(output_type)] = known
    return known[1]


def _called_function_tools(agent: Any, result: Any) -> bool:
    from pydantic_ai.messages import ModelResponse, ToolCallPart
    tools = agent._function_toolset.tools
    return any(isinstance(part, ToolCallPart) and part.tool_name in tools
               for message in result.new_messages() if isinstance(message, ModelResponse)
               for part in message.parts)


def _fixes(rebuilt: Any, result: Any) -> list[tuple[int, str, Any]] | None:
    """The message fields the JSON gave back different (a datetime in provider_details comes
    back a string), with their values; None when the messages differ otherwise."""
    fixes: list[tuple[int, str, Any]] = []
    mine, theirs = rebuilt.all_messages(), result.all_messages()
    if len(mine) != len(theirs):
        return None
    for index, (message, original) in enumerate(zip(mine, theirs)):
        if message == original:
            continue
        if type(message) is not type(original):
            return None
        for member in dataclasses.fields(original):
            value = getattr(original, member.name)
            if getattr(message, member.name) != value:
                if member.name in ("usage", "parts"):
                    return None
                fixes.append((index, member.name, copy.deepcopy(value)))
    return fixes


def _as_a_hit(adapter: Any, result: Any) -> Any | None:
    """The template of the result a hit gives: the result rebuilt from pydantic_ai's JSON, with
    the values JSON cannot carry (a datetime in provider_details comes back a string) put back,
    and each response of the run priced 0, as HitPricedModel prices a response the cache
    answered; None when it cannot equal ``result`` (an output type pydantic cannot rebuild from
    JSON, parts that come back different)."""
    from pydantic_ai.messages import ModelResponse
    template = adapter.validate_json(adapter.dump_json(result))
    if type(template.output) is not type(result.output) or template.output != result.output:
        return None
    fixes = _fixes(template, result)
    if fixes is None:
        return None
    messages = template.all_messages()
    for index, name, value in fixes:
        setattr(messages[index], name, value)
    if messages != result.all_messages():
        return None
    for message in template.new_messages():
        if isinstance(message, ModelResponse):
            message.usage.cost = Decimal(0)
    template.usage.cost = Decimal(0)
    return template


def remember(found: Fingerprint, agent: Any, model_name: str,
             steps: list[tuple[str, str, list, bytes, Any] | None], result: Any) -> None:
    """Keeps the record of a run that went through agent.run, when its replay is its record."""
    if MEMO_LIMIT <= 0 or not steps or any(
            step is None or step[4].status != 200
            or not step[4].content_type.startswith("application/json") for step in steps):
        return
    shaped = agent_shape(agent)  # the agent as it is after the run
    if shaped is None or shaped[0] != found.shape or _called_function_tools(agent, result):
        return
    try:
        adapter = _adapter(agent._output_type)
        template = _as_a_hit(adapter, result)
        if template is None:
            return
        new_result = ResultCopier(template)
        new_result()  # a template that cannot be copied is none
    except Exception:  # a result pydantic cannot write or read back: agent.run each time
        return
    while found.key not in _memo and len(_memo) >= MEMO_LIMIT:
        try:  # another thread's event loop may be forgetting the same one
            del _memo[next(iter(_memo))]
        except (KeyError, RuntimeError, StopIteration):
            pass
    _memo[found.key] = _Record(
        weakref.ref(agent), found.shape, found.keep,
        tuple(_Step(method, url, headers, body, answer.body)
              for method, url, headers, body, answer in steps),
        new_result, model_name)


def forget_all() -> None:
    """Forgets every remembered run (tests; an agent changed in a way its shape cannot see)."""
    _memo.clear()
