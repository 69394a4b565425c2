"""The node types that ship with fm_lab."""

from __future__ import annotations

from fm_lab.nodes.base import NodeType
from fm_lab.nodes.code import CodeNode
from fm_lab.nodes.composite import ForeachNode, ParallelNode, SubflowNode
from fm_lab.nodes.control import BranchNode, FailNode, RouterNode, SetStateNode
from fm_lab.nodes.flow import InputNode, LogNode, MergeNode, OutputNode
from fm_lab.nodes.http import HttpNode
from fm_lab.nodes.human import ApprovalNode, UserInputNode, WaitForEventNode
from fm_lab.nodes.llm import LlmNode
from fm_lab.nodes.loop import LoopNode
from fm_lab.nodes.text import TemplateNode, TransformNode
from fm_lab.nodes.timing import SleepNode, SleepUntilNode
from fm_lab.nodes.voice import SpeakNode, TranscribeNode

BUILTIN_TYPES: tuple[type[NodeType], ...] = (
    InputNode,
    OutputNode,
    MergeNode,
    LogNode,
    CodeNode,
    HttpNode,
    LlmNode,
    TemplateNode,
    TransformNode,
    BranchNode,
    RouterNode,
    SetStateNode,
    FailNode,
    ForeachNode,
    ParallelNode,
    SubflowNode,
    LoopNode,
    SleepNode,
    SleepUntilNode,
    ApprovalNode,
    UserInputNode,
    WaitForEventNode,
    TranscribeNode,
    SpeakNode,
)
