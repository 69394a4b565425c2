"""Built-in node types, run through ``fm_lab.run`` on an in-memory store; the node registry."""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import fm_lab
from fm_lab.nodes import NodeRegistry, NodeType, default_registry
from fm_lab.nodes.registry import ENTRY_POINT_GROUP
from fm_lab.spec import Workflow, WorkflowValidationError


@pytest.fixture
def store() -> Iterator[fm_lab.Store]:
    store = fm_lab.Store(":memory:")
    yield store
    store.close()


@pytest.fixture
def run(store):
    def run(data: dict[str, Any], inputs: dict[str, Any] | None = None, **kwargs: Any):
        return fm_lab.run(Workflow.from_dict(data), inputs or {}, store=store, **kwargs)

    return run


def statuses(result) -> dict[str, str]:
    return {node_id: result.node(node_id).status for node_id in result.workflow.nodes}


ANY_INPUTS = {"type": "object"}


# ---- input / output ---------------------------------------------------------------------


def test_input_node_emits_all_inputs_or_the_listed_fields(run):
    result = run({
        "id": "w",
        "inputs": {"type": "object", "properties": {
            "a": {"type": "integer"}, "b": {"type": "string", "default": "dflt"}}},
        "nodes": {"all": {"type": "input"},
                  "some": {"type": "input", "config": {"fields": ["b", "c"]}}},
    }, {"a": 1})
    assert result.status == "succeeded"
    assert result.node("all").output == {"a": 1, "b": "dflt"}
    assert result.node("some").output == {"b": "dflt", "c": None}
    assert result.outputs == {"all": {"a": 1, "b": "dflt"}, "some": {"b": "dflt", "c": None}}


def test_invalid_inputs_are_rejected_before_the_run(run, store):
    with pytest.raises(WorkflowValidationError) as info:
        run({"id": "w", "inputs": {"type": "object", "properties": {"a": {"type": "integer"}},
                                   "required": ["a", "b"]},
             "nodes": {"i": {"type": "input"}}}, {"a": "x"})
    assert {i.location for i in info.value.issues} == {"inputs.a", "inputs.b"}
    assert len(fm_lab.runs(store=store)) == 0


def test_output_node_names_and_values(run):
    result = run({
        "id": "w",
        "inputs": ANY_INPUTS,
        "nodes": {
            "a": {"type": "template", "config": {"template": "A"}},
            "b": {"type": "template", "config": {"template": "B"}},
            "single": {"type": "output", "config": {"name": "first"}},
            "several": {"type": "output"},
            "valued": {"type": "output", "config": {
                "name": "summary", "value": {"a": "{{ nodes.a.output }}", "n": 2}}},
        },
        "edges": ["a -> single", "a -> several", "b -> several", "a -> valued"],
    })
    assert result.status == "succeeded"
    assert result.outputs == {"first": "A", "several": {"a": "A", "b": "B"},
                              "summary": {"a": "A", "n": 2}}


def test_workflow_outputs_templates_override_output_nodes(run):
    result = run({
        "id": "w",
        "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "nodes": {"sq": {"type": "template", "config": {"template": "{{ inputs.n * inputs.n }}"}},
                  "out": {"type": "output"}},
        "edges": ["sq -> out"],
        "outputs": {"square": "{{ nodes.sq.output }}", "text": "n²={{ nodes.sq.output }}"},
    }, {"n": 7})
    assert result.outputs == {"square": 49, "text": "n²=49"}


# ---- template ---------------------------------------------------------------------------


