import pytest

from fm_lab.memory import Memory, Recall
from fm_lab.store import Store


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "fm.duckdb")


@pytest.fixture
def memory(store):
    return Memory(store=store, last_messages=3, recall=Recall(top_k=1, message_range=1))
