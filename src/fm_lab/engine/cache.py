"""Cell-like re-runs: a node's result is reused when its type, its (rendered) config, its
upstream outputs and its code version are the same as a stored successful execution's.

The key is computed only when a run asks for the cache (``cache=True``, ``Run.rerun``), so
ordinary runs pay nothing for it. Results come from earlier runs of the same workflow (their
stored keys) and, for a re-run, from the source run (keys recomputed from what it stored).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fm_lab.store import codec

if TYPE_CHECKING:
    from fm_lab.engine.plan import Plan
    from fm_lab.nodes.base import NodeType
    from fm_lab.spec.models import Node
    from fm_lab.store.base import RunSnapshot, RunStore

_PATH_MARKS = ("[", "/", ".", "#")


@dataclass(frozen=True, slots=True)
class CacheHit:
    """A stored result that can stand in for an execution."""

    output: Any
    state_patch: dict[str, Any] | None
    run_id: str
    path: str


def cache_key(node: Node, node_type: type[NodeType], config: Any, rendered: Any,
              inputs: dict[str, Any]) -> str | None:
    """The key of one execution, or None when the node must always run."""
    if not node.cache or not node_type.cacheable:
        return None
    try:
        version = node_type(config).cache_version() if config is not None else ""
        text = codec.canonical([node.type, version,
                                node.config if rendered is None else rendered, inputs])
    except (codec.NotSerialisableError, LookupError, ImportError, AttributeError):
        return None  # what cannot be fingerprinted is not cached
    return hashlib.sha256(text.encode()).hexdigest()


class NodeCache:
    """Results a run may reuse, and the node ids it must recompute anyway."""

    def __init__(self, entries: dict[str, tuple[str, str | None, str, str]],
                 recompute: Iterable[str] = ()) -> None:
        self._entries = entries
        self._recompute = frozenset(recompute)

    @classmethod
    def load(cls, store: RunStore, plan: Plan, *, source: RunSnapshot | None = None,
             recompute: Iterable[str] = ()) -> NodeCache:
        """Entries of earlier runs of ``plan``'s workflow (and of ``source``, a run being
        re-run); ``recompute`` names nodes whose executions (and items) never hit."""
        entries = store.cache_entries(plan.workflow.id)
        if source is not None:
            entries.update(_source_entries(source, plan))
        return cls(entries, recompute)

    def forced(self, path: str) -> bool:
        """Whether ``path`` (or the node it belongs to) must be recomputed."""
        if path in self._recompute:
            return True
        head = path
        for mark in _PATH_MARKS:
            head = head.split(mark, 1)[0]
        return head in self._recompute

    def get(self, key: str, path: str) -> CacheHit | None:
        """The stored result for ``key`` unless ``path`` is forced."""
        entry = self._entries.get(key)
        if entry is None or self.forced(path):
            return None
        output, patch, run_id, source_path = entry
        return CacheHit(codec.loads(output), codec.loads(patch) if patch else None, run_id,
                        source_path)


def _source_entries(source: RunSnapshot, plan: Plan
                    ) -> dict[str, tuple[str, str | None, str, str]]:
    """Keys for the top-level nodes of a run being re-run, from what it stored (a run made
    without the cache has no keys of its own)."""
    nodes, entries = source.nodes, {}
    for node_id, record in nodes.items():
        if record["status"] != "succeeded" or node_id not in plan.nodes:
            continue
        if node_id not in source.workflow.nodes:
            continue
        old = source.workflow.nodes[node_id]
        node_type = plan.types[node_id]
        if old.type != plan.nodes[node_id].type:
            continue
        inputs = {p: nodes[p]["output"] for p in plan.predecessors[node_id]
                  if p in nodes and nodes[p]["status"] == "succeeded"}
        rendered = record.get("input")
        try:
            config = node_type.Config.model_validate(old.config if rendered is None else rendered)
        except ValueError:
            continue
        key = record.get("cache_key") or cache_key(old, node_type, config, rendered, inputs)
        if key is not None:
            patch = record.get("state_patch")
            entries[key] = (codec.dumps(record["output"]), codec.dumps(patch) if patch else None,
                            source.run_id, node_id)
    return entries
