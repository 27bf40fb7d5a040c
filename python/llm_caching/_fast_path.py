"""The hit fast path: an SDK call answered from the cache's memory without the SDK's HTTP round.

A hit through the transport alone still pays for the OpenAI SDK turning pydantic_ai's arguments
into an HTTP request (its TypedDict transform, headers, httpx's request and response objects)
and for parsing the recorded answer into the SDK's models: most of a hit's cost (docs/PYTHON.md,
"The hit fast path"). Here, the SDK's create methods (``client.responses.create``,
``client.chat.completions.create``) of a model's ``AsyncOpenAI`` client are wrapped, per client:

- the first call with given arguments runs the SDK as before, through the CachingTransport,
  which hands this module the HTTP request the SDK built and the answer the core gave it;
- a later call with the same arguments (compared as their JSON text: the SDK's request is a
  function of them and of the client's base URL and query) hands that same request to the core
  (``_core.from_memory``). The core keys it, as it keys every request, and answers from its
  memory; when the answer's bytes are those the SDK parsed the first time, the SDK's parsed
  object is returned again. Anything else (no answer in memory, another answer, a stream, a
  raw-response call, arguments that are not plain JSON) takes the SDK's own path.

Nothing about the cache is decided here: the key, the entry, the mode, the tiers and the costs
stay the core's, and the request the core sees is byte for byte the one the SDK sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from . import _core
from ._transport import captured, current_run, record_call, run_steps

#: Answers remembered per SDK method of a client (the oldest is forgotten first).
MEMO_LIMIT = 256


@dataclass(frozen=True)
class _Recorded:
    method: str
    url: str
    headers: list[tuple[str, str]] = field(repr=False)  # the credential: never in a repr
    body: bytes
    answer: bytes  # the response body the SDK parsed
    parsed: Any  # what the SDK's create returned for it


class _NotPlain(TypeError):
    pass


def _refuse(value: Any) -> Any:
    raise _NotPlain(type(value).__name__)


def _omitted(value: Any) -> bool:
    # openai's Omit and NotGiven sentinels: the SDK treats them as an absent argument.
    return type(value).__name__ in ("Omit", "NotGiven")


def _fingerprint(client: Any, kwargs: dict[str, Any]) -> str | None:
    """The arguments' JSON text with what else shapes the request (base URL, default query), or
    None when the call must take the SDK's path: a stream, a raw response, values that are not
    plain JSON (their text could not tell two requests apart)."""
    if kwargs.get("stream"):
        return None
    headers = kwargs.get("extra_headers")
    if headers and any("stainless" in str(name).lower() for name in headers):
        return None  # with_raw_response and friends: the caller wants the HTTP response
    plain = {name: value for name, value in kwargs.items() if not _omitted(value)}
    timeout = plain.pop("timeout", None)
    try:
        text = json.dumps(plain, default=_refuse, ensure_ascii=False, allow_nan=False)
        query = json.dumps(getattr(client, "_custom_query", None), default=_refuse)
    except (_NotPlain, ValueError, TypeError):
        return None
    return f"{client.base_url}\n{query}\n{timeout!r}\n{text}"


class FastCreate:
    """A wrapped SDK create method (see the module's text). Calls outside a cached_agent_run,
    and calls with positional arguments, go to the SDK as they are."""

    def __init__(self, create: Callable[..., Any], client: Any) -> None:
        self.create = create
        self.client = client
        self.memo: dict[str, _Recorded] = {}

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        scope = current_run.get()
        if scope is None or args:
            return await self.create(*args, **kwargs)
        fingerprint = _fingerprint(self.client, kwargs)
        if fingerprint is None:
            return await self.create(**kwargs)
        recorded = self.memo.get(fingerprint)
        if recorded is not None:
            result = _core.from_memory(scope.options, recorded.method, recorded.url,
                                       recorded.headers, recorded.body)
            if result is not None and result.status == 200 and result.body == recorded.answer:
                scope.calls.append(record_call(result))
                steps = run_steps.get()
                if steps is not None:
                    steps.append((recorded.method, recorded.url, recorded.headers, recorded.body,
                                  result))
                return recorded.parsed
        return await self._through_sdk(fingerprint, kwargs)

    async def _through_sdk(self, fingerprint: str, kwargs: dict[str, Any]) -> Any:
        seen: list[tuple[str, str, list, bytes, Any]] = []
        token = captured.set(seen)
        try:
            parsed = await self.create(**kwargs)
        finally:
            captured.reset(token)
        if len(seen) == 1:
            method, url, headers, body, result = seen[0]
            if result.status == 200 and result.content_type.startswith("application/json"):
                if fingerprint not in self.memo and len(self.memo) >= MEMO_LIMIT:
                    del self.memo[next(iter(self.memo))]
                self.memo[fingerprint] = _Recorded(method, url, headers, body, result.body, parsed)
        return parsed


def _is_openai_client(obj: Any) -> bool:
    return any(cls.__name__ == "AsyncOpenAI" and cls.__module__.startswith("openai")
               for cls in type(obj).__mro__)


def _wrap(resource: Any, client: Any) -> None:
    if not isinstance(resource.__dict__.get("create"), FastCreate):
        resource.create = FastCreate(resource.create, client)


def install(reachable: list[Any]) -> None:
    """Wraps the create methods of the OpenAI SDK clients among a model's objects (once)."""
    for client in reachable:
        if _is_openai_client(client):
            _wrap(client.responses, client)
            _wrap(client.chat.completions, client)

