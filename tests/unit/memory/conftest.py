import pytest

from fm_lab.memory import Memory, Recall
from fm_lab.store import Store


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "fm.duckdb")


@pytest.fixture
def memory(store):
    return Memory(store=store, last_messages=3, recall=Recall(top_k=1, message_range=1))


@pytest.fixture(autouse=True)
def _hashing_by_default(monkeypatch):
    """Tests expect the default embedder (hashing): no provider from the environment."""
    monkeypatch.delenv("FM_LAB_EMBEDDING_MODEL", raising=False)
