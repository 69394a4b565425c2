"""Commits (issue 15, items 5 and 6): a finished item is durable without waiting for another
to finish; journal writes and fsyncs run off the event loop while other async work goes on;
a failed fsync fails the run."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import fm_lab
from fm_lab.store.journal import read_journal

RUNNER = """
import sys

import fm_lab
import fm_lab.tracing.recorder as session

session.INGEST_FIRST_S = session.INGEST_EVERY_S = 3600.0  # no periodic ingest commits for us
path, wf_path, run_id = sys.argv[1:]
run = fm_lab.run(fm_lab.Workflow.from_file(wf_path), store=fm_lab.Store(path), run_id=run_id)
print(run.status)
"""

ITEM_FUNCTIONS = """
import asyncio
import os
import time


async def item(index, log, gate):
    with open(log, "a") as fh:  # the side effect, counted per index
        fh.write(f"{index}\\n")
    if index == 2:  # blocks until the gate opens (never, in the killed process)
        deadline = time.monotonic() + 60
        while not os.path.exists(gate) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    return index
"""


def _poll_journal(journal: Path, nodes: set[str], proc, timeout: float = 30.0) -> None:
    """Wait until the succeeded records of ``nodes`` are in the journal on disk."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_journal(journal)
        if nodes <= {r["node"] for r in records
                     if r["k"] == "node" and r["status"] == "succeeded"}:
            return
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{nodes} were never committed: {records}"
        time.sleep(0.01)


@pytest.mark.slow
def test_finished_item_is_committed_while_its_sibling_blocks(spawner, tmp_path, store_path):
    """Items 0 and 1 finish at once, item 2 blocks: both reach the journal on their own (no
    other item has to finish after them), so after a SIGKILL neither runs again."""
    log, gate = tmp_path / "items.log", tmp_path / "gate"
    module = spawner.write_module("item_fns", ITEM_FUNCTIONS)
    body = {"type": "code", "config": {
        "function": f"{module}:item",
        "args": {"index": "{{ item }}", "log": str(log), "gate": str(gate)}}}
    wf = fm_lab.Workflow.from_dict({
        "id": "half_blocked",
        "nodes": {"loop": {"type": "foreach",
                           "config": {"items": [0, 1, 2], "concurrency": 3, "node": body}}},
    })
    wf_path = tmp_path / "half.flow.json"
    wf_path.write_text(wf.to_json())
    proc = spawner.start(RUNNER, str(store_path), str(wf_path), "half")
    journal = Path(f"{store_path}.journal") / "half.journal"

    _poll_journal(journal, {"loop[0]", "loop[1]"}, proc)
    deadline = time.monotonic() + 30
    while "2" not in log.read_text().split():  # item 2 is under way (and blocked)
        assert time.monotonic() < deadline, "item 2 never started"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert Counter(log.read_text().split()) == {"0": 1, "1": 1, "2": 1}

    gate.write_text("open")
    run = fm_lab.resume("half", store=fm_lab.Store(store_path))

    assert run.status == "succeeded", run.error
    assert run.node("loop").output["results"] == [0, 1, 2]
    assert Counter(log.read_text().split()) == {"0": 1, "1": 1, "2": 2}  # the unfinished re-ran


class _BlockingFsync:
    """Wraps ``os.fsync``: once armed, the next fsync records its thread and blocks until
    ``release`` is set (or fails with ``error``)."""

    def __init__(self, error: OSError | None = None) -> None:
        self.real = os.fsync
        self.error = error
        self.armed = threading.Event()
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.released_in_time: bool | None = None
        self.thread: threading.Thread | None = None

    def __call__(self, fd: int) -> None:
        if self.armed.is_set() and not self.blocked.is_set():
            self.thread = threading.current_thread()
            if self.error is not None:
                self.blocked.set()
                raise self.error
            self.blocked.set()
            self.released_in_time = self.release.wait(20)
        self.real(fd)


def _fast_and_ticker(register, fsync: _BlockingFsync, ticks: list[int]) -> dict:
    """``fast`` finishes at once; ``ticker`` (async) arms the fsync, waits until a commit
    blocks, then keeps ticking on the loop and releases it."""

    def fast() -> str:
        return "fast"

    async def ticker() -> int:
        fsync.armed.set()
        while not fsync.blocked.is_set():
            await asyncio.sleep(0.002)
        for i in range(5):  # progress while the commit is blocked
            await asyncio.sleep(0.001)
            ticks.append(i)
        fsync.release.set()
        return len(ticks)

    return {
        "id": "commit_off_loop",
        "nodes": {
            "ticker": {"type": "code", "config": {"function": register(ticker)}},
            "fast": {"type": "code", "config": {"function": register(fast)}},
        },
    }


def test_commits_run_off_the_loop_while_an_async_node_makes_progress(
    store, register, monkeypatch
):
    fsync = _BlockingFsync()
    monkeypatch.setattr(os, "fsync", fsync)
    ticks: list[int] = []
    loop_thread: list[threading.Thread] = []

    async def main() -> fm_lab.Run:
        loop_thread.append(threading.current_thread())
        return await fm_lab.arun(_fast_and_ticker(register, fsync, ticks), store=store)

    run = asyncio.run(main())

    assert run.status == "succeeded", run.error
    assert run.outputs == {"ticker": 5, "fast": "fast"}
    assert fsync.thread is not None and fsync.thread is not loop_thread[0]
    assert fsync.released_in_time, "the async node did not tick while the commit was blocked"
    assert ticks == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("concurrent", [False, True], ids=["inline", "off_loop"])
def test_failed_fsync_fails_the_run(store, register, monkeypatch, concurrent):
    fsync = _BlockingFsync(OSError(errno.EIO, "Input/output error"))
    monkeypatch.setattr(os, "fsync", fsync)
    after: list[str] = []

    def first() -> str:
        fsync.armed.set()  # the commit of this node's record fails
        return "first"

    async def slow() -> str:
        await asyncio.sleep(0.5)
        return "slow"

    def later() -> str:
        after.append("ran")
        return "later"

    nodes = {
        "first": {"type": "code", "config": {"function": register(first)}},
        "later": {"type": "code", "config": {"function": register(later)}},
    }
    if concurrent:
        nodes["slow"] = {"type": "code", "config": {"function": register(slow)}}
    wf = {"id": f"fsync_fails_{concurrent}", "nodes": nodes, "edges": ["first -> later"]}

    run = fm_lab.run(wf, store=store)

    assert fsync.blocked.is_set()
    assert run.status == "failed"
    assert run.error["kind"] == "system"
    assert "writing the run journal" in run.error["message"]
    assert after == []  # its dependent never started
    stored = fm_lab.get_run(run.run_id, store=fm_lab.Store(store.path))
    assert stored.status == "failed"
    assert "Input/output error" in stored.error["message"]
