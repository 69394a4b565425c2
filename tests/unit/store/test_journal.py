import math

import pytest

from fm_lab.store.journal import Journal, RunLockedError, read_journal, try_lock


def test_records_are_durable_after_commit_and_read_back(tmp_path):
    path = tmp_path / "r.journal"
    journal = Journal(path)
    journal.append({"seq": 1, "k": "node", "output": {"a": 1}})
    journal.append({"seq": 2, "k": "node", "output": [1, 2]})
    assert read_journal(path) == []  # nothing written before commit
    journal.commit()
    assert [r["seq"] for r in read_journal(path)] == [1, 2]
    journal.close()


def test_span_records_come_back_with_their_text(tmp_path):
    path = tmp_path / "r.journal"
    journal = Journal(path)
    node = journal.append({"seq": 1, "k": "node", "output": {"score": float("nan")}})
    span = journal.append({"seq": 2, "k": "span", "output": {"score": float("nan")}})
    journal.commit()
    journal.close()
    texts: dict[int, bytes] = {}
    records = read_journal(path, texts)
    assert texts == {2: span}  # spans only: what ingestion reuses
    assert b"NaN" in node and math.isnan(records[0]["output"]["score"])  # a node output is exact
    assert records[1]["output"] == {"score": None}  # a span is strict JSON


def test_torn_or_corrupt_tail_is_ignored(tmp_path):
    path = tmp_path / "r.journal"
    journal = Journal(path)
    journal.append({"seq": 1, "k": "node"})
    journal.commit()
    journal.close()
    with path.open("ab") as handle:
        handle.write(b'0000abcd {"seq": 2}\n')  # wrong checksum
        handle.write(b"12")  # torn line
    assert read_journal(path) == [{"seq": 1, "k": "node"}]


def test_a_live_owner_keeps_the_lock(tmp_path):
    path = tmp_path / "r.journal"
    journal = Journal(path)
    assert try_lock(path) is None
    with pytest.raises(RunLockedError, match="another live process"):
        Journal(path)
    journal.close()
    fd = try_lock(path)
    assert fd is not None


def test_close_with_remove_deletes_the_file(tmp_path):
    path = tmp_path / "r.journal"
    journal = Journal(path, durability="process")
    journal.append({"seq": 1, "k": "node"})
    journal.commit()
    journal.close(remove=True)
    assert not path.exists()
