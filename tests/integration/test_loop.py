"""The ``loop`` node: while/until conditions that see state and output, the iteration limit,
YAML and Python definitions, validation, a suspension inside an iteration, and a SIGKILL in the
middle of an iteration resumed at the first unfinished one."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import fm_lab
from fm_lab.store.journal import read_journal
from fm_lab.widget.convert import pending_rows, result_rows

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

COUNTER_STATE = {"type": "object", "properties": {"count": {"type": "integer", "default": 0}}}
BUMP = {"type": "set_state", "config": {"values": {"count": "{{ state.count + 1 }}"}}}


def _loop(config: dict, **workflow) -> fm_lab.Workflow:
    return fm_lab.Workflow.from_dict(
        {"id": "looping", "state": COUNTER_STATE, **workflow,
         "nodes": {"retry_loop": {"type": "loop", "config": config}}}
    )


def test_until_sees_the_state_each_iteration_set(store):
    run = fm_lab.run(_loop({"node": BUMP, "until": "{{ state.count >= 3 }}"}), store=store)

    assert run.status == "succeeded", run.error
    assert run.node("retry_loop").output == {
        "output": {"count": 3}, "iterations": 3, "limit_reached": False}
    paths = set(store.node_executions(run.run_id)["node_id"])
    assert {"retry_loop#1", "retry_loop#2", "retry_loop#3"} <= paths
    assert "retry_loop#4" not in paths


def test_while_sees_output_and_iteration_and_body_sees_previous(store, register):
    def halve(previous: int | None, start: int) -> int:
        return start if previous is None else previous // 2

    config = {
        "node": {"type": "code", "config": {"function": register(halve),
                                             "args": {"previous": "{{ previous }}",
                                                      "start": "{{ start }}"}}},
        "while": "{{ output > 1 and iteration < 10 }}",
        "inputs": {"start": "{{ inputs.start }}"},
    }
    run = fm_lab.run(_loop(config), {"start": 40}, store=store)

    assert run.status == "succeeded", run.error
    assert run.node("retry_loop").output["output"] == 1  # 40 20 10 5 2 1
    assert run.node("retry_loop").output["iterations"] == 6


def test_limit_is_a_clear_node_error_or_a_stop(store):
    fail = fm_lab.run(_loop({"node": BUMP, "while": True, "max_iterations": 4}), store=store)

    assert fail.status == "failed"
    message = fail.error["message"]
    assert "reached max_iterations=4" in message and "still asked" in message, message
    assert fail.error["node"] == "retry_loop"

    stop = fm_lab.run(_loop({"node": BUMP, "while": True, "max_iterations": 4,
                             "on_limit": "stop"}), store=store)
    assert stop.status == "succeeded"
    assert stop.node("retry_loop").output == {
        "output": {"count": 4}, "iterations": 4, "limit_reached": True}


def test_a_broken_condition_fails_with_the_condition_named(store):
    run = fm_lab.run(_loop({"node": BUMP, "until": "{{ output.missing.deeper }}"}), store=store)

    assert run.status == "failed"
    assert "loop condition" in run.error["message"]
    assert "after iteration 1" in run.error["message"]


def test_sandbox_refuses_internals_in_a_condition(store):
    run = fm_lab.run(_loop({"node": BUMP, "until": "{{ output.__class__.__mro__ }}"}),
                     store=store)

    assert run.status == "failed"
    assert "loop condition" in run.error["message"]


def test_sub_workflow_body_and_yaml_definition(tmp_path, store):
    flow = tmp_path / "poll.flow.yaml"
    flow.write_text("""
id: poll
nodes:
  poll_loop:
    type: loop
    config:
      max_iterations: 5
      until: "{{ output.ready }}"
      workflow:
        id: attempt
        nodes:
          check:
            type: template
            config:
              template: "{{ inputs.iteration }}"
        outputs:
          ready: "{{ nodes.check.output >= 2 }}"
          n: "{{ nodes.check.output }}"
