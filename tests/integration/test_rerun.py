"""Cell-like re-runs: a node and what depends on it are recomputed, every unchanged result is
reused (and says so in nodes_df, events and spans); the cache never serves side effects."""

from __future__ import annotations

import json
from collections import Counter

import pytest

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

CALLS: Counter[str] = Counter()


def _count(name: str, value):
    CALLS[name] += 1
    return value


@pytest.fixture
def counted(register):
    CALLS.clear()
    return register(_count)


def _chain(fn: str, **overrides) -> dict:
    nodes = {
        "a": {
            "type": "code",
            "config": {"function": fn, "args": {"name": "a", "value": "{{ inputs.x }}"}},
        },
        "b": {
            "type": "code",
            "config": {"function": fn, "args": {"name": "b", "value": "{{ nodes.a.output * 2 }}"}},
        },
        "c": {
            "type": "code",
            "config": {"function": fn, "args": {"name": "c", "value": "{{ nodes.b.output + 1 }}"}},
        },
        "side": {
            "type": "code",
            "config": {"function": fn, "args": {"name": "side", "value": "const"}},
        },
    }
    for node_id, config in overrides.items():
        nodes[node_id]["config"]["args"].update(config)
    return {"id": "rerun_chain", "nodes": nodes, "edges": ["a -> b", "b -> c"]}


def test_rerun_recomputes_the_node_and_its_dependents_only(store, counted):
    first = fm_lab.run(_chain(counted), {"x": 5}, store=store)
    assert first.outputs == {"c": 11, "side": "const"}
    CALLS.clear()
    heard: list[dict] = []
    second = first.rerun("b", on_event=heard.append)
    assert second.run_id != first.run_id and second.outputs == first.outputs
    assert CALLS == {"b": 1, "c": 1}  # a and side came from the first run
    statuses = {e["node_id"]: e["status"] for e in heard if e["type"] == "node"}
    assert statuses == {"a": "cached", "side": "cached", "b": "succeeded", "c": "succeeded"}
    df = second.nodes_df().set_index("node_id")
    assert json.loads(df.loc["a", "cached_from"]) == {"run_id": first.run_id, "path": "a"}
    assert df["cached_from"].isna()[["b", "c"]].all()
    spans = fm_lab.traces(run_id=second.run_id, kind="node", store=store).set_index("name")
    attributes = {name: json.loads(a) for name, a in spans["attributes"].items()}
    assert attributes["a"]["fm_lab.cache.hit"] is True
    assert "fm_lab.cache.hit" not in attributes["c"]


def test_an_edited_node_and_new_inputs_rerun_only_what_they_change(store, counted):
    first = fm_lab.run(_chain(counted), {"x": 5}, store=store)
    CALLS.clear()
    edited = first.rerun(workflow=_chain(counted, c={"value": "{{ nodes.b.output + 100 }}"}))
    assert edited.outputs == {"c": 110, "side": "const"} and CALLS == {"c": 1}
    CALLS.clear()
    new_inputs = first.rerun(inputs={"x": 6})
    assert new_inputs.outputs["c"] == 13
    assert CALLS == {"a": 1, "b": 1, "c": 1}  # side does not read the inputs


def test_cache_across_runs_never_serves_side_effects_or_opted_out_nodes(store, counted):
    wf = _chain(counted)
    wf["nodes"]["side"]["cache"] = False
    wf["nodes"]["ok"] = {"type": "approval", "config": {"message": "go?"}}
    wf["edges"].append("c -> ok")
    first = fm_lab.run(wf, {"x": 1}, store=store, cache=True)
    fm_lab.resume(first.run_id, {"approved": True}, node="ok", store=store)
    CALLS.clear()
    second = fm_lab.run(wf, {"x": 1}, store=store, cache=True)
    assert CALLS == {"side": 1}  # a, b, c reused; side opted out
    assert second.status == "suspended"  # an approval is asked again, never cached
    CALLS.clear()
    fm_lab.run(wf, {"x": 1}, store=store)  # the cache is off unless asked for
    assert CALLS == {"a": 1, "b": 1, "c": 1, "side": 1}


def test_editing_a_functions_code_invalidates_its_results(store, register):
    def double(v: int) -> int:
        return v * 2

    name = register(double)
    wf = {
        "id": "code_version",
        "nodes": {"d": {"type": "code", "config": {"function": name, "args": {"v": 4}}}},
    }
    first = fm_lab.run(wf, store=store, cache=True)

    def triple(v: int) -> int:
        return v * 3

    fm_lab.register_function(triple, name=name)  # the notebook cell was edited and re-run
    second = fm_lab.run(wf, store=store, cache=True)
    assert (first.outputs, second.outputs) == ({"d": 8}, {"d": 12})


def test_foreach_items_are_cached_one_by_one(store, counted):
    wf = {
        "id": "cached_items",
        "nodes": {
            "loop": {
                "type": "foreach",
                "config": {
                    "items": "{{ inputs.items }}",
                    "node": {
                        "type": "code",
                        "config": {
                            "function": counted,
                            "args": {"name": "item", "value": "{{ item }}"},
                        },
                    },
                },
            }
        },
    }
    fm_lab.run(wf, {"items": [1, 2, 3]}, store=store, cache=True)
    CALLS.clear()
    run = fm_lab.run(wf, {"items": [1, 2, 3, 4]}, store=store, cache=True)
    assert run.outputs["loop"]["results"] == [1, 2, 3, 4]
    assert CALLS == {"item": 1}  # only the new item ran


def test_rerun_of_an_unknown_node_names_the_choices(store, counted):
    first = fm_lab.run(_chain(counted), {"x": 5}, store=store)
    with pytest.raises(KeyError, match=r"no node 'zz'.*nodes: a, b, c, side"):
        first.rerun("zz")
