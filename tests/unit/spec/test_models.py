"""The workflow spec models: canonical JSON, YAML, friendly forms, schema, hash, builder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jsonschema
import pytest

from fm_lab.spec import Edge, Node, Workflow, WorkflowBuilder, WorkflowValidationError

# Every field of Workflow, Node and Edge set to a non-default value.
FULL: dict = {
    "id": "full",
    "name": "Full workflow",
    "version": 3,
    "description": "Every field set, with unicode: déjà vu ✓",
    "inputs": {
        "type": "object",
        "properties": {"amount": {"type": "number", "default": 1}},
        "required": ["amount"],
    },
    "state": {"type": "object", "properties": {"count": {"type": "integer", "default": 0}}},
    "nodes": {
        "start": {
            "type": "input",
            "config": {"fields": ["amount"]},
            "label": "Start",
            "description": "reads the inputs",
            "position": {"x": 10.0, "y": -2.5},
            "retry": {"max_attempts": 3, "backoff_s": 0.1, "retry_on": ["timeout"]},
            "timeout_s": 1.5,
            "cache": False,
        },
        "check": {
            "type": "branch",
            "config": {
                "routes": [{"handle": "big", "when": "{{ inputs.amount > 100 }}"}],
                "default": "small",
            },
        },
        "big": {"type": "template", "config": {"template": "big {{ inputs.amount }}"}},
        "small": {"type": "template", "config": {"template": "small"}},
        "out": {"type": "output", "config": {"name": "result"}},
    },
    "edges": [
        {"source": "start", "target": "check"},
        {"source": "check", "target": "big", "source_handle": "big"},
        {"source": "check", "target": "small", "source_handle": "small",
         "condition": "{{ inputs.amount >= 0 }}"},
        {"source": "big", "target": "out"},
        {"source": "small", "target": "out"},
    ],
    "entry": ["start"],
    "outputs": {"answer": "{{ nodes.out.output }}"},
    "max_concurrency": 4,
}


@pytest.fixture
def full() -> Workflow:
    return Workflow.from_dict(FULL)


# ---- round trips ------------------------------------------------------------------------


def test_to_dict_is_the_canonical_input(full: Workflow):
    assert full.to_dict() == FULL
    # key order of the canonical form follows the model's field order
    assert list(full.to_dict()) == list(FULL)
    assert list(full.to_dict()["nodes"]) == list(FULL["nodes"])


def test_from_dict_builds_typed_objects(full: Workflow):
    start = full.nodes["start"]
    assert isinstance(start, Node)
    assert start.id == "start"
    assert start.retry is not None and start.retry.max_attempts == 3
    assert start.retry.retry_on == ["timeout"]
    assert start.position is not None and (start.position.x, start.position.y) == (10.0, -2.5)
    assert start.cache is False
    assert full.edges[1] == Edge(source="check", target="big", source_handle="big")
    assert full.edges[2].condition == "{{ inputs.amount >= 0 }}"


def test_dict_round_trip(full: Workflow):
    again = Workflow.from_dict(full.to_dict())
    assert again == full
    assert again.to_dict() == full.to_dict()


def test_json_round_trip_exact_objects_and_text(full: Workflow):
    text = full.to_json()
    again = Workflow.from_json(text)
    assert again == full
    assert again.to_json() == text
    assert json.loads(text) == FULL
    assert "déjà vu ✓" in text  # not escaped: the canonical text is readable
    compact = full.to_json(indent=None)
    assert "\n" not in compact
    assert Workflow.from_json(compact) == full


def test_yaml_round_trip_exact_objects_and_text(full: Workflow):
    text = full.to_yaml()
    again = Workflow.from_yaml(text)
    assert again == full
    assert again.to_yaml() == text
    assert again.to_json() == full.to_json()


def test_yaml_and_json_documents_give_the_same_workflow():
    yaml_text = textwrap.dedent(
        """\
        id: greet
        inputs:
          type: object
          properties:
            name: {type: string}
        nodes:
          hello:
            type: template
            config:
              template: "Hello {{ inputs.name }}"
          out:
            type: output
        edges:
          - hello -> out
        """
    )
    json_text = json.dumps({
        "id": "greet",
        "inputs": {"type": "object", "properties": {"name": {"type": "string"}}},
        "nodes": {
            "hello": {"type": "template", "config": {"template": "Hello {{ inputs.name }}"}},
            "out": {"type": "output"},
        },
        "edges": [{"source": "hello", "target": "out"}],
    })
    from_yaml = Workflow.from_yaml(yaml_text)
    from_json = Workflow.from_json(json_text)
    assert from_yaml == from_json
    assert from_yaml.to_json() == from_json.to_json()


def test_defaults_are_left_out_of_the_canonical_form():
    wf = Workflow.from_dict({
        "id": "d", "version": 1, "inputs": {}, "entry": [],
        "nodes": {"a": {"type": "input", "config": {}, "cache": True, "label": None}},
        "edges": [],
    })
    assert wf.to_dict() == {"id": "d", "nodes": {"a": {"type": "input"}}}
    assert wf.to_json(indent=None) == '{"id": "d", "nodes": {"a": {"type": "input"}}}'


def test_from_file_json_and_yaml(tmp_path, full: Workflow):
    as_json = tmp_path / "wf.flow.json"
    as_json.write_text(full.to_json(), encoding="utf-8")
    as_yaml = tmp_path / "wf.flow.yaml"
    as_yaml.write_text(full.to_yaml(), encoding="utf-8")
    as_yml = tmp_path / "wf.yml"
    as_yml.write_text(full.to_yaml(), encoding="utf-8")
    assert Workflow.from_file(as_json) == full
    assert Workflow.from_file(str(as_yaml)) == full
    assert Workflow.from_file(as_yml) == full


def test_from_file_missing_names_the_path(tmp_path):
    missing = tmp_path / "nope.flow.yaml"
    with pytest.raises(FileNotFoundError, match=r"nope\.flow\.yaml"):
        Workflow.from_file(missing)


def test_not_json_and_not_a_mapping_are_located_issues():
    with pytest.raises(WorkflowValidationError) as info:
        Workflow.from_json("{not json")
    assert [i.location for i in info.value.issues] == ["$"]
    with pytest.raises(WorkflowValidationError) as info:
        Workflow.from_yaml("- a\n- b\n")
    assert [i.location for i in info.value.issues] == ["$"]


def test_model_errors_are_located():
    with pytest.raises(WorkflowValidationError) as info:
        Workflow.from_dict({
            "id": "w", "version": 0,
            "nodes": {"a": {"type": "input", "bogus": 1, "timeout_s": -1}},
            "edges": [{"source": "a"}],
        })
    locations = {i.location for i in info.value.issues}
    assert locations == {"version", "nodes.a.bogus", "nodes.a.timeout_s", "edges[0].target"}


# ---- friendly forms ---------------------------------------------------------------------


def test_nodes_as_a_list_equal_nodes_keyed_by_id():
    as_list = Workflow.from_dict({
        "id": "w",
        "nodes": [
            {"id": "a", "type": "input"},
            {"id": "b", "type": "template", "config": {"template": "{{ nodes.a.output }}"}},
        ],
        "edges": [{"source": "a", "target": "b"}],
    })
    as_dict = Workflow.from_dict({
        "id": "w",
        "nodes": {
            "a": {"type": "input"},
            "b": {"type": "template", "config": {"template": "{{ nodes.a.output }}"}},
        },
        "edges": [{"source": "a", "target": "b"}],
    })
    assert as_list == as_dict
    assert list(as_list.nodes) == ["a", "b"]
    assert as_list.to_json() == as_dict.to_json()
    # the canonical form always keys nodes by id
    assert as_list.to_dict()["nodes"] == {
        "a": {"type": "input"},
        "b": {"type": "template", "config": {"template": "{{ nodes.a.output }}"}},
    }


def test_nodes_as_a_list_in_yaml():
    wf = Workflow.from_yaml(textwrap.dedent(
        """\
        id: w
        nodes:
          - id: a
            type: input
          - {id: b, type: output}
        edges: [a -> b]
        """
    ))
    assert list(wf.nodes) == ["a", "b"]
    assert wf.nodes["b"] == Node(id="b", type="output")
    assert wf.edges == [Edge(source="a", target="b")]


def test_edge_shorthand_strings():
    wf = Workflow.from_dict({
        "id": "w",
        "nodes": {
            "a": {"type": "input"},
            "b": {"type": "branch", "config": {"routes": [{"handle": "yes", "when": True}],
                                               "default": "no-way"}},
            "c": {"type": "output"},
            "d": {"type": "output"},
        },
        "edges": ["a -> b", "b.yes -> c", "  b.no-way->d  ",
                  {"source": "a", "target": "d", "condition": "{{ true }}"}],
    })
    assert wf.edges == [
        Edge(source="a", target="b"),
        Edge(source="b", target="c", source_handle="yes"),
        Edge(source="b", target="d", source_handle="no-way"),
        Edge(source="a", target="d", condition="{{ true }}"),
    ]
    assert wf.to_dict()["edges"][:2] == [
        {"source": "a", "target": "b"},
        {"source": "b", "target": "c", "source_handle": "yes"},
    ]
    wf.validate()


def test_bad_edge_strings_are_located():
    with pytest.raises(WorkflowValidationError) as info:
        Workflow.from_dict({
            "id": "w", "nodes": {"a": {"type": "input"}},
            "edges": ["a -> a2", "a => b", "a.b.c -> d", "-> b"],
        })
    locations = [i.location for i in info.value.issues]
    # the unreadable strings first, then what validation finds in the rest (a2 is no node)
    assert locations == ["edges[1]", "edges[2]", "edges[3]", "edges[0].target"]
    assert "a => b" in info.value.issues[0].message


def test_node_key_and_id_must_agree():
    with pytest.raises(WorkflowValidationError) as info:
        Workflow.from_dict({"id": "w", "nodes": {"a": {"id": "b", "type": "input"}}})
    assert [i.location for i in info.value.issues] == ["nodes.a.id"]


# ---- JSON schema ------------------------------------------------------------------------


def test_json_schema_is_a_valid_json_schema_with_nodes_and_edges():
    schema = Workflow.json_schema()
    jsonschema.validators.validator_for(schema).check_schema(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {"id", "nodes", "edges", "inputs", "state", "entry", "outputs"} <= set(
        schema["properties"])
    assert schema["required"] == ["id"]
    # nodes map ids to Node objects, edges are a list of Edge objects
    assert schema["properties"]["nodes"]["type"] == "object"
    assert schema["properties"]["edges"]["type"] == "array"
    defs = schema["$defs"]
    assert {"source", "target", "source_handle", "condition"} <= set(
        defs["Edge"]["properties"])
    assert {"type", "config"} <= set(defs["Node"]["properties"])


def test_json_schema_rejects_a_broken_document():
    validator = jsonschema.Draft202012Validator(Workflow.json_schema())
    assert not validator.is_valid({"id": "w", "edges": [{"source": "a"}]})
    assert not validator.is_valid({"nodes": {}})
    assert not validator.is_valid({"id": "w", "bogus": 1})


def test_canonical_documents_conform_to_the_json_schema(full: Workflow):
    # The schema is for editors and the widget, which edit the canonical JSON (nodes keyed by
    # id, without a repeated "id" inside each node).
    validator = jsonschema.Draft202012Validator(Workflow.json_schema())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(
        full.to_dict())]
    assert errors == []


# ---- content hash -----------------------------------------------------------------------


def test_content_hash_is_stable_across_forms(full: Workflow):
    digest = full.content_hash()
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert full.content_hash() == digest
    assert Workflow.from_json(full.to_json()).content_hash() == digest
    assert Workflow.from_yaml(full.to_yaml()).content_hash() == digest
    listed = dict(FULL, nodes=[{"id": k, **v} for k, v in FULL["nodes"].items()])
    assert Workflow.from_dict(listed).content_hash() == digest
    # the order in which nodes are written does not change what the workflow is
    reordered = dict(FULL, nodes=dict(reversed(list(FULL["nodes"].items()))))
    assert Workflow.from_dict(reordered).content_hash() == digest


def test_content_hash_is_the_same_in_another_process(full: Workflow):
    code = ("import sys; from fm_lab.spec import Workflow; "
            "print(Workflow.from_json(sys.stdin.read()).content_hash())")
    digests = set()
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", code], input=full.to_json(), capture_output=True,
            text=True, check=True, timeout=60, env={**os.environ, "PYTHONHASHSEED": seed})
        digests.add(done.stdout.strip())
    assert digests == {full.content_hash()}


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(version=4),
        lambda d: d.update(name="other"),
        lambda d: d["nodes"]["small"]["config"].update(template="tiny"),
        lambda d: d["nodes"]["start"].update(label="Begin"),
        lambda d: d["edges"].pop(),
        lambda d: d["edges"][2].pop("condition"),
        lambda d: d["inputs"]["properties"]["amount"].update(default=2),
    ],
)
def test_content_hash_changes_with_content(change):
    data = json.loads(json.dumps(FULL))
    change(data)
    assert Workflow.from_dict(data).content_hash() != Workflow.from_dict(FULL).content_hash()


# ---- builder ----------------------------------------------------------------------------

BUILDER_YAML = textwrap.dedent(
    """\
    id: flow
    name: Routing
    inputs:
      type: object
      properties:
        n: {type: integer}
    nodes:
      start: {type: input}
      check:
        type: branch
        config:
          routes:
            - {handle: big, when: "{{ inputs.n > 10 }}"}
          default: small
      big:
        type: template
        config: {template: "big {{ inputs.n }}"}
      small:
        type: template
        config: {template: small}
        label: Small
        retry: {max_attempts: 2}
        timeout_s: 5
        cache: false
      join:
        type: merge
        config: {mode: first}
      out:
        type: output
    edges:
      - start -> check
      - check.big -> big
      - big -> join
      - check.small -> small
      - small -> join
      - join -> out
      - source: start
        target: out
        condition: "{{ inputs.n > 0 }}"
    """
)


def test_builder_produces_the_same_workflow_as_yaml():
    b = WorkflowBuilder("flow", name="Routing",
                        inputs={"type": "object", "properties": {"n": {"type": "integer"}}})
    start = b.node("start", "input")
    check = b.node("check", "branch", routes=[{"handle": "big", "when": "{{ inputs.n > 10 }}"}],
                   default="small")
    big = b.node("big", "template", template="big {{ inputs.n }}")
    small = b.node("small", "template", template="small", label="Small",
                   retry={"max_attempts": 2}, timeout_s=5, cache=False)
    join = b.node("join", "merge", mode="first")
    out = b.node("out", "output")
    start >> check
    check.route("big") >> big >> join
    check.route("small") >> small >> join
    join >> out
    b.edge("start", "out", condition="{{ inputs.n > 0 }}")
    built = b.build()

    from_yaml = Workflow.from_yaml(BUILDER_YAML)
    assert built == from_yaml
    assert built.to_json() == from_yaml.to_json()
    assert built.content_hash() == from_yaml.content_hash()


def test_builder_fan_out_to_a_list():
    b = WorkflowBuilder("fan")
    a = b.node("a", "input")
    x = b.node("x", "output")
    y = b.node("y", "output")
    returned = a >> [x, y]
    assert returned == [x, y]
    assert b.build().edges == [Edge(source="a", target="x"), Edge(source="a", target="y")]


def test_builder_validates_unless_asked_not_to():
    b = WorkflowBuilder("bad")
    a = b.node("a", "no_such_type")
    a >> b.node("b", "output")
    with pytest.raises(WorkflowValidationError) as info:
        b.build()
    assert [i.location for i in info.value.issues] == ["nodes.a.type"]
    unchecked = b.build(validate=False)
    assert unchecked.nodes["a"].type == "no_such_type"
