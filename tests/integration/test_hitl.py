"""Human in the loop on a real DuckDB file: suspend, pending(), resume (from this process or
another one), validation before anything changes, journaled steps, timeouts, events, child runs
and suspended foreach items."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

import fm_lab
from fm_lab.store.base import journal_dir

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

LEFT_RIGHT = [("left", "right"), ("right", "left")]
DECISIONS = {
    "left": {"approved": True, "comment": "ok by me", "by": "ann"},
    "right": {"approved": False, "comment": "too expensive", "by": "bob"},
}


def _two_approvals(kind: str) -> dict:
    """Two approvals waiting at once, labelled ``left`` and ``right``: two branches of the
    graph, or two branches of one ``parallel`` node."""
    if kind == "graph":
        return {
            "id": f"two_approvals_{kind}",
            "nodes": {
                "start": {"type": "template", "config": {"template": "go"}},
                "a": {"type": "approval", "config": {"message": "left?", "label": "left"}},
                "b": {"type": "approval", "config": {"message": "right?", "label": "right"}},
                "join": {
                    "type": "template",
                    "config": {
                        "template": "{{ nodes.a.output.approved }}/{{ nodes.b.output.approved }}"
                    },
                },
            },
            "edges": ["start -> a", "start -> b", "a -> join", "b -> join"],
            "outputs": {
                "left": "{{ nodes.a.output }}",
                "right": "{{ nodes.b.output }}",
                "join": "{{ nodes.join.output }}",
            },
        }
    return {
        "id": f"two_approvals_{kind}",
        "nodes": {
            "par": {
                "type": "parallel",
                "config": {
                    "branches": {
                        "left": {
                            "node": {
                                "type": "approval",
                                "config": {"message": "left?", "label": "left"},
                            }
                        },
                        "right": {
                            "node": {
                                "type": "approval",
                                "config": {"message": "right?", "label": "right"},
                            }
                        },
                    }
                },
            },
            "after": {
                "type": "template",
                "config": {"template": "{{ nodes.par.output | length }}"},
            },
        },
        "edges": ["par -> after"],
        "outputs": {
            "left": "{{ nodes.par.output.left }}",
            "right": "{{ nodes.par.output.right }}",
            "join": "{{ nodes.par.output.left.approved }}/{{ nodes.par.output.right.approved }}",
        },
    }


EXPECTED_PATHS = {
    "graph": {"left": "a", "right": "b"},
    "parallel": {"left": "par.left", "right": "par.right"},
}


def _pending_labels(run_id: str, store: fm_lab.Store) -> list[str]:
    return sorted(fm_lab.pending(run_id, store=store)["label"])


def _status(run_id: str, store: fm_lab.Store) -> str:
    return fm_lab.get_run(run_id, store=store).status


# ---- several suspensions at once -----------------------------------------------------------
@pytest.mark.parametrize("order", LEFT_RIGHT, ids=["left-first", "right-first"])
@pytest.mark.parametrize("kind", ["graph", "parallel"])
def test_two_approvals_resumed_independently_in_either_order(store, kind, order, reopen):
    run = fm_lab.run(_two_approvals(kind), store=store)

    assert run.status == "suspended"
    frame = fm_lab.pending(store=store)
    assert list(frame.columns) == [
        "run_id",
        "workflow_id",
        "node_id",
        "label",
        "path_id",
        "payload",
        "since",
        "expires_at",
        "assignees",
        "roles",
        "payload_schema",
    ]
    assert set(frame["run_id"]) == {run.run_id}
    assert dict(zip(frame["label"], frame["path_id"], strict=True)) == EXPECTED_PATHS[kind]
    payloads = dict(zip(frame["label"], frame["payload"], strict=True))
    assert payloads["left"] == {"message": "left?", "details": None}

    first, second = order
    after_first = fm_lab.resume(run.run_id, DECISIONS[first], label=first, store=store)

    assert after_first.status == "suspended"
    assert _status(run.run_id, store) == "suspended"
    assert _pending_labels(run.run_id, store) == [second]
    # the resumed branch is done; the other one is not
    assert fm_lab.pending(store=store)["path_id"].tolist() == [EXPECTED_PATHS[kind][second]]

    final = fm_lab.resume(run.run_id, DECISIONS[second], label=second, store=store)

    assert final.status == "succeeded", final.error
    assert final.outputs == {
        "left": DECISIONS["left"],
        "right": DECISIONS["right"],
        "join": "True/False",
    }
    assert fm_lab.pending(store=store).empty
    stored = fm_lab.get_run(run.run_id, store=reopen(store))
    assert stored.status == "succeeded"
    assert stored.outputs == final.outputs


def test_each_segment_of_a_run_rewrites_its_own_workflow_span_only(store):
    """A run's workflow span is written again by each segment (suspended, then succeeded on
    resume): one per run, with the run's latest status, and the other runs' left as they were."""
    wf = {"id": "one_approval", "nodes": {"ok": {"type": "approval", "config": {"message": "?"}}}}
    first, second = fm_lab.run(wf, store=store), fm_lab.run(wf, store=store)

    def workflow_spans() -> dict[str, list[str]]:
        frame = store.sql("select run_id, status from spans where kind = 'workflow'")
        spans: dict[str, list[str]] = {}
        for run_id, status in zip(frame["run_id"], frame["status"], strict=True):
            spans.setdefault(run_id, []).append(status)
        return spans

    assert first.status == second.status == "suspended"
    assert workflow_spans() == {first.run_id: ["suspended"], second.run_id: ["suspended"]}

    assert fm_lab.resume(first.run_id, {"approved": True}, store=store).status == "succeeded"
    assert workflow_spans() == {first.run_id: ["ok"], second.run_id: ["suspended"]}

    assert fm_lab.resume(second.run_id, {"approved": True}, store=store).status == "succeeded"
    assert workflow_spans() == {first.run_id: ["ok"], second.run_id: ["ok"]}


RESUMER = """
import sys

