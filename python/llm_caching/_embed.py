"""cached_embed: embeddings through the cache, one entry per text, on the C++ core (the same keys
as the gateway's embeddings routes and the C++ library's cached_embed)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping, Sequence

from . import _core
from ._run import _defaults, _rates, _seconds
from .exceptions import ConfigurationError, from_core
from .types import ModelCosts


@dataclass(frozen=True)
class EmbedResult:
    """What a cached_embed did: the embeddings in the texts' order, and how they were found."""

    embeddings: list[list[float]]
    cached: int  # texts answered from the cache
    coalesced: int  # texts another concurrent call in this process fetched
    sent: int  # texts sent to the provider
    input_tokens: int  # the provider's tokens for what was sent
    cost_nano_usd: int
    avoided_cost_nano_usd: int
    cache_keys: list[str]
    attempts: int

    @property
    def cost(self) -> float:
        """Dollars billed: what was sent."""
        return self.cost_nano_usd / 1e9

    @property
    def avoided_cost(self) -> float:
        """Dollars the cached texts cost when they were sent."""
        return self.avoided_cost_nano_usd / 1e9


def cached_embed_sync(
    model: str,
    texts: Sequence[str],
    task_name: str = "embed",
    *,
    base_url: str = "",
    api_key: str = "",
    dimensions: int | None = None,
    cache_url: str | None = None,
    mode: str | None = None,
    namespace: str | None = None,
    ttl: float | timedelta = timedelta(days=15),
    max_wait: float = 10.0,
    initial_wait: float = 1.0,
    strict_cache: bool = False,
    coalesce: bool = True,
    custom_costs: Mapping[str, ModelCosts] | None = None,
    ledger: bool = False,
    tenant: str = "",
    tags: Sequence[str] = (),
    budgets: Sequence[str] = (),
) -> EmbedResult:
    """Embeds ``texts`` with ``model`` ("openai:text-embedding-3-small",
    "google-gla:gemini-embedding-001", ...), each text cached apart: only the texts the cache does
    not hold go to the provider, in one request. The options mean what they mean for
    cached_agent_run. Raises the same errors (CacheMissError in mode "replay_only" when a text is
    not cached)."""
    if isinstance(texts, str):
        raise ConfigurationError("texts must be a list of strings, not one string")
    url = cache_url or _defaults["cache_url"] or ""
    try:
        options = _core.make_options(
            url, mode or _defaults["mode"], namespace if namespace is not None else
            (_defaults["namespace"] or ""), _seconds(ttl, "ttl"), _seconds(max_wait, "max_wait"),
            _seconds(initial_wait, "initial_wait"), strict_cache, coalesce, None, None,
            {name: _rates(costs, name) for name, costs in (custom_costs or {}).items()},
            ledger, tenant, list(tags), list(budgets))
    except RuntimeError as error:  # the core's ConfigurationError: names the setting
        raise ConfigurationError(str(error)) from None
    result, error = _core.embed_sync(options, model, list(texts), task_name, base_url, api_key,
                                     dimensions)
    if error is not None:
        raise from_core(error)
    return EmbedResult(*result)


async def cached_embed(model: str, texts: Sequence[str], task_name: str = "embed",
                       **options) -> EmbedResult:
    """cached_embed_sync on a worker thread (the core releases the GIL while it works)."""
    return await asyncio.to_thread(cached_embed_sync, model, list(texts), task_name, **options)
