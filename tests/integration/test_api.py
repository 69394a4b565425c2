"""The user-facing API on a real DuckDB file: run, Run, runs(), get_run()."""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

NODE_COLUMNS = {
    "node_id",
    "node_type",
    "status",
    "attempts",
    "started_at",
    "ended_at",
    "duration_ms",
    "output",
    "error",
}
RUN_COLUMNS = {
    "run_id",
    "workflow_id",
    "status",
    "created_at",
    "ended_at",
    "duration_ms",
    "inputs",
    "outputs",
    "error",
}


def _greeting(register) -> fm_lab.Workflow:
    async def shout(inputs: dict) -> str:
        await asyncio.sleep(0)
        return inputs["greet"].upper()

    def table(n: int) -> pd.DataFrame:
        return pd.DataFrame({"i": list(range(n)), "sq": [i * i for i in range(n)]})

    b = fm_lab.WorkflowBuilder(
        "greeting",
        inputs={"type": "object", "properties": {"who": {"type": "string"}}},
        outputs={"loud": "{{ nodes.loud.output }}", "rows": "{{ nodes.table.output }}"},
    )
    greet = b.node("greet", "template", template="hello {{ inputs.who }}")
    loud = b.node("loud", "code", function=register(shout))
    tab = b.node("table", "code", function=register(table), args={"n": 3})
    greet >> loud
    greet >> tab
    return b.build()


def _failing(register) -> fm_lab.Workflow:
    def boom() -> None:
        raise RuntimeError("kaboom")

    b = fm_lab.WorkflowBuilder("failing")
    ok = b.node("ok", "template", template="fine")
    bad = b.node("bad", "code", function=register(boom))
    ok >> bad
    return b.build()


async def test_sync_run_works_inside_a_running_event_loop(store, register):
    asyncio.get_running_loop()  # we are inside the test's loop, as in Jupyter
    run = fm_lab.run(_greeting(register), inputs={"who": "loop"}, store=store)
    assert run.status == "succeeded", run.error
    assert run.outputs["loud"] == "HELLO LOOP"
    assert fm_lab.get_run(run.run_id, store=store).status == "succeeded"


async def test_async_run_and_resume_inside_a_running_event_loop(store, register):
    run = await fm_lab.arun(_greeting(register), inputs={"who": "async"}, store=store)
    assert run.outputs["loud"] == "HELLO ASYNC"
    again = fm_lab.resume(run.run_id, store=store)  # a succeeded run: nothing to do
    assert again.status == "succeeded"
    assert again.outputs["loud"] == "HELLO ASYNC"
    assert len(store.node_executions(run.run_id, history=True)) == 3


def test_run_handle_nodes_and_dataframes(store, register):
    run = fm_lab.run(_greeting(register), inputs={"who": "df"}, store=store)

    assert run.status == "succeeded", run.error
    assert run.node("greet").output == "hello df"
    assert run.node("loud").output == "HELLO DF"
    assert run.node("loud").status == "succeeded"
    assert run.node("loud").attempts == 1
    assert run.node("loud").duration_ms is not None
    pd.testing.assert_frame_equal(
        run.node("table").output, pd.DataFrame({"i": [0, 1, 2], "sq": [0, 1, 4]})
    )
    with pytest.raises(KeyError, match="nope"):
        run.node("nope")

    df = run.nodes_df()
    assert isinstance(df, pd.DataFrame)
    assert set(df.columns) >= NODE_COLUMNS
    assert sorted(df["node_id"]) == ["greet", "loud", "table"]
    assert set(df["status"]) == {"succeeded"}
    assert df.set_index("node_id").loc["loud", "node_type"] == "code"
    assert json.loads(df.set_index("node_id").loc["loud", "output"]) == "HELLO DF"
    assert (df["duration_ms"] >= 0).all()


def test_runs_dataframe_newest_first(store, register):
    first = fm_lab.run(_greeting(register), inputs={"who": "one"}, store=store)
    second = fm_lab.run(_failing(register), store=store)

    df = fm_lab.runs(store=store)

    assert isinstance(df, pd.DataFrame)
    assert set(df.columns) >= RUN_COLUMNS
    assert list(df["run_id"]) == [second.run_id, first.run_id]
    assert list(df["status"]) == ["failed", "succeeded"]
    assert list(df["workflow_id"]) == ["failing", "greeting"]
    assert list(fm_lab.runs(store=store, status="failed")["run_id"]) == [second.run_id]
    assert len(fm_lab.runs(store=store, limit=1)) == 1


def test_runs_uses_the_connected_default_store(store_path, register, monkeypatch):
    monkeypatch.setattr("fm_lab.store.default._STORE", None)  # restored after the test
    connected = fm_lab.connect(store_path)
    assert fm_lab.default_store() is connected
    run = fm_lab.run(_greeting(register), inputs={"who": "default"})
    assert list(fm_lab.runs()["run_id"]) == [run.run_id]
    assert fm_lab.get_run(run.run_id).outputs["loud"] == "HELLO DEFAULT"


def test_get_run_from_a_fresh_store_returns_the_same_run(store, store_path, register):
    run = fm_lab.run(_greeting(register), inputs={"who": "fresh"}, store=store)
    store.close()

    loaded = fm_lab.get_run(run.run_id, store=fm_lab.Store(store_path))

    assert loaded.run_id == run.run_id
    assert loaded.status == "succeeded"
    assert loaded.outputs["loud"] == run.outputs["loud"] == "HELLO FRESH"
    pd.testing.assert_frame_equal(loaded.outputs["rows"], run.outputs["rows"])
    assert loaded.workflow == run.workflow
    for node_id in ("greet", "loud"):
        assert loaded.node(node_id).output == run.node(node_id).output
        assert loaded.node(node_id).status == "succeeded"
    assert loaded.node("loud").started_at is not None
    with pytest.raises(fm_lab.RunNotFoundError):
        fm_lab.get_run("no-such-run", store=fm_lab.Store(store_path))


def test_repr_html_lists_nodes(store, register):
    run = fm_lab.run(_greeting(register), inputs={"who": "html"}, store=store)
    html = run._repr_html_()
    for node_id in ("greet", "loud", "table"):
        assert f"<code>{node_id}</code>" in html
    assert run.run_id in html
    assert "succeeded" in html

    failed = fm_lab.run(_failing(register), store=store)
    failed_html = fm_lab.get_run(failed.run_id, store=store)._repr_html_()
    assert "<code>bad</code>" in failed_html
    assert "kaboom" in failed_html


def test_raise_for_status(store, register, reopen):
    ok = fm_lab.run(_greeting(register), inputs={"who": "ok"}, store=store)
    assert ok.raise_for_status() is ok

    failed = fm_lab.run(_failing(register), store=store)
    assert failed.status == "failed"
    with pytest.raises(fm_lab.RunFailedError, match=r"bad.*kaboom"):
        failed.raise_for_status()
    with pytest.raises(fm_lab.RunFailedError, match="kaboom"):
        fm_lab.get_run(failed.run_id, store=reopen(store)).raise_for_status()
