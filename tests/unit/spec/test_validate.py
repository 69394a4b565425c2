"""Validation reports every problem of a workflow at once, each at its location."""

from __future__ import annotations

import textwrap

import pytest

import fm_lab
from fm_lab.spec import ValidationIssue, Workflow, WorkflowValidationError


def issues_of(data: dict) -> list[ValidationIssue]:
    with pytest.raises(WorkflowValidationError) as info:
        Workflow.from_dict(data).validate()
    return info.value.issues


def located(issues: list[ValidationIssue]) -> set[tuple[str, str]]:
    return {(i.location, i.code) for i in issues}


def with_code(issues: list[ValidationIssue], code: str) -> list[ValidationIssue]:
    return [i for i in issues if i.code == code]


# One YAML document with every kind of problem. The line numbers matter for the duplicate key.
EVERYTHING_WRONG = textwrap.dedent(
    """\
    id: broken
    inputs:
      type: object
      properties:
        amount: {type: nope}
    state:
      type: object
      properties:
        count: {type: integer, minimum: zero}
    entry: [start]
    nodes:
      - id: start
        type: input
      - id: start
        type: output
      - id: mystery
        type: no_such_type
      - id: shape
        type: transform
        config: {expression: 5}
      - id: check
        type: branch
        config:
          routes:
            - {handle: yes_route, when: "{{ inputs.amount > 1 }}"}
      - id: ping
        type: template
        config: {template: "{{ nodes.pong.output }}"}
      - id: pong
        type: template
        config: {template: pong}
      - id: early
        type: template
        config: {template: "{{ nodes.late.output }} {{ nodes.ghost.output }}"}
      - id: late
        type: output
      - id: syntax
        type: template
        config: {template: "{{ oops "}
      - id: orphan
        type: output
        label: first
        label: second
    edges:
      - start -> mystery
      - start -> shape
      - start -> check
      - check.no_route -> ping
      - ping -> pong
      - pong -> ping
      - start -> early
      - early -> late
      - start -> syntax
      - start -> nowhere
      - ghost_source -> syntax
    """
)


def test_every_problem_is_reported_in_one_error(tmp_path):
    path = tmp_path / "broken.flow.yaml"
    path.write_text(EVERYTHING_WRONG, encoding="utf-8")
    with pytest.raises(WorkflowValidationError) as info:
        fm_lab.validate(path)
    issues = info.value.issues
    found = located(issues)
    expected = {
        ("inputs.properties.amount.type", "bad_schema"),
        ("state.properties.count.minimum", "bad_schema"),
        ("nodes[1].id", "duplicate_id"),
        ("nodes.mystery.type", "unknown_type"),
        ("nodes.shape.config.expression", "string_type"),
        ("edges[3].source_handle", "bad_handle"),
        ("edges[9].target", "dangling_edge"),
        ("edges[10].source", "dangling_edge"),
        ("edges", "cycle"),
        ("nodes.orphan", "unreachable"),
        ("nodes.early.config.template", "template_ref"),
        ("nodes.syntax.config.template", "template_syntax"),
    }
    assert expected <= found, f"missing: {expected - found}"
    # the duplicate 'label' key of node orphan (line 43) is reported with its line
    duplicate_keys = [i for i in with_code(issues, "duplicate_id") if "'label'" in i.message]
    assert len(duplicate_keys) == 1
    assert "43" in duplicate_keys[0].location
    # not upstream and unknown are two issues at the same place
    refs = [i.message for i in issues if i.location == "nodes.early.config.template"]
    assert any("'late'" in m and "not upstream" in m for m in refs)
    assert any("unknown node 'ghost'" in m for m in refs)


