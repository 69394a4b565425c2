"""The Temporal target (what a run is stored with), workflow ids, and the engine's executor
slot: no server needed."""

import pytest

import fm_lab
from fm_lab.engine.executors import executor_for, remote_owner, scheme_of
from fm_lab.temporal import Target, run_id_of, workflow_id


def test_a_target_round_trips_through_its_url(monkeypatch):
    target = Target.parse("temporal://10.0.0.5:7233/prod?task_queue=ai")
    assert target == Target("10.0.0.5:7233", "prod", "ai")
    assert Target.parse(target.url) == target
    monkeypatch.setenv("FM_LAB_TEMPORAL", "h:1")
    monkeypatch.setenv("FM_LAB_TEMPORAL_QUEUE", "q")
    assert Target.parse("temporal") == Target("h:1", "default", "q")
    with pytest.raises(ValueError, match="not a Temporal target"):
        Target.parse("http://h:1")


def test_run_ids_map_to_workflow_ids():
    assert run_id_of(workflow_id("01abc")) == "01abc"
    with pytest.raises(ValueError, match="not the workflow id of an fm_lab run"):
        run_id_of("other")


def test_the_engine_finds_the_temporal_executor_by_name():
    from fm_lab.temporal.executor import EXECUTOR

    assert scheme_of("temporal://h:1") == "temporal"
    assert executor_for("temporal://h:1") is EXECUTOR
    with pytest.raises(ValueError, match="unknown executor 'dask'"):
        executor_for("dask")


def test_a_run_is_remote_when_its_owner_is_a_temporal_target(tmp_path):
    from fm_lab.temporal.activities import store_start

    store = fm_lab.connect(str(tmp_path / "s.duckdb"))
    wf = fm_lab.Workflow.from_dict({"id": "w", "nodes": {"a": {"type": "input"}}})
    store_start(store, "r1", wf, {}, parent=None, trace_id="t" * 32, policy="trusted",
                owner=Target("h:1").url)
    local = fm_lab.run(wf, {}, store=store)
    assert remote_owner(store, "r1") == Target("h:1").url
    assert remote_owner(store, local.run_id) is None
    assert remote_owner(fm_lab.connect(":memory:"), "r1") is None


def test_remote_runs_refuse_what_they_cannot_do(tmp_path):
    wf = {"id": "w", "nodes": {"a": {"type": "input"}}}
    with pytest.raises(ValueError, match="does not support cache"):
        fm_lab.run(wf, {}, store=fm_lab.connect(str(tmp_path / "s.duckdb")),
                   executor="temporal://127.0.0.1:9", cache=True)


def test_submit_runs_locally_too(tmp_path):
    store = fm_lab.connect(str(tmp_path / "s.duckdb"))
    handle = fm_lab.submit({"id": "w", "nodes": {"t": {"type": "template", "config": {
        "template": "hi"}}}}, {}, store=store, executor="local")
    assert handle.result().outputs == {"t": "hi"}
    assert handle.run_id in repr(handle)
