"""cached_embed against the fake provider over a real socket: per-text entries, order, cost."""

from __future__ import annotations

import asyncio

import pytest

import llm_caching
from llm_caching import CacheMissError, cached_embed, cached_embed_sync

MODEL = "openai:text-embedding-3-small"


def test_only_the_texts_the_cache_does_not_hold_are_sent(fake_provider):
    texts = [f"passage {i}" for i in range(10)]
    first = cached_embed_sync(MODEL, texts[:9], "rag")
    assert (first.sent, first.cached) == (9, 0)
    assert first.cost > 0
    second = cached_embed_sync(MODEL, texts, "rag")
    assert (second.sent, second.cached) == (1, 9)
    assert fake_provider.stats()["embedding_inputs"] == 10
    assert second.embeddings[:9] == first.embeddings
    assert len(second.embeddings) == 10 and len(second.embeddings[9]) == 8
    assert 0 < second.cost < first.cost
    assert second.avoided_cost > 0
    assert second.cache_keys[0] == first.cache_keys[0]


def test_the_awaitable_form_and_replay_only(fake_provider):
    with pytest.raises(CacheMissError):
        cached_embed_sync(MODEL, ["never sent"], mode="replay_only")
    ran = asyncio.run(cached_embed(MODEL, ["one", "two"], "t"))
    assert ran.sent == 2
    replayed = cached_embed_sync(MODEL, ["two", "one"], mode="replay_only")
    assert replayed.cached == 2
    assert replayed.embeddings == [ran.embeddings[1], ran.embeddings[0]]
    assert fake_provider.stats()["embedding_inputs"] == 2
    with pytest.raises(llm_caching.ConfigurationError):
        cached_embed_sync(MODEL, "not a list")
