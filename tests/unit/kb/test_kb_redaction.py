"""Knowledge-base ingests store no secret: text (also one cut across chunk boundaries),
headings, sources and metadata are masked with the tracing redaction before chunking and
embedding; in LanceDB beside a DuckDB file and in the store's own table (pgvector)."""

import json
import uuid

import numpy as np
import pandas as pd

import fm_lab
import fm_lab.kb
from fm_lab.memory.lance import lance_path
from fm_lab.tracing.redact import MASK

STORES = ("duckdb", "postgres")


def stored_rows(kb, store):
    """Every chunk row without its vector, and each chunk's vector by id."""
    if hasattr(store, "url"):
        frame = store.sql("select id, doc_id, source, chunk, heading, text, metadata, "
                          "embedding::text as v from kb__secrets")
        vectors = {i: json.loads(v) for i, v in zip(frame["id"], frame.pop("v"), strict=True)}
        return frame.to_dict("records"), vectors
    table = kb.chunks.table.to_arrow()
    rows = table.drop_columns(["vector"]).to_pylist()
    return rows, {r["id"]: v for r, v in zip(rows, table["vector"].to_pylist(), strict=True)}


def disk(store):
    if hasattr(store, "url"):
        return [store.sql("select current_setting('data_directory') as d")["d"][0]]
    return [lance_path(store)]


def test_ingest_masks_text_sources_and_metadata(store, tmp_path, files_containing):
    key = f"sk-test{uuid.uuid4().hex}"
    word = fm_lab.secret(f"pw-{uuid.uuid4().hex[:12]}")
    kb = fm_lab.kb.create("secrets", store=store, chunk_size=120, overlap=20)
    filler = "word " * 22  # the key sits across a chunk boundary
    note = tmp_path / "note.md"
    note.write_text(f"# Setup {key}\n{filler}{key} {filler}\n## Login\nuse {word} here\n")
    kb.add_file(note, metadata={"owner": f"ops {word}", "api_key": "plain-value"})
    kb.add_text(f"{filler}{key}{filler}", source=f"paste-{key}.txt")
    kb.add_pages([f"page one {key}", f"page two {word}"], source=f"{word}.pdf")
    kb.add_dataframe(pd.DataFrame({"q": [f"where is {key}?"], "who": [word]}),
                     text_column="q")
    rows, vector_of = stored_rows(kb, store)
    text = str(rows)
    assert key not in text and word not in text and "plain-value" not in text
    assert MASK in text
    page = next(r for r in rows if r["text"] == f"page one {MASK}")
    stored = np.asarray(vector_of[page["id"]], np.float32)  # pgvector prints float4 short
    assert stored.tolist() == kb.embedder.embed([f"page one {MASK}"])[0].tolist()
    assert len(kb.search("page one", k=3)) > 0
    where = disk(store)
    store.close()
    assert files_containing(where, key, word, "plain-value") == []
