"""Settings for every test: no network for litellm's price table, none of the user's
``FM_LAB_*`` variables, and a store and home of its own for each test.

The session also checks that nothing was written into the repository's working tree: a file
that appears (or changes) there during the run fails the session, with its name."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO = Path(__file__).resolve().parents[1]
# variables that configure the test run itself, not fm_lab
TEST_SETTINGS = {"FM_LAB_CHROMIUM", "FM_LAB_UPDATE_SCREENSHOTS", "FM_LAB_E2E_OUT"}
# the user's settings (FM_LAB_MODEL, FM_LAB_HOME, FM_LAB_STORE...) never reach a test; some are
# read at import, so they go before fm_lab is imported
USER_SETTINGS = sorted(k for k in os.environ if k.startswith("FM_LAB_") and k not in TEST_SETTINGS)
for _name in USER_SETTINGS:
    del os.environ[_name]


@pytest.fixture(autouse=True)
def _own_home_and_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``$FM_LAB_HOME`` is this test's folder and the default store is opened there on first
    use (and closed after the test); subprocesses and kernels inherit the variable."""
    from fm_lab.store import default

    home = tmp_path / "fm_lab_home"
    for name in [k for k in os.environ if k.startswith("FM_LAB_") and k not in TEST_SETTINGS]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FM_LAB_HOME", str(home))
    monkeypatch.setattr(default, "_STORE", None)
    yield home
    opened = default.current()
    if opened is not None:
        opened.close()


# -- nothing lands in the repository's working tree -------------------------------------------

# tools' own output and caches, not the tests'
_NOT_WATCHED_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache",
                     ".mypy_cache", ".ruff_cache", "static", ".hypothesis"}
_NOT_WATCHED_FILES = (".coverage", "coverage.xml")


def _tree_snapshot() -> dict[str, int]:
    snapshot: dict[str, int] = {}
    chosen = os.environ.get("FM_LAB_E2E_OUT")  # the browser tests' output, where asked for
    skip = os.path.abspath(chosen) if chosen else None
    for dirpath, dirnames, filenames in os.walk(REPO):
        dirnames[:] = [d for d in dirnames if d not in _NOT_WATCHED_DIRS
                       and os.path.join(dirpath, d) != skip]
        for name in filenames:
            if name.startswith(_NOT_WATCHED_FILES):
                continue
            path = os.path.join(dirpath, name)
            try:
                snapshot[os.path.relpath(path, REPO)] = os.stat(path).st_mtime_ns
            except FileNotFoundError:
                continue
    return snapshot


_SNAPSHOT = pytest.StashKey[dict[str, int]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_SNAPSHOT] = _tree_snapshot()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_SNAPSHOT, None)
    if before is None or os.environ.get("FM_LAB_UPDATE_SCREENSHOTS") == "1":
        return
    after = _tree_snapshot()
    written = sorted(p for p, mtime in after.items() if before.get(p) != mtime)
    if not written:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = ("the tests wrote into the repository's working tree: "
               + ", ".join(written[:20]) + (" ..." if len(written) > 20 else ""))
    if reporter is not None:
        reporter.write_sep("!", message, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def files_containing():
    """``scan(paths, *needles)``: the files under ``paths`` (files or folders) whose raw bytes
    contain one of the needles (a leak check that reads what is on disk, not a query)."""
    def scan(paths, *needles):
        found = []
        for root in map(Path, paths):
            files = [root] if root.is_file() else sorted(p for p in root.rglob("*")
                                                         if p.is_file())
            for path in files:
                data = path.read_bytes()
                if any(n.encode() in data for n in needles):
                    found.append(str(path))
        return found
    return scan


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the browser tests' figures, written by every process that ran some (xdist
    workers write theirs under the shared base temporary folder, or into
    ``$FM_LAB_E2E_OUT``). Here, not in tests/e2e: an xdist controller loads no sub-conftest."""
    base: Path = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    chosen = os.environ.get("FM_LAB_E2E_OUT")
    root = Path(chosen) if chosen else base
    found: dict[str, Any] = {}
    for path in sorted(root.glob("**/widget_figures-*.json")):
        found.update(json.loads(path.read_text()))
    if not found:
        return
    out = root if chosen else base / "e2e"
    out.mkdir(parents=True, exist_ok=True)
    (out / "widget_figures.json").write_text(json.dumps(found, indent=2))
    terminalreporter.write_sep("-", f"widget figures ({out / 'widget_figures.json'})")
    for key, value in found.items():
        terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture
def register() -> Callable[[Callable[..., Any]], str]:
    """Register a function for ``code`` nodes under a unique name; returns the name."""
    import uuid

    import fm_lab

    def _register(fn: Callable[..., Any]) -> str:
        name = f"it_{fn.__name__}_{uuid.uuid4().hex[:8]}"
        fm_lab.register_function(fn, name=name)
        return name

    return _register
