"""The steps of one node's execution (``fm_lab.engine.execute``) that need no run: the retry
decision, config rendering, the cache lookup, one attempt under its timeout, and the records
an outcome is journaled as."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from fm_lab.engine import execute
from fm_lab.engine.cache import CacheHit
from fm_lab.engine.execute import Outcome, node_record, suspend_record
from fm_lab.exceptions import Suspended
from fm_lab.nodes.base import NodeType
from fm_lab.spec.models import Node, RetryPolicy


class Echo(NodeType):
    type_name = "echo_test"

    class Config(BaseModel):
        text: str = ""

    def run(self, ctx: Any, inputs: dict[str, Any]) -> Any:
        return self.config.text


class Slow(NodeType):
    type_name = "slow_test"

    async def run(self, ctx: Any, inputs: dict[str, Any]) -> Any:
        await asyncio.sleep(5)
        return "late"


class Quick(NodeType):
    type_name = "quick_test"

    async def run(self, ctx: Any, inputs: dict[str, Any]) -> Any:
        return sorted(inputs)


def _node(**kw: Any) -> Node:
    return Node(id="n", type="echo_test", config={"text": "{{ inputs.x }}"}, **kw)


def _error(kind: str = "provider", retryable: bool = True) -> dict[str, Any]:
    return {"kind": kind, "retryable": retryable, "type": "E", "message": "m"}


@pytest.mark.parametrize(
    ("attempt", "error", "aborted", "retried"),
    [
        (1, _error(), False, True),
        (3, _error(), False, False),  # no attempts left
        (1, _error(retryable=False), False, False),
        (1, _error(kind="user"), False, False),  # a kind the policy does not retry
        (1, _error(), True, False),  # the run is aborting
    ],
)
def test_the_retry_decision(attempt: int, error: dict[str, Any], aborted: bool,
                            retried: bool) -> None:
    policy = RetryPolicy(max_attempts=3, retry_on=["provider"])
    assert execute._should_retry(policy, attempt, error, aborted) is retried


def test_a_static_config_is_used_as_is_and_a_templated_one_rendered() -> None:
    static = Echo.Config(text="fixed")
    assert execute._config(_node(), Echo, static, {}) == (static, None)
    config, rendered = execute._config(_node(), Echo, None, {"inputs": {"x": "hi"}})
    assert config == Echo.Config(text="hi") and rendered == {"text": "hi"}


class FakeCache:
    def __init__(self, hit: CacheHit | None) -> None:
        self.hit, self.asked = hit, []

    def get(self, key: str, path: str) -> CacheHit | None:
        self.asked.append((key, path))
        return self.hit


def test_the_cache_lookup_renders_once_and_finds_a_stored_result() -> None:
    hit = CacheHit(output="old", state_patch={"s": 1}, run_id="r0", path="n")
    cache = FakeCache(hit)
    scope = {"inputs": {"x": "hi"}}
    key, first, found = execute._cache_lookup(cache, _node(), Echo, None, scope, {}, "n")
    assert key is not None and len(key) == 64 and cache.asked == [(key, "n")]
    assert first == (Echo.Config(text="hi"), {"text": "hi"}) and found is hit
    outcome = execute._cached("n", 1.0, key, first, hit)
    assert (outcome.status, outcome.output, outcome.state_patch, outcome.attempts) == (
        "succeeded", "old", {"s": 1}, 0)
    assert outcome.cached_from == {"run_id": "r0", "path": "n"} and outcome.cache_key == key
    assert outcome.input == {"text": "hi"}


def test_a_config_that_does_not_render_has_no_cache_key() -> None:
    cache = FakeCache(None)
    node = Node(id="n", type="echo_test", config={"text": "{{ nodes.missing.output.x }}"})
    assert execute._cache_lookup(cache, node, Echo, None, {"nodes": {}}, {}, "n") == (
        None, None, None)
    assert cache.asked == []


def test_one_attempt_runs_sync_and_async_nodes_and_honours_the_timeout() -> None:
    assert asyncio.run(execute._attempt(_node(), Echo, Echo.Config(text="a"), None, {})) == "a"
    quick = Node(id="q", type="quick_test", timeout_s=1)
    assert asyncio.run(execute._attempt(quick, Quick, Quick.Config(), None, {"b": 1, "a": 2})) \
        == ["a", "b"]
    slow = Node(id="s", type="slow_test", timeout_s=0.01)
    with pytest.raises(TimeoutError):
        asyncio.run(execute._attempt(slow, Slow, Slow.Config(), None, {}))


def test_outcomes_are_built_by_keyword() -> None:
    with pytest.raises(TypeError):
        Outcome("n", "succeeded")  # type: ignore[misc]
    outcome = Outcome(path="n", status="failed", error=_error(), attempts=2)
    assert outcome.spans == [] and outcome.output is None


def test_an_outcome_becomes_its_node_and_suspend_records() -> None:
    outcome = Outcome(path="loop[1]", status="succeeded", output=1, attempts=1, started=1.0,
                      ended=2.0, span_id="s", parent_span_id="p", cache_key="k")
    record = node_record(outcome, "echo_test", "loop", "trace")
    assert record == {
        "k": "node", "node": "loop[1]", "type": "echo_test", "status": "succeeded",
        "attempts": 1, "input": None, "output": 1, "error": None, "state_patch": None,
        "started": 1.0, "ended": 2.0, "span": "s", "pspan": "p", "trace": "trace",
        "entity": "loop", "events": None, "cache_key": "k",
    }
    suspension = Suspended("loop[1]#2", label="approve", payload={"a": 1})
    assert suspend_record(suspension, "loop", 5.0) == {
        "k": "suspend", "path": "loop[1]#2", "node": "loop", "label": "approve",
        "payload": {"a": 1}, "schema": None, "since": 5.0, "expires": None,
        "on_timeout": "fail", "default": None,
    }


def test_an_unstorable_output_fails_the_outcome_and_its_record() -> None:
    outcome = Outcome(path="n", status="suspended", output=object(), state_patch={"s": 1})
    record = node_record(outcome, "echo_test", "n", "trace")
    record["leaf"] = True
    execute._fail_unstorable(outcome, record, _error("user", False))
    assert (outcome.status, outcome.output, outcome.state_patch) == ("failed", None, None)
    assert "leaf" not in record and record["status"] == "failed"
    assert record["output"] is None and record["error"] == outcome.error == _error("user", False)
