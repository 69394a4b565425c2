"""Who did what, on both stores: started_by and provenance, assignments, pending(mine=True),
refused answers that change nothing, cancel and delete in the audit log."""

from __future__ import annotations

from typing import Any

import pytest

import fm_lab
from fm_lab.engine.errors import ResumeNotAllowedError
from fm_lab.store import RunStore, Store

ASSIGNED = {
    "id": "pay",
    "nodes": {
        "ok": {"type": "approval",
               "config": {"message": "pay?", "label": "ok", "assignees": ["bob"]}},
        "why": {"type": "user_input",
                "config": {"prompt": "why?", "label": "why", "roles": ["finance"]}},
        "done": {"type": "template", "config": {"template": "{{ nodes.ok.output.approved }}"}},
    },
    "edges": ["ok -> done"],
}


@pytest.fixture
def store(each_store: RunStore) -> RunStore:
    """Each kind of store (root conftest)."""
    return each_store


@pytest.fixture
def user(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``user("bob", "finance")``: act as bob holding role finance from now on."""
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)

    def act_as(name: str, *roles: str) -> None:
        monkeypatch.setenv("FM_LAB_USER", name)
        monkeypatch.setenv("FM_LAB_ROLES", ",".join(roles))

    act_as("alice")
    return act_as


def _state(store: RunStore, run_id: str) -> tuple[Any, ...]:
    """Everything a refused answer must leave as it was."""
    snapshot = store.load_run(run_id)
    return (snapshot.status, snapshot.journal_seq, snapshot.nodes, snapshot.resumes,
            snapshot.steps, store.pending_rows(run_id, with_children=True),
            store.runs().to_dict("records"))


def test_runs_record_who_started_them_and_the_workflow_they_ran(store: RunStore,
                                                                user: Any) -> None:
    first = fm_lab.run(ASSIGNED, store=store)
    user("bob")
    edited = {**ASSIGNED, "name": "pay, edited"}
    second = fm_lab.run(edited, store=store)
    runs = store.runs().set_index("run_id")
    assert runs.loc[first.run_id, "started_by"] == "alice"
    assert runs.loc[second.run_id, "started_by"] == "bob"
    versions = fm_lab.workflows(store=store).set_index("version")
    assert versions.loc[1, "saved_by"] == "alice" and versions.loc[2, "saved_by"] == "bob"
    assert runs.loc[first.run_id, "workflow_hash"] == versions.loc[1, "hash"]
    assert runs.loc[second.run_id, "workflow_hash"] == versions.loc[2, "hash"]
    assert versions.loc[1, "hash"] != versions.loc[2, "hash"]
    starts = fm_lab.audit(store=store, action="run.start")
    assert starts[["actor", "run_id"]].values.tolist() == [["alice", first.run_id],
                                                           ["bob", second.run_id]]


def test_pending_mine_lists_what_i_may_answer_by_name_and_role(store: RunStore,
                                                               user: Any) -> None:
    run = fm_lab.run({**ASSIGNED, "nodes": {**ASSIGNED["nodes"], "open": {
        "type": "approval", "config": {"message": "anyone?", "label": "open"}}}}, store=store)
    everything = fm_lab.pending(store=store).set_index("label")
    assert everything.loc["ok", "assignees"] == ["bob"]
    assert everything.loc["why", "roles"] == ["finance"]
    assert everything.loc["open", "assignees"] == [] == everything.loc["open", "roles"]

    def mine() -> list[str]:
        return sorted(fm_lab.pending(run.run_id, store=store, mine=True)["label"])

    assert mine() == ["open"]
    user("bob")
    assert mine() == ["ok", "open"]
    user("carol", "finance", "admin")
    assert mine() == ["open", "why"]
    user("bob", "finance")
    assert mine() == ["ok", "open", "why"]


def test_a_refused_answer_changes_nothing_but_the_audit_log(store: RunStore,
                                                            user: Any) -> None:
    run = fm_lab.run(ASSIGNED, store=store)
    before = _state(store, run.run_id)
    with pytest.raises(ResumeNotAllowedError) as raised:
        fm_lab.resume(run.run_id, {"approved": True}, label="ok", store=store)
    message = str(raised.value)
    assert message == (f"alice may not answer ok of run {run.run_id}: it waits for bob; "
                       "the run is unchanged")
    with pytest.raises(fm_lab.ResumeError, match="waits for role finance"):
        fm_lab.resume(run.run_id, {"text": "x"}, label="why", store=store)
    assert _state(store, run.run_id) == before
    refused = fm_lab.audit(store=store, action="suspension.refused")
    assert refused[["actor", "path"]].values.tolist() == [["alice", "ok"], ["alice", "why"]]

    user("bob")
    done = fm_lab.resume(run.run_id, {"approved": True}, label="ok", store=store)
    assert done.status == "suspended"  # "why" still waits, for role finance
    log = fm_lab.audit(store=store, verify=True)
    assert log[["actor", "action", "path"]].values.tolist()[-1] == ["bob", "run.resume", "ok"]
    assert log["after"].iloc[-1] == {"data": {"approved": True}}


def test_an_answer_records_who_gave_it(user: Any) -> None:
    store = Store(":memory:")
    run = fm_lab.run(ASSIGNED, store=store)
    user("dave", "finance")
    fm_lab.resume(run.run_id, {"text": "because"}, label="why", store=store)
    rows = fm_lab.sql("select path, resumed_by from suspensions where resumed_at is not null",
                      store=store)
    assert rows.values.tolist() == [["why", "dave"]]


def test_a_continued_run_and_a_cancel_are_logged_with_their_actor(store: RunStore,
                                                                  user: Any) -> None:
    run = fm_lab.run(ASSIGNED, store=store)
    store.set_status(run.run_id, "failed")  # as if a node had failed
    user("bob")
    assert fm_lab.resume(run.run_id, store=store).status == "suspended"  # no answer: it goes
    user("carol")                                                        # on, waits again
    fm_lab.cancel(run.run_id, store=store)
    log = fm_lab.audit(run.run_id, store=store)
    assert log[["actor", "action"]].values.tolist() == [
        ["alice", "run.start"], ["bob", "run.resume"], ["carol", "run.cancel"]]
    assert log["before"].iloc[2] == {"status": "suspended"}
    assert log["after"].iloc[2] == {"status": "cancelled"}


@pytest.mark.parametrize(("config", "why"), [
    ({"assignees": ["bob\n"]}, "control"),
    ({"assignees": "bob"}, "list"),
    ({"roles": [""]}, "empty"),
    ({"roles": ["a,b"]}, "comma"),
])
def test_assignees_and_roles_are_validated(config: dict[str, Any], why: str) -> None:
    wf = {"id": "bad", "nodes": {"ok": {"type": "approval",
                                        "config": {"message": "?", **config}}}}
    with pytest.raises(fm_lab.WorkflowValidationError, match=why):
        fm_lab.validate(wf)


def test_delete_run_removes_a_run_and_its_children_and_is_logged(store: RunStore,
                                                                 user: Any) -> None:
    parent = {"id": "parent", "nodes": {"sub": {"type": "subflow", "config": {
        "workflow": ASSIGNED}}}}
    run = fm_lab.run(parent, store=store)
    children = store.child_runs(run.run_id)
    assert len(children) == 1 and run.status == "suspended"
    with pytest.raises(ValueError, match="is a child run of"):
        fm_lab.delete_run(children[0], store=store)
    other = fm_lab.run(ASSIGNED, store=store)

    assert fm_lab.delete_run(run.run_id, store=store) == sorted([run.run_id, *children])
    assert store.runs()["run_id"].tolist() == [other.run_id]
    assert fm_lab.pending(store=store)["run_id"].unique().tolist() == [other.run_id]
    with pytest.raises(fm_lab.RunNotFoundError):
        store.load_run(children[0])
    deleted = fm_lab.audit(store=store, action="run.delete", verify=True)
    assert deleted[["actor", "run_id"]].values.tolist() == [["alice", run.run_id]]
    assert deleted["before"].iloc[0] == {"status": "suspended", "workflow_id": "parent",
                                         "child_runs": 1}
    with pytest.raises(fm_lab.RunNotFoundError):
        fm_lab.delete_run(run.run_id, store=store)


def test_delete_run_refuses_a_run_another_process_runs(tmp_path: Any, user: Any) -> None:
    store = Store(tmp_path / "teams.duckdb")
    run = fm_lab.run(ASSIGNED, store=store)
    journal = Store(tmp_path / "teams.duckdb").open_journal(run.run_id)  # its lock held
    try:
        with pytest.raises(fm_lab.RunLockedError, match="cancel it before deleting it"):
            fm_lab.delete_run(run.run_id, store=store)
    finally:
        assert journal is not None
        journal.close(remove=True)
    assert store.run_status(run.run_id) == "suspended"
    assert fm_lab.audit(store=store, action="run.delete").empty
    assert fm_lab.delete_run(run.run_id, store=store) == [run.run_id]


def test_a_signal_to_an_assigned_event_is_checked_too(store: RunStore, user: Any) -> None:
    wf = {"id": "ev", "nodes": {"wait": {"type": "wait_for_event", "config": {
        "event": "paid", "roles": ["finance"]}}}}
    run = fm_lab.run(wf, store=store)
    with pytest.raises(ResumeNotAllowedError, match="waits for role finance"):
        fm_lab.signal(run.run_id, "paid", {"n": 1}, store=store)
    user("erin", "finance")
    assert fm_lab.signal(run.run_id, "paid", {"n": 1}, store=store).status == "succeeded"


def test_an_expired_wait_is_logged_as_such(store: RunStore, user: Any) -> None:
    import time

    wf = {"id": "late", "nodes": {"ok": {"type": "approval", "config": {
        "message": "?", "timeout_s": 0.001, "assignees": ["bob"]}}}}
    run = fm_lab.run(wf, store=store)
    time.sleep(0.01)  # past the deadline (a wait, not a timing assertion)
    done = fm_lab.resume(run.run_id, store=store)  # nobody answers: the timeout applies
    assert done.outputs == {"ok": {"approved": False, "comment": "timed out", "by": None}}
    log = fm_lab.audit(run.run_id, store=store)
    assert log[["actor", "action", "path"]].values.tolist() == [
        ["alice", "run.start", None], ["alice", "run.resume", None],
        ["alice", "suspension.expire", "ok"]]


def test_delete_run_takes_no_run_whose_id_only_looks_like_a_child(store: RunStore,
                                                                  user: Any) -> None:
    fm_lab.run(ASSIGNED, store=store, run_id="a_b")
    fm_lab.run(ASSIGNED, store=store, run_id="axb.1")  # a LIKE 'a_b.%' would match it
    assert fm_lab.delete_run("a_b", store=store) == ["a_b"]
    assert store.runs()["run_id"].tolist() == ["axb.1"]
    assert fm_lab.audit(store=store, action="run.delete")["before"].iloc[0]["child_runs"] == 0
