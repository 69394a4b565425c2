"""The recorder journals each record once; a span payload JSON cannot hold is stored as its
masked ``repr`` instead of failing the node, a node output that cannot be stored fails."""

import pytest

from fm_lab.store import MemoryStore, Store
from fm_lab.store.codec import NotSerialisableError
from fm_lab.store.journal import Journal, read_journal
from fm_lab.tracing.recorder import Recorder
from fm_lab.tracing.redact import secret


class Client:
    def __repr__(self) -> str:
        return "Client(key=rec-test-secret-123)"


def test_unstorable_span_payloads_become_their_masked_repr(tmp_path):
    secret("rec-test-secret-123")
    journal = Journal(tmp_path / "r.journal")
    recorder = Recorder(Store(":memory:"), "r", journal, 0, ingested_once=False)
    recorder.append({"k": "span", "trace": "t", "span": "s", "kind": "tool",
                     "input": {"client": Client()}, "output": {"ok": True}})
    with pytest.raises(NotSerialisableError):
        recorder.append({"k": "node", "node": "a", "status": "succeeded",
                         "output": {"client": Client()}})
    recorder.commit()
    journal.close()
    (span,) = read_journal(tmp_path / "r.journal")
    assert span["input"] == "{'client': Client(key=[REDACTED])}"
    assert span["output"] == {"ok": True}  # payloads that can be stored are kept as they are
    assert recorder.unflushed_texts[1] == (tmp_path / "r.journal").read_bytes()[9:-1]


class FailingOnce(MemoryStore):
    """An in-memory store whose first ingest fails, as a busy or broken database would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def ingest(self, run_id, records, wait=True, texts=None):  # type: ignore[no-untyped-def]
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        super().ingest(run_id, records, wait, texts)


def _start(run_id: str) -> dict:
    from fm_lab.spec.models import Workflow

    wf = Workflow.from_dict({"id": "w", "nodes": {"a": {"type": "template",
                                                        "config": {"template": "x"}}}})
    return Store.start_record(run_id, wf, {"token": "rec-test-secret-456"})


def test_records_are_numbered_masked_and_ingested_in_order():
    secret("rec-test-secret-456")
    store = MemoryStore()
    recorder = Recorder(store, "r", None, 0, ingested_once=False)
    recorder.append(_start("r"))
    recorder.append({"k": "node", "node": "a", "status": "succeeded", "output": "x"})
    assert recorder.flush(wait=True) is True
    assert [(r["k"], r["seq"]) for r in store.records] == [("start", 1), ("node", 2)]
    assert store.records[0]["inputs"] == {"token": "[REDACTED]"}  # masked before storing
    assert store.load_run("r").nodes["a"]["output"] == "x" and recorder.unflushed == []


def test_a_failed_ingest_loses_nothing_and_the_next_one_stores_it_all():
    store = FailingOnce()
    recorder = Recorder(store, "r", None, 0, ingested_once=False)
    recorder.append(_start("r"))
    recorder.append({"k": "node", "node": "a", "status": "succeeded", "output": "x"})
    with pytest.raises(OSError, match="disk full"):
        recorder.flush(wait=True)
    assert [r["seq"] for r in recorder.unflushed] == [1, 2]  # queued again, in order
    recorder.append({"k": "run", "status": "succeeded", "outputs": {"a": "x"}})
    assert recorder.flush(wait=True) is True
    assert [r["seq"] for r in store.records] == [1, 2, 3]
    assert store.run_status("r") == "succeeded"