def test_every_semantic_problem_is_reported_in_one_error():
    """The same problems minus the duplicates (which stop at load time today)."""
    issues = issues_of({
        "id": "broken",
        "inputs": {"type": "object", "properties": {"amount": {"type": "nope"}}},
        "state": {"type": "object", "properties": {"count": {"type": "integer",
                                                              "minimum": "zero"}}},
        "entry": ["start"],
        "nodes": {
            "start": {"type": "input"},
            "mystery": {"type": "no_such_type"},
            "shape": {"type": "transform", "config": {"expression": 5}},
            "check": {"type": "branch", "config": {
                "routes": [{"handle": "yes_route", "when": "{{ inputs.amount > 1 }}"}]}},
            "ping": {"type": "template", "config": {"template": "{{ nodes.pong.output }}"}},
            "pong": {"type": "template", "config": {"template": "pong"}},
            "early": {"type": "template", "config": {
                "template": "{{ nodes.late.output }} {{ nodes.ghost.output }}"}},
            "late": {"type": "output"},
            "syntax": {"type": "template", "config": {"template": "{{ oops "}},
            "orphan": {"type": "output"},
        },
        "edges": ["start -> mystery", "start -> shape", "start -> check",
                  "check.no_route -> ping", "ping -> pong", "pong -> ping", "start -> early",
                  "early -> late", "start -> syntax", "start -> nowhere",
                  "ghost_source -> syntax"],
    })
    assert located(issues) == {
        ("inputs.properties.amount.type", "bad_schema"),
        ("state.properties.count.minimum", "bad_schema"),
        ("nodes.mystery.type", "unknown_type"),
        ("nodes.shape.config.expression", "string_type"),
        ("edges[3].source_handle", "bad_handle"),
        ("edges[9].target", "dangling_edge"),
        ("edges[10].source", "dangling_edge"),
        ("edges", "cycle"),
        ("nodes.orphan", "unreachable"),
        ("nodes.early.config.template", "template_ref"),
        ("nodes.syntax.config.template", "template_syntax"),
    }
    assert len(issues) == 12  # two template_ref issues share one location


# ---- one kind at a time ---------------------------------------------------------------------


def test_valid_workflow_passes(tmp_path):
    data = {
        "id": "ok",
        "inputs": {"type": "object", "properties": {"amount": {"type": "number"}},
                   "required": ["amount"]},
        "state": {"type": "object", "properties": {"seen": {"type": "integer", "default": 0}}},
        "nodes": {
            "start": {"type": "input"},
            "check": {"type": "branch", "config": {
                "routes": [{"handle": "big", "when": "{{ inputs.amount > 100 }}"}],
                "default": "small"}},
            "big": {"type": "template", "config": {"template": "{{ nodes.start.output }}"}},
            "small": {"type": "set_state", "config": {"values": {"seen": "{{ state.seen }}"}}},
            "join": {"type": "merge"},
            "out": {"type": "output", "config": {"value": "{{ nodes.join.output }}"}},
        },
        "edges": ["start -> check", "check.big -> big", "check.small -> small", "big -> join",
                  "small -> join", "join -> out"],
        "outputs": {"result": "{{ nodes.out.output }}"},
    }
    wf = Workflow.from_dict(data)
    assert wf.issues() == []
    assert wf.validate() is wf
    assert fm_lab.validate(data) == wf


def test_validate_a_yaml_file(tmp_path):
    path = tmp_path / "greet.flow.yaml"
    path.write_text(textwrap.dedent(
        """\
        id: greet
        inputs:
          type: object
          properties:
            name: {type: string}
        nodes:
          hello:
            type: template
            config: {template: "Hello {{ inputs.name }}"}
          out: {type: output}
        edges: [hello -> out]
        """
    ), encoding="utf-8")
    wf = fm_lab.validate(path)
    assert isinstance(wf, Workflow)
    assert list(wf.nodes) == ["hello", "out"]
    assert fm_lab.validate(str(path)) == wf

    bad = tmp_path / "bad.flow.yaml"
    bad.write_text("id: bad\nnodes:\n  a: {type: nope}\n", encoding="utf-8")
    with pytest.raises(WorkflowValidationError) as info:
        fm_lab.validate(bad)
    assert located(info.value.issues) == {("nodes.a.type", "unknown_type")}
    assert "nodes.a.type" in str(info.value)


