"""Retry policies, error classification, node timeouts and resuming a failed run."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

RETRY = {"max_attempts": 3, "backoff_s": 0.01}


def _single(function: str, **node) -> fm_lab.Workflow:
    b = fm_lab.WorkflowBuilder("single")
    b.node("flaky", "code", function=function, **node)
    return b.build()


def _stored_error(store: fm_lab.Store, run_id: str) -> dict:
    row = store.runs().set_index("run_id").loc[run_id]
    return json.loads(row["error"])


def test_retryable_error_is_retried_until_success(store, register, reopen):
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise fm_lab.NodeError("x", kind="provider")
        return "ok"

    run = fm_lab.run(_single(register(flaky), retry=RETRY), store=store)

    assert run.status == "succeeded", run.error
    assert run.outputs == {"flaky": "ok"}
    assert len(calls) == 3
    assert run.node("flaky").attempts == 3
    assert run.node("flaky").error is None
    stored = run.nodes_df().set_index("node_id").loc["flaky"]
    assert stored["status"] == "succeeded"
    assert stored["attempts"] == 3
    # backoff 0.01 s then 0.02 s (multiplier 2)
    assert calls[1] - calls[0] >= 0.01
    assert calls[2] - calls[1] >= 0.02
    assert fm_lab.get_run(run.run_id, store=reopen(store)).node("flaky").attempts == 3


def test_retries_are_bounded_by_max_attempts(store, register):
    calls = []

    def always_down() -> str:
        calls.append(1)
        raise fm_lab.NodeError("quota exceeded", kind="provider")

    run = fm_lab.run(_single(register(always_down), retry=RETRY), store=store)

    assert run.status == "failed"
    assert len(calls) == 3
    node = run.node("flaky")
    assert node.status == "failed"
    assert node.attempts == 3
    assert node.error["kind"] == "provider"
    assert node.error["message"] == "quota exceeded"
    assert run.error["node"] == "flaky"


def test_user_error_is_not_retried_by_default(store, register):
    calls = []

    def buggy() -> str:
        calls.append(1)
        raise ValueError("bad arithmetic")

    run = fm_lab.run(_single(register(buggy), retry=RETRY), store=store)

    assert run.status == "failed"
    assert len(calls) == 1
    node = run.node("flaky")
    assert node.attempts == 1
    assert node.error["kind"] == "user"
    assert node.error["type"] == "ValueError"
    assert "bad arithmetic" in node.error["message"]
    assert run.error["node"] == "flaky"
    assert store.node_executions(run.run_id).set_index("node_id").loc["flaky", "attempts"] == 1


def test_timeout_fails_node_and_run(store, register):
    seen = []

    async def too_slow() -> str:
        try:
            await asyncio.Event().wait()  # never set: only the timeout ends this node
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "late"

    b = fm_lab.WorkflowBuilder("timeouts")
    first = b.node("first", "template", template="fine")
    slow = b.node("slow", "code", function=register(too_slow), timeout_s=0.2)
    after = b.node("after", "template", template="never")
    first >> slow
    slow >> after

    run = fm_lab.run(b.build(), store=store)

    assert seen == ["cancelled"]  # the timeout cancelled the node's work
    assert run.status == "failed"
    assert run.error["node"] == "slow"
    assert run.error["kind"] == "timeout"
    node = run.node("slow")
    assert node.status == "failed"
    assert node.error["kind"] == "timeout"
    assert run.node("first").status == "succeeded"
    assert run.node("first").output == "fine"
    assert run.node("after").status == "pending"
    stored = _stored_error(store, run.run_id)
    assert stored["node"] == "slow"
    assert stored["kind"] == "timeout"
    assert store.runs().set_index("run_id").loc[run.run_id, "status"] == "failed"
    with pytest.raises(fm_lab.RunFailedError, match="slow"):
        run.raise_for_status()


def test_timeout_is_retryable(store, register):
    attempts = []

    async def slow_then_fast() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(5)
        return "second time lucky"

    workflow = _single(register(slow_then_fast), timeout_s=0.2, retry=RETRY)
    run = fm_lab.run(workflow, store=store)

    assert run.status == "succeeded", run.error
    assert run.outputs == {"flaky": "second time lucky"}
    assert run.node("flaky").attempts == 2


def test_failed_run_resumes_only_the_failed_node_and_dependents(store, register, tmp_path, reopen):
    log = tmp_path / "effects.log"
    flag = tmp_path / "fixed.flag"

    def step(name: str, inputs: dict, needs_flag: bool = False) -> str:
        if needs_flag and not Path(flag).exists():
            raise ValueError(f"{name}: {flag.name} is missing")
        with log.open("a") as fh:
            fh.write(name + "\n")
        return name + "(" + ",".join(sorted(inputs.values())) + ")"

    fn = register(step)
    b = fm_lab.WorkflowBuilder("fix_and_resume")
    a = b.node("a", "code", function=fn, args={"name": "a"})
    nb = b.node("b", "code", function=fn, args={"name": "b"})
    x = b.node("x", "code", function=fn, args={"name": "x"})
    f = b.node("f", "code", function=fn, args={"name": "f", "needs_flag": True})
    g = b.node("g", "code", function=fn, args={"name": "g"})
    a >> [nb, x]
    nb >> f
    x >> f
    f >> g

    failed = fm_lab.run(b.build(), store=store)

    assert failed.status == "failed"
    assert failed.error["node"] == "f"
    assert "fixed.flag is missing" in failed.error["message"]
    assert sorted(log.read_text().split()) == ["a", "b", "x"]
    assert failed.node("g").status == "pending"

    flag.touch()
    resumed = fm_lab.resume(failed.run_id, store=reopen(store))

    assert resumed.status == "succeeded", resumed.error
    assert resumed.error is None
    assert resumed.outputs == {"g": "g(f(b(a()),x(a())))"}
    assert Counter(log.read_text().split()) == {"a": 1, "b": 1, "x": 1, "f": 1, "g": 1}
    history = store.node_executions(failed.run_id, history=True)
    assert Counter(history["node_id"]) == {"a": 1, "b": 1, "x": 1, "f": 2, "g": 1}
    assert list(history[history["node_id"] == "f"]["status"]) == ["failed", "succeeded"]
    latest = store.node_executions(failed.run_id).set_index("node_id")
    assert set(latest["status"]) == {"succeeded"}
    row = store.runs().set_index("run_id").loc[failed.run_id]
    assert row["status"] == "succeeded"
    assert pd.isna(row["error"])
    assert json.loads(row["outputs"]) == resumed.outputs
