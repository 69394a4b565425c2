"""Node types by name; third parties register through the ``fm_lab.nodes`` entry point group."""

from __future__ import annotations

import threading
from typing import TypeVar

from fm_lab.nodes.base import NodeType

N = TypeVar("N", bound=type[NodeType])
ENTRY_POINT_GROUP = "fm_lab.nodes"


class NodeRegistry:
    """A mapping of type names to :class:`NodeType` classes."""

    def __init__(self) -> None:
        self._types: dict[str, type[NodeType]] = {}
        self._entry_points_loaded = False
        self._lock = threading.Lock()

    def register(self, node_type: N, name: str | None = None) -> N:
        """Register ``node_type`` under ``name`` (default: its ``type_name``); returns it."""
        type_name = name or node_type.type_name
        if not type_name:
            raise ValueError(f"{node_type.__name__} has no type_name; set one or pass name=")
        self._types[type_name] = node_type
        return node_type

    def lookup(self, type_name: str) -> type[NodeType] | None:
        """The class registered as ``type_name``, or None."""
        found = self._types.get(type_name)
        if found is None and not self._entry_points_loaded:
            self._load_entry_points()
            found = self._types.get(type_name)
        return found

    def names(self) -> list[str]:
        """Every registered type name."""
        self._load_entry_points()
        return sorted(self._types)

    def _load_entry_points(self) -> None:
        with self._lock:
            if self._entry_points_loaded:
                return
            self._entry_points_loaded = True
            from importlib.metadata import entry_points

            for entry in entry_points(group=ENTRY_POINT_GROUP):
                loaded = entry.load()
                if isinstance(loaded, type) and issubclass(loaded, NodeType):
                    self.register(loaded, entry.name)


_DEFAULT: NodeRegistry | None = None


def default_registry() -> NodeRegistry:
    """The process-wide registry holding the built-in node types."""
    global _DEFAULT
    if _DEFAULT is None:
        registry = NodeRegistry()
        from fm_lab.nodes.builtin import BUILTIN_TYPES

        for node_type in BUILTIN_TYPES:
            registry.register(node_type)
        _DEFAULT = registry
    return _DEFAULT


def register_node(node_type: N) -> N:
    """Class decorator: add a node type to the default registry.

    >>> from fm_lab.nodes.base import NodeType
    >>> @register_node
    ... class Noop(NodeType):
    ...     type_name = "doc_noop"
    ...     def run(self, ctx, inputs):
    ...         return None
    >>> default_registry().lookup("doc_noop") is Noop
    True
    """
    return default_registry().register(node_type)
