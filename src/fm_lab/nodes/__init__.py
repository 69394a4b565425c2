"""Node types: the contract, the registry and the built-in types."""

from fm_lab.nodes.base import NodeContext, NodeType
from fm_lab.nodes.code import register_function, resolve_function
from fm_lab.nodes.registry import NodeRegistry, default_registry, register_node

__all__ = [
    "NodeContext",
    "NodeRegistry",
    "NodeType",
    "default_registry",
    "register_function",
    "register_node",
    "resolve_function",
]
