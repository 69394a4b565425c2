"""A real JupyterLab on loopback (token, temp root) driven by Debian's Chromium through
Playwright. Screenshots of failures and figures go to ``benchmarks/out/e2e/``."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("FM_LAB_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "benchmarks" / "out" / "e2e"
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
        page = getattr(item, "funcargs", {}).get("lab_page")
        if page is not None:
            OUT.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(OUT / f"failure-{item.name}.png"), full_page=True)
            logs = "\n".join(getattr(page, "console_log", [])[-40:])
            report.sections.append(("browser console", logs))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "widget_figures.json").write_text(json.dumps(FIGURES, indent=2))
    terminalreporter.write_sep("-", "widget figures (benchmarks/out/e2e/widget_figures.json)")
    for key, value in FIGURES.items():
        terminalreporter.write_line(f"{key}: {value}")


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


def _wait_until_up(url: str, token: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
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


def save_screenshot(locator: Any, name: str) -> None:
    """Keep a screenshot of the canvas ``locator`` (fitted to view); also refresh
    ``docs/screenshots`` when ``FM_LAB_UPDATE_SCREENSHOTS=1``."""
    OUT.mkdir(parents=True, exist_ok=True)
    locator.locator(".react-flow__controls-fitview").click()
    locator.page.wait_for_timeout(300)
    locator.screenshot(path=str(OUT / name))
    if os.environ.get("FM_LAB_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(OUT / name, SCREENSHOTS / name)
