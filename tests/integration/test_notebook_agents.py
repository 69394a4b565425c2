"""notebooks/agents.ipynb runs top to bottom on a kernel of this venv's Python."""

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_agents_notebook_runs_and_shows_trace_and_usage(tmp_path, monkeypatch):
    kernel_dir = tmp_path / "jupyter" / "kernels" / "fm_lab_agents"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fm_lab (test venv)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    notebook = nbformat.read(ROOT / "notebooks" / "agents.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")
    NotebookClient(notebook, kernel_name="fm_lab_agents", timeout=120,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    def text(cell):
        parts = []
        for out in cell.outputs:
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
        return "".join(parts)

    code = [c for c in notebook.cells if c.cell_type == "code"]
    answer = "Oslo in brief: capital of Norway, about 700,000 people, founded around 1040."
    assert answer in text(code[2])
    trace = text(code[3])
    assert "coordinator" in trace and "search_notes" in trace and "writer" in trace
    usage = text(code[4])
    assert all(name in usage for name in ("coordinator", "researcher", "writer"))
    stream = text(code[5])
    assert "tool-output" in stream and stream.rstrip().splitlines()[-1].startswith("finish")
