import pytest


@pytest.fixture(autouse=True)
def _hashing_by_default(monkeypatch):
    """Tests expect the default embedder (hashing): no provider from the environment."""
    monkeypatch.delenv("FM_LAB_EMBEDDING_MODEL", raising=False)
