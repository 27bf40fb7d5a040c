"""The price of a hit as pydantic_ai reports it (``result.usage().cost``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic_ai.models.wrapper import WrapperModel

from ._transport import current_run


class HitPricedModel(WrapperModel):
    """The agent's model as cached_agent_run hands it to ``agent.run``: a response whose every
    provider request the cache answered is priced at what it billed, 0, the way pydantic_ai
    takes a gateway's cache hit. Left to itself, pydantic_ai would estimate with genai-prices
    what the original call cost: a figure nobody paid this time, and about a tenth of a hit's
    time (docs/PERFORMANCE.md). A response with a provider call in it keeps pydantic_ai's
    estimate, as before; so does a streamed response."""

    async def request(self, messages: Any, model_settings: Any,
                      model_request_parameters: Any) -> Any:
        scope = current_run.get()
        first = len(scope.calls) if scope is not None else 0
        response = await self.wrapped.request(messages, model_settings, model_request_parameters)
        if scope is not None and response.usage.cost is None:
            made = scope.calls[first:]
            if made and all((call.cache_hit or call.coalesced) and call.cost_nano_usd == 0
                            for call in made):
                response.usage.cost = Decimal(0)
        return response
