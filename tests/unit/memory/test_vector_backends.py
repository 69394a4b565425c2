"""Where vectors live: pgvector in a PostgreSQL store that has it, LanceDB beside a DuckDB
file or at $FM_LAB_VECTORS for a server store without it (refused clearly when unset); both
backends give the same recall on the same messages."""

import uuid

import psycopg
import pytest

import fm_lab
from fm_lab.memory import EmbedderMismatchError, HashingEmbedder, Memory, Recall, delete_thread
from fm_lab.store.base import VECTORS, UnsupportedStoreError, has
from fm_lab.store.pg_store import PostgresStore

WORDS = ["amber", "basalt", "cedar", "dune", "ember", "fjord", "glacier", "harbor", "island",
         "jungle", "kelp", "lagoon", "meadow", "nebula", "oasis", "prairie", "quartz", "reef",
         "savanna", "tundra"]


def sentence(i):
    """A distinct sentence per i (three words of the list and its number)."""
    return f"{WORDS[i % 20]} {WORDS[(3 * i + 1) % 20]} {WORDS[(7 * i + 5) % 20]} note {i}"


def by_distance(hits, query, embedder):
    """``hits`` as ``(cosine distance, hit)`` in rank order, exact ties sorted: two correct
    top-k lists may order equally distant hits differently."""
    texts = {(f"t{i % 4}", 2 * (i // 4) + 1): sentence(i) for i in range(36)}
    q = embedder.embed([query])[0]
    ranked = [(round(1.0 - float(embedder.embed([texts[h]])[0] @ q), 5), h) for h in hits]
    return sorted(ranked)


def same_top_k(first, second):
    """The same hits, but at the k-th distance (a tie cut by the limit) only as many."""
    last = first[-1][0] if first else None
    assert [d for d, _ in first] == [d for d, _ in second]
    assert [x for x in first if x[0] != last] == [x for x in second if x[0] != last]


@pytest.fixture
def pg(pg_url):
    store = fm_lab.connect(pg_url)
    yield store
    store.close()


@pytest.fixture
def pg_plain(pg_url):
    """The same kind of store without pgvector (as on a server that does not offer it)."""
    store = PostgresStore(pg_url, pgvector=False)
    yield store
    store.close()


async def test_pgvector_and_lancedb_find_the_same_messages(pg, tmp_path):
    assert has(pg, VECTORS)
    embedder = HashingEmbedder(dim=64)
    native = Memory(store=pg, embedder=embedder, recall=Recall(top_k=4, message_range=1))
    assert native.vector_backend == "pgvector"
    for i in range(36):
        thread, resource = f"t{i % 4}", f"r{i % 2}"
        await native.save(thread_id=thread, resource_id=resource, messages=[
            {"role": "user", "content": sentence(i)},
            {"role": "assistant", "content": None, "tool_calls": []}])  # no text: no vector
    lance = Memory(store=pg, embedder=embedder, vectors="lancedb",
                   vector_path=tmp_path / "vectors", recall=native.recall_settings)
    assert lance.vector_backend == "lancedb"
    assert lance.reindex() == 72 and native.vectors.count() == 72
    for query in ("amber cedar", "glacier note", "quartz reef savanna", "kelp 17", "oasis"):
        for scope, live_from in (("thread", None), ("thread", 12), ("resource", 15)):
            args = dict(top_k=5, scope=scope, thread_id="t1", resource_id="r1",
                        live_from=live_from)
            vector = embedder.embed([query])[0]
            found = [by_distance(m.vectors.search(vector, **args), query, embedder)
                     for m in (native, lance)]
            assert len(found[0]) == 5
            same_top_k(*found)
        recalled = [await m.recall(query, thread_id="t2", resource_id="r0", scope="resource",
                                   top_k=2) for m in (native, lance)]
        assert [(s.message_id, s.sequence, s.message) for s in recalled[0]] == \
            [(s.message_id, s.sequence, s.message) for s in recalled[1]]
    assert native.delete_thread("t1") == 18 and native.vectors.count() == 54
    assert lance.delete_thread("t1") == 0 and lance.vectors.count() == 54  # its own folder


async def test_an_embedder_change_is_refused_and_reindex_rebuilds(pg):
    await Memory(store=pg).save(thread_id="t", resource_id=None,
                                messages=[{"role": "user", "content": "cedar"}])
    other = Memory(store=pg, embedder=HashingEmbedder(dim=32))
    with pytest.raises(EmbedderMismatchError, match="hashing-v1-256"):
        await other.save(thread_id="t", resource_id=None,
                         messages=[{"role": "user", "content": "dune"}])
    assert other.reindex() == 1
    found = await other.recall("cedar", thread_id="t")
    assert [s.text for s in found] == ["cedar"]


def test_the_choice_is_explicit(pg, tmp_path):
    duck = fm_lab.Store(tmp_path / "fm.duckdb")
    assert Memory(store=duck).vector_backend == "lancedb"
    assert Memory(store=pg, vector_path=tmp_path / "v").vector_backend == "lancedb"
    with pytest.raises(UnsupportedStoreError, match="vectors='pgvector' needs a store"):
        _ = Memory(store=duck, vectors="pgvector").vector_backend
    with pytest.raises(ValueError, match="vector_path names a LanceDB folder"):
        _ = Memory(store=pg, vectors="pgvector", vector_path=tmp_path / "v").vector_backend
    with pytest.raises(ValueError, match="vectors must be one of auto, pgvector, lancedb"):
        Memory(store=pg, vectors="faiss")


async def test_without_pgvector_a_server_store_needs_a_shared_folder(pg_plain, pg_url, tmp_path,
                                                                     monkeypatch):
    assert not has(pg_plain, VECTORS)
    memory = Memory(store=pg_plain)
    with pytest.raises(UnsupportedStoreError, match=r"set FM_LAB_VECTORS=/shared/path") as err:
        await memory.save(thread_id="t", resource_id="ana",
                          messages=[{"role": "user", "content": "the harbor is north"}])
    assert "\n" not in str(err.value)
    assert memory.messages("t").empty  # refused before anything was stored
    assert Memory(store=pg_plain, recall=False).vector_backend == "lancedb"  # no vectors used
    shared = tmp_path / "shared-vectors"
    monkeypatch.setenv("FM_LAB_VECTORS", str(shared))
    await memory.save(thread_id="t", resource_id="ana",
                      messages=[{"role": "user", "content": "the harbor is north"}])
    assert (shared / "memory_messages.lance").is_dir()
    # another user's kernel on the same store and folder recalls it
    other = PostgresStore(pg_url, pgvector=False)
    try:
        found = await Memory(store=other, recall=Recall(scope="resource")).recall(
            "harbor", thread_id="t2", resource_id="ana")
    finally:
        other.close()
    assert [s.text for s in found] == ["the harbor is north"]
    delete_thread("t", store=pg_plain)
    assert Memory(store=pg_plain).vectors.count() == 0


def test_a_database_without_the_extension_gets_it_at_open(pg_server):
    name = f"novec_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    url = pg_server.replace("/postgres?", f"/{name}?", 1)
    try:
        store = PostgresStore(url)
        store.close()
        plain = PostgresStore(url, pgvector=False)  # leaves it alone: no flag
        plain.close()
        with psycopg.connect(url) as conn:
            row = conn.execute("select 1 from pg_extension where extname = 'vector'").fetchone()
        assert has(store, VECTORS) and row is not None and not has(plain, VECTORS)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f"drop database {name} with (force)")


def test_knowledge_bases_follow_the_same_choice(pg, pg_plain, tmp_path, monkeypatch):
    import fm_lab.kb

    native = fm_lab.kb.create("notes", store=pg)
    native.add_text("Glaciers carve fjords.", source="geo.txt")
    assert fm_lab.kb.names(store=pg) == ["notes"]
    assert fm_lab.kb.open("notes", store=pg).search("fjords", k=1)["source"][0] == "geo.txt"
    with pytest.raises(UnsupportedStoreError, match="FM_LAB_VECTORS"):
        fm_lab.kb.create("notes", store=pg_plain)
    monkeypatch.setenv("FM_LAB_VECTORS", str(tmp_path / "shared"))
    fm_lab.kb.create("notes", store=pg_plain).add_text("Reefs need warm water.", source="r")
    assert (tmp_path / "shared" / "kb__notes.lance").is_dir()
    assert fm_lab.kb.names(store=pg, vectors="lancedb") == ["notes"]  # the same folder
    fm_lab.kb.drop("notes", store=pg)
    assert fm_lab.kb.names(store=pg) == [] and fm_lab.kb.names(store=pg_plain) == ["notes"]
