"""Known server-side template injection payloads against every templated field of every
built-in node type, an edge condition and the workflow's outputs: each fails what renders it,
and nothing runs (payloads that would escape create a canary file; it must never appear)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import fm_lab
from fm_lab.nodes import default_registry
from fm_lab.store.memory_store import MemoryStore

S = "<payload>"  # where a payload goes

# one minimal config per built-in node type; every string in it is a templated field
CONFIGS: dict[str, dict[str, Any]] = {
    "agent": {"instructions": S, "model": "offline/echo", "prompt": S, "thread_id": S,
              "resource_id": S},
    "approval": {"message": S, "details": {"why": S}, "label": S},
    "branch": {"routes": [{"handle": "yes", "when": S}]},
    "code": {"function": S, "args": {"text": S}},
    "fail": {"message": S},
    "foreach": {"items": S, "node": {"type": "template", "config": {"template": S}}},
    "http": {"url": S, "headers": {"X-Test": S}, "query": {"q": S}, "json": {"a": [S]}},
    "input": {"fields": [S]},
    "kb_query": {"kb": S, "query": S, "filter": S, "store": S},
    "llm": {"prompt": S, "system": S, "model": "offline/echo"},
    "log": {"message": S, "data": {"d": S}},
    "loop": {"node": {"type": "template", "config": {"template": S}}, "until": S,
             "inputs": {"x": S}, "max_iterations": 2},
    "mcp_tool": {"server": S, "tool": S, "arguments": {"a": S}},
    "merge": {},
    "output": {"name": S, "value": S},
    "parallel": {"branches": {"a": {"node": {"type": "template", "config": {"template": S}}}}},
    "router": {"routes": [{"handle": "yes", "when": S}]},
    "set_state": {"values": {"k": S}},
    "sleep": {"seconds": S},
    "sleep_until": {"until": S},
    "speak": {"text": S, "voice": S, "instructions": S, "path": S, "model": "offline/tone"},
    "subflow": {"workflow": {"id": "child", "nodes": {"t": {"type": "template",
                                                            "config": {"template": S}}}},
                "inputs": {"x": S}},
    "template": {"template": S},
    "transcribe": {"audio": S, "language": S, "prompt": S, "model": "offline/transcriber"},
    "transform": {"expression": "@", "data": S},
    "user_input": {"prompt": S, "label": S},
    "wait_for_event": {"event": S},
}
FILLER: dict[str, Any] = {"url": "http://127.0.0.1:9/", "items": [1],  # in the other slots
                          "until": "{{ iteration >= 1 }}"}

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('touch CANARY').read() }}",
    "{{ joiner.__init__.__globals__.os.system('touch CANARY') }}",
    "{{ namespace.__init__.__globals__.os.system('touch CANARY') }}",
    "{{ lipsum.__globals__['os'].system('touch CANARY') }}",
    "{{ lipsum.__globals__ }}",
    "{{ config }}",
    "{{ config.__class__.__init__.__globals__['os'].popen('touch CANARY').read() }}",
    "{{ request }}",
    "{{ request.application.__globals__.__builtins__.__import__('os').system('touch CANARY') }}",
    "{{ self._TemplateReference__context }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.system('touch CANARY') }}",
    "{{ self.__init__.__globals__.__builtins__.__import__('os').system('touch CANARY') }}",
    "{{ ''|attr('__class__')|attr('__mro__') }}",
    "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ (cycler|attr('__init__')|attr('__globals__'))['os'].system('touch CANARY') }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{% if c.__name__ == 'catch_warnings' %}"
    "{{ c()._module.__builtins__['__import__']('os').system('touch CANARY') }}{% endif %}"
    "{% endfor %}",
    "{% set g = cycler.__init__ %}{{ g.__globals__.os.system('touch CANARY') }}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ '{0.__init__.__globals__[os].system}'.format(cycler) }}",
    "{{ '{0.__class__.__mro__}'.format_map({}) }}",
    "{{ json.__globals__['__builtins__']['__import__']('os').system('touch CANARY') }}",
    "{{ inputs.__class__.__base__.__subclasses__() }}",
    "{{ dict.mro() }}",
    "{{ [].append(1) }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}{{ os.system('touch CANARY') }}",
    # resource exhaustion: refused at once, never computed
    "{{ range(10**9)|list }}",
    "{{ 'a' * 10**9 }}",
    "{{ [0] * 10**9 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ 'x'|center(10**9) }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ '%0999999999d'|format(1) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '{:0999999999}'.format(1) }}",
    "{{ lipsum(n=10**6) }}",
]


def fields(value: Any, path: str = "") -> list[str]:
    """The paths of the payload slots in a config."""
    if value == S:
        return [path]
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in fields(v, f"{path}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in fields(v, f"{path}[{i}]")]
    return []


def one_slot(config: dict[str, Any], slot: str, payload: str) -> dict[str, Any]:
    """``config`` with ``payload`` in ``slot`` and harmless values in the other slots."""
    def fill(value: Any, path: str) -> Any:
        if value == S:
            return payload if path == slot else FILLER.get(path, "fine")
        if isinstance(value, dict):
            return {k: fill(v, f"{path}.{k}".lstrip(".")) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value
    return fill(config, "")


def test_every_built_in_node_type_is_covered():
    registry = default_registry()
    built_in = [name for name in registry.names()
                if str(getattr(registry.lookup(name), "__module__", "")).startswith("fm_lab.")]
    assert sorted(CONFIGS) == sorted(built_in)


def slots() -> list[tuple[str, str]]:
    """Every (node type, templated field)."""
    return [(type_name, slot) for type_name, config in CONFIGS.items()
            for slot in fields(config)]


def test_the_templated_fields_are_found():
    found = slots()
    assert ("http", "headers.X-Test") in found and ("foreach", "node.config.template") in found
    assert len(found) >= 40


@pytest.mark.parametrize("raw", ESCAPES)
def test_a_payload_fails_every_templated_field_and_runs_nothing(raw, tmp_path):
    canary = tmp_path / "CANARY"
    payload = raw.replace("CANARY", str(canary))
    store = MemoryStore()
    for type_name, slot in slots():
        config = one_slot(CONFIGS[type_name], slot, payload)
        run = fm_lab.run({"id": "ssti", "nodes": {"n": {"type": type_name, "config": config}}},
                         store=store)
        result = run.node("n")
        assert result.status == "failed", (type_name, slot, result.status, result.output)
        assert result.error is not None and result.output is None
    assert not canary.exists()


@pytest.mark.parametrize("raw", ESCAPES[:6] + ESCAPES[-10:])
def test_a_payload_in_an_edge_condition_or_the_outputs_fails_the_run(raw, tmp_path):
    canary = tmp_path / "CANARY"
    payload = raw.replace("CANARY", str(canary))
    two = {"a": {"type": "template", "config": {"template": "x"}},
           "b": {"type": "template", "config": {"template": "y"}}}
    edge = fm_lab.run({"id": "edge", "nodes": two,
                       "edges": [{"source": "a", "target": "b", "condition": payload}]},
                      store=MemoryStore())
    outputs = fm_lab.run({"id": "out", "nodes": two, "outputs": {"o": payload}},
                         store=MemoryStore())
    assert edge.status == "failed" and outputs.status == "failed"
    assert not canary.exists()


def test_data_that_looks_like_a_template_stays_data(tmp_path):
    """Second order: a payload arriving as an input or an upstream output is not rendered."""
    canary = tmp_path / "CANARY"
    payload = ESCAPES[2].replace("CANARY", str(canary))
    run = fm_lab.run({"id": "data", "nodes": {
        "echo": {"type": "template", "config": {"template": "{{ inputs.text }}"}},
        "again": {"type": "template", "config": {"template": "got {{ nodes.echo.output }}"}}},
        "edges": ["echo -> again"]}, {"text": payload}, store=MemoryStore())
    assert run.status == "succeeded"
    assert run.outputs == {"again": f"got {payload}"}
    assert not canary.exists()


def test_harmless_leftovers_render_inert():
    run = fm_lab.run({"id": "inert", "nodes": {
        "me": {"type": "template", "config": {"template": "I am {{ self }}"}},
        "ns": {"type": "template", "config": {
            "template": "{% set n = namespace() %}{% set n.__class__ = 1 %}ok"}}}},
        store=MemoryStore())
    assert run.status == "succeeded"
    assert run.outputs == {"me": "I am <TemplateReference None>", "ns": "ok"}


def test_the_canary_would_show_an_escape(tmp_path: Path):
    """The canary works: the same command outside the sandbox leaves the file."""
    import os

    canary = tmp_path / "CANARY"
    os.system(f"touch {canary}")
    assert canary.exists()
