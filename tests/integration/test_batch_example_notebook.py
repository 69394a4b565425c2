"""notebooks/batch.ipynb runs end to end (through fm_lab.batch.run_notebook, i.e. nbclient)."""

from __future__ import annotations

from pathlib import Path

import nbformat

import fm_lab.batch
from fm_lab.tracing.pricing import set_price

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "batch.ipynb"


def test_batch_notebook_sweeps_and_plots_cost_per_row(store, tmp_path):
    demo_store = tmp_path / "demo.duckdb"
    out = tmp_path / "batch-out.ipynb"
    item = fm_lab.batch.run_notebook(NOTEBOOK, {"store_path": str(demo_store)}, out,
                                     store=store, cwd=tmp_path)
    assert item.status == "succeeded", item.error
    executed = nbformat.read(out, as_version=4)
    images = [o for c in executed.cells for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) == 1  # the cost-per-row bar chart
    set_price("offline/triage", input_per_mtok=150.0, output_per_mtok=600.0)  # as the notebook
    demo = fm_lab.Store(demo_store)
    frame = fm_lab.batch.status("ticket-sweep", store=demo)
    assert len(frame) == 8 and (frame["status"] == "succeeded").all()
    assert (frame["cost_usd"] > 0).all() and frame["cost_usd"].nunique() > 1
    assert (frame["attempts"] == 1).all()  # the notebook's second sweep did no work
