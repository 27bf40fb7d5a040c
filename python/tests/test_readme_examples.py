"""The original library's README examples, verbatim, against the fake provider. Only the
environment (conftest.py) and `your_agent` point them at it; each test then checks what the
example promises."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, List

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent

from llm_caching import ModelCosts, cached_agent_run
from llm_caching.types import ModelMessage


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def your_agent() -> Agent:
    return Agent("openai:gpt-4o-mini")


def test_quick_start_basic_usage(your_agent, fake_provider):
    async def example():
        # Basic usage with defaults
        result = await cached_agent_run(
            agent=your_agent,
            prompt="Hello",
            task_name="chat"
        )
        return result

    first = run(example())
    second = run(example())
    assert first.output.startswith("echo: Hello")
    assert second.output == first.output
    assert (first.llm_cache.cache_hit, second.llm_cache.cache_hit) == (False, True)
    assert first.llm_cache.cost > 0 and second.llm_cache.cost == 0
    assert second.llm_cache.avoided_cost == first.llm_cache.cost
    assert fake_provider.calls() == 1


def test_quick_start_pydantic_models_in_history(your_agent, fake_provider):
    async def example():
        # Using Pydantic models
        class UserProfile(BaseModel):
            name: str
            age: int
            interests: List[str]

        # Create a profile
        profile = UserProfile(
            name="John Doe",
            age=30,
            interests=["AI", "Python", "Machine Learning"]
        )

        # Pass the Pydantic model in message history
        result = await cached_agent_run(
            agent=your_agent,
            prompt="Analyze this profile",
            task_name="profile_analysis",
            transcript_history=[{"role": "user", "content": profile.model_dump_json()}]
        )
        return result

    first = run(example())
    second = run(example())
    assert first.output.startswith("echo: Analyze this profile")
    # The profile reached the provider as the first message of the conversation.
    sent = [m for m in first.all_messages() if m.kind == "request"][0]
    assert "John Doe" in sent.parts[0].content
    assert second.llm_cache.cache_hit and fake_provider.calls() == 1


def test_quick_start_converter_and_expense_recorder(your_agent, fake_provider, capsys):
    async def example():
        # Advanced usage with custom message conversion and expense tracking
        async def my_expense_recorder(model: str, task_name: str, cost: float) -> None:
            # Your expense recording logic here
            print(f"Cost for {model} on {task_name}: ${cost}")

        def my_message_converter(messages: list[Any]) -> list[ModelMessage]:
            # Your message conversion logic here
            return [ModelMessage(role="user", content=str(m)) for m in messages]

        result = await cached_agent_run(
            agent=your_agent,
            prompt="Hello",
            task_name="chat",
            message_converter=my_message_converter,
            expense_recorder=my_expense_recorder
        )
        return result

    first = run(example())
    second = run(example())
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"Cost for gpt-4o-mini on chat: ${first.llm_cache.cost}",
                       "Cost for gpt-4o-mini on chat: $0.0"]
    assert first.llm_cache.cost > 0 and second.llm_cache.cache_hit


def test_redis_configuration(your_agent, fake_provider, redis_url, monkeypatch):
    # 1. Environment variable (recommended); the URL is the test's own redis-server.
    monkeypatch.setenv("LLM_CACHE_REDIS_URL", redis_url)
    import llm_caching
    llm_caching.configure()  # no test default: the environment decides

    async def example():
        # 2. Direct configuration in code:
        result = await cached_agent_run(
            agent=your_agent,
            prompt="Hello",
            task_name="chat",
            redis_url=redis_url
        )
        return result

    first = run(example())
    second = run(example())
    assert first.llm_cache.cache_keys[0].startswith("llm-caching:v1:")
    assert (first.llm_cache.cache_hit, second.llm_cache.cache_hit) == (False, True)
    # The entry is in Redis, not in this process only: a new key space sees it.
    import socket
    host, port = redis_url[len("redis://"):].split("/")[0].split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(f"EXISTS {first.llm_cache.cache_keys[0]}\r\n".encode())
        assert s.recv(16) == b":1\r\n"


def test_cost_configuration(fake_provider):
    your_agent = Agent("openai:my-custom-model")

    async def example():
        # Define custom costs
        custom_costs = {
            "my-custom-model": ModelCosts(
                cost_per_million_input_tokens=1.0,
                cost_per_million_output_tokens=2.0,
                cost_per_million_caching_input_tokens=0.5,
                cost_per_million_caching_hit_tokens=0.1,
            )
        }

        # Use custom costs
        result = await cached_agent_run(
            agent=your_agent,
            prompt="Hello",
            task_name="chat",
            custom_costs=custom_costs
        )
        return result

    result = run(example())
    (call,) = result.llm_cache.calls
    input_tokens, output_tokens = call.usage[0], call.usage[1]
    # $1 per million input tokens, $2 per million output tokens, exactly, in nano-dollars.
    assert call.cost_nano_usd == input_tokens * 1000 + output_tokens * 2000
    assert result.usage.input_tokens == input_tokens


def test_rate_limit_handling(fake_provider):
    # The fake answers the first 2 calls of this model 429 with Retry-After: 1.
    your_agent = Agent("openai:gpt-4o-mini+429-2")
    costs = {"gpt-4o-mini+429-2": ModelCosts(0.15, 0.6)}

    async def example():
        result = await cached_agent_run(
            agent=your_agent,
            prompt="Hello",
            task_name="chat",
            max_wait=30.0,  # Maximum wait time before giving up
            initial_wait=1.0,  # Initial wait time for exponential backoff
            custom_costs=costs,
        )
        return result

    result = run(example())
    assert result.output.startswith("echo: Hello")
    assert result.llm_cache.provider_calls == 3
    assert fake_provider.stats()["routes"]["/v1/responses"] == 3


def test_custom_message_conversion(your_agent, fake_provider):
    from typing import Any
    from llm_caching.types import ModelMessage

    def custom_message_converter(messages: list[Any]) -> list[ModelMessage]:
        converted = []
        for msg in messages:
            if isinstance(msg, dict):
                converted.append(ModelMessage(
                    role=msg.get("role", "user"),
                    content=str(msg.get("content", ""))
                ))
            else:
                converted.append(ModelMessage(
                    role="user",
                    content=str(msg)
                ))
        return converted

    async def example():
        result = await cached_agent_run(
            agent=your_agent,
            prompt="Hello",
            task_name="chat",
            message_converter=custom_message_converter,
            transcript_history=[{"role": "assistant", "content": "Earlier answer"}, 42],
        )
        return result

    result = run(example())
    kinds = [m.kind for m in result.all_messages()]
    assert kinds == ["response", "request", "request", "response"]
    assert result.all_messages()[0].parts[0].content == "Earlier answer"


def test_expense_tracking(your_agent, fake_provider, caplog):
    caplog.set_level(logging.INFO)

    async def expense_tracker(model: str, task_name: str, cost: float) -> None:
        logging.info(f"Expense: {datetime.now()} - Model: {model}, Task: {task_name}, Cost: ${cost}")
        # Add your expense tracking logic here
        # e.g., save to database, send to monitoring service, etc.

    async def example():
        result = await cached_agent_run(
            agent=your_agent,
            prompt="Hello",
            task_name="chat",
            expense_recorder=expense_tracker
        )
        return result

    result = run(example())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Expense:")]
    assert len(lines) == 1
    assert lines[0].endswith(f"Model: gpt-4o-mini, Task: chat, Cost: ${result.llm_cache.cost}")


def test_error_handling(fake_provider):
    from llm_caching.exceptions import (
        ConfigurationError,
        RateLimitError,
        CacheError
    )

    async def example(your_agent, **extra):
        try:
            result = await cached_agent_run(
                agent=your_agent,
                prompt="Hello",
                task_name="chat",
                **extra,
            )
        except ConfigurationError as e:
            return f"Configuration error: {e}"
        except RateLimitError as e:
            return f"Rate limit exceeded: {e}"
        except CacheError as e:
            return f"Cache error: {e}"
        return result

    # A model with no price is refused before any call.
    unpriced = run(example(Agent("openai:no-such-priced-model")))
    assert unpriced.startswith("Configuration error:") and "no-such-priced-model" in unpriced
    # 429 for longer than max_wait.
    limited = run(example(Agent("openai:gpt-4o-mini+429-5"), max_wait=0.5, initial_wait=0.1,
                          custom_costs={"gpt-4o-mini+429-5": ModelCosts(0.15, 0.6)}))
    assert limited.startswith("Rate limit exceeded:")
    # A strict cache whose Redis is not there.
    down = run(example(Agent("openai:gpt-4o-mini"), redis_url="redis://127.0.0.1:1/0",
                       strict_cache=True))
    assert down.startswith("Cache error:")
    assert fake_provider.stats()["routes"].get("/v1/responses", 0) >= 1
