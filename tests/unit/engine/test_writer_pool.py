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
from fm_lab.store.committer import WriterPool

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
    from fm_lab.nodes.code import THREAD_PREFIX

    fm_lab.run(WF, store=fm_lab.Store(tmp_path / "s.duckdb"))
    busy = [t.name for t in threading.enumerate()
            if t.is_alive() and not t.daemon and t is not threading.main_thread()]
    # code nodes' pool threads (left by other tests here) are not waited for by fm-lab
    assert not [n for n in busy if n.startswith("fm_lab") and not n.startswith(THREAD_PREFIX)]


def test_fm_lab_exits_promptly_after_a_code_node(tmp_path: Path) -> None:
    """The code nodes' idle pool threads do not send ``fm-lab`` into the interpreter's slow
    teardown: ``entry`` ends with ``os._exit`` (seen here through a wrapper)."""
    flow = tmp_path / "code.flow.yaml"
    flow.write_text("id: c\nnodes:\n  f:\n    type: code\n    config:\n"
                    "      function: fm_lab.demo_functions:text_stats\n"
                    "      args: {text: 'a b c'}\n")
    script = ("import os, sys\nreal = os._exit\n"
              "def prompt(code):\n    print('PROMPT EXIT', code, flush=True)\n    real(code)\n"
              "os._exit = prompt\nfrom fm_lab.cli import entry\n"
              f"sys.argv = ['fm-lab', '--store', {str(tmp_path / 's.duckdb')!r}, 'run', "
              f"{str(flow)!r}]\nentry()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout and "PROMPT EXIT 0" in done.stdout, done.stdout


def test_work_queued_at_exit_is_done(tmp_path: Path) -> None:
    marker = tmp_path / "written"
    script = ("import time; from fm_lab.store.committer import writer\n"
              f"writer().submit(lambda: (time.sleep(0.3), open({str(marker)!r}, 'w').close()))\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert marker.exists()
