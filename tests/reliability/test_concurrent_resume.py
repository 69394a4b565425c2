"""Answers given at the same moment from several processes are all applied, exactly once, or
refused with a clear error and nothing changed (resume, signal and cancel serialise per run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

import fm_lab

pytestmark = pytest.mark.slow

APPROVERS = 4

FUNCTIONS = """
def effect(tag, log, decision):
    with open(log, "a") as fh:
        fh.write(tag + "\\n")
    return {"tag": tag, "approved": decision["approved"]}
"""

# Each process imports everything first, then waits for the same "go" file, so the answers
# really arrive together.
ANSWER = """
import json, sys, time
from pathlib import Path
from fm_lab.cli import main

store, run_id, go, *answer = sys.argv[1:]
while not Path(go).exists():
    time.sleep(0.001)
sys.exit(main(["--store", store, "resume", run_id, *answer, "--json"]))
"""


def _workflow(module: str, log: Path) -> fm_lab.Workflow:
    """APPROVERS approvals side by side, each followed by a node with a side effect."""
    b = fm_lab.WorkflowBuilder("many_managers")
    for i in range(APPROVERS):
        ask = b.node(f"mgr{i}", "approval", message=f"approve part {i}?")  # label: its id
        act = b.node(f"act{i}", "code", function=f"{module}:effect",
                     args={"tag": f"act{i}", "log": str(log),
                           "decision": f"{{{{ nodes.mgr{i}.output }}}}"})
        ask >> act
    return b.build()


def _answer_together(tmp_path: Path, store_path: str, run_id: str,
                     answers: list[list[str]]) -> list[tuple[int, str, str]]:
    script = tmp_path / "answer.py"
    script.write_text(ANSWER)
    go = tmp_path / f"go-{uuid.uuid4().hex[:6]}"
    # the answers queue for the DuckDB file: on a loaded machine four of them can take longer
    # than the default 10 s wait, which is not what this test is about
    env = {**os.environ, "FM_LAB_LOCK_TIMEOUT_S": "300", "PYTHONPATH": os.pathsep.join(
        p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p)}
    procs = [subprocess.Popen([sys.executable, str(script), str(store_path), run_id, str(go),
                               *answer], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for answer in answers]
    time.sleep(0.5)  # not a timing assertion: lets the interpreters start before "go"
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append((proc.returncode, out, err))
    return results


def _open(where: str) -> fm_lab.RunStore:
    return fm_lab.connect(where) if where.startswith("postgresql") else fm_lab.Store(where)


@pytest.fixture(params=["duckdb", "postgres"])
def suspended(request, tmp_path, monkeypatch):
    """A run waiting for APPROVERS approvals, on a DuckDB file or on a PostgreSQL store
    (where every process holds the run by an advisory lock instead of a file lock)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("FM_LAB_ALLOW", "mgr_fns_*")  # a team store runs restricted
    module = f"mgr_fns_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(FUNCTIONS))
    log = tmp_path / "effects.log"
    store_path = (request.getfixturevalue("pg_url") if request.param == "postgres"
                  else str(tmp_path / "fm_lab.duckdb"))
    store = _open(store_path)
    run = fm_lab.run(_workflow(module, log), store=store)
    assert run.status == "suspended"
    assert len(fm_lab.pending(run.run_id, store=store)) == APPROVERS
    store.close()
    return run.run_id, store_path, log


@pytest.mark.parametrize("trial", range(3))
def test_every_concurrent_answer_is_applied_exactly_once(suspended, tmp_path, trial):
    run_id, store_path, log = suspended
    answers = [["--label", f"mgr{i}", "--data", json.dumps({"approved": True, "by": f"m{i}"})]
               for i in range(APPROVERS)]
    results = _answer_together(tmp_path, store_path, run_id, answers)
    assert [code for code, _, _ in results] == [0] * APPROVERS, results
    statuses = sorted(json.loads(out)["status"] for _, out, _ in results)
    assert statuses == ["succeeded"] + ["suspended"] * (APPROVERS - 1)  # the last one ends it

    store = _open(store_path)
    run = fm_lab.get_run(run_id, store=store)
    assert run.status == "succeeded"
    assert fm_lab.pending(run_id, store=store).empty
    assert sorted(log.read_text().split()) == [f"act{i}" for i in range(APPROVERS)]
    assert [run.node(f"mgr{i}").output["by"] for i in range(APPROVERS)] == [
        f"m{i}" for i in range(APPROVERS)]
    assert fm_lab.recover(store=store) == []  # nothing left to re-offer


def test_two_answers_to_one_approval_apply_one_and_refuse_the_other(suspended, tmp_path):
    run_id, store_path, log = suspended
    answers = [["--label", "mgr0", "--data", json.dumps({"approved": ok, "by": who})]
               for ok, who in ((True, "ana"), (False, "bo"), (True, "cy"))]
    results = _answer_together(tmp_path, store_path, run_id, answers)
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1, 1]
    for code, out, _err in results:
        if code == 1:
            error = json.loads(out)["error"]
            assert "no pending suspension with label='mgr0'" in error
            assert "\n" not in error and "password" not in error
    store = _open(store_path)
    run = fm_lab.get_run(run_id, store=store)
    assert run.status == "suspended"
    winner = run.node("mgr0").output["by"]
    assert winner in ("ana", "bo", "cy")
    assert log.read_text().split() == ["act0"]  # one effect, the winner's
    assert sorted(fm_lab.pending(run_id, store=store)["label"]) == [
        f"mgr{i}" for i in range(1, APPROVERS)]
    # one checkpoint per node that ran, the answer stored once, nobody holds the run
    ran = store.node_executions(run_id, history=True)
    done = ran[ran["status"] == "succeeded"]
    assert sorted(done["node_id"]) == ["act0", "mgr0"]
    assert not store.run_is_live(run_id)
    assert store.run_status(run_id) == "suspended"
    # the run goes on from there: the others' answers end it, act0 does not run again
    for i in range(1, APPROVERS):
        fm_lab.resume(run_id, {"approved": True, "by": f"m{i}"}, label=f"mgr{i}", store=store)
    assert fm_lab.get_run(run_id, store=store).status == "succeeded"
    assert sorted(log.read_text().split()) == [f"act{i}" for i in range(APPROVERS)]
    store.close()


def test_a_cancel_after_an_answer_refuses_later_answers(suspended, tmp_path):
    run_id, store_path, _log = suspended
    store = _open(store_path)
    fm_lab.resume(run_id, {"approved": True}, label="mgr0", store=store)
    fm_lab.cancel(run_id, store=store)
    assert store.run_status(run_id) == "cancelled"
    with pytest.raises(fm_lab.ResumeError, match="cancelled, not suspended"):
        fm_lab.resume(run_id, {"approved": True}, label="mgr1", store=store)