def test_template_whole_expressions_keep_json_types(run):
    result = run({
        "id": "w",
        "inputs": ANY_INPUTS,
        "nodes": {
            "int": {"type": "template", "config": {"template": "{{ inputs.n }}"}},
            "float": {"type": "template", "config": {"template": "{{ inputs.n / 2 }}"}},
            "list": {"type": "template", "config": {"template": " {{ inputs.items }} "}},
            "dict": {"type": "template", "config": {"template": "{{ inputs.obj }}"}},
            "bool": {"type": "template", "config": {"template": "{{ inputs.n > 100 }}"}},
            "none": {"type": "template", "config": {"template": "{{ inputs.nothing }}"}},
            "len": {"type": "template", "config": {"template": "{{ inputs.items | length }}"}},
            "text": {"type": "template", "config": {"template": "n={{ inputs.n }}"}},
            "two": {"type": "template", "config": {"template": "{{ inputs.n }}{{ inputs.n }}"}},
            "block": {"type": "template", "config": {
                "template": "{% for i in inputs.items %}{{ i }},{% endfor %}"}},
            "json": {"type": "template", "config": {
                "template": '{"n": {{ inputs.n }}, "items": {{ inputs.items | tojson }}}',
                "parse": "json"}},
            "literal": {"type": "template", "config": {"template": 42}},
        },
    }, {"n": 5, "items": [1, "two", {"three": 3}], "obj": {"k": [1, 2]}, "nothing": None})
    assert result.status == "succeeded", result.error
    outputs = {n: result.node(n).output for n in result.workflow.nodes}
    assert outputs == {
        "int": 5, "float": 2.5, "list": [1, "two", {"three": 3}], "dict": {"k": [1, 2]},
        "bool": False, "none": None, "len": 3, "text": "n=5", "two": "55",
        "block": "1,two,{'three': 3},", "json": {"n": 5, "items": [1, "two", {"three": 3}]},
        "literal": 42,
    }
    assert type(outputs["int"]) is int and type(outputs["bool"]) is bool


def test_template_reads_upstream_outputs(run):
    result = run({
        "id": "w",
        "inputs": ANY_INPUTS,
        "nodes": {
            "fetch": {"type": "template", "config": {"template": "{{ inputs.data }}"}},
            "first": {"type": "template", "config": {
                "template": "{{ nodes.fetch.output.items[0].name }}"}},
            "text": {"type": "template", "config": {
                "template": "{{ nodes.first.output | upper }} of {{ nodes.fetch.output.items "
                            "| length }}"}},
        },
        "edges": ["fetch -> first", "first -> text"],
    }, {"data": {"items": [{"name": "ab"}, {"name": "cd"}]}})
    assert result.node("first").output == "ab"
    assert result.outputs == {"text": "AB of 2"}


def test_template_error_fails_the_node_as_validation(run):
    result = run({"id": "w", "inputs": ANY_INPUTS,
                  "nodes": {"t": {"type": "template", "config": {"template": "{{ inputs.gone }}"}},
                            "after": {"type": "output"}},
                  "edges": ["t -> after"]})
    assert result.status == "failed"
    assert statuses(result) == {"t": "failed", "after": "pending"}
    error = result.node("t").error
    assert error is not None
    assert error["kind"] == "validation" and "gone" in error["message"]
    assert result.error is not None and result.error["node"] == "t"
    with pytest.raises(fm_lab.RunFailedError, match="'t'"):
        result.raise_for_status()


# ---- merge and branch -------------------------------------------------------------------

ROUTED = {
    "id": "routed",
    "inputs": {"type": "object", "properties": {"amount": {"type": "number"}}},
    "nodes": {
        "start": {"type": "input"},
        "check": {"type": "branch", "config": {
            "routes": [{"handle": "big", "when": "{{ inputs.amount > 100 }}"}],
            "default": "small"}},
        "big": {"type": "template", "config": {"template": "big {{ inputs.amount }}"}},
        "after_big": {"type": "template", "config": {"template": "{{ nodes.big.output }}!"}},
        "small": {"type": "template", "config": {"template": "small {{ inputs.amount }}"}},
        "join": {"type": "merge", "config": {"mode": "first"}},
        "out": {"type": "output", "config": {"name": "result"}},
    },
    "edges": ["start -> check", "check.big -> big", "big -> after_big", "after_big -> join",
              "check.small -> small", "small -> join", "join -> out"],
}


@pytest.mark.parametrize(
    ("amount", "taken", "skipped", "result"),
    [
        (500, "big", {"small"}, "big 500!"),
        (5, "small", {"big", "after_big"}, "small 5"),
    ],
)
def test_branch_skips_untaken_paths_and_merge_joins(run, amount, taken, skipped, result):
    done = run(ROUTED, {"amount": amount})
    assert done.status == "succeeded"
    assert done.error is None
    assert done.node("check").output == {"route": taken, "routes": [taken]}
    states = statuses(done)
    assert {n for n, s in states.items() if s == "skipped"} == skipped
    assert {n for n, s in states.items() if s == "succeeded"} == set(ROUTED["nodes"]) - skipped
    assert all(done.node(n).error is None for n in skipped)
    assert done.outputs == {"result": result}