import fm_lab

path, run_id, label, by = sys.argv[1:]
run = fm_lab.resume(
    run_id, {"approved": label == "left", "by": by}, label=label, store=fm_lab.Store(path)
)
print(run.status)
"""


@pytest.mark.slow
@pytest.mark.parametrize("order", LEFT_RIGHT, ids=["left-first", "right-first"])
def test_approvals_resumed_from_other_processes(spawner, store_path, order):
    """This process starts the run; two other processes each resume one label; this process
    then reads the finished run."""
    store = fm_lab.Store(store_path)
    run = fm_lab.run(_two_approvals("graph"), store=store)
    assert run.status == "suspended"
    first, second = order

    proc = spawner.start(RESUMER, str(store_path), run.run_id, first, f"proc-{first}")
    assert spawner.finish(proc).strip() == "suspended"
    assert _status(run.run_id, store) == "suspended"
    assert _pending_labels(run.run_id, store) == [second]

    proc = spawner.start(RESUMER, str(store_path), run.run_id, second, f"proc-{second}")
    assert spawner.finish(proc).strip() == "succeeded"

    done = fm_lab.get_run(run.run_id, store=store)
    assert done.status == "succeeded", done.error
    assert done.outputs == {
        "left": {"approved": True, "comment": None, "by": "proc-left"},
        "right": {"approved": False, "comment": None, "by": "proc-right"},
        "join": "True/False",
    }
    assert fm_lab.pending(store=store).empty
    assert not list(store.journal_dir.glob("*.journal"))


# ---- validation before anything changes ----------------------------------------------------
def _tables(store: fm_lab.Store, run_id: str) -> dict[str, pd.DataFrame]:
    return {
        "runs": store.sql("select * from runs order by run_id"),
        "node_executions": store.sql(
            "select * from node_executions where run_id = ? order by seq", [run_id]
        ),
        "suspensions": store.sql(
            "select * from suspensions where run_id = ? order by seq", [run_id]
        ),
        "steps": store.sql("select * from steps where run_id = ?", [run_id]),
        "pending": fm_lab.pending(store=store),
    }


def _assert_unchanged(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> None:
    for name, frame in before.items():
        pd.testing.assert_frame_equal(frame, after[name], obj=name)


def test_invalid_resume_data_lists_every_problem_and_changes_nothing(store):
    run = fm_lab.run(_two_approvals("graph"), store=store)
    folder = journal_dir(store)  # None on PostgreSQL: no journal files
    journals = sorted(folder.iterdir()) if folder else []
    before = _tables(store, run.run_id)

    with pytest.raises(fm_lab.ResumeValidationError) as caught:
        fm_lab.resume(
            run.run_id, {"approved": "yes", "extra": 1, "by": 7}, label="left", store=store
        )

    issues = {(i.location, i.code) for i in caught.value.issues}
    assert {location for location, _ in issues} == {"data", "data.approved", "data.by"}
    assert {("data.approved", "type"), ("data", "additionalProperties")} <= issues
    message = str(caught.value)
    assert "'yes' is not of type 'boolean'" in message
    assert "'extra' was unexpected" in message
    assert run.run_id in message
    assert isinstance(caught.value, fm_lab.ResumeError)

    with pytest.raises(fm_lab.ResumeValidationError) as missing:
        fm_lab.resume(run.run_id, {}, label="right", store=store)
    assert [(i.location, i.code) for i in missing.value.issues] == [("data.approved", "required")]
    assert "data.approved: required but missing" in str(missing.value)

    after = _tables(store, run.run_id)
    _assert_unchanged(before, after)
    row = after["runs"].set_index("run_id").loc[run.run_id]
    assert row["status"] == "suspended"
    assert row["journal_seq"] == before["runs"].set_index("run_id").loc[run.run_id, "journal_seq"]
    assert (sorted(folder.iterdir()) if folder else []) == journals  # no journal opened either
    assert not store.run_is_live(run.run_id)  # nor the run locked

    # valid data afterwards works
    half = fm_lab.resume(run.run_id, DECISIONS["left"], label="left", store=store)
    assert half.status == "suspended"
    done = fm_lab.resume(run.run_id, DECISIONS["right"], label="right", store=store)
    assert done.status == "succeeded", done.error
    assert done.outputs["left"] == DECISIONS["left"]


def test_user_input_answer_is_checked_against_its_schema(store):
    wf = {
        "id": "ask_user",
        "nodes": {
            "ask": {
                "type": "user_input",
                "config": {
                    "prompt": "Your name and age?",
                    "schema": {
                        "type": "object",
                        "required": ["name", "age"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "age": {"type": "integer", "minimum": 0},
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "greet": {
                "type": "template",
                "config": {"template": "{{ nodes.ask.output.name }} ({{ nodes.ask.output.age }})"},
            },
        },
        "edges": ["ask -> greet"],
    }
    run = fm_lab.run(wf, store=store)
    assert run.status == "suspended"
    assert fm_lab.pending(store=store)["payload"].tolist() == [{"prompt": "Your name and age?"}]
    before = _tables(store, run.run_id)

    with pytest.raises(fm_lab.ResumeValidationError) as caught:
        fm_lab.resume(run.run_id, {"name": "", "age": -1, "x": 0}, label="ask", store=store)

    assert {(i.location, i.code) for i in caught.value.issues} == {
        ("data.name", "minLength"),
        ("data.age", "minimum"),
        ("data", "additionalProperties"),
    }
    _assert_unchanged(before, _tables(store, run.run_id))
    done = fm_lab.resume(run.run_id, {"name": "Ada", "age": 36}, node="ask", store=store)
    assert done.status == "succeeded", done.error
    assert done.outputs == {"greet": "Ada (36)"}


# ---- resume requests that cannot be applied ------------------------------------------------
def test_resume_errors_name_the_choices(store):
    run = fm_lab.run(_two_approvals("graph"), store=store)

    with pytest.raises(fm_lab.ResumeError) as unknown:
        fm_lab.resume(run.run_id, {"approved": True}, label="nope", store=store)
    message = str(unknown.value)
    assert "label='nope'" in message
    assert "a (label 'left')" in message
    assert "b (label 'right')" in message

    with pytest.raises(fm_lab.ResumeError, match="label='left', node='b'"):
        fm_lab.resume(run.run_id, {"approved": True}, label="left", node="b", store=store)

    with pytest.raises(fm_lab.RunNotFoundError, match="no-such-run"):
        fm_lab.resume("no-such-run", {"approved": True}, label="left", store=store)

    fm_lab.resume(run.run_id, {"approved": True}, label="left", store=store)
    done = fm_lab.resume(run.run_id, {"approved": True}, label="right", store=store)
    assert done.status == "succeeded"

    with pytest.raises(fm_lab.ResumeError) as finished:
        fm_lab.resume(run.run_id, {"approved": True}, label="left", store=store)
    assert f"run {run.run_id} is succeeded, not suspended" in str(finished.value)
    assert not isinstance(finished.value, fm_lab.ResumeValidationError)
    # a plain resume of a finished run is a no-op
    assert fm_lab.resume(run.run_id, store=store).status == "succeeded"


def test_ambiguous_label_names_every_matching_path(store):
    wf = {
        "id": "ambiguous",
        "nodes": {
            "loop": {
                "type": "foreach",
                "config": {
                    "items": ["x", "y"],
                    "node": {"type": "approval", "config": {"message": "{{ item }}?"}},
                },
            }
        },
    }
    run = fm_lab.run(wf, store=store)
    assert fm_lab.pending(store=store)["label"].tolist() == ["loop", "loop"]
    before = _tables(store, run.run_id)

    with pytest.raises(fm_lab.ResumeError) as caught:
        fm_lab.resume(run.run_id, {"approved": True}, label="loop", store=store)

    message = str(caught.value)
    assert "2 suspensions" in message
    assert "path_id=" in message
    assert "loop[0]" in message
    assert "loop[1]" in message
    _assert_unchanged(before, _tables(store, run.run_id))


# ---- journaled steps -----------------------------------------------------------------------
def test_journaled_step_runs_once_across_a_suspension(store, register, tmp_path, reopen):
    effects = tmp_path / "charges.log"

    def charge(amount: int) -> dict:
        receipt = uuid.uuid4().hex  # different on every call: only the recorded one may show
        with effects.open("a") as fh:
            fh.write(f"{amount} {receipt}\n")
        return {"amount": amount, "receipt": receipt}

    calls: list[int] = []

    async def checkout(ctx, amount: int) -> dict:
        calls.append(amount)
        paid = await ctx.step("charge", charge, amount)
        decision = await ctx.suspend({"paid": paid}, label="confirm")
        return {"paid": paid, "decision": decision}

    wf = {
        "id": "checkout",
        "nodes": {
            "pay": {
                "type": "code",
                "config": {"function": register(checkout), "args": {"amount": 5}},
            }
        },
    }
    run = fm_lab.run(wf, store=store)
    assert run.status == "suspended"
    lines = effects.read_text().splitlines()
    assert len(lines) == 1
    receipt = lines[0].split()[1]
    payload = fm_lab.pending(store=store)["payload"].tolist()
    assert payload == [{"paid": {"amount": 5, "receipt": receipt}}]

    done = fm_lab.resume(run.run_id, {"ok": True}, label="confirm", store=reopen(store))

    assert done.status == "succeeded", done.error
    assert calls == [5, 5]  # the node function ran again ...
    assert effects.read_text().splitlines() == lines  # ... but the side effect happened once
    assert done.outputs == {
        "pay": {"paid": {"amount": 5, "receipt": receipt}, "decision": {"ok": True}}
    }
    steps = store.sql("select path, name from steps where run_id = ?", [run.run_id])
    assert steps.values.tolist() == [["pay", "pay#charge"]]


def test_node_that_suspends_twice_gets_each_answer(store, register):
    """Two ``ctx.suspend`` calls in one node: each returns the data it was resumed with."""
    seen: list[object] = []

    async def two_questions(ctx) -> dict:
        first = await ctx.suspend({"q": 1}, label="first")
        seen.append(first)
        second = await ctx.suspend({"q": 2}, label="second")
        return {"first": first, "second": second}

    wf = {
        "id": "two_questions",
        "nodes": {"ask": {"type": "code", "config": {"function": register(two_questions)}}},
    }
    run = fm_lab.run(wf, store=store)
    assert _pending_labels(run.run_id, store) == ["first"]

    half = fm_lab.resume(run.run_id, "A", label="first", store=store)
    assert half.status == "suspended"
    assert _pending_labels(run.run_id, store) == ["second"]
    assert seen == ["A"]

    done = fm_lab.resume(run.run_id, "B", label="second", store=store)

    assert seen[-1] == "A", f"the first suspend returned {seen[-1]!r} on the second resume"
    assert done.status == "succeeded", fm_lab.pending(store=store)[["label", "path_id"]]
    assert done.outputs == {"ask": {"first": "A", "second": "B"}}


# ---- timeouts ------------------------------------------------------------------------------
def test_expired_user_input_completes_with_its_default(store):
    wf = {
        "id": "ask_with_default",
        "nodes": {
            "ask": {
                "type": "user_input",
                "config": {
                    "prompt": "Name?",
                    "timeout_s": 0.2,
                    "default": {"name": "anonymous"},
                    "schema": {"type": "object", "required": ["name"]},
                },
            },
            "greet": {"type": "template", "config": {"template": "hi {{ nodes.ask.output.name }}"}},
        },
        "edges": ["ask -> greet"],
    }
    run = fm_lab.run(wf, store=store)
    assert run.status == "suspended"
    row = fm_lab.pending(store=store).iloc[0]
    # the deadline is set when the node suspends, timeout_s after it (the run records the
    # suspension a moment later, so no more than 0.2 s separates them)
    assert (row["expires_at"] - row["since"]).total_seconds() <= 0.2 + 1e-5

    time.sleep(0.3)
    done = fm_lab.resume(run.run_id, store=store)

    assert done.status == "succeeded", done.error
    assert done.outputs == {"greet": "hi anonymous"}
    assert done.node("ask").output == {"name": "anonymous"}
    assert fm_lab.pending(store=store).empty


def test_expired_approval_with_on_timeout_fail_fails_the_node(store):
    wf = {
        "id": "approval_timeout_fail",
        "nodes": {
            "ok": {
                "type": "approval",
                "config": {"message": "?", "timeout_s": 0.2, "on_timeout": "fail"},
            },
            "after": {"type": "template", "config": {"template": "never"}},
        },
        "edges": ["ok -> after"],
    }
    run = fm_lab.run(wf, store=store)
    assert run.status == "suspended"
    time.sleep(0.3)

    done = fm_lab.resume(run.run_id, store=store)

    assert done.status == "failed"
    assert done.error["node"] == "ok"
    assert done.error["kind"] == "timeout"
    node = done.node("ok")
    assert node.status == "failed"
    assert node.error["kind"] == "timeout"
    assert "expired" in node.error["message"]
    assert done.node("after").status != "succeeded"
    assert fm_lab.get_run(run.run_id, store=store).status == "failed"
    assert fm_lab.pending(store=store).empty


def test_expired_approval_is_rejected_by_default_and_routes_rejected(store):
    wf = {
        "id": "approval_timeout_reject",
        "nodes": {
            "ok": {"type": "approval", "config": {"message": "?", "timeout_s": 0.2}},
            "yes": {"type": "template", "config": {"template": "approved"}},
            "no": {
                "type": "template",
                "config": {"template": "rejected: {{ nodes.ok.output.comment }}"},
            },
        },
        "edges": ["ok.approved -> yes", "ok.rejected -> no"],
    }
    run = fm_lab.run(wf, store=store)
    time.sleep(0.3)

    done = fm_lab.resume(run.run_id, store=store)

    assert done.status == "succeeded", done.error
    assert done.node("yes").status == "skipped"
    assert done.outputs == {"no": "rejected: timed out"}


# ---- events --------------------------------------------------------------------------------
def test_wait_for_event_is_resumed_by_signal(store):
    wf = {
        "id": "wait_for_payment",
        "nodes": {
            "paid": {
                "type": "wait_for_event",
                "config": {
                    "event": "payment_received",
                    "schema": {
                        "type": "object",
                        "required": ["amount"],
                        "properties": {"amount": {"type": "number"}},
                    },
                },
            },
            "receipt": {
                "type": "template",
                "config": {"template": "received {{ nodes.paid.output.amount }}"},
            },
        },
        "edges": ["paid -> receipt"],
    }
    run = fm_lab.run(wf, store=store)
    assert run.status == "suspended"
    row = fm_lab.pending(store=store).iloc[0]
    assert (row["label"], row["payload"]) == ("payment_received", {"event": "payment_received"})

    with pytest.raises(fm_lab.ResumeError, match="payment_received"):
        fm_lab.signal(run.run_id, "refund", {"amount": 1}, store=store)
    with pytest.raises(fm_lab.ResumeValidationError, match="amount"):
        fm_lab.signal(run.run_id, "payment_received", {"amount": "lots"}, store=store)
    assert _status(run.run_id, store) == "suspended"

    done = fm_lab.signal(run.run_id, "payment_received", {"amount": 12.5}, store=store)

    assert done.status == "succeeded", done.error
    assert done.outputs == {"receipt": "received 12.5"}


# ---- child runs ----------------------------------------------------------------------------
CHILD = {
    "id": "pay_child",
    "inputs": {"type": "object", "properties": {"amount": {"type": "integer"}}},
    "nodes": {
        "ok": {
            "type": "approval",
            "config": {"message": "Pay {{ inputs.amount }}?", "label": "pay"},
        },
        "yes": {"type": "template", "config": {"template": "paid {{ inputs.amount }}"}},
        "no": {"type": "template", "config": {"template": "refused"}},
    },
    "edges": ["ok.approved -> yes", "ok.rejected -> no"],
    "outputs": {
        "result": "{{ nodes.yes.output or nodes.no.output }}",
        "by": "{{ nodes.ok.output.by }}",
    },
}


def test_suspended_child_run_is_resumed_through_its_parent(store):
    wf = {
        "id": "pay_parent",
        "nodes": {
            "sub": {"type": "subflow", "config": {"workflow": CHILD, "inputs": {"amount": 7}}},
            "after": {"type": "template", "config": {"template": "{{ nodes.sub.output.result }}!"}},
        },
        "edges": ["sub -> after"],
    }
    run = fm_lab.run(wf, store=store)

    assert run.status == "suspended"
    frame = fm_lab.pending(store=store)
    assert len(frame) == 1
    row = frame.iloc[0]
    child_id = row["run_id"]
    assert child_id != run.run_id
    assert child_id.startswith(run.run_id + ".")
    assert (row["workflow_id"], row["label"], row["path_id"]) == ("pay_child", "pay", "ok")
    assert row["payload"] == {"message": "Pay 7?", "details": None}
    assert fm_lab.pending(run.run_id, store=store)["run_id"].tolist() == [child_id]
    runs = fm_lab.runs(store=store).set_index("run_id")
    assert runs.loc[child_id, "parent_run_id"] == run.run_id
    assert runs.loc[child_id, "status"] == "suspended"
    assert runs.loc[run.run_id, "status"] == "suspended"

    with pytest.raises(fm_lab.ResumeValidationError, match=child_id):
        fm_lab.resume(run.run_id, {"approved": "sure"}, label="pay", store=store)
    assert fm_lab.pending(store=store)["run_id"].tolist() == [child_id]

    done = fm_lab.resume(run.run_id, {"approved": True, "by": "cfo"}, label="pay", store=store)

    assert done.run_id == run.run_id
    assert done.status == "succeeded", done.error
    assert done.outputs == {"after": "paid 7!"}
    assert done.node("sub").output == {"result": "paid 7", "by": "cfo"}
    child = fm_lab.get_run(child_id, store=store)
    assert child.status == "succeeded"
    assert child.outputs == {"result": "paid 7", "by": "cfo"}
    runs = fm_lab.runs(store=store).set_index("run_id")
    assert runs.loc[child_id, "parent_run_id"] == run.run_id
    assert set(runs["status"]) == {"succeeded"}
    assert fm_lab.pending(store=store).empty


# ---- suspended foreach items ---------------------------------------------------------------
@pytest.mark.parametrize("order", [(2, 0, 1), (1, 2, 0), (0, 1, 2)])
def test_foreach_items_wait_and_resume_by_path_in_any_order(store, order):
    wf = {
        "id": "approve_each",
        "inputs": {"type": "object", "properties": {"amounts": {"type": "array"}}},
        "nodes": {
            "loop": {
                "type": "foreach",
                "config": {
                    "items": "{{ inputs.amounts }}",
                    "node": {
                        "type": "approval",
                        "config": {"message": "pay {{ item }} (#{{ index }})?"},
                    },
                },
            },
            "count": {
                "type": "template",
                "config": {"template": "{{ nodes.loop.output.succeeded }}"},
            },
        },
        "edges": ["loop -> count"],
    }
    run = fm_lab.run(wf, {"amounts": [10, 20, 30]}, store=store)

    assert run.status == "suspended"
    frame = fm_lab.pending(store=store).sort_values("path_id")
    assert frame["path_id"].tolist() == ["loop[0]", "loop[1]", "loop[2]"]
    assert [p["message"] for p in frame["payload"]] == [
        "pay 10 (#0)?",
        "pay 20 (#1)?",
        "pay 30 (#2)?",
    ]

    waiting = {0, 1, 2}
    for number, index in enumerate(order):
        result = fm_lab.resume(
            run.run_id,
            {"approved": index != 1, "comment": f"item {index}"},
            path_id=f"loop[{index}]",
            store=store,
        )
        waiting.discard(index)
        expected_paths = sorted(f"loop[{i}]" for i in waiting)
        assert sorted(fm_lab.pending(store=store)["path_id"]) == expected_paths
        assert result.status == ("succeeded" if number == 2 else "suspended"), result.error

    output = result.node("loop").output
    assert output["results"] == [
        {"approved": True, "comment": "item 0", "by": None},
        {"approved": False, "comment": "item 1", "by": None},
        {"approved": True, "comment": "item 2", "by": None},
    ]
    assert (output["succeeded"], output["failed"], output["errors"]) == (3, 0, [])
    assert result.outputs == {"count": 3}
    # every item node ran twice in all: once to suspend, once to finish
    history = store.node_executions(run.run_id, history=True)
    items = history[history["node_id"].str.startswith("loop[")]
    assert items.groupby("node_id")["status"].apply(list).to_dict() == {
        f"loop[{i}]": ["suspended", "succeeded"] for i in range(3)
    }


def test_pending_can_be_read_from_a_fresh_store(store_path):
    """pending() reads what the run stored, not this process's memory."""
    run = fm_lab.run(_two_approvals("parallel"), store=fm_lab.Store(store_path))
    fresh = fm_lab.Store(Path(store_path))
    frame = fm_lab.pending(store=fresh)
    assert sorted(frame["path_id"]) == ["par.left", "par.right"]
    assert set(frame["run_id"]) == {run.run_id}
    assert set(frame["workflow_id"]) == {"two_approvals_parallel"}


