"""llm-caching: a cache for LLM calls with cost tracking and rate-limit handling.

``await cached_agent_run(agent, prompt, task_name, ...)`` runs a pydantic_ai agent with each of
its provider requests answered from the cache when it can be, on the C++ core: stable keys, no
pickle, single-flight, retries with backoff and exact costs. See docs/PYTHON.md.
"""

from __future__ import annotations

import atexit

from . import _core
from ._embed import EmbedResult, cached_embed, cached_embed_sync
from ._run import RunInfo, cached_agent_run, configure, default_message_converter
from ._transport import CachingTransport, CallRecord
from .exceptions import (BudgetExceededError, CacheError, CacheMissError, ConfigurationError,
                         Error, ProviderError, RateLimitError)
from .types import ModelCosts, ModelMessage

__version__ = "0.1.0"

# The core's I/O thread finishes the calls in flight, then stops, before the interpreter does.
atexit.register(_core.shutdown)

__all__ = [
    "cached_agent_run", "cached_embed", "cached_embed_sync", "EmbedResult", "configure", "default_message_converter", "RunInfo", "CallRecord",
    "CachingTransport", "ModelCosts", "ModelMessage", "Error", "ConfigurationError",
    "RateLimitError", "CacheError", "CacheMissError", "BudgetExceededError", "ProviderError",
    "__version__",
]