@pytest.mark.parametrize(("mode", "expected"), [
    ("dict", {"small": "small 5"}),
    ("list", ["small 5"]),
    ("first", "small 5"),
])
def test_merge_modes_after_a_branch(run, mode, expected):
    data = {**ROUTED, "nodes": {**ROUTED["nodes"],
                                "join": {"type": "merge", "config": {"mode": mode}}}}
    assert run(data, {"amount": 5}).outputs == {"result": expected}


def test_merge_of_parallel_paths_keeps_edge_order(run):
    result = run({
        "id": "w",
        "nodes": {"a": {"type": "template", "config": {"template": "A"}},
                  "b": {"type": "template", "config": {"template": "B"}},
                  "c": {"type": "template", "config": {"template": "C"}},
                  "as_list": {"type": "merge", "config": {"mode": "list"}},
                  "as_dict": {"type": "merge"}},
        "edges": ["c -> as_list", "a -> as_list", "b -> as_list", "b -> as_dict",
                  "a -> as_dict"],
    })
    assert result.node("as_list").output == ["C", "A", "B"]
    assert result.node("as_dict").output == {"b": "B", "a": "A"}


def test_branch_mode_all_and_no_match(run):
    data = {
        "id": "w",
        "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "nodes": {
            "br": {"type": "branch", "config": {"mode": "all", "routes": [
                {"handle": "pos", "when": "{{ inputs.n > 0 }}"},
                {"handle": "even", "when": "{{ inputs.n % 2 == 0 }}"}]}},
            "p": {"type": "template", "config": {"template": "pos"}},
            "e": {"type": "template", "config": {"template": "even"}},
            "m": {"type": "merge", "config": {"mode": "list"}},
            "tail": {"type": "template", "config": {"template": "tail"}},
        },
        "edges": ["br.pos -> p", "br.even -> e", "p -> m", "e -> m", "m -> tail"],
    }
    both = run(data, {"n": 4})
    assert both.node("br").output == {"route": "pos", "routes": ["pos", "even"]}
    assert both.node("m").output == ["pos", "even"]

    one = run(data, {"n": 3})
    assert statuses(one)["e"] == "skipped"
    assert one.node("m").output == ["pos"]

    none = run(data, {"n": -3})
    assert none.status == "succeeded"
    assert none.node("br").output == {"route": None, "routes": []}
    # skips propagate through the merge to everything downstream
    assert statuses(none) == {"br": "succeeded", "p": "skipped", "e": "skipped",
                              "m": "skipped", "tail": "skipped"}
    assert none.outputs == {}


def test_edge_conditions_skip_like_routes(run):
    result = run({
        "id": "w",
        "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "nodes": {"a": {"type": "template", "config": {"template": "{{ inputs.n }}"}},
                  "yes": {"type": "template", "config": {"template": "yes"}},
                  "no": {"type": "template", "config": {"template": "no"}}},
        "edges": [{"source": "a", "target": "yes", "condition": "{{ nodes.a.output > 1 }}"},
                  {"source": "a", "target": "no", "condition": "{{ nodes.a.output <= 1 }}"}],
    }, {"n": 2})
    assert statuses(result) == {"a": "succeeded", "yes": "succeeded", "no": "skipped"}
    assert result.outputs == {"yes": "yes"}


# ---- code -------------------------------------------------------------------------------


@fm_lab.register_function(name="nodes_test_add")
def _add(a: int, b: int) -> int:
    return a + b


@fm_lab.register_function
def nodes_test_context(ctx, inputs, k: int = 1) -> dict[str, Any]:
    return {"node": ctx.node_id, "run": ctx.run_id, "attempt": ctx.attempt,
            "inputs": inputs, "k": k, "user": ctx.request_context.get("user"),
            "run_inputs": dict(ctx.inputs)}


@fm_lab.register_function
def nodes_test_only_inputs(inputs) -> list[str]:
    return sorted(inputs)


