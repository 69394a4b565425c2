"""The journal writer threads: daemon threads (a finished run leaves no work in progress
behind, so ``fm-lab`` exits at once), drained at interpreter shutdown."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import fm_lab
from fm_lab.engine.committer import WriterPool

WF = {"id": "w", "nodes": {"a": {"type": "template", "config": {"template": "x"}}}}


def test_results_and_errors_come_back() -> None:
    pool = WriterPool(2, "test-writer")
    assert pool.submit(lambda a, b=0: a + b, 1, b=2).result(timeout=10) == 3
    failed = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failed.result(timeout=10)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


def test_shutdown_finishes_what_was_queued() -> None:
    pool = WriterPool(1, "test-writer")
    done: list[int] = []
    for i in range(5):
        pool.submit(lambda i=i: (time.sleep(0.01), done.append(i)))
    pool.shutdown(wait=True)
    assert done == [0, 1, 2, 3, 4]


def test_a_file_store_run_leaves_only_daemon_threads(tmp_path: Path) -> None:
    fm_lab.run(WF, store=fm_lab.Store(tmp_path / "s.duckdb"))
    busy = [t.name for t in threading.enumerate()
            if t.is_alive() and not t.daemon and t is not threading.main_thread()]
    assert not [name for name in busy if name.startswith("fm_lab")], busy


def test_work_queued_at_exit_is_done(tmp_path: Path) -> None:
    marker = tmp_path / "written"
    script = ("import time; from fm_lab.engine.committer import writer\n"
              f"writer().submit(lambda: (time.sleep(0.3), open({str(marker)!r}, 'w').close()))\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert marker.exists()
