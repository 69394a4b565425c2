"""A LangGraph ``StateGraph`` of N nodes in a row, shared by the benchmarks' LangGraph peers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph


def chain_builder(n: int, state: type[Any], node: Callable[..., Any],
                  prefix: str = "node_") -> StateGraph:
    """``{prefix}0 -> ... -> {prefix}{n-1}``, every node ``node``, over ``state``."""
    builder = StateGraph(state)
    for i in range(n):
        builder.add_node(f"{prefix}{i}", node)
    builder.add_edge(START, f"{prefix}0")
    for i in range(n - 1):
        builder.add_edge(f"{prefix}{i}", f"{prefix}{i + 1}")
    builder.add_edge(f"{prefix}{n - 1}", END)
    return builder
