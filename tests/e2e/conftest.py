"""A real JupyterLab on loopback (token, temp root) driven by Debian's Chromium through
Playwright. Every test opens its own notebook in its own browser context (and its kernel is
shut down after it), so each passes alone and in any order. Screenshots of failures and the
figures go to the session's temporary folder, or to ``$FM_LAB_E2E_OUT`` when that is set."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("FM_LAB_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]
_CHOSEN_OUT = os.environ.get("FM_LAB_E2E_OUT")
OUT: Path | None = Path(_CHOSEN_OUT) if _CHOSEN_OUT else None  # else the session's temp folder
SCREENSHOTS = REPO / "docs" / "screenshots"
FIGURES: dict[str, Any] = {}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
# JupyterLab settings for the test server: every cell in the DOM, no news or update checks
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False,
    },
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {CHROMIUM} is missing: .ci/run installs Debian's chromium")
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        for page in getattr(item, "lab_pages", []):
            logs = "\n".join(getattr(page, "console_log", [])[-40:])
            report.sections.append(("browser console", logs))
            shot = out_dir() / f"failure-{item.name}.png"
            try:  # a closed or crashed page must not turn a failure into an INTERNALERROR
                if not page.is_closed():
                    page.screenshot(path=str(shot), full_page=True)
                    report.sections.append(("failure screenshot", str(shot)))
            except Exception as exc:  # any browser error: report it and go on
                report.sections.append(("failure screenshot", f"not taken: {exc}"))


def out_dir() -> Path:
    """Where screenshots and figures go (made on first use)."""
    assert OUT is not None, "set by the _e2e_out fixture"
    OUT.mkdir(parents=True, exist_ok=True)
    return OUT


@pytest.fixture(scope="session", autouse=True)
def _e2e_out(tmp_path_factory: pytest.TempPathFactory) -> None:
    global OUT
    if OUT is None:
        OUT = tmp_path_factory.getbasetemp() / "e2e"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Each process (an xdist worker, or the only one) writes the figures its tests took."""
    if FIGURES:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        (out_dir() / f"widget_figures-{worker}.json").write_text(json.dumps(FIGURES, indent=2))



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """A running ``jupyter lab`` server."""

    def __init__(self, root: Path, url: str, token: str, proc: subprocess.Popen[bytes]) -> None:
        self.root, self.url, self.token, self.proc = root, url, token, proc

    def notebook(self, name: str, cells: list[str]) -> str:
        """Write a notebook into the server root; returns its URL."""
        nb = {
            "cells": [
                {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                 "source": src}
                for src in cells
            ],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (self.root / name).write_text(json.dumps(nb))
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def _api(self, method: str, path: str) -> Any:
        req = urllib.request.Request(f"{self.url}/api/{path}?token={self.token}", method=method)
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End every session and its kernel (each test starts its own)."""
        for session in self._api("GET", "sessions"):
            self._api("DELETE", f"sessions/{session['id']}")


def _wait_until_up(url: str, token: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180  # a hang guard: a loaded 2-core machine took over 60 s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"jupyter lab did not start: {log.read_text()[-3000:]}"
                ) from None
            time.sleep(0.3)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("lab")
    root, settings = base / "root", base / "settings"
    root.mkdir()
    for rel, value in SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "FM_LAB_HOME": str(base / "fm_lab_home"),
           "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_RUNTIME_DIR": str(base / "rt"),
           "IPYTHONDIR": str(base / "ipython"), "PYTHONUNBUFFERED": "1"}
    log = (base / "lab.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=True",
         "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={settings}",
         f"--LabApp.workspaces_dir={base / 'workspaces'}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--allow-root"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, token, proc, base / "lab.log")
        yield Lab(root, url, token, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, for one module only: Playwright's sync API keeps an event loop running in
    this thread, which the asyncio tests after it must not see."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def open_notebook(lab: Lab, browser: Any, request: pytest.FixtureRequest
                  ) -> Iterator[Callable[[list[str]], Any]]:
    """``open_notebook(cells)``: a fresh notebook with ``cells`` opened in a new browser context,
    its kernel started; returns the page. Contexts and kernels end with the test."""
    contexts: list[Any] = []
    request.node.lab_pages = []

    def open_(cells: list[str]) -> Any:
        context = browser.new_context(viewport={"width": 1300, "height": 950})
        contexts.append(context)
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.console_log = console  # printed by the failure hook
        request.node.lab_pages.append(page)
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name)
        page.goto(lab.notebook(f"{name}-{len(contexts)}.ipynb", cells))
        page.wait_for_function(
            "window.jupyterapp && window.jupyterapp.shell.currentWidget "
            "&& window.jupyterapp.shell.currentWidget.sessionContext "
            "&& window.jupyterapp.shell.currentWidget.sessionContext.session "
            "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
            timeout=60_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=30_000)
        return page

    yield open_
    for context in contexts:
        context.close()
    lab.shutdown_kernels()


def save_screenshot(locator: Any, name: str, *, fit: bool = True) -> None:
    """Keep a screenshot of the canvas ``locator`` (fitted to view unless ``fit=False``);
    also refresh ``docs/screenshots`` when ``FM_LAB_UPDATE_SCREENSHOTS=1``."""
    out = out_dir()
    if fit:
        locator.locator(".react-flow__controls-fitview").click()
        locator.page.wait_for_timeout(300)
    locator.screenshot(path=str(out / name))
    if os.environ.get("FM_LAB_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / name, SCREENSHOTS / name)
