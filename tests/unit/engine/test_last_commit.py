"""A run's last nodes are committed with its end: one commit (one ``fsync``) fewer per run,
while every node another node depends on is still durable before that node starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import fm_lab
from fm_lab.store import Store
from fm_lab.store.journal import Journal

CHAIN = {"id": "chain3", "nodes": {
    "a": {"type": "template", "config": {"template": "a"}},
    "b": {"type": "template", "config": {"template": "{{ nodes.a.output }}b"}},
    "c": {"type": "template", "config": {"template": "{{ nodes.b.output }}c"}}},
    "edges": ["a -> b", "b -> c"]}
FORK = {"id": "fork", "nodes": {  # a feeds b; c is an independent leaf that ends early
    "a": {"type": "template", "config": {"template": "a"}},
    "b": {"type": "template", "config": {"template": "{{ nodes.a.output }}b"}},
    "c": {"type": "template", "config": {"template": "c"}}},
    "edges": ["a -> b"]}


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """What each journal commit wrote: the kinds of its records (``node:<id>`` for nodes)."""
    seen: list[list[str]] = []
    original = Journal.commit

    def commit(self: Journal) -> None:
        pending = [json.loads(line[9:]) for line in self._pending]  # "crc32 " + body
        original(self)
        if pending:
            seen.append([f"node:{r['node']}" if r["k"] == "node" else r["k"]
                         for r in pending if r["k"] != "span"])
    monkeypatch.setattr(Journal, "commit", commit)
    return seen


def test_the_last_node_of_a_chain_goes_in_the_end_commit(
        tmp_path: Path, commits: list[list[str]]) -> None:
    store = Store(tmp_path / "s.duckdb")
    run = fm_lab.run(CHAIN, store=store)
    assert (run.status, run.outputs) == ("succeeded", {"c": "abc"})
    assert commits == [["start"], ["node:a"], ["node:b"], ["node:c", "run"]]
    assert store.node_executions(run.run_id)["node_id"].tolist() == ["a", "b", "c"]


def test_a_node_with_a_successor_is_durable_before_it_starts(
        tmp_path: Path, commits: list[list[str]]) -> None:
    """In the fork, ``a`` commits before ``b`` runs (``b`` reads ``a``'s output); the leaves
    ``b`` and ``c`` end the run with its end record."""
    run = fm_lab.run(FORK, store=Store(tmp_path / "s.duckdb"))
    assert run.status == "succeeded"
    flat = [kind for commit in commits for kind in commit]
    assert flat.index("node:a") < flat.index("node:b")
    assert commits[-1][-1] == "run" and "node:b" in commits[-1]
    assert commits.index(next(c for c in commits if "node:a" in c)) < len(commits) - 1


def test_a_failed_last_node_is_stored_with_the_failed_run(
        tmp_path: Path, commits: list[list[str]], register: Any) -> None:
    def boom() -> None:
        raise ValueError("no")

    name = register(boom)
    store = Store(tmp_path / "s.duckdb")
    run = fm_lab.run({"id": "fails", "nodes": {
        "a": {"type": "template", "config": {"template": "a"}},
        "b": {"type": "code", "config": {"function": name}}},
        "edges": ["a -> b"]}, store=store)
    assert run.status == "failed"
    assert commits[-1] == ["node:b", "run"]
    stored = store.node_executions(run.run_id)
    assert stored.set_index("node_id")["status"].to_dict() == {"a": "succeeded", "b": "failed"}
