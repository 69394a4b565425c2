"""Property-based tests over workflow documents: valid ones, mutated ones (keys removed, added,
retyped, nested), random text and bytes, alias bombs and deep nesting. Each must either be
rejected with a :class:`WorkflowValidationError` (a :class:`DocumentError` when it cannot be
read at all) or run; no other exception may escape."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fm_lab
from fm_lab.spec import Workflow, WorkflowValidationError, limits
from fm_lab.spec.errors import DocumentError
from fm_lab.spec.io import decode_document
from fm_lab.spec.yaml_io import safe_load

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

INPUTS = {"type": "object", "properties": {"name": {"type": "string", "default": "x"}}}
VALID: list[dict[str, Any]] = [
    {"id": "one", "nodes": {"a": {"type": "template", "config": {"template": "hi"}}}},
    {
        "id": "chain",
        "inputs": INPUTS,
        "nodes": {
            "start": {"type": "input"},
            "greet": {"type": "template", "config": {"template": "hi {{ inputs.name }}"}},
            "pick": {"type": "transform", "config": {"expression": "inputs.name"}},
            "join": {"type": "merge", "config": {"mode": "list"}},
            "out": {"type": "output", "config": {"value": "{{ nodes.join.output }}"}},
        },
        "edges": ["start -> greet", "start -> pick", "greet -> join", "pick -> join",
                  "join -> out"],
    },
    {
        "id": "listed",
        "name": "Nodes as a list",
        "version": 2,
        "max_concurrency": 2,
        "nodes": [
            {"id": "a", "type": "template", "label": "A", "config": {"template": "{{ 1 + 2 }}"}},
            {"id": "b", "type": "log", "config": {"message": "done", "data": [1, {"x": None}]}},
        ],
        "edges": [{"source": "a", "target": "b"}],
        "outputs": {"sum": "{{ nodes.a.output }}"},
    },
]
SAFE_TYPES = ["template", "transform", "input", "output", "merge", "log", "no_such_type"]
KEYS = st.sampled_from(["id", "type", "config", "nodes", "edges", "inputs", "state", "entry",
                        "outputs", "label", "template", "expression", "source", "target",
                        "name", "version", "properties", "mode", "x"])
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
SCALARS = (st.none() | st.booleans() | st.integers(-10**6, 10**6)
           | st.floats(allow_nan=False, allow_infinity=False) | TEXT | st.sampled_from(SAFE_TYPES))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(KEYS | TEXT, inner, max_size=3), max_leaves=8)


def _slots(value: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) pair in a document, so a mutation can pick one."""
    stack = [value]
    while stack:
        item = stack.pop()
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in list(pairs):
            yield item, key
            if isinstance(child, dict | list):
                stack.append(child)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 4))):
        slots = list(_slots(doc))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["remove", "retype", "add", "nest"]))
        if action == "remove":
            del container[key]
        elif action == "retype":
            container[key] = draw(JSON)
        elif action == "nest":
            container[key] = draw(st.sampled_from([[container[key]], {"x": container[key]}]))
        elif isinstance(container[key], dict):
            container[key][draw(KEYS)] = draw(JSON)
        elif isinstance(container, dict):
            container[draw(KEYS)] = draw(JSON)
        else:
            container.append(draw(JSON))
    return doc


def _load(doc: dict[str, Any], form: str) -> Workflow:
    if form == "yaml":
        return Workflow.from_yaml(yaml.safe_dump(doc, allow_unicode=True))
    if form == "json":
        return Workflow.from_json(json.dumps(doc))
    return Workflow.from_dict(doc)


def _rejected_or_runs(load: Any) -> None:
    try:
        workflow = load()
        run = fm_lab.run(workflow, {}, store=fm_lab.Store(":memory:"), progress=False)
    except WorkflowValidationError as exc:
        assert exc.issues, "a rejection names at least one problem"
        return
    assert run.status in ("succeeded", "failed")


@pytest.mark.parametrize("form", ["yaml", "json", "dict"])
@pytest.mark.parametrize("doc", VALID, ids=[d["id"] for d in VALID])
def test_valid_workflows_run(doc, form):
    run = fm_lab.run(_load(doc, form), {}, store=fm_lab.Store(":memory:"), progress=False)
    assert run.status == "succeeded"


