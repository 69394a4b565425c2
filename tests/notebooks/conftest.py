"""Executing the example notebooks with fm_lab.batch's runner (nbclient), in a kernel running
this interpreter (so the installed fm_lab is the one under test) and a throw-away
``FM_LAB_HOME``."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest

from fm_lab.batch.nbexec import execute_notebook

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL = "fm_lab_test"


@pytest.fixture(scope="session")
def kernel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec whose argv is ``sys.executable`` (a bare ``python`` may be another one)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fm_lab tests", "language": "python"}))
    return root


@pytest.fixture
def execute(kernel_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[Callable[[str], nbformat.NotebookNode]]:
    """Run ``notebooks/<name>`` from a copy of the folder; returns the executed notebook."""
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
    monkeypatch.setenv("FM_LAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.delenv("FM_LAB_MODEL", raising=False)
    work = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, work)
    examples = NOTEBOOKS.parent / "examples"
    if examples.exists():
        shutil.copytree(examples, tmp_path / "examples")

    def run(name: str) -> nbformat.NotebookNode:
        out = tmp_path / "executed" / name
        result = execute_notebook(work / name, out, {}, kernel_name=KERNEL, timeout=180,
                                  cwd=work)
        assert result["status"] == "succeeded", result["error"]
        nb = nbformat.read(out, as_version=4)
        nb.cells = [c for c in nb.cells  # the (empty) parameters cell the runner injects
                    if "injected-parameters" not in c.metadata.get("tags", [])]
        return nb

    yield run
