"""Knowledge bases on the shipped corpus (tests/data/kb): ingest with chunking and metadata,
hybrid / vector / full-text search, filters, DataFrame rows, PDF text, errors."""

from pathlib import Path

import pandas as pd
import pytest

import fm_lab.kb
from fm_lab.kb import KnowledgeBaseError, chunk_text, markdown_sections, where_clause
from fm_lab.memory import EmbedderMismatchError, HashingEmbedder

CORPUS = Path(__file__).parents[2] / "data" / "kb"
STORES = ("duckdb", "postgres")  # LanceDB beside the file; pgvector in the store


@pytest.fixture
def kb(store):
    kb = fm_lab.kb.create("corpus", store=store, chunk_size=400, overlap=60)
    for path in sorted(CORPUS.glob("*.md")):
        kb.add_file(path, metadata={"topic": path.stem, "lang": "en"})
    return kb


def test_chunking_and_sections():
    text = "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(6))
    chunks = chunk_text(text, size=300, overlap=40)
    assert all(len(c) <= 300 for c in chunks) and len(chunks) >= 3
    assert all(chunks[i + 1].split()[0] in chunks[i] for i in range(len(chunks) - 1))  # overlap
    sections = markdown_sections("# A\nintro\n## B\nbody\n```\n# not a heading\n```\n# C\nend")
    assert [h for h, _ in sections] == ["A", "A > B", "C"]
    assert "# not a heading" in sections[1][1]
    with pytest.raises(ValueError, match="overlap"):
        chunk_text("x", size=100, overlap=100)


def test_ingest_keeps_headings_and_metadata(kb):
    docs = kb.documents()
    assert sorted(docs["source"]) == ["bees.md", "duckdb.md", "sourdough.md", "tides.md"]
    assert {d["topic"] for d in docs["metadata"]} == {"bees", "duckdb", "sourdough", "tides"}
    count = kb.count()
    kb.add_file(CORPUS / "bees.md", metadata={"topic": "bees", "lang": "en"})  # re-ingest
    assert kb.count() == count
    hits = kb.search("waggle dance direction of the flowers", k=2)
    assert hits["source"][0] == "bees.md" and hits["heading"][0] == "Honeybees > The waggle dance"


@pytest.mark.parametrize("mode", ["hybrid", "vector", "fts"])
@pytest.mark.parametrize(("query", "source", "heading"), [
    ("why are spring tides larger at full moon", "tides.md", "Tides > Spring and neap tides"),
    ("when is the levain ready", "sourdough.md", "Sourdough bread > Building the levain"),
    ("several processes open the database file", "duckdb.md",
     "DuckDB in brief > One writer at a time"),
    ("scouts choose a new home for the swarm", "bees.md", "Honeybees > Swarming"),
])
def test_search_finds_the_right_section(kb, mode, query, source, heading):
    hits = kb.search(query, k=3, mode=mode)
    assert list(hits.columns) == ["text", "score", "source", "heading", "chunk", "doc_id",
                                  "metadata"]
    assert (hits["source"][0], hits["heading"][0]) == (source, heading)
    assert hits["score"].is_monotonic_decreasing


def test_hybrid_fuses_both_rankings(kb):
    vector = kb.search("grey liquid hungry starter", k=5, mode="vector")
    fts = kb.search("grey liquid hungry starter", k=5, mode="fts")
    hybrid = kb.search("grey liquid hungry starter", k=5)
    assert hybrid["heading"][0] == "Sourdough bread > Keeping a starter"
    assert set(hybrid["doc_id"]) <= set(vector["doc_id"]) | set(fts["doc_id"])
    assert hybrid["score"][0] > hybrid["score"].iloc[-1]


