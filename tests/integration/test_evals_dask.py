"""An experiment whose target is a workflow runs its rows on Dask through fm_lab.batch, and
is scored in the driver; a function target on Dask is refused in one line."""

from __future__ import annotations

import pandas as pd
import pytest

import fm_lab
import fm_lab.evals as ev

distributed = pytest.importorskip("distributed")

FLOW = {
    "id": "dask_eval",
    "inputs": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"},
                                                                   "model": {"type": "string"}}},
    "nodes": {"ask": {"type": "llm", "config": {"model": "{{ inputs.model }}",
                                                "prompt": "twice {{ inputs.x * 2 }}"}}},
}


def test_a_workflow_experiment_on_a_local_dask_cluster(store_path) -> None:
    store = fm_lab.Store(store_path)
    data = ev.dataset("dask", pd.DataFrame({"x": range(12), "expected": [
        {"ask": f"(offline) twice {i * 2}"} for i in range(12)]}), store=store)

    @ev.scorer
    def right(output: dict, expected: dict) -> bool:
        return bool(output == expected)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        exp = ev.run(FLOW, data, [right], executor=client, store=store,
                     variants={"echo": {"model": "offline/echo"}})
    frame = exp.df
    assert len(frame) == 12 and frame["right"].eq(1.0).all()
    assert (frame["input_tokens"] > 0).all() and frame["run_id"].notna().all()
    # the scorers' spans joined each item's trace, beside the run the worker made
    tree = fm_lab.trace(frame.loc[0, "run_id"], store=store)
    assert {"batch_item", "workflow", "llm", "scorer"} <= set(tree["kind"])
    with pytest.raises(ValueError, match="executor='dask' runs workflow targets"):
        ev.run(lambda x: x, data, [right], executor="dask", store=store)
    store.close()
