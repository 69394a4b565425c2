"""Shared fixtures of the integration tests: real DuckDB files in tmp_path, real subprocesses."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import fm_lab


class Spawner:
    """Starts python scripts as real subprocesses; kills (by pid) what is left at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[str]] = []

    def write_module(self, name: str, source: str) -> str:
        """Write ``<name>_<random>.py`` to tmp_path (importable by both processes); return the
        module name."""
        module = f"{name}_{uuid.uuid4().hex[:8]}"
        (self.tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        return module

    def start(self, source: str, *args: str) -> subprocess.Popen[str]:
        script = self.tmp_path / f"script_{uuid.uuid4().hex[:8]}.py"
        script.write_text(textwrap.dedent(source))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.tmp_path), env.get("PYTHONPATH", "")) if p
        )
        proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            cwd=self.tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    @staticmethod
    def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
        """Wait until ``path`` exists; fail early (with its stderr) if ``proc`` exits first.
        The timeout is a hang guard, generous for a loaded machine (and coverage)."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(
                    f"subprocess exited with {proc.returncode} before {path.name} "
                    f"appeared\nstdout:\n{out}\nstderr:\n{err}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"{path.name} did not appear within {timeout} s")
            time.sleep(0.01)

    @staticmethod
    def finish(proc: subprocess.Popen[str], timeout: float = 120.0) -> str:
        """Wait for a clean exit; return stdout (fails with stderr otherwise)."""
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"subprocess failed ({proc.returncode}):\n{err}"
        return out

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture
def spawner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Spawner]:
    """Subprocess helper; tmp_path is also put on this process's sys.path."""
    monkeypatch.syspath_prepend(str(tmp_path))
    sp = Spawner(tmp_path)
    yield sp
    sp.cleanup()


@pytest.fixture
def reopen() -> Iterator[Callable[[fm_lab.RunStore], fm_lab.RunStore]]:
    """``reopen(store)``: another handle on the same store (what another process would open),
    closed after the test."""
    from fm_lab.store import open_store

    opened: list[fm_lab.RunStore] = []

    def _reopen(store: fm_lab.RunStore) -> fm_lab.RunStore:
        again = open_store(getattr(store, "url", store.path))
        opened.append(again)
        return again

    yield _reopen
    for again in opened:
        again.close()


POLICY = {"limits": {"travel": 500, "meals": 100}, "auto_approve_below": 50}


@pytest.fixture
def policy_url() -> Iterator[str]:
    """The expense example's policy, served on a loopback port (examples/expense_approval)."""

    class Policy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(POLICY).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Policy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/policy.json"
    server.shutdown()
    server.server_close()
    thread.join()
