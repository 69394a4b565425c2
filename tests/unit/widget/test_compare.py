"""A fork beside its parent: both pictures, the changed nodes outlined, the diff."""

from __future__ import annotations

import pytest

import fm_lab
from fm_lab.widget import compare

FLOW = {"id": "compared", "nodes": {
    "a": {"type": "template", "config": {"template": "Ada"}},
    "b": {"type": "template", "config": {"template": "hi {{ nodes.a.output }}"}},
    "c": {"type": "template", "config": {"template": "fixed"}}},
    "edges": ["a -> b"]}


def test_a_fork_is_shown_beside_its_parent_with_the_changed_nodes_marked() -> None:
    parent = fm_lab.run(FLOW, store=fm_lab.MemoryStore())
    view = compare(parent.fork("a", output="Bo"))
    assert view.changed == ["a", "b"] and view.parent.run_id == parent.run_id
    shown = view._repr_html_()
    assert shown.count('class="fm-lab-static-graph"') == 2 and "fork at a" in shown
    assert 'g.fm-node[data-node-id="b"]' in shown and 'data-node-id="c"]' not in shown
    assert "+hi Bo" in shown
    assert repr(view).splitlines()[1:] == ["  a                    edited   succeeded -> succeeded",
                                           "  b                    re-run   succeeded -> succeeded"]
    with pytest.raises(ValueError, match="is not a fork"):
        compare(parent)