def test_resuming_a_child_by_the_run_id_pending_shows_continues_the_parent(store):
    """pending() names the child run; resuming that run id (as a loop over pending() would)
    must not leave the parent suspended with nothing pending."""
    wf = {
        "id": "pay_parent_direct",
        "nodes": {
            "sub": {"type": "subflow", "config": {"workflow": CHILD, "inputs": {"amount": 3}}},
            "after": {"type": "template", "config": {"template": "{{ nodes.sub.output.result }}!"}},
        },
        "edges": ["sub -> after"],
    }
    run = fm_lab.run(wf, store=store)
    row = fm_lab.pending(store=store).iloc[0]
    assert row["run_id"] != run.run_id

    child = fm_lab.resume(row["run_id"], {"approved": True}, path_id=row["path_id"], store=store)

    assert child.status == "succeeded", child.error
    assert fm_lab.pending(store=store).empty
    parent = fm_lab.get_run(run.run_id, store=store)
    assert parent.status == "succeeded", (
        f"parent left {parent.status} with nothing pending after its child finished"
    )
    assert parent.outputs == {"after": "paid 3!"}


def test_ambiguous_match_across_child_runs_names_each_child_run(store):
    """Two children (foreach items running a subflow) wait at the same label and path: the
    error must say which runs match, since their path ids are the same."""
    wf = {
        "id": "children_in_a_loop",
        "nodes": {
            "loop": {
                "type": "foreach",
                "config": {
                    "items": [1, 2],
                    "node": {
                        "type": "subflow",
                        "config": {"workflow": CHILD, "inputs": {"amount": "{{ item }}"}},
                    },
                },
            }
        },
    }
    run = fm_lab.run(wf, store=store)
    frame = fm_lab.pending(run.run_id, store=store)
    child_ids = sorted(frame["run_id"])
    assert len(child_ids) == 2
    assert all(c.startswith(run.run_id + ".") for c in child_ids)
    assert frame["path_id"].tolist() == ["ok", "ok"]

    with pytest.raises(fm_lab.ResumeError) as caught:
        fm_lab.resume(run.run_id, {"approved": True}, label="pay", store=store)

    message = str(caught.value)
    assert "2 suspensions" in message
    for child_id in child_ids:
        assert child_id in message, f"the error does not name child run {child_id}: {message}"


