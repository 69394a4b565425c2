"""The kb_query node inside a workflow run."""

from pathlib import Path

import fm_lab
import fm_lab.kb
from fm_lab.spec import Workflow

CORPUS = Path(__file__).parents[2] / "data" / "kb"


def test_kb_query_node_searches_with_a_templated_query(tmp_path):
    store = fm_lab.Store(tmp_path / "fm.duckdb")
    kb = fm_lab.kb.create("corpus", store=store)
    for path in CORPUS.glob("*.md"):
        kb.add_file(path, metadata={"topic": path.stem})
    wf = Workflow.from_dict({
        "id": "ask",
        "inputs": {"type": "object", "properties": {"q": {"type": "string"}}},
        "nodes": {"search": {"type": "kb_query", "config": {
            "kb": "corpus", "query": "{{ inputs.q }}", "k": 2, "store": store.path,
            "filter": {"topic": ["tides", "bees"]}}}},
    })
    result = fm_lab.run(wf, {"q": "how far away are the flowers"}, store=store)
    assert result.status == "succeeded"
    hits = result.node("search").output
    assert len(hits) == 2 and hits[0]["heading"] == "Honeybees > The waggle dance"
    assert {h["metadata"]["topic"] for h in hits} <= {"tides", "bees"}
    bad = fm_lab.run(Workflow.from_dict({"id": "bad", "nodes": {"s": {"type": "kb_query",
                     "config": {"kb": "missing", "query": "x", "store": store.path}}}}),
                     {}, store=store)
    assert bad.status == "failed" and "no knowledge base 'missing'" in str(bad.error)
