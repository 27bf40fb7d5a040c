"""The httpx transport that hands each provider request of an SDK to the C++ core.

pydantic_ai's OpenAI, Anthropic and Google models talk through httpx2 clients; their requests
arrive here, and a request the cache knows (chat, responses, messages, generateContent, ...) is
run through ``cached_http_call`` in C++: key, tiers, single-flight, retries and costs are the
core's. Anything else (uploads, embeddings, GET) goes to the wrapped transport unchanged.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from dataclasses import dataclass, field
from typing import Any

import httpx2

from . import _core
from .exceptions import from_core


@dataclass
class CallRecord:
    """What one provider request of a run cost, and whether the cache answered it."""

    provider: str
    model: str
    cache_hit: bool
    coalesced: bool
    stale: bool
    cost_nano_usd: int
    avoided_cost_nano_usd: int
    cache_key: str
    attempts: int
    #: (input, output, cache write, cache read, requests) tokens and provider requests
    usage: tuple[int, int, int, int, int]


@dataclass
class RunScope:
    """The options of the run in progress (a context variable: each asyncio task its own)."""

    options: Any  # _core.CallOptions
    task_name: str
    calls: list[CallRecord] = field(default_factory=list)


current_run: contextvars.ContextVar[RunScope | None] = contextvars.ContextVar(
    "llm_caching_run", default=None)

#: Set by the hit fast path (_fast_path.py) while the SDK sends a request: the requests the
#: transport handed to the core, with the core's answers, as (method, url, headers, body, result).
captured: contextvars.ContextVar[list[tuple[str, str, list, bytes, Any]] | None] = (
    contextvars.ContextVar("llm_caching_captured", default=None))

#: Set by cached_agent_run while a run it may remember whole (_whole_run.py) is in progress: each
#: provider request of the run in order, as (method, url, headers, body, result); None for a
#: request the cache did not handle (the run then cannot be replayed whole).
run_steps: contextvars.ContextVar[list[tuple[str, str, list, bytes, Any] | None] | None] = (
    contextvars.ContextVar("llm_caching_run_steps", default=None))


def record_call(result: Any) -> CallRecord:
    """The CallRecord of one of the core's answers (a _core.CallResult)."""
    return CallRecord(result.provider, result.model, result.cache_hit, result.coalesced,
                      result.stale, result.cost_nano_usd, result.avoided_cost_nano_usd,
                      result.cache_key, result.attempts, result.usage)


def _settle(future: asyncio.Future, result: Any, error: Any) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(from_core(error))
    else:
        future.set_result(result)


async def call_core(scope: RunScope, method: str, url: str, headers: list[tuple[str, str]],
                    body: bytes) -> Any:
    """Runs one request through the core without blocking the event loop."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def done(result: Any, error: Any) -> None:  # on the core's I/O thread, with the GIL
        loop.call_soon_threadsafe(_settle, future, result, error)

    _core.submit(scope.options, method, url, headers, body, scope.task_name, done)
    return await future


def _cache_status(result: Any) -> str:
    if result.stale:
        return "STALE"
    if result.coalesced:
        return "COALESCED"
    return "HIT" if result.cache_hit else "MISS"


class CachingTransport(httpx2.AsyncBaseTransport):
    """Wraps an httpx2 (or legacy httpx) async transport. Requests made while a
    ``cached_agent_run`` is in progress in this task go through the cache; others, and requests
    the cache does not handle, go to ``inner`` as they are. ``scope`` gives it options of its
    own, for use outside cached_agent_run (an SDK client made with this transport)."""

    def __init__(self, inner: Any = None, scope: RunScope | None = None) -> None:
        self.inner = inner if inner is not None else httpx2.AsyncHTTPTransport()
        self._scope = scope

    async def handle_async_request(self, request: Any) -> Any:
        scope = current_run.get() or self._scope
        if scope is None:
            return await self.inner.handle_async_request(request)
        body = await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        method, url = request.method, str(request.url)
        # A hit in the cache's memory is answered here, on the event loop's thread: no hop to
        # the core's I/O thread and back. Anything else goes there.
        result = _core.from_memory(scope.options, method, url, headers, body)
        if result is None:
            result = await call_core(scope, method, url, headers, body)
        steps = run_steps.get()
        if not result.handled:
            if steps is not None:
                steps.append(None)
            return await self.inner.handle_async_request(request)
        scope.calls.append(record_call(result))
        for seen in (captured.get(), steps):
            if seen is not None:
                seen.append((method, url, headers, body, result))
        response_headers = [("content-type", result.content_type),
                            ("x-llm-cache", _cache_status(result))]
        if result.status >= 400:
            # The core already retried: the SDK must not multiply its retries by its own.
            response_headers.append(("x-should-retry", "false"))
        # The response type of the client's own library (httpx2, or legacy httpx).
        library = sys.modules[type(request).__module__.split(".")[0]]
        return library.Response(result.status, headers=response_headers, content=result.body,
                                request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _reachable(model: Any) -> list[Any]:
    """The objects through which a pydantic_ai model sends its requests: the model, the models
    it wraps, their SDK clients and those clients' httpx clients."""
    found: list[Any] = []
    seen: set[int] = set()

    def visit(obj: Any, depth: int) -> None:
        if obj is None or id(obj) in seen or depth > 4:
            return
        seen.add(id(obj))
        found.append(obj)
        if _is_http_client(obj):
            return
        wrapped_models = getattr(obj, "models", None)  # FallbackModel's list
        if isinstance(wrapped_models, (list, tuple)):
            for wrapped in wrapped_models:
                visit(wrapped, depth + 1)
        # WrapperModel (instrumentation), the SDK client, its httpx client (OpenAI, Anthropic:
        # client._client; google-genai: client._api_client._async_httpx_client).
        for name in ("wrapped", "client", "_client", "_api_client", "_async_httpx_client"):
            try:
                visit(getattr(obj, name, None), depth + 1)
            except Exception:  # a property that needs configuration we do not have
                pass

    visit(model, 0)
    return found


def _is_http_client(obj: Any) -> bool:
    return type(obj).__name__ == "AsyncClient" and hasattr(obj, "_transport")


def install(model: Any, reachable: list[Any] | None = None) -> int:
    """Puts a CachingTransport in front of each of the model's httpx clients (once); returns
    how many clients the model has. ``reachable``: the model's objects, when already walked."""
    clients = [obj for obj in (reachable if reachable is not None else _reachable(model))
               if _is_http_client(obj)]
    for client in clients:
        if not isinstance(client._transport, CachingTransport):
            client._transport = CachingTransport(client._transport)
        mounts = getattr(client, "_mounts", {})
        for pattern, transport in list(mounts.items()):
            if transport is not None and not isinstance(transport, CachingTransport):
                mounts[pattern] = CachingTransport(transport)
    return len(clients)
