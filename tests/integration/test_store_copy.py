"""fm-lab store copy: a personal DuckDB history into a team PostgreSQL store (and back): every
table, idempotent, clashes refused with the rest copied, the audit chain still whole, the
password never shown; a copied suspended run resumes on the target."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import fm_lab
import fm_lab.batch
from fm_lab.cli import main
from fm_lab.memory import Memory, WorkingMemory
from fm_lab.store import open_store
from fm_lab.store.audit import verify
from fm_lab.store.copy import copy_store
from fm_lab.tracing.pricing import set_price

TABLES = ("workflows", "runs", "node_executions", "suspensions", "steps", "spans",
          "memory_threads", "memory_messages", "memory_working", "batches", "batch_items",
          "audit_log")

PRICED = {
    "id": "priced",
    "nodes": {"ask": {"type": "llm", "config": {"model": "offline/copy-echo",
                                                "prompt": "hello {{ inputs.who }}"}}},
}
APPROVAL = {
    "id": "payout",
    "nodes": {
        "draft": {"type": "template", "config": {"template": "pay {{ inputs.amount }}"}},
        "nap": {"type": "sleep", "config": {"seconds": 0.01}},  # a journaled step
        "approve": {"type": "approval", "config": {"message": "{{ nodes.draft.output }}?",
                                                   "label": "approve"}},
        "paid": {"type": "template", "config": {"template": "paid {{ inputs.amount }}"}},
    },
    "edges": ["draft -> nap", "nap -> approve", "approve -> paid"],
    "outputs": {"paid": "{{ nodes.paid.output }}"},
}
SWEEP = {
    "id": "sweep",
    "nodes": {"ask": {"type": "llm", "config": {"model": "offline/copy-echo",
                                                "prompt": "value {{ inputs.x }}"}}},
}


def _with_password(url: str) -> str:
    """The test server's URL with a password (the server trusts local connections, so it is
    ignored; only what fm_lab prints of it matters here)."""
    user, rest = url.split("@", 1)
    assert user.rstrip(":") == "postgresql://postgres", url
    return f"postgresql://postgres:s3cret-pw@{rest}"


def _fill(store: fm_lab.RunStore) -> dict[str, str]:
    """A history with every kind of row; returns the run ids by kind."""
    set_price("offline/copy-echo", input_per_mtok=1_000_000.0, output_per_mtok=2_000_000.0)
    done = fm_lab.run(PRICED, {"who": "ann"}, store=store, progress=False)
    waiting = fm_lab.run(APPROVAL, {"amount": 40}, store=store, progress=False)
    assert (done.status, waiting.status) == ("succeeded", "suspended")
    fm_lab.batch.map(SWEEP, pd.DataFrame({"x": [1, 2]}, index=["a", "b"]), store=store,
                     batch_id="b1")
    memory = Memory(store=store, recall=False, working_memory=WorkingMemory(scope="resource"))

    async def remember() -> None:
        await memory.append("t1", "ann", [{"role": "user", "content": "hi"},
                                          {"role": "assistant", "content": "hello"}])
        working = memory._working()
        assert working is not None
        await working.update("ann", "- Name: Ann")

    asyncio.run(remember())
    return {"done": done.run_id, "waiting": waiting.run_id}


def _counts(store: fm_lab.RunStore) -> dict[str, int]:
    return {t: int(fm_lab.sql(f"select count(*) as n from {t}", store=store)["n"][0])
            for t in TABLES}


def _runs(store: fm_lab.RunStore) -> pd.DataFrame:
    frame = fm_lab.runs(store=store, limit=None).sort_values("run_id").reset_index(drop=True)
    return frame.drop(columns=["duration_ms"]).astype(str)


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, str]]:
    monkeypatch.setenv("FM_LAB_USER", "ann")
    path = str(tmp_path / "personal.duckdb")
    store = fm_lab.connect(path)
    runs = _fill(store)
    store.close()
    return path, runs


def test_a_personal_file_goes_into_the_team_store_once(source: tuple[str, dict[str, str]],
                                                       pg_url: str, capsys: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path, runs = source
    target_url = _with_password(pg_url)
    assert main(["store", "copy", path, target_url, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "would copy" in dry and "runs: " in dry
    monkeypatch.setenv("FM_LAB_USER", "lead")
    assert main(["store", "copy", path, target_url]) == 0
    out = capsys.readouterr()
    assert "s3cret-pw" not in out.out + out.err and "postgres:***@" in out.out
    assert "audit chain verifies" in out.out

    src = open_store(path, read_only=True)
    dst = fm_lab.connect(target_url)
    source_counts = _counts(src)
    assert _counts(dst) == {**source_counts, "audit_log": source_counts["audit_log"] + 1}
    assert all(source_counts[t] for t in TABLES), source_counts
    pd.testing.assert_frame_equal(_runs(dst), _runs(src))
    pd.testing.assert_frame_equal(fm_lab.usage(["model"], store=dst),
                                  fm_lab.usage(["model"], store=src), check_dtype=False)
    # the audit log: the source's entries, then who copied what
    log = fm_lab.audit(store=dst, verify=True, limit=None)
    assert log["actor"].tolist()[:-1] == fm_lab.audit(store=src, limit=None)["actor"].tolist()
    last = log.iloc[-1]
    assert (last["actor"], last["action"]) == ("lead", "store.copy")
    assert last["after"]["source"] == src.path and last["after"]["copied"]["runs"] >= 4

    # the pending approval is answered on the team store, and the run completes there
    assert fm_lab.pending(store=dst)["run_id"].tolist() == [runs["waiting"]]
    resumed = fm_lab.resume(runs["waiting"], {"approved": True}, label="approve", store=dst)
    assert (resumed.status, resumed.outputs) == ("succeeded", {"paid": "paid 40"})

    # again: nothing to copy (and no second store.copy entry); the resumed run is not
    # overwritten by the source's suspended copy: refused, named, the rest reported
    before = _counts(dst)
    assert main(["store", "copy", path, target_url, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not any(report["copied"].values()), report["copied"]
    (refusal,) = report["refused"]
    assert runs["waiting"] in refusal and "target's is kept" in refusal
    assert _counts(dst) == before
    assert verify(dst.audit_rows()) == []
    src.close()
    dst.close()


def test_a_clash_is_refused_and_the_rest_is_copied(tmp_path: Path, pg_url: str) -> None:
    target = fm_lab.connect(pg_url)
    mine = fm_lab.connect(tmp_path / "mine.duckdb")
    first = fm_lab.run(PRICED, {"who": "a"}, store=mine, progress=False)
    assert copy_store(mine, target).copied["runs"] == 1
    # the same run id continues on one side: rerun it in the source
    fm_lab.delete_run(first.run_id, store=mine)
    again = fm_lab.run(APPROVAL, {"amount": 1}, store=mine, progress=False, run_id=first.run_id)
    other = fm_lab.run(PRICED, {"who": "b"}, store=mine, progress=False)
    report = copy_store(mine, target)
    assert report.copied["runs"] == 1 and report.present["runs"] == 0
    (refusal,) = report.refused
    assert refusal.startswith(f"run {again.run_id}: the target has another run")
    assert set(fm_lab.runs(store=target)["run_id"]) == {first.run_id, other.run_id}
    assert fm_lab.runs(store=target).set_index("run_id").loc[first.run_id, "status"] == \
        "succeeded"
    assert verify(target.audit_rows()) == []
    mine.close()
    target.close()


def test_running_runs_stay_unless_asked_and_versions_are_renumbered(tmp_path: Path) -> None:
    a = fm_lab.connect(tmp_path / "a.duckdb")
    b = fm_lab.connect(tmp_path / "b.duckdb")
    fm_lab.run(PRICED, {"who": "x"}, store=b, progress=False)  # b has priced v1
    changed = {**PRICED, "nodes": {"ask": {**PRICED["nodes"]["ask"], "config": {
        "model": "offline/copy-echo", "prompt": "bye {{ inputs.who }}"}}}}
    run = fm_lab.run(changed, {"who": "y"}, store=a, progress=False)  # a: other content, v1
    a.sql("update runs set status = 'running' where run_id = ?", [run.run_id])
    report = copy_store(a, b)
    assert report.copied["runs"] == 0 and "running in the source" in report.refused[0]
    report = copy_store(a, b, include_running=True)
    assert report.copied["runs"] == 1 and report.copied["workflows"] == 0  # stored already
    versions = fm_lab.workflows("priced", store=b)
    assert sorted(versions["version"]) == [1, 2]
    assert fm_lab.runs(store=b).set_index("run_id").loc[run.run_id, "workflow_version"] == 2
    assert b.load_run(run.run_id).workflow.nodes["ask"].config["prompt"].startswith("bye")
    a.close()
    b.close()


def test_the_team_store_goes_into_an_offline_file(source: tuple[str, dict[str, str]],
                                                  pg_url: str, tmp_path: Path) -> None:
    path, runs = source
    team = fm_lab.connect(pg_url)
    personal = open_store(path, read_only=True)
    copy_store(personal, team)
    personal.close()
    fm_lab.resume(runs["waiting"], {"approved": True}, label="approve", store=team)
    offline = fm_lab.connect(tmp_path / "offline.duckdb")
    report = copy_store(team, offline)
    assert not report.refused
    team_counts = _counts(team)
    assert _counts(offline) == {**team_counts, "audit_log": team_counts["audit_log"] + 1}
    pd.testing.assert_frame_equal(_runs(offline), _runs(team))
    pd.testing.assert_frame_equal(fm_lab.usage(["model"], store=offline),
                                  fm_lab.usage(["model"], store=team), check_dtype=False)
    assert verify(offline.audit_rows()) == []
    assert offline.run_status(runs["waiting"]) == "succeeded"
    assert not copy_store(team, offline).copied_anything
    team.close()
    offline.close()


def test_the_copy_command_as_a_process_hides_the_password(
        source: tuple[str, dict[str, str]], pg_url: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path, _ = source
    env = {**os.environ, "FM_LAB_USER": "lead"}
    done = subprocess.run([sys.executable, "-m", "fm_lab", "store", "copy", path,
                           _with_password(pg_url)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr
    assert re.search(r"runs: \d+", done.stdout)


def test_memory_threads_are_extended_never_interleaved(tmp_path: Path) -> None:
    a = fm_lab.connect(tmp_path / "a.duckdb")
    b = fm_lab.connect(tmp_path / "b.duckdb")

    async def say(store: fm_lab.RunStore, thread: str, *texts: str) -> None:
        await Memory(store=store, recall=False).append(
            thread, "ann", [{"role": "user", "content": t} for t in texts])

    asyncio.run(say(a, "t1", "one", "two"))
    assert copy_store(a, b).copied["memory_messages"] == 2
    asyncio.run(say(a, "t1", "three"))  # the thread goes on in the source: appended
    asyncio.run(say(a, "t2", "mine"))
    asyncio.run(say(b, "t2", "theirs"))  # the same thread id, other messages: refused
    report = copy_store(a, b)
    assert report.copied["memory_messages"] == 1
    assert report.refused == ["memory thread t2: the target's thread has other messages at "
                              "the same places; its new messages are not merged"]
    texts = fm_lab.sql("select thread_id, text from memory_messages order by thread_id, "
                       "sequence", store=b).values.tolist()
    assert texts == [["t1", "one"], ["t1", "two"], ["t1", "three"], ["t2", "theirs"]]
    a.close()
    b.close()


def test_a_source_whose_audit_chain_is_broken_is_not_imported(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "a.duckdb"
    a = fm_lab.connect(path)
    fm_lab.run(PRICED, {"who": "x"}, store=a, progress=False)
    a.close()
    with duckdb.connect(str(path)) as con:  # behind fm_lab's back
        con.execute("update audit_log set actor = 'mallory'")
    b = fm_lab.connect(tmp_path / "b.duckdb")
    a = open_store(path, read_only=True)
    report = copy_store(a, b, dry_run=True)
    assert report.copied["runs"] == 1 and b.runs().empty  # a dry run changes nothing
    report = copy_store(a, b)
    assert report.copied["runs"] == 1 and "audit log: the source's chain is broken" in \
        report.refused[0]
    assert "mallory" not in set(fm_lab.audit(store=b, limit=None)["actor"])
    assert verify(b.audit_rows()) == []
    a.close()
    b.close()


def test_memory_vectors_go_with_the_copy_both_ways(tmp_path: Path, pg_url: str,
                                                    capsys: Any) -> None:
    """Recall on the target finds copied messages by the source's vectors: nothing is
    embedded again (the target's index is full before any recall), and again copies none."""
    from fm_lab.memory.embedders import HashingEmbedder

    path = str(tmp_path / "personal.duckdb")
    topics = ["the invoice from acme is overdue", "my cat only eats tuna",
              "the train to lyon leaves at nine"]
    personal = Memory(store=fm_lab.connect(path), embedder=HashingEmbedder())
    asyncio.run(personal.append("t1", "ann", [{"role": "user", "content": t} for t in topics]
                                + [{"role": "assistant", "content": None,
                                    "tool_calls": [{"id": "c1", "type": "function",
                                                    "function": {"name": "noop",
                                                                 "arguments": "{}"}}]}]))
    personal.store.close()

    assert main(["store", "copy", path, pg_url]) == 0
    assert "memory vectors (hashing-v1-256): copied 4, 0 already there" in capsys.readouterr().out
    team = Memory(store=fm_lab.connect(pg_url), embedder=HashingEmbedder())
    assert team.vectors.backend == "pgvector" and team.vectors.count() == 4
    hits = asyncio.run(team.recall("acme invoice overdue", thread_id="t1", top_k=1,
                                   message_range=0))
    assert [h.text for h in hits] == [topics[0]]
    assert main(["store", "copy", path, pg_url]) == 0
    assert "copied 0, 4 already there" in capsys.readouterr().out

    offline = str(tmp_path / "offline.duckdb")
    assert main(["store", "copy", pg_url, offline, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["vectors"] == {"embedder": "hashing-v1-256", "copied": 4, "present": 0,
                                 "refused": None}
    back = Memory(store=fm_lab.connect(offline), embedder=HashingEmbedder())
    assert back.vectors.backend == "lancedb" and back.vectors.count() == 4
    hits = asyncio.run(back.recall("cat tuna", thread_id="t1", top_k=1, message_range=0))
    assert [h.text for h in hits] == [topics[1]]
    back.store.close()

    other = str(tmp_path / "other.duckdb")  # a target whose index is another embedder's
    mine = Memory(store=fm_lab.connect(other), embedder=HashingEmbedder(64))
    asyncio.run(mine.append("t9", "bo", [{"role": "user", "content": "hello"}]))
    mine.store.close()
    assert main(["store", "copy", path, other]) == 1
    out = capsys.readouterr().out
    assert "memory vectors (hashing-v1-256) not copied:" in out and "reindex" in out
    assert "memory_messages: 4" in out  # the rows themselves were copied


GUIDE = ("# Install\nRun pip install fm_lab in a fresh virtual environment.\n"
         "# Invoices\nAn overdue invoice from acme goes to the finance team.\n"
         "# Pets\nThe office cat only eats tuna on fridays.\n")


def _kb_hits(store: str, query: str, mode: Any = "vector") -> list[tuple[str, str]]:
    """(doc_id, text) of the best hits of knowledge base ``guide`` in ``store``."""
    import fm_lab.kb

    opened = fm_lab.connect(store)
    try:
        hits = fm_lab.kb.open("guide", store=opened).search(query, k=3, mode=mode)
    finally:
        opened.close()
    return list(zip(hits["doc_id"], hits["text"], strict=True))


def test_knowledge_bases_go_with_the_copy_both_ways(tmp_path: Path, pg_url: str,
                                                     capsys: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A LanceDB knowledge base goes into pgvector and back: the same hits, metadata and
    embedder stamp, nothing embedded again, and a second copy adds nothing."""
    import fm_lab.kb
    from fm_lab.memory.embedders import HashingEmbedder

    path = str(tmp_path / "personal.duckdb")
    personal = fm_lab.connect(path)
    fm_lab.run(PRICED, {"who": "ann"}, store=personal, progress=False)
    kb = fm_lab.kb.create("guide", store=personal, embedder=HashingEmbedder(64), chunk_size=80,
                          overlap=0)
    kb.add_markdown(GUIDE, source="guide.md", metadata={"lang": "en"})
    for n in range(12):  # more chunks than one small batch, and than LanceDB's default limit
        kb.add_text(f"note {n}: the train to lyon leaves at {n} o'clock", source=f"n{n}.txt")
    before = kb.documents().sort_values("doc_id").reset_index(drop=True)
    chunks = kb.count()
    personal.close()
    expected = _kb_hits(path, "acme invoice overdue")
    monkeypatch.setattr("fm_lab.memory.vector_rows.BATCH", 5)

    def no_embedding(self: Any, texts: Any) -> Any:
        raise AssertionError("the copy embedded text")

    with monkeypatch.context() as patched:
        patched.setattr(HashingEmbedder, "embed", no_embedding)
        assert main(["store", "copy", path, pg_url, "--dry-run"]) == 0
        assert f"knowledge base guide (hashing-v1-64): would copy {chunks} chunks of 13 " \
               "documents, 0 already there" in capsys.readouterr().out
        from fm_lab.store.pg_store import PostgresStore

        closed: list[str] = []
        close = PostgresStore.close
        patched.setattr(PostgresStore, "close",
                        lambda self: (closed.append(self.url), close(self))[-1])
        assert "guide" not in fm_lab.kb.names(store=pg_url)  # a dry run creates nothing
        assert closed == [pg_url]  # and the call closed the store it opened for itself
        assert main(["store", "copy", path, pg_url]) == 0
    out = capsys.readouterr().out
    assert f"knowledge base guide (hashing-v1-64): copied {chunks} chunks of 13 documents, " \
           "0 already there" in out
    assert _kb_hits(pg_url, "acme invoice overdue") == expected
    assert _kb_hits(pg_url, "tuna", mode="fts")[0][1] == _kb_hits(path, "tuna", mode="fts")[0][1]
    team = fm_lab.connect(pg_url)
    copied = fm_lab.kb.open("guide", store=team)
    assert copied.chunks.embedder.name == "hashing-v1-64" and copied.count() == chunks
    assert type(copied.chunks).__name__ == "PgChunks"
    pd.testing.assert_frame_equal(
        copied.documents().sort_values("doc_id").reset_index(drop=True), before)
    team.close()
    assert main(["store", "copy", path, pg_url]) == 0
    assert f"copied 0 chunks of 0 documents, {chunks} already there" in capsys.readouterr().out

    offline = str(tmp_path / "offline.duckdb")
    assert main(["store", "copy", pg_url, offline, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["knowledge_bases"] == [{
        "name": "guide", "embedder": "hashing-v1-64", "copied": chunks, "documents": 13,
        "present": 0, "differ": [], "refused": None}]
    assert _kb_hits(offline, "acme invoice overdue") == expected
    assert _kb_hits(offline, "tuna", mode="fts") == _kb_hits(path, "tuna", mode="fts")


def test_a_knowledge_base_of_another_embedder_or_content_is_refused(tmp_path: Path,
                                                                      capsys: Any) -> None:
    """The target's knowledge base of another embedder refuses that one knowledge base (exit
    1), the rest is copied; a document edited on one side keeps the target's chunks."""
    import fm_lab.kb
    from fm_lab.memory.embedders import HashingEmbedder

    path = str(tmp_path / "personal.duckdb")
    personal = fm_lab.connect(path)
    fm_lab.kb.create("guide", store=personal, embedder=HashingEmbedder(64)).add_markdown(
        GUIDE, source="guide.md")
    notes = fm_lab.kb.create("notes", store=personal, embedder=HashingEmbedder(64))
    notes.add_text("the train to lyon leaves at nine", source="a.txt")
    notes.add_text("the cat eats tuna", source="b.txt")
    _fill(personal)
    personal.close()

    other = str(tmp_path / "other.duckdb")
    theirs = fm_lab.connect(other)
    fm_lab.kb.create("guide", store=theirs, embedder=HashingEmbedder(32)).add_text(
        "theirs", source="t.txt")
    fm_lab.kb.create("notes", store=theirs, embedder=HashingEmbedder(64)).add_text(
        "the cat eats salmon now", source="b.txt")
    theirs.close()

    assert main(["store", "copy", path, other]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "knowledge base guide" in x)
    assert line.startswith("  knowledge base guide (hashing-v1-64) not copied: ")
    assert "'hashing-v1-32'" in line
    assert ("knowledge base notes (hashing-v1-64): copied 1 chunks of 1 documents, 0 already "
            "there; 1 documents differ in the target, its chunks kept: ") in out
    assert "memory_messages: 2" in out and "runs: " in out  # the rest of the copy went in
    target = fm_lab.connect(other)
    assert [h for h in fm_lab.kb.open("guide", store=target).search("theirs", k=5)["text"]] \
        == ["theirs"]
    kept = fm_lab.kb.open("notes", store=target).search("cat", k=5, mode="fts")
    assert list(kept["text"]) == ["the cat eats salmon now"]
    target.close()


EDIT_SOURCE = """
import sys
import fm_lab, fm_lab.kb
from fm_lab.memory.embedders import HashingEmbedder
store = fm_lab.connect(sys.argv[1])
kb = fm_lab.kb.open("notes", store=store, embedder=HashingEmbedder(64))
kb.add_text("the train to lyon now leaves at ten, from platform two", source="a.txt")
kb.add_text("a new note written during the copy", source="c.txt")
store.close()
"""


@pytest.mark.parametrize("source_kind", ["file", "postgres"])
def test_a_knowledge_base_edited_by_another_process_during_the_copy_is_copied_as_planned(
        source_kind: str, tmp_path: Path, pg_url: str, capsys: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process replaces a document and adds one between the copy's plan and its
    write: the copy writes the documents it planned, whole, as they were (one snapshot of the
    source: a LanceDB version, a repeatable-read transaction on pgvector), and says so; the
    next copy brings the new document and keeps the target's copy of the edited one."""
    import subprocess
    import sys

    import fm_lab.kb
    from fm_lab.kb import copy_chunks
    from fm_lab.memory.embedders import HashingEmbedder

    path = str(tmp_path / "personal.duckdb")
    source, target = (path, pg_url) if source_kind == "file" else (pg_url, path)
    personal = fm_lab.connect(source)
    notes = fm_lab.kb.create("notes", store=personal, embedder=HashingEmbedder(64),
                             chunk_size=40, overlap=0)
    notes.add_text("the train to lyon leaves at nine, from platform one, every day",
                   source="a.txt")
    notes.add_text("the cat eats tuna", source="b.txt")
    before = notes.documents().sort_values("doc_id").reset_index(drop=True)
    chunks = notes.count()
    _fill(personal)
    personal.close()
    plan = copy_chunks._plan
    edited: list[bool] = []

    def plan_then_edit(ours: Any, theirs: Any) -> Any:
        planned = plan(ours, theirs)
        if not edited:  # another process writes the source after the plan, before the write
            subprocess.run([sys.executable, "-c", EDIT_SOURCE, source], check=True,
                           timeout=120)
            edited.append(True)
        return planned

    monkeypatch.setattr(copy_chunks, "_plan", plan_then_edit)
    assert main(["store", "copy", source, target]) == 0
    assert f"knowledge base notes (hashing-v1-64): copied {chunks} chunks of 2 documents" \
        in capsys.readouterr().out
    team = fm_lab.connect(target)
    copied = fm_lab.kb.open("notes", store=team)
    assert copied.count() == chunks
    pd.testing.assert_frame_equal(
        copied.documents().sort_values("doc_id").reset_index(drop=True), before)
    assert "nine" in " ".join(copied.search("train lyon", k=5, mode="fts")["text"])
    team.close()

    assert main(["store", "copy", source, target]) == 1  # the edited document differs now
    out = capsys.readouterr().out
    assert "copied 1 chunks of 1 documents" in out and "1 documents differ" in out
