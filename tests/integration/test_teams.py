"""Two users, real processes, one store: alice starts a run that waits for bob's approval;
alice may not answer it (refused, nothing changes), bob sees it as his and approves, and the
audit log shows who did what, in order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fm_lab
from fm_lab.store import open_store
from fm_lab.store.base import journal_dir

WORKFLOW = {
    "id": "payout",
    "nodes": {
        "draft": {"type": "template", "config": {"template": "pay {{ inputs.amount }}"}},
        "approve": {"type": "approval", "config": {
            "message": "{{ nodes.draft.output }}?", "label": "approve", "assignees": ["bob"]}},
        "paid": {"type": "template", "config": {"template": "{{ nodes.approve.output.by }}"}},
    },
    "edges": ["draft -> approve", "approve -> paid"],
}

START = """
import json, sys
import fm_lab

store = fm_lab.connect(sys.argv[1])
run = fm_lab.run(json.loads(sys.argv[2]), {"amount": 5000}, store=store)
mine = fm_lab.pending(store=store, mine=True)
print(json.dumps({"run_id": run.run_id, "status": run.status, "mine": len(mine)}))
"""

APPROVE = """
import json, sys
import fm_lab

store = fm_lab.connect(sys.argv[1])
mine = fm_lab.pending(store=store, mine=True)
(waiting,) = mine.to_dict("records")
run = fm_lab.resume(waiting["run_id"], {"approved": True, "by": "bob"},
                    path_id=waiting["path_id"], store=store)
print(json.dumps({"seen": [waiting["run_id"], waiting["path_id"], waiting["assignees"]],
                  "status": run.status, "outputs": run.outputs}))
"""


def _env(user: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTERHUB_USER", "FM_LAB_ROLES")}
    env["FM_LAB_USER"] = user
    return env


def _as(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    """The next spawned process acts as ``user``."""
    monkeypatch.setenv("FM_LAB_USER", user)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.delenv("FM_LAB_ROLES", raising=False)


def _state(store_path: str, run_id: str) -> tuple[Any, ...]:
    store = open_store(store_path, read_only=True)
    try:
        snapshot = store.load_run(run_id)
        folder = journal_dir(store)  # none on PostgreSQL
        return (snapshot.status, snapshot.journal_seq, snapshot.nodes, snapshot.resumes,
                store.pending_rows(run_id), store.node_executions(run_id, history=True)
                .to_dict("records"), store.runs().to_dict("records"),
                sorted(p.name for p in folder.iterdir()) if folder else None,
                store.run_is_live(run_id))
    finally:
        store.close()


@pytest.fixture(params=["duckdb", "postgres"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store both users' processes open: a DuckDB file, or a PostgreSQL team store."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "fm_lab.duckdb")


def test_alice_waits_for_bob_who_approves_in_his_own_process(
        spawner: Any, shared_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store_path = shared_store
    _as(monkeypatch, "alice")
    started = json.loads(spawner.finish(spawner.start(START, str(store_path),
                                                      json.dumps(WORKFLOW))))
    run_id = started["run_id"]
    assert (started["status"], started["mine"]) == ("suspended", 0)  # not alice's to answer

    before = _state(store_path, run_id)
    refused = subprocess.run(  # alice tries anyway, from the command line
        [sys.executable, "-m", "fm_lab", "--store", str(store_path), "resume", run_id,
         "--label", "approve", "--data", '{"approved": true}'],
        env=_env("alice"), capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.strip() == (
        f"fm-lab: error: alice may not answer approve of run {run_id}: it waits for bob; "
        "the run is unchanged")
    assert _state(store_path, run_id) == before

    _as(monkeypatch, "bob")
    approved = json.loads(spawner.finish(spawner.start(APPROVE, str(store_path))))
    assert approved == {"seen": [run_id, "approve", ["bob"]], "status": "succeeded",
                        "outputs": {"paid": "bob"}}

    store = open_store(store_path)
    log = fm_lab.audit(run_id, store=store, verify=True)
    assert log[["actor", "action", "path"]].values.tolist() == [
        ["alice", "run.start", None],
        ["alice", "suspension.refused", "approve"],
        ["bob", "run.resume", "approve"],
    ]
    assert log["seq"].is_monotonic_increasing
    assert log["after"].iloc[2] == {"data": {"approved": True, "by": "bob"}}
    row = store.runs().set_index("run_id").loc[run_id]
    assert (row["status"], row["started_by"]) == ("succeeded", "alice")
    answered = fm_lab.sql("select resumed_by from suspensions where run_id = ?", [run_id],
                          store=store)
    assert answered["resumed_by"].tolist() == ["bob"]
    store.close()


def test_the_command_line_lists_mine_and_the_audit_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fm_lab.cli import main

    store_args = ["--store", str(tmp_path / "cli.duckdb")]
    flow = tmp_path / "pay.flow.json"
    flow.write_text(json.dumps(WORKFLOW))
    _as(monkeypatch, "alice")
    assert main([*store_args, "run", str(flow), "--inputs-json", '{"amount": 1}', "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert main([*store_args, "pending", "--mine"]) == 0
    assert "nothing is waiting" in capsys.readouterr().out
    _as(monkeypatch, "bob")
    assert main([*store_args, "pending", "--mine", "--json"]) == 0
    (waiting,) = json.loads(capsys.readouterr().out)
    assert (waiting["run_id"], waiting["assignees"], waiting["roles"]) == (run_id, ["bob"], [])
    assert main([*store_args, "audit", "--verify", "--json"]) == 0
    (started,) = json.loads(capsys.readouterr().out)
    assert (started["actor"], started["action"], started["run_id"]) == ("alice", "run.start",
                                                                        run_id)
    assert main([*store_args, "audit", "--actor", "bob"]) == 0
    assert "the audit log is empty" in capsys.readouterr().out
    monkeypatch.setenv("FM_LAB_USER", "bob\tx")
    assert main([*store_args, "pending", "--mine"]) == 1
    assert capsys.readouterr().err.strip() == (
        "fm-lab: error: FM_LAB_USER 'bob\\tx' contains control or other unprintable characters")
