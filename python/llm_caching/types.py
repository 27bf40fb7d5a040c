"""The original library's types: ModelMessage (what a message_converter returns) and ModelCosts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelMessage:
    """One message of a transcript, provider-neutral: role is "user", "assistant" or "system"."""

    role: str
    content: str


@dataclass(frozen=True)
class ModelCosts:
    """Dollars per million tokens, by the original library's names."""

    cost_per_million_input_tokens: float
    cost_per_million_output_tokens: float
    #: tokens written to the provider's prompt cache
    cost_per_million_caching_input_tokens: float = 0.0
    #: tokens read from the provider's prompt cache
    cost_per_million_caching_hit_tokens: float = 0.0


__all__ = ["ModelMessage", "ModelCosts"]