def test_unknown_node_type_names_the_known_types():
    (issue,) = issues_of({"id": "w", "nodes": {"x": {"type": "teleport"}}})
    assert (issue.location, issue.code) == ("nodes.x.type", "unknown_type")
    assert "'teleport'" in issue.message
    assert "template" in issue.message and "branch" in issue.message


def test_config_is_checked_against_the_node_types_model():
    issues = issues_of({
        "id": "w",
        "nodes": {
            "t": {"type": "transform", "config": {"expression": ["not", "a", "string"]}},
            "m": {"type": "merge", "config": {"mode": "zip", "extra": 1}},
            "c": {"type": "code", "config": {}},
            "b": {"type": "branch", "config": {"routes": []}},
        },
        "edges": ["t -> m", "m -> c", "c -> b"],
    })
    assert located(issues) == {
        ("nodes.t.config.expression", "string_type"),
        ("nodes.m.config.mode", "literal_error"),
        ("nodes.m.config.extra", "extra_forbidden"),
        ("nodes.c.config.function", "missing"),
        ("nodes.b.config.routes", "too_short"),
    }


def test_nested_config_errors_are_located_with_indexes():
    (issue,) = issues_of({"id": "w", "nodes": {"b": {"type": "branch", "config": {
        "routes": [{"handle": "a", "when": True}, {"when": True}]}}}})
    assert (issue.location, issue.code) == ("nodes.b.config.routes[1].handle", "missing")


def test_templated_config_values_are_checked_at_run_time_not_before():
    templated = Workflow.from_dict({
        "id": "w",
        "inputs": {"type": "object", "properties": {"args": {"type": "object"},
                                                    "flag": {"type": "boolean"}}},
        "nodes": {"c": {"type": "code", "config": {
            "function": "json:dumps", "args": "{{ inputs.args }}", "thread": "{{ inputs.flag }}"}}},
    })
    assert templated.issues() == []

    literal = Workflow.from_dict({
        "id": "w",
        "nodes": {"c": {"type": "code", "config": {
            "function": "json:dumps", "args": 5, "thread": [True]}}},
    })
    with pytest.raises(WorkflowValidationError) as info:
        literal.validate()
    assert located(info.value.issues) == {
        ("nodes.c.config.args", "dict_type"),
        ("nodes.c.config.thread", "bool_type"),
    }


def test_dangling_edges_and_entries():
    issues = issues_of({
        "id": "w", "entry": ["a", "zz"],
        "nodes": {"a": {"type": "input"}, "b": {"type": "output"}},
        "edges": ["a -> b", "a -> c", "x -> b", "x -> y"],
    })
    assert located(issues) == {
        ("edges[1].target", "dangling_edge"),
        ("edges[2].source", "dangling_edge"),
        ("edges[3].source", "dangling_edge"),
        ("edges[3].target", "dangling_edge"),
        ("entry[1]", "dangling_edge"),
    }
    assert any("'c'" in i.message for i in issues if i.location == "edges[1].target")


def test_duplicate_node_id_in_a_list():
    with pytest.raises(WorkflowValidationError) as info:
        Workflow.from_dict({"id": "w", "nodes": [
            {"id": "a", "type": "input"}, {"id": "b", "type": "output"},
            {"id": "a", "type": "output"}, {"type": "output"}]})
    assert located(info.value.issues) == {("nodes[2].id", "duplicate_id"),
                                          ("nodes[3].id", "invalid")}
    assert "'a'" in info.value.issues[0].message


