"""Node types by name; third parties register through the ``fm_lab.nodes`` entry point group."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from fm_lab.nodes.base import NodeType
from fm_lab.spec.validate import set_default_registry

N = TypeVar("N", bound=type[NodeType])
ENTRY_POINT_GROUP = "fm_lab.nodes"


class NodeRegistry:
    """A mapping of type names to :class:`NodeType` classes."""

    def __init__(self) -> None:
        self._types: dict[str, type[NodeType]] = {}
        self._lazy: dict[str, Callable[[], type[NodeType]]] = {}
        self._entry_points_loaded = False
        self._lock = threading.Lock()

    def register(self, node_type: N, name: str | None = None) -> N:
        """Register ``node_type`` under ``name`` (default: its ``type_name``); returns it."""
        type_name = name or node_type.type_name
        if not type_name:
            raise ValueError(f"{node_type.__name__} has no type_name; set one or pass name=")
        self._types[type_name] = node_type
        return node_type

    def register_lazy(self, type_name: str, load: Callable[[], type[NodeType]]) -> None:
        """Register ``type_name`` as ``load()``, called (and its module imported) on the first
        lookup: how the application adds the node types that live above ``nodes/``."""
        self._lazy[type_name] = load

    def lookup(self, type_name: str) -> type[NodeType] | None:
        """The class registered as ``type_name``, or None."""
        found = self._types.get(type_name)
        load = self._lazy.get(type_name) if found is None else None
        if load is not None:
            found = self.register(load(), type_name)
        if found is None and not self._entry_points_loaded:
            self._load_entry_points()
            found = self._types.get(type_name)
        return found

    def names(self) -> list[str]:
        """Every registered type name."""
        self._load_entry_points()
        return sorted({*self._types, *self._lazy})

    def _load_entry_points(self) -> None:
        with self._lock:
            if self._entry_points_loaded:
                return
            self._entry_points_loaded = True
            from importlib.metadata import entry_points

            for entry in entry_points(group=ENTRY_POINT_GROUP):
                if entry.name in self._lazy:
                    continue  # fm_lab's own adapters: registered lazily by the engine too
                loaded = entry.load()
                if isinstance(loaded, type) and issubclass(loaded, NodeType):
                    self.register(loaded, entry.name)


_DEFAULT: NodeRegistry | None = None
_DEFAULT_LAZY: dict[str, Callable[[], type[NodeType]]] = {}


def register_default_lazy(type_name: str, load: Callable[[], type[NodeType]]) -> None:
    """Add ``type_name`` to the default registry as ``load()``, imported on its first lookup;
    the registry itself is not built now (the application adds the types that live above
    ``nodes/`` this way: see ``fm_lab.engine``)."""
    _DEFAULT_LAZY[type_name] = load
    if _DEFAULT is not None:
        _DEFAULT.register_lazy(type_name, load)


def default_registry() -> NodeRegistry:
    """The process-wide registry holding the built-in node types (``fm_lab.engine`` adds
    the types that adapt higher layers: ``agent``, ``kb_query``)."""
    global _DEFAULT
    if _DEFAULT is None:
        registry = NodeRegistry()
        from fm_lab.nodes.builtin import BUILTIN_TYPES

        for node_type in BUILTIN_TYPES:
            registry.register(node_type)
        for type_name, load in _DEFAULT_LAZY.items():
            registry.register_lazy(type_name, load)
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


set_default_registry(default_registry)  # Workflow.validate() with no registry uses it