SUSPEND_THEN_WORK = """
import asyncio
from pathlib import Path


async def ask_then_work(ctx, marker):
    answer = await ctx.suspend({"q": "go?"}, label="ask")
    flag = Path(marker)
    if not flag.exists():  # first time with the answer: announce it, then work for long
        flag.write_text("working")
        await asyncio.sleep(120)
    return {"got": answer}
"""


@pytest.mark.slow
def test_resume_data_survives_a_crash_of_the_resuming_process(spawner, tmp_path, store_path):
    """Once resume() has accepted the data and the node is acting on it, a crash of the resuming
    process must not lose it: recovery finishes the run with that data, it does not ask again."""
    marker = tmp_path / "working"
    module = spawner.write_module("suspend_fns", SUSPEND_THEN_WORK)
    wf = {
        "id": "answer_then_work",
        "nodes": {
            "work": {
                "type": "code",
                "config": {"function": f"{module}:ask_then_work", "args": {"marker": str(marker)}},
            }
        },
    }
    run = fm_lab.run(wf, store=fm_lab.Store(store_path), run_id="crash-after-resume")
    assert run.status == "suspended"
    resumer = """
import sys

import fm_lab

path, run_id = sys.argv[1:]
fm_lab.resume(run_id, {"v": 42}, label="ask", store=fm_lab.Store(path))
"""
    proc = spawner.start(resumer, str(store_path), "crash-after-resume")
    spawner.wait_for(marker, proc)
    time.sleep(0.2)  # the node is working with the answer
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)

    store = fm_lab.Store(store_path)
    recovered = fm_lab.recover(store=store)

    assert [r.run_id for r in recovered] == ["crash-after-resume"]
    assert fm_lab.pending(store=store).empty, "the answer was lost: the run asks again"
    assert recovered[0].status == "succeeded", recovered[0].error
    assert recovered[0].outputs == {"work": {"got": {"v": 42}}}