def test_duplicate_key_in_yaml_is_reported_with_its_line():
    text = textwrap.dedent(
        """\
        id: w
        nodes:
          a: {type: input}
          b: {type: output}
          a: {type: output}
        edges: [a -> b]
        """
    )
    with pytest.raises(WorkflowValidationError) as info:
        Workflow.from_yaml(text)
    (issue,) = info.value.issues
    assert issue.code == "duplicate_id"
    assert issue.location == "nodes.a"
    assert "'a'" in issue.message and "line 5" in issue.message


def test_unreachable_node_with_explicit_entry():
    issues = issues_of({
        "id": "w", "entry": ["a"],
        "nodes": {"a": {"type": "input"}, "b": {"type": "output"},
                  "island": {"type": "input"}, "island_out": {"type": "output"}},
        "edges": ["a -> b", "island -> island_out"],
    })
    assert located(issues) == {("nodes.island", "unreachable"),
                               ("nodes.island_out", "unreachable")}
    # without an explicit entry, every node without inputs is a start
    data = {"id": "w", "nodes": {"a": {"type": "input"}, "b": {"type": "output"},
                                 "island": {"type": "input"}},
            "edges": ["a -> b"]}
    assert Workflow.from_dict(data).issues() == []


def test_cycle_is_reported_once_with_its_nodes_in_order():
    issues = issues_of({
        "id": "w",
        "nodes": {"a": {"type": "input"}, "b": {"type": "output"}, "c": {"type": "output"},
                  "d": {"type": "output"}, "e": {"type": "output"}},
        "edges": ["a -> b", "b -> c", "c -> d", "d -> b", "d -> e"],
    })
    (cycle,) = with_code(issues, "cycle")
    assert cycle.location == "edges"
    assert cycle.message.startswith("cycle b -> c -> d -> b (")  # e only follows the cycle
    assert located(issues) == {("edges", "cycle")}


def test_each_cycle_is_named_and_a_knot_of_cycles_lists_its_nodes():
    issues = issues_of({
        "id": "w",
        "nodes": {n: {"type": "output"} for n in "abcdexy"},
        "edges": ["a -> b", "b -> c", "c -> a", "b -> d", "d -> b", "c -> e",
                  "e -> x", "x -> y", "y -> x"],
    })
    messages = sorted(i.message.split(" (")[0] for i in with_code(issues, "cycle"))
    assert messages == ["cycle a -> b -> c -> a; a, b, c, d are all on cycles",
                        "cycle x -> y -> x"]


def test_self_loop_is_a_cycle():
    issues = issues_of({"id": "w", "nodes": {"a": {"type": "input"}}, "edges": ["a -> a"]})
    assert located(issues) == {("edges[0]", "cycle")}


def test_templates_must_refer_to_upstream_nodes():
    issues = issues_of({
        "id": "w",
        "nodes": {
            "a": {"type": "input"},
            "b": {"type": "template", "config": {"template": "{{ nodes.a.output }}"}},
            "side": {"type": "template", "config": {"template": "{{ nodes['b'].output }}"}},
            "c": {"type": "output", "config": {"value": ["{{ nodes.ghost.output }}"]}},
        },
        "edges": ["a -> b", "a -> side", "b -> c"],
        "outputs": {"x": "{{ nodes.phantom.output }}", "ok": "{{ nodes.side.output }}"},
    })
    assert [(i.location, i.code) for i in issues] == [
        ("nodes.side.config.template", "template_ref"),
        ("nodes.c.config.value[0]", "template_ref"),
        ("outputs.x", "template_ref"),
    ]
    assert "'b'" in issues[0].message and "not upstream" in issues[0].message
    assert "unknown node 'ghost'" in issues[1].message
    assert "unknown node 'phantom'" in issues[2].message


