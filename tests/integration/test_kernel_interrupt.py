"""The stop button in a real Jupyter kernel: interrupting a cell that runs a workflow stops the
run (the cell ends with KeyboardInterrupt while a node still waits), its finished nodes are
kept, and a later cell resumes it to the end. Before, the interrupt waited for the whole run."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SETUP = """
import asyncio, pathlib
import fm_lab
store = fm_lab.Store({store!r})
started, release = pathlib.Path({started!r}), pathlib.Path({release!r})

@fm_lab.register_function(name="wait_for_release")
async def wait_for_release() -> str:
    started.touch()
    while not release.exists():
        await asyncio.sleep(0.02)
    return "released"

wf = {{"id": "stoppable", "edges": ["a -> b"], "nodes": {{
    "a": {{"type": "template", "config": {{"template": "first"}}}},
    "b": {{"type": "code", "config": {{"function": "wait_for_release"}}}}}}}}
"""


def _execute(client: Any, code: str, timeout: float = 600) -> dict[str, Any]:
    """Run ``code``; its reply's content and the text it printed (``timeout``: a hang guard)."""
    msg_id = client.execute(code)
    reply = client.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = client.get_shell_msg(timeout=timeout)
    printed = []
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return {**reply["content"], "printed": "".join(printed)}


def test_interrupting_a_cell_stops_its_run_and_a_later_cell_resumes_it(tmp_path: Path) -> None:
    from jupyter_client.manager import start_new_kernel

    started, release = tmp_path / "started", tmp_path / "release"
    env = {**os.environ, "FM_LAB_HOME": str(tmp_path / "home"), "FM_LAB_PROGRESS": "",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        setup = SETUP.format(store=str(tmp_path / "s.duckdb"), started=str(started),
                             release=str(release))
        assert _execute(client, setup)["status"] == "ok"
        # stop_on_error off: the kernel then does not abort the cells sent soon after this
        # one's error (a notebook's next cell is run by a person, later)
        msg_id = client.execute('run = fm_lab.run(wf, store=store, run_id="stop-1")',
                                stop_on_error=False)
        deadline = time.monotonic() + 600  # a hang guard, not a timing assertion
        while not started.exists():
            assert time.monotonic() < deadline, "node b never started"
            time.sleep(0.02)
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=600)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = client.get_shell_msg(timeout=600)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert not release.exists()  # the run stopped while its node still waited
        kept = _execute(client, 'snap = store.load_run("stop-1")\n'
                                'print(snap.status, snap.nodes["a"]["status"], '
                                '"b" in snap.nodes)')
        assert kept["status"] == "ok", kept
        assert kept["printed"].split() == ["running", "succeeded",
                                                                     "False"]
        release.touch()
        resumed = _execute(client, 'done = fm_lab.resume("stop-1", store=store)\n'
                                   'print(done.status, done.outputs)')
        assert resumed["status"] == "ok", resumed
        assert resumed["printed"].strip() == "succeeded {'b': 'released'}"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
