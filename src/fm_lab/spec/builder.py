"""A small Python builder producing the same :class:`Workflow` as YAML or JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fm_lab.spec.models import Workflow


@dataclass(frozen=True)
class NodeRef:
    """A handle on a node being built; ``a >> b`` adds the edge a -> b."""

    builder: WorkflowBuilder
    id: str

    def __rshift__(self, other: NodeRef | list[NodeRef]) -> NodeRef | list[NodeRef]:
        for target in other if isinstance(other, list) else [other]:
            self.builder.edge(self.id, target.id)
        return other

    def route(self, handle: str) -> _Route:
        """``branch.route("yes") >> node`` follows the branch's ``yes`` route."""
        return _Route(self, handle)


@dataclass(frozen=True)
class _Route:
    ref: NodeRef
    handle: str

    def __rshift__(self, other: NodeRef) -> NodeRef:
        self.ref.builder.edge(self.ref.id, other.id, handle=self.handle)
        return other


class WorkflowBuilder:
    """Build a workflow in Python.

    >>> b = WorkflowBuilder("greet", inputs={"type": "object",
    ...     "properties": {"name": {"type": "string"}}})
    >>> hello = b.node("hello", "template", template="Hello {{ inputs.name }}")
    >>> out = b.node("out", "output")
    >>> _ = hello >> out
    >>> b.build().to_dict()["edges"]
    [{'source': 'hello', 'target': 'out'}]
    """

    def __init__(self, id: str, **fields: Any) -> None:
        self._data: dict[str, Any] = {"id": id, **fields, "nodes": {}, "edges": []}

    def node(
        self,
        id: str,
        type: str,
        *,
        label: str | None = None,
        retry: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        cache: bool = True,
        **config: Any,
    ) -> NodeRef:
        """Add node ``id`` of ``type``; keyword arguments are its config."""
        node: dict[str, Any] = {"type": type, "config": config}
        for key, value in (("label", label), ("retry", retry), ("timeout_s", timeout_s)):
            if value is not None:
                node[key] = value
        if not cache:
            node["cache"] = False
        self._data["nodes"][id] = node
        return NodeRef(self, id)

    def loop(self, id: str, *, while_: Any = None, until: Any = None, **config: Any) -> NodeRef:
        """Add a ``loop`` node: its body (``node=`` or ``workflow=``) runs again while
        ``while_`` (``while`` in YAML) or until ``until`` holds; other keywords as in
        :meth:`node` (``max_iterations=``, ``retry=``...)."""
        for key, value in (("while", while_), ("until", until)):
            if value is not None:
                config[key] = value
        return self.node(id, "loop", **config)

    def edge(
        self, source: str, target: str, *, handle: str | None = None, condition: str | None = None
    ) -> WorkflowBuilder:
        """Add an edge, optionally on a named route or with a condition template."""
        edge: dict[str, Any] = {"source": source, "target": target}
        if handle is not None:
            edge["source_handle"] = handle
        if condition is not None:
            edge["condition"] = condition
        self._data["edges"].append(edge)
        return self

    def build(self, validate: bool = True) -> Workflow:
        """The workflow; validated (raising every problem at once) unless ``validate=False``."""
        workflow = Workflow.from_dict(self._data)
        return workflow.validate() if validate else workflow