def test_edge_conditions_see_the_source_and_its_ancestors():
    base = {
        "id": "w",
        "nodes": {"a": {"type": "input"}, "b": {"type": "template", "config": {"template": "x"}},
                  "c": {"type": "output"}, "d": {"type": "output"}},
    }
    ok = dict(base, edges=["a -> b", "a -> d",
                           {"source": "b", "target": "c",
                            "condition": "{{ nodes.a.output and nodes.b.output }}"}])
    assert Workflow.from_dict(ok).issues() == []
    bad = dict(base, edges=["a -> b", "a -> d",
                            {"source": "b", "target": "c", "condition": "{{ nodes.d.output }}"}])
    assert located(issues_of(bad)) == {("edges[2].condition", "template_ref")}


def test_templates_must_use_declared_inputs_and_state():
    issues = issues_of({
        "id": "w",
        "inputs": {"type": "object", "properties": {"name": {"type": "string"}}},
        "state": {"type": "object", "properties": {"count": {"type": "integer"}}},
        "nodes": {"t": {"type": "template", "config": {
            "template": "{{ inputs.name }} {{ inputs.nmae }} {{ state.count }} {{ state.cnt }}"}}},
    })
    assert [i.location for i in issues] == ["nodes.t.config.template"] * 2
    messages = " ".join(i.message for i in issues)
    assert "inputs.nmae" in messages and "state.cnt" in messages


def test_bad_json_schemas_for_inputs_and_state():
    issues = issues_of({
        "id": "w",
        "inputs": {"type": "object", "required": "name"},
        "state": {"type": "array"},
        "nodes": {"a": {"type": "input"}},
    })
    assert located(issues) == {("inputs.required", "bad_schema"),
                               ("state.type", "bad_schema")}


def test_bad_route_handles():
    issues = issues_of({
        "id": "w",
        "nodes": {"a": {"type": "input"},
                  "b": {"type": "branch", "config": {"routes": [{"handle": "yes", "when": True}],
                                                     "default": "no"}},
                  "c": {"type": "output"}, "d": {"type": "output"}, "e": {"type": "output"}},
        "edges": ["a -> b", "b.yes -> c", "b.no -> d", "b.maybe -> e", "a.yes -> e"],
    })
    assert located(issues) == {("edges[3].source_handle", "bad_handle"),
                               ("edges[4].source_handle", "bad_handle")}
    by_location = {i.location: i.message for i in issues}
    assert "'maybe'" in by_location["edges[3].source_handle"]
    assert "yes, no" in by_location["edges[3].source_handle"]
    assert "no named routes" in by_location["edges[4].source_handle"]


def test_template_syntax_errors():
    issues = issues_of({
        "id": "w",
        "nodes": {"t": {"type": "template", "config": {"template": "{% if x %}unclosed"}},
                  "u": {"type": "output", "config": {"value": {"deep": ["ok", "{{ 1 + }}"]}}}},
        "edges": ["t -> u"],
    })
    assert located(issues) == {("nodes.t.config.template", "template_syntax"),
                               ("nodes.u.config.value.deep[1]", "template_syntax")}


def test_bad_node_ids_and_empty_workflows():
    issues = issues_of({"id": "w", "nodes": {"1st": {"type": "input"}}})
    assert located(issues) == {("nodes.1st", "bad_id")}
    assert located(issues_of({"id": "w", "nodes": {}})) == {("nodes", "empty")}


def test_the_engine_never_starts_an_invalid_workflow():
    store = fm_lab.Store(":memory:")
    try:
        with pytest.raises(WorkflowValidationError):
            fm_lab.run({"id": "w", "nodes": {"a": {"type": "nope"}}}, {}, store=store)
        assert len(fm_lab.runs(store=store)) == 0
    finally:
        store.close()


def test_issues_render_in_the_message_and_html():
    err = WorkflowValidationError([ValidationIssue("nodes.a.type", "unknown <x>"),
                                   ValidationIssue("edges[0].target", "dangling")])
    assert str(err).splitlines() == ["workflow is invalid (2 problems):",
                                     "  - nodes.a.type: unknown <x>",
                                     "  - edges[0].target: dangling"]
    assert "unknown &lt;x&gt;" in err._repr_html_()
