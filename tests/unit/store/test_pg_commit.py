"""Which commits of a run go to the PostgreSQL store as one statement (store/pg_commit.py);
what they store is tested on a real server by the engine, HITL and tracing suites."""

from __future__ import annotations

from typing import Any

from fm_lab.store.pg_commit import fits, statement
from fm_lab.store.pg_rows import COPY_SPANS_FROM


def _node(seq: int) -> dict[str, Any]:
    return {"k": "node", "seq": seq, "node": f"n{seq}", "status": "succeeded"}


def _span(seq: int, kind: str = "tool") -> dict[str, Any]:
    return {"k": "span", "seq": seq, "kind": kind, "span": f"s{seq}", "trace": "t"}


def test_nodes_spans_and_a_runs_end_fit_one_statement() -> None:
    assert fits([_node(1), _span(2)])
    assert fits([_span(1, "workflow"), {"k": "run", "seq": 2, "status": "succeeded"}])


def test_a_start_suspension_answer_step_or_many_records_take_the_general_path() -> None:
    for other in ("start", "suspend", "resume", "step"):
        assert not fits([_node(1), {"k": other, "seq": 2}])
    assert not fits([{"k": "run", "seq": 1}, _node(2)])
    assert not fits([_span(1, "workflow"), _span(2, "workflow")])
    assert not fits([_node(i) for i in range(COPY_SPANS_FROM)])
    assert not fits([])


def test_the_workflow_span_is_replaced_by_the_runs_id() -> None:
    sql = statement(lease=True, replace=True, end=True)
    assert "delete from spans where run_id = %(run)s and kind = 'workflow'" in sql
    assert "for update" in sql and "pg_try_advisory_xact_lock_shared" in sql
