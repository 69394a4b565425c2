"""Bounded parsing, JSON-only run inputs and complete validation reports, through the API."""

from __future__ import annotations

import pytest

import fm_lab
from fm_lab.spec import Workflow, WorkflowValidationError, limits
from fm_lab.spec.errors import DocumentError

STORES = ("duckdb", "postgres")  # the tests taking ``store`` run on both

FLOW = {
    "id": "inputs",
    "inputs": {"type": "object", "properties": {"x": {}}},
    "nodes": {"a": {"type": "template", "config": {"template": "{{ inputs.x }}"}}},
}


class Thing:
    pass


def _loop() -> list:
    items: list = [1]
    items.append(items)
    return items


@pytest.mark.parametrize(("value", "where", "phrase"), [
    ({1, 2}, "inputs.x", "a set is not a JSON value"),
    (b"raw", "inputs.x", "a bytes is not a JSON value"),
    (Thing(), "inputs.x", "a Thing is not a JSON value"),
    ({"a": [1, {2: "b"}]}, "inputs.x.a[1]", "key 2 is a int"),
    (_loop(), "inputs.x[1]", "refers to itself"),
])
def test_inputs_that_are_not_json_are_refused_before_anything_is_stored(store, value,
                                                                        where, phrase):
    with pytest.raises(WorkflowValidationError) as caught:
        fm_lab.run(FLOW, {"x": value}, store=store)
    issue = caught.value.issues[0]
    assert (issue.location, issue.code) == (where, "not_json")
    assert phrase in issue.message
    assert store.runs().empty
    journals = getattr(store, "journal_dir", None)  # a DuckDB store's journal files
    assert journals is None or not list(journals.glob("*.journal"))


def test_inputs_nested_too_deep_are_refused(tmp_path):
    deep: list = []
    for _ in range(limits.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(WorkflowValidationError, match="nested deeper than"):
        fm_lab.run(FLOW, {"x": deep}, store=fm_lab.Store(":memory:"))


def test_json_inputs_including_tuples_run(store):
    run = fm_lab.run(FLOW, {"x": {"t": (1, "a"), "n": None, "f": 1.5}}, store=store)
    assert run.status == "succeeded"


def test_a_missing_id_is_reported_with_every_other_problem():
    with pytest.raises(WorkflowValidationError) as caught:
        Workflow.from_yaml("name: [not, a, string]\nextra: 1\nnodes:\n  a: {type: nope}\n"
                           "  b: {type: template, label: 3, config: {template: hi}}\n"
                           "edges: [a -> c]\n")
    locations = {issue.location for issue in caught.value.issues}
    assert {"id", "name", "extra", "nodes.b.label", "nodes.a.type",
            "edges[0].target"} <= locations


def test_a_missing_required_input_is_reported_once():
    flow = {**FLOW, "inputs": {"type": "object", "required": ["x", "y", "z"]}}
    with pytest.raises(WorkflowValidationError) as caught:
        fm_lab.run(flow, {"y": 1}, store=fm_lab.Store(":memory:"))
    assert [i.location for i in caught.value.issues] == ["inputs.x", "inputs.z"]


def test_depth_limit_is_a_setting(monkeypatch):
    monkeypatch.setattr(limits, "MAX_DEPTH", 7)
    # document, nodes, a, config and three lists: 7 levels
    ok = "id: d\nnodes:\n  a: {type: template, config: {template: [[[1]]]}}\n"
    assert Workflow.from_yaml(ok).id == "d"
    with pytest.raises(DocumentError, match="nested deeper than 7 levels"):
        Workflow.from_yaml(ok.replace("[[[1]]]", "[[[[1]]]]"))
    with pytest.raises(DocumentError, match="nested deeper than 7 levels"):
        Workflow.from_json('{"id": "d", "nodes": {"a": {"config": [[[[[1]]]]]}}}')


def test_size_limit_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_DOCUMENT_BYTES", 100)
    path = tmp_path / "big.yaml"
    path.write_text("id: big\n" + "# padding\n" * 20)
    with pytest.raises(DocumentError) as caught:
        Workflow.from_file(path)
    assert str(caught.value) == f"{path}: is larger than 100 bytes"


def test_utf8_with_a_bom_is_read(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfid: bom\nnodes:\n  a: {type: template, config: {template: x}}")
    assert Workflow.from_file(path).id == "bom"


@pytest.mark.parametrize(("content", "phrase"), [
    ("id: x\n  bad: : yaml\n", "not valid YAML: mapping values are not allowed here (line 2"),
    ("id: \x07\n", "not valid YAML"),
    ("a: &a [*a]\n", "recursive document"),
])
def test_parse_errors_are_one_line_naming_the_file(tmp_path, content, phrase):
    path = tmp_path / "w.yaml"
    path.write_text(content)
    with pytest.raises(DocumentError) as caught:
        Workflow.from_file(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert phrase in str(caught.value) and "\n" not in str(caught.value)


def test_a_directory_is_not_a_workflow(tmp_path):
    with pytest.raises(DocumentError, match="is a directory, not a workflow file"):
        Workflow.from_file(tmp_path)