def test_filters(kb):
    hits = kb.search("the moon", k=10, filter={"topic": "bees"})
    assert set(hits["source"]) == {"bees.md"}
    hits = kb.search("the moon", k=10, filter={"source": ["tides.md", "duckdb.md"]}, mode="fts")
    assert set(hits["source"]) <= {"tides.md", "duckdb.md"} and len(hits)
    assert kb.search("moon", filter={"topic": "no such"}).empty
    assert kb.search("moon", filter="source = 'tides.md'")["source"].unique().tolist() == \
        ["tides.md"]
    assert where_clause({"k": "50%_x"}) .count("\\%\\_") == 4
    kb.delete({"topic": "tides"})
    assert "tides.md" not in set(kb.documents()["source"])


def test_dataframe_rows_and_pdf_text(store):
    kb = fm_lab.kb.create("faq", store=store)
    df = pd.DataFrame({"id": [1, 2], "question": ["How long do I proof dough?",
                                                  "What makes a neap tide?"],
                       "team": ["bakery", "harbour"], "votes": [3, 7]})
    assert kb.add_dataframe(df, text_column="question", id_column="id") == 2
    hit = kb.search("proof dough", k=1)
    assert hit["metadata"][0] == {"team": "bakery", "votes": 3}
    assert kb.search("tide", k=5, filter={"votes": 7})["text"].tolist() == \
        ["What makes a neap tide?"]
    kb.add_pages(["Page one talks about bees.", "Page two is about tides."],
                 source="report.pdf", metadata={"kind": "pdf"})
    hit = kb.search("tides", k=1, filter={"kind": "pdf"})
    assert hit["metadata"][0] == {"kind": "pdf", "page": 2}
    with pytest.raises(KnowledgeBaseError, match="no column 'answer'"):
        kb.add_dataframe(df, text_column="answer")


def test_pdf_file_through_pypdf(store, tmp_path):
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    path = tmp_path / "blank.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    kb = fm_lab.kb.create("pdfs", store=store)
    assert kb.add_file(path) == 0  # a page with no text adds no chunk
    assert kb.count() == 0


def test_create_open_names_drop_and_errors(kb, store):
    assert fm_lab.kb.names(store=store) == ["corpus"]
    with pytest.raises(KnowledgeBaseError, match="exists"):
        fm_lab.kb.create("corpus", store=store)
    again = fm_lab.kb.open("corpus", store=store)
    assert again.count() == kb.count() and again.embedder.name == "hashing-v1-256"
    with pytest.raises(EmbedderMismatchError, match="hashing-v1-256"):
        fm_lab.kb.open("corpus", store=store, embedder=HashingEmbedder(dim=64))
    with pytest.raises(KnowledgeBaseError, match="no knowledge base 'nope'"):
        fm_lab.kb.open("nope", store=store)
    with pytest.raises(KnowledgeBaseError, match="name 'a b'"):
        fm_lab.kb.create("a b", store=store)
    with pytest.raises(KnowledgeBaseError, match="values must be"):
        kb.add_text("x", source="x", metadata={"nested": {"a": 1}})
    with pytest.raises(KnowledgeBaseError, match="mode"):
        kb.search("x", mode="semantic")
    fm_lab.kb.drop("corpus", store=store)
    assert fm_lab.kb.names(store=store) == []


async def test_kb_search_tool(kb):
    tool = kb.as_tool(k=2)
    assert tool.name == "kb_search"
    out = await tool.call(tool.parse({"query": "neap tides at the quarter moons"}))
    assert len(out) == 2 and out[0]["source"] == "tides.md"


def test_rows_added_after_the_text_index_are_found(kb):
    kb.add_text("The quokka is a small marsupial of Rottnest Island.", source="animals.txt")
    hits = kb.search("quokka", k=1, mode="fts")
    assert hits["source"].tolist() == ["animals.txt"]
    kb.optimize()
    assert kb.search("quokka marsupial", k=1)["source"].tolist() == ["animals.txt"]


def test_lancedb_folds_new_rows_into_its_text_index(kb, store_path):
    kb.add_text("The quokka is a small marsupial of Rottnest Island.", source="animals.txt")
    kb.optimize()
    (stats,) = [i for i in kb.chunks.table.list_indices() if i.name == "text_idx"]
    assert stats.num_unindexed_rows == 0