@FUZZ
@given(doc=mutated(), form=st.sampled_from(["yaml", "json", "dict"]))
def test_mutated_workflows_are_rejected_or_run(doc, form):
    _rejected_or_runs(lambda: _load(doc, form))


@FUZZ
@given(text=st.text(max_size=200))
def test_random_text_is_rejected_or_runs(text):
    _rejected_or_runs(lambda: Workflow.from_yaml(text))
    _rejected_or_runs(lambda: Workflow.from_json(text))


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_are_rejected_or_run(data):
    _rejected_or_runs(lambda: Workflow.from_yaml(decode_document(data)))


def alias_bomb(levels: int, width: int) -> str:
    """``width ** levels`` leaves from ``levels`` anchors of ``width`` aliases each."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * width) + "]"
              for n in range(1, levels)]
    return "\n".join([*lines, "id: bomb", "nodes:", "  x:", "    type: template",
                      "    config:", "      template: hi", f"      junk: *a{levels - 1}", ""])


@FUZZ
@given(levels=st.integers(2, 14), width=st.integers(2, 14))
def test_alias_bombs_are_refused_before_they_expand(levels, width):
    sizes = [1 + width]  # each anchor's list, expanded: itself and its items
    for _ in range(1, levels):
        sizes.append(1 + width * sizes[-1])
    expanded = sum(sizes) + sizes[-1]  # every anchor, and the last one again as "junk"
    text = alias_bomb(levels, width)
    if expanded > limits.MAX_YAML_NODES + 100:  # the document's own few nodes aside
        with pytest.raises(DocumentError) as caught:
            Workflow.from_yaml(text)
        assert caught.value.issues[0].code == "too_big"
    elif expanded > limits.MAX_YAML_NODES - 100:
        return
    elif expanded < 5_000:
        _rejected_or_runs(lambda: Workflow.from_yaml(text))
    else:  # big but allowed: it parses (running it is a benchmark's business)
        assert safe_load(text)["id"] == "bomb"


def _nested(depth: int, style: str) -> str:
    if style == "flow":
        return "id: deep\nnodes: " + "[" * depth + "]" * depth + "\n"
    if style == "block":
        return "id: deep\nnodes:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, depth)) \
            + "  " * depth + "leaf: 1\n"
    return '{"id": "deep", "nodes": ' + "[" * depth + "]" * depth + "}"


@settings(max_examples=20, deadline=None, database=None)
@given(extra=st.integers(1, 300), style=st.sampled_from(["flow", "block", "json"]))
def test_documents_nested_too_deep_are_refused(extra, style):
    depth = limits.MAX_DEPTH + extra
    load = Workflow.from_json if style == "json" else Workflow.from_yaml
    with pytest.raises(DocumentError) as caught:
        load(_nested(depth, style))
    assert caught.value.issues[0].code == "too_deep"


@settings(max_examples=30, deadline=None, database=None)
@given(value=JSON, depth=st.integers(0, 600), loop=st.booleans())
def test_workflow_dicts_nested_or_looping_are_rejected_or_run(value, depth, loop):
    junk: Any = value
    for _ in range(depth):
        junk = [junk]
    holder: list[Any] = [junk]
    if loop:
        holder.append(holder)
    doc = {"id": "d", "nodes": {"a": {"type": "template", "config": {"template": holder}}}}
    _rejected_or_runs(lambda: Workflow.from_dict(doc))


@pytest.mark.slow
def test_a_billion_laughs_is_refused_within_a_small_address_space():
    """With 512 MB of address space, expanding 14**14 nodes would die of MemoryError; the
    limit refuses the document first."""
    script = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(ROOT / "src")!r})
        from fm_lab.spec.errors import DocumentError
        from fm_lab.spec.yaml_io import safe_load
        resource.setrlimit(resource.RLIMIT_AS, (512 * 1024 * 1024, 512 * 1024 * 1024))
        try:
            safe_load({alias_bomb(14, 14)!r})
        except DocumentError as exc:
            print("refused:", exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "alias bomb" in done.stdout