@fm_lab.register_function
async def nodes_test_async_double(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


@fm_lab.register_function
def nodes_test_fail(message: str) -> None:
    raise ValueError(message)


def test_code_node_calls_registered_functions(run):
    result = run({
        "id": "w",
        "inputs": {"type": "object", "properties": {"a": {"type": "integer"}}},
        "nodes": {
            "add": {"type": "code", "config": {"function": "nodes_test_add",
                                               "args": {"a": "{{ inputs.a }}", "b": 10}}},
            "double": {"type": "code", "config": {"function": "nodes_test_async_double",
                                                  "args": {"x": "{{ nodes.add.output }}"}}},
            "inline": {"type": "code", "config": {"function": "nodes_test_add", "thread": False,
                                                  "args": {"a": 1, "b": 2}}},
        },
        "edges": ["add -> double"],
    }, {"a": 2})
    assert result.status == "succeeded", result.error
    assert result.node("add").output == 12
    assert result.node("double").output == 24
    assert result.node("inline").output == 3


def test_code_node_passes_ctx_and_inputs_when_declared(run):
    result = run({
        "id": "w",
        "inputs": {"type": "object", "properties": {"a": {"type": "integer"}}},
        "nodes": {
            "add": {"type": "code", "config": {"function": "nodes_test_add",
                                               "args": {"a": "{{ inputs.a }}", "b": 1}}},
            "other": {"type": "template", "config": {"template": "o"}},
            "see": {"type": "code", "config": {"function": "nodes_test_context",
                                               "args": {"k": "{{ nodes.add.output }}"}}},
            "names": {"type": "code", "config": {"function": "nodes_test_only_inputs"}},
        },
        "edges": ["add -> see", "other -> see", "add -> names", "other -> names"],
    }, {"a": 4}, request_context={"user": "ada"})
    assert result.status == "succeeded", result.error
    assert result.node("see").output == {
        "node": "see", "run": result.run_id, "attempt": 1, "inputs": {"add": 5, "other": "o"},
        "k": 5, "user": "ada", "run_inputs": {"a": 4}}
    assert result.node("names").output == ["add", "other"]


def test_code_node_imports_module_functions(run):
    result = run({
        "id": "w",
        "inputs": ANY_INPUTS,
        "nodes": {
            "mean": {"type": "code", "config": {"function": "statistics:mean",
                                                "args": {"data": "{{ inputs.values }}"}}},
            "base": {"type": "code", "config": {"function": "os.path:basename",
                                                "args": {"p": "/data/report.csv"}}},
        },
    }, {"values": [1, 2, 6]})
    assert result.status == "succeeded", result.error
    assert result.node("mean").output == 3
    assert result.node("base").output == "report.csv"


def test_code_node_unknown_function_fails_as_user_error(run):
    result = run({"id": "w", "nodes": {
        "c": {"type": "code", "config": {"function": "nodes_test_does_not_exist"}}}})
    assert result.status == "failed"
    error = result.node("c").error
    assert error is not None
    assert error["kind"] == "user" and error["retryable"] is False
    assert "register_function" in error["message"]


def test_code_node_templated_config_is_validated_once_rendered(run):
    data = {"id": "w", "inputs": ANY_INPUTS, "nodes": {
        "c": {"type": "code", "config": {"function": "nodes_test_add",
                                         "args": "{{ inputs.args }}"}}}}
    ok = run(data, {"args": {"a": 1, "b": 2}})
    assert ok.status == "succeeded" and ok.outputs == {"c": 3}
    bad = run(data, {"args": [1, 2]})
    assert bad.status == "failed"
    error = bad.node("c").error
    assert error is not None and error["kind"] == "validation"
    assert error["type"] == "ValidationError"


def test_failed_node_error_is_classified_and_traceback_is_the_nodes_own(run):
    result = run({"id": "w", "nodes": {
        "c": {"type": "code", "config": {"function": "nodes_test_fail", "thread": False,
                                         "args": {"message": "boom"}}}}})
    assert result.status == "failed"
    error = result.node("c").error
    assert error is not None
    assert (error["kind"], error["retryable"], error["type"], error["message"]) == (
        "user", False, "ValueError", "boom")
    assert error["domain"] == "code"
    assert "nodes_test_fail" in error["traceback"]
    assert error["traceback"].rstrip().endswith("ValueError: boom")
    # the stored traceback must not drag in an unrelated exception from the engine's own
    # plumbing (e.g. the RuntimeError asyncio raises when no loop is running)
    assert "During handling of the above exception" not in error["traceback"]
    assert "no running event loop" not in error["traceback"]


def test_code_node_output_that_is_not_json_fails_the_node(run, store):
    # json:JSONDecoder() returns an object that cannot be stored as JSON
    result = run({"id": "w", "nodes": {
        "c": {"type": "code", "config": {"function": "json:JSONDecoder"}},
        "after": {"type": "output"}}, "edges": ["c -> after"]})
    assert result.status == "failed"
    assert statuses(result) == {"c": "failed", "after": "pending"}
    error = result.node("c").error
    assert error is not None
    assert error["kind"] == "validation" and "JSONDecoder" in error["message"]
    assert fm_lab.get_run(result.run_id, store=store).status == "failed"


def test_template_with_a_missing_value_inside_a_literal_fails_the_node(run, store):
    result = run({"id": "w", "inputs": ANY_INPUTS, "nodes": {
        "t": {"type": "template", "config": {"template": "{{ [inputs.missing] }}"}}}})
    assert result.status == "failed"
    assert result.node("t").status == "failed"
    error = result.node("t").error
    assert error is not None
    assert error["kind"] == "validation" and "'missing'" in error["message"]
    assert fm_lab.get_run(result.run_id, store=store).status == "failed"


# ---- transform --------------------------------------------------------------------------


def test_transform_with_jmespath(run):
    result = run({
        "id": "w",
        "inputs": ANY_INPUTS,
        "nodes": {
            "fetch": {"type": "template", "config": {"template": "{{ inputs.catalog }}"}},
            "cheap": {"type": "transform", "config": {
                "expression": "nodes.fetch.output.items[?price < `10`].name"}},
            "scope": {"type": "transform", "config": {
                "expression": "{n: inputs.n, status: nodes.fetch.status, run: run.id}"}},
            "given": {"type": "transform", "config": {
                "expression": "sort_by(@, &price)[-1].name",
                "data": "{{ nodes.fetch.output.items }}"}},
            "literal": {"type": "transform", "config": {
                "expression": "length(@)", "data": [1, 2, 3]}},
        },
        "edges": ["fetch -> cheap", "fetch -> scope", "fetch -> given"],
    }, {"n": 1, "catalog": {"items": [{"name": "pen", "price": 2},
                                      {"name": "book", "price": 25},
                                      {"name": "cup", "price": 8}]}})
    assert result.status == "succeeded", result.error
    assert result.node("cheap").output == ["pen", "cup"]
    assert result.node("scope").output == {"n": 1, "status": "succeeded", "run": result.run_id}
    assert result.node("given").output == "book"
    assert result.node("literal").output == 3


def test_transform_bad_expression_fails_the_node(run):
    result = run({"id": "w", "nodes": {
        "t": {"type": "transform", "config": {"expression": "items[?", "data": {}}}}})
    assert result.status == "failed"
    assert result.node("t").status == "failed"


# ---- set_state --------------------------------------------------------------------------

STATEFUL = {
    "id": "st",
    "inputs": {"type": "object", "properties": {"v": {}}},
    "state": {"type": "object", "additionalProperties": False, "properties": {
        "count": {"type": "integer", "default": 0}, "tag": {"type": "string"}}},
    "nodes": {
        "before": {"type": "template", "config": {"template": "{{ state.count }}"}},
        "set": {"type": "set_state", "config": {"values": {"count": "{{ inputs.v }}",
                                                           "tag": "t"}}},
        "read": {"type": "template", "config": {"template": "{{ state.count + 1 }}"}},
    },
    "edges": ["before -> set", "set -> read"],
}


def test_set_state_updates_the_run_state(run):
    result = run(STATEFUL, {"v": 5})
    assert result.status == "succeeded", result.error
    assert result.node("before").output == 0  # the schema default
    assert result.node("set").output == {"count": 5, "tag": "t"}
    assert result.node("read").output == 6
    assert result.state == {"count": 5, "tag": "t"}


@pytest.mark.parametrize("bad", ["five", 1.5, None])
def test_set_state_violating_the_schema_fails_the_node(run, store, bad):
    result = run(STATEFUL, {"v": bad})
    assert result.status == "failed"
    assert statuses(result) == {"before": "succeeded", "set": "failed", "read": "pending"}
    error = result.node("set").error
    assert error is not None
    assert error["kind"] == "validation"
    assert error["retryable"] is False
    assert "state.count" in error["message"]
    assert result.error is not None and result.error["node"] == "set"
    assert result.state == {"count": 0}  # the rejected update was not applied
    assert fm_lab.get_run(result.run_id, store=store).status == "failed"


def test_set_state_unknown_key_is_rejected(run):
    data = {**STATEFUL, "nodes": {**STATEFUL["nodes"], "set": {
        "type": "set_state", "config": {"values": {"other": 1}}}}}
    result = run(data, {"v": 1})
    assert result.status == "failed"
    assert result.node("set").error["kind"] == "validation"


# ---- registry ---------------------------------------------------------------------------


@fm_lab.register_node
class NodesTestShout(NodeType):
    """Upper-cases its text and appends its upstream outputs."""

    type_name = "nodes_test_shout"

    class Config(BaseModel):
        text: str
        times: int = 1

    async def run(self, ctx, inputs):
        await asyncio.sleep(0)
        return " ".join([self.config.text.upper()] * self.config.times + sorted(inputs))


def test_custom_node_type_is_registered_and_runs(run):
    assert default_registry().lookup("nodes_test_shout") is NodesTestShout
    assert "nodes_test_shout" in default_registry().names()
    result = run({
        "id": "w",
        "inputs": ANY_INPUTS,
        "nodes": {"a": {"type": "template", "config": {"template": "x"}},
                  "s": {"type": "nodes_test_shout", "config": {"text": "{{ inputs.word }}",
                                                               "times": 2}}},
        "edges": ["a -> s"],
    }, {"word": "hey"})
    assert result.status == "succeeded", result.error
    assert result.outputs == {"s": "HEY HEY a"}


def test_custom_node_config_is_validated_with_its_model():
    wf = Workflow.from_dict({"id": "w", "nodes": {
        "s": {"type": "nodes_test_shout", "config": {"times": "many"}}}})
    assert {(i.location, i.code) for i in wf.issues()} == {
        ("nodes.s.config.text", "missing"), ("nodes.s.config.times", "int_parsing")}


def test_registry_register_and_lookup():
    registry = NodeRegistry()
    registry._entry_points_loaded = True  # keep installed plugins out of this test
    assert registry.lookup("nodes_test_shout") is None
    assert registry.register(NodesTestShout) is NodesTestShout
    assert registry.register(NodesTestShout, name="alias") is NodesTestShout
    assert registry.lookup("nodes_test_shout") is NodesTestShout
    assert registry.lookup("alias") is NodesTestShout
    assert registry.names() == ["alias", "nodes_test_shout"]

    class Nameless(NodeType):
        pass

    with pytest.raises(ValueError, match="type_name"):
        registry.register(Nameless)


def test_default_registry_has_the_builtin_types():
    names = set(default_registry().names())
    assert {"input", "output", "merge", "code", "template", "transform", "set_state",
            "branch"} <= names


class _FakeEntryPoint:
    def __init__(self, name: str, value: Any) -> None:
        self.name = name
        self.value = value
        self.loads = 0

    def load(self) -> Any:
        self.loads += 1
        return self.value


def test_entry_points_are_loaded_from_the_fm_lab_nodes_group(monkeypatch):
    assert ENTRY_POINT_GROUP == "fm_lab.nodes"
    plugin = _FakeEntryPoint("plugin_shout", NodesTestShout)
    not_a_node = _FakeEntryPoint("not_a_node", object)
    a_function = _FakeEntryPoint("a_function", len)
    calls: list[dict[str, Any]] = []

    def fake_entry_points(**kwargs: Any) -> list[_FakeEntryPoint]:
        calls.append(kwargs)
        return [plugin, not_a_node, a_function] if kwargs.get("group") == "fm_lab.nodes" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    registry = NodeRegistry()
    assert calls == []  # loaded lazily
    assert registry.lookup("plugin_shout") is NodesTestShout
    assert calls == [{"group": "fm_lab.nodes"}]
    assert registry.lookup("not_a_node") is None
    assert registry.lookup("a_function") is None
    assert registry.names() == ["plugin_shout"]
    assert calls == [{"group": "fm_lab.nodes"}]  # once only
    assert plugin.loads == 1

    # validation and runs use the registry they are given
    wf = Workflow.from_dict({"id": "w", "nodes": {
        "s": {"type": "plugin_shout", "config": {"text": "hi"}}}})
    assert wf.issues(registry) == []
    store = fm_lab.Store(":memory:")
    try:
        result = fm_lab.run(wf, {}, store=store, registry=registry)
    finally:
        store.close()
    assert result.outputs == {"s": "HI"}


def test_registry_lookup_of_a_builtin_does_not_need_entry_points(monkeypatch):
    def broken_entry_points(**kwargs: Any) -> list[Any]:
        raise AssertionError("entry points should not be read for a registered type")

    registry = NodeRegistry()
    registry.register(NodesTestShout)
    monkeypatch.setattr(importlib.metadata, "entry_points", broken_entry_points)
    assert registry.lookup("nodes_test_shout") is NodesTestShout
