"""The node types that ship with fm_lab."""

from __future__ import annotations

from fm_lab.nodes.base import NodeType
from fm_lab.nodes.code import CodeNode
from fm_lab.nodes.control import BranchNode, SetStateNode
from fm_lab.nodes.flow import InputNode, MergeNode, OutputNode
from fm_lab.nodes.text import TemplateNode, TransformNode

BUILTIN_TYPES: tuple[type[NodeType], ...] = (
    InputNode,
    OutputNode,
    MergeNode,
    CodeNode,
    TemplateNode,
    TransformNode,
    BranchNode,
    SetStateNode,
)
