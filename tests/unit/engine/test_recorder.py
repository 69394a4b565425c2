"""The recorder journals each record once; a span payload JSON cannot hold is stored as its
masked ``repr`` instead of failing the node, a node output that cannot be stored fails."""

import pytest

from fm_lab.engine.session import Recorder
from fm_lab.store import Store
from fm_lab.store.codec import NotSerialisableError
from fm_lab.store.journal import Journal, read_journal
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