""")
    run = fm_lab.run(fm_lab.Workflow.from_file(str(flow)), store=store)

    assert run.status == "succeeded", run.error
    assert run.node("poll_loop").output == {
        "output": {"ready": True, "n": 2}, "iterations": 2, "limit_reached": False}
    paths = set(store.node_executions(run.run_id)["node_id"])
    assert {"poll_loop#1/check", "poll_loop#2/check"} <= paths


def test_python_builder_writes_the_while_key(store):
    b = fm_lab.WorkflowBuilder("built", state=COUNTER_STATE)
    b.loop("retry_loop", node=BUMP, while_="{{ state.count < 2 }}", max_iterations=3)
    wf = b.build()

    assert wf.to_dict()["nodes"]["retry_loop"]["config"]["while"] == "{{ state.count < 2 }}"
    run = fm_lab.run(wf, store=store)
    assert run.node("retry_loop").output["iterations"] == 2


def test_validation_reports_every_problem_at_once():
    with pytest.raises(fm_lab.WorkflowValidationError) as caught:
        fm_lab.Workflow.from_dict({
            "id": "bad",
            "nodes": {
                "no_condition": {"type": "loop", "config": {"node": BUMP}},
                "both": {"type": "loop", "config": {"node": BUMP, "while": True,
                                                    "until": "{{ output }}"}},
                "plain": {"type": "loop", "config": {"node": BUMP, "until": "output.done"}},
                "bad_body": {"type": "loop", "config": {"node": {"type": "nope"},
                                                        "until": "{{ output }}"}},
                "zero": {"type": "loop", "config": {"node": BUMP, "until": "{{ output }}",
                                                    "max_iterations": 0}},
                "a": {"type": "log", "config": {"message": "a"}},
                "b": {"type": "log", "config": {"message": "b"}},
            },
            "edges": ["a -> b", "b -> a"],
        }).validate()
    text = str(caught.value)
    locations = {issue.location for issue in caught.value.issues}
    assert "nodes.no_condition.config" in locations, text
    assert "nodes.both.config" in locations, text
    assert "nodes.plain.config.until" in locations, text
    assert "nodes.bad_body.config.node.type" in locations, text
    assert "nodes.zero.config.max_iterations" in locations, text
    cycle = next(i for i in caught.value.issues if i.code == "cycle")
    assert "'loop' node" in cycle.message


def test_self_edge_points_to_the_loop_node():
    with pytest.raises(fm_lab.WorkflowValidationError, match="'loop' node"):
        fm_lab.Workflow.from_dict({"id": "self", "nodes": {"a": {"type": "log",
                                   "config": {"message": "a"}}}, "edges": ["a -> a"]}).validate()


def test_suspension_inside_an_iteration_resumes_that_iteration(store):
    wf = _loop({"node": {"type": "approval", "config": {"message": "again?"}},
                "while": "{{ output.approved }}", "max_iterations": 5})
    run = fm_lab.run(wf, store=store)
    assert run.status == "suspended"
    assert list(fm_lab.pending(run.run_id, store=store)["path_id"]) == ["retry_loop#1"]
    [row] = pending_rows(store, run.run_id, result_rows(run))  # the widget's form sits on
    assert row["node"] == "retry_loop"                           # the loop node

    run = fm_lab.resume(run.run_id, {"approved": True}, path_id="retry_loop#1", store=store)
    assert list(fm_lab.pending(run.run_id, store=store)["path_id"]) == ["retry_loop#2"]
    run = fm_lab.resume(run.run_id, {"approved": False}, path_id="retry_loop#2", store=store)

    assert run.status == "succeeded", run.error
    assert run.node("retry_loop").output["iterations"] == 2


# ---- a SIGKILL in the middle of an iteration -----------------------------------------------
ITERATION_FUNCTIONS = """
import time
from pathlib import Path


def attempt(iteration, log, marker, hang_at):
    with open(log, "a") as fh:
        fh.write(f"{iteration}\\n")
    if iteration == hang_at and not Path(marker).exists():
        Path(marker).write_text("hanging")
        time.sleep(600)  # killed here
    return {"iteration": iteration, "ok": iteration >= 6}
"""

RUNNER = """
import sys

import fm_lab

path, wf_path, run_id = sys.argv[1:]
run = fm_lab.run(fm_lab.Workflow.from_file(wf_path), store=fm_lab.Store(path), run_id=run_id)
print(run.status)
"""


@pytest.mark.slow
def test_killed_mid_iteration_resumes_at_the_first_unfinished_one(spawner, tmp_path,
                                                                  store_path):
    log, marker = tmp_path / "iterations.log", tmp_path / "hanging"
    module = spawner.write_module("loop_fns", ITERATION_FUNCTIONS)
    wf = _loop({
        "node": {"type": "code", "config": {"function": f"{module}:attempt", "args": {
            "iteration": "{{ iteration }}", "log": str(log), "marker": str(marker),
            "hang_at": 4}}},
        "until": "{{ output.ok }}",
        "max_iterations": 10,
    })
    wf_path = tmp_path / "loop.flow.json"
    wf_path.write_text(wf.to_json())
    proc = spawner.start(RUNNER, str(store_path), str(wf_path), "killed-loop")
    spawner.wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    records = read_journal(Path(f"{store_path}.journal") / "killed-loop.journal")
    committed = sorted(r["node"] for r in records
                       if r["k"] == "node" and r["status"] == "succeeded")
    assert committed == ["retry_loop#1", "retry_loop#2", "retry_loop#3"]

    run = fm_lab.resume("killed-loop", store=fm_lab.Store(store_path))

    assert run.status == "succeeded", run.error
    assert run.node("retry_loop").output == {
        "output": {"iteration": 6, "ok": True}, "iterations": 6, "limit_reached": False}
    started = [int(x) for x in log.read_text().split()]
    assert started == [1, 2, 3, 4, 4, 5, 6], "finished iterations ran again"
