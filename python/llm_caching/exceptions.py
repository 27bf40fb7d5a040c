"""The errors cached_agent_run raises: the original library's three, and ours."""

from __future__ import annotations


class Error(Exception):
    """Every error llm-caching raises."""


class ConfigurationError(Error):
    """A setting is missing or wrong: a cache URL, a price, a mode. The message names it."""


class RateLimitError(Error):
    """The provider kept answering 429 beyond ``max_wait``."""

    def __init__(self, message: str, attempts: int = 0, waited: float = 0.0,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts  #: provider calls made, the first included
        self.waited = waited  #: seconds spent waiting between them
        self.retry_after = retry_after  #: the provider's last Retry-After, in seconds


class CacheError(Error):
    """The cache backend failed (``strict_cache=True``), or an entry could not be used."""


class CacheMissError(CacheError):
    """``mode="replay_only"`` and no recorded answer: names the task, the call and the key."""


class BudgetExceededError(Error):
    """A budget (``budgets=["task=nightly:20usd/day"]``) would be exceeded by this call's worst
    case: the provider was not called."""

    def __init__(self, message: str, budget: str = "", remaining_nano_usd: int = 0) -> None:
        super().__init__(message)
        self.budget = budget  #: the budget, as written
        self.remaining_nano_usd = remaining_nano_usd

    @property
    def remaining(self) -> float:
        """Dollars left in the budget."""
        return self.remaining_nano_usd / 1e9


class ProviderError(Error):
    """No usable answer arrived from the provider (connection, TLS, timeout, garbage)."""

    def __init__(self, message: str, status: int = 0, error_type: str = "",
                 body_excerpt: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.body_excerpt = body_excerpt


def from_core(error: tuple[str, str, dict]) -> Error:
    """The Python error for the core's (kind, message, details)."""
    kind, message, details = error
    if kind == "rate_limit":
        return RateLimitError(message, details.get("attempts", 0), details.get("waited", 0.0),
                              details.get("retry_after"))
    if kind == "budget":
        return BudgetExceededError(message, details.get("budget", ""),
                                   details.get("remaining_nano_usd", 0))
    if kind == "cache_miss":
        return CacheMissError(message)
    if kind == "cache":
        return CacheError(message)
    if kind == "configuration":
        return ConfigurationError(message)
    if kind == "provider":
        return ProviderError(message, details.get("status", 0), details.get("error_type", ""),
                             details.get("body_excerpt", ""))
    return Error(message)


__all__ = ["Error", "ConfigurationError", "RateLimitError", "CacheError", "CacheMissError",
           "BudgetExceededError", "ProviderError"]
