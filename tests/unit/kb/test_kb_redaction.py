"""Knowledge-base ingests store no secret: text (also one cut across chunk boundaries),
headings, sources and metadata are masked with the tracing redaction before chunking and
embedding."""

import uuid

import pandas as pd

import fm_lab
import fm_lab.kb
from fm_lab.memory.lance import lance_path
from fm_lab.store import Store
from fm_lab.tracing.redact import MASK


def test_ingest_masks_text_sources_and_metadata(tmp_path, files_containing):
    key = f"sk-test{uuid.uuid4().hex}"
    word = fm_lab.secret(f"pw-{uuid.uuid4().hex[:12]}")
    store = Store(tmp_path / "fm.duckdb")
    kb = fm_lab.kb.create("secrets", store=store, chunk_size=120, overlap=20)
    filler = "word " * 22  # the key sits across a chunk boundary
    note = tmp_path / "note.md"
    note.write_text(f"# Setup {key}\n{filler}{key} {filler}\n## Login\nuse {word} here\n")
    kb.add_file(note, metadata={"owner": f"ops {word}", "api_key": "plain-value"})
    kb.add_text(f"{filler}{key}{filler}", source=f"paste-{key}.txt")
    kb.add_pages([f"page one {key}", f"page two {word}"], source=f"{word}.pdf")
    kb.add_dataframe(pd.DataFrame({"q": [f"where is {key}?"], "who": [word]}),
                     text_column="q")
    rows = kb.table.to_arrow().drop_columns(["vector"]).to_pylist()
    text = str(rows)
    assert key not in text and word not in text and "plain-value" not in text
    assert MASK in text
    vector_of = {r["id"]: v for r, v in zip(rows, kb.table.to_arrow()["vector"].to_pylist(),
                                            strict=True)}
    page = next(r for r in rows if r["text"] == f"page one {MASK}")
    assert vector_of[page["id"]] == list(kb.embedder.embed([f"page one {MASK}"])[0])
    assert len(kb.search("page one", k=3)) > 0
    assert files_containing([lance_path(store)], key, word, "plain-value") == []
