"""Memory tests run on both stores in modules that say ``STORES`` (the root conftest's
``store`` fixture)."""

import pytest

from fm_lab.memory import Memory, Recall


@pytest.fixture
def memory(store):
    return Memory(store=store, last_messages=3, recall=Recall(top_k=1, message_range=1))


@pytest.fixture(autouse=True)
def _hashing_by_default(monkeypatch):
    """Tests expect the default embedder (hashing): no provider from the environment."""
    monkeypatch.delenv("FM_LAB_EMBEDDING_MODEL", raising=False)
