"""The workflow spec: pydantic models whose JSON form is canonical."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fm_lab.spec.errors import (
    DocumentError,
    ValidationIssue,
    WorkflowValidationError,
    pydantic_issues,
)

if TYPE_CHECKING:
    from fm_lab.spec.validate import NodeTypeLookup

NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ErrorKind = Literal["user", "validation", "provider", "timeout", "system"]
_RETRYABLE: tuple[ErrorKind, ...] = ("provider", "timeout", "system")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


class RetryPolicy(_Model):
    """How often a failed node is tried again, and for which error kinds."""

    max_attempts: int = Field(1, ge=1, le=100, description="Total attempts, the first included.")
    backoff_s: float = Field(0.5, ge=0, description="Wait before the second attempt.")
    multiplier: float = Field(2.0, ge=1, description="Backoff growth per attempt.")
    max_backoff_s: float = Field(30.0, ge=0)
    retry_on: list[ErrorKind] = Field(
        default_factory=lambda: list(_RETRYABLE),
        description="Error kinds that are retried; 'user' and 'validation' are not by default.",
    )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_backoff_s, self.backoff_s * self.multiplier ** (attempt - 1)))


class Position(_Model):
    x: float
    y: float


class Node(_Model):
    """One step of a workflow: a registered node ``type`` with its ``config``."""

    id: str
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    description: str | None = None
    position: Position | None = None
    retry: RetryPolicy | None = None
    timeout_s: float | None = Field(None, gt=0)
    cache: bool = True


class Edge(_Model):
    """A dependency: ``target`` runs after ``source``.

    ``source_handle`` picks one named route of a branching node; ``condition`` is a template
    evaluated once the source has finished (the edge is taken when it is truthy).
    """

    source: str
    target: str
    source_handle: str | None = None
    condition: str | None = None


class Workflow(_Model):
    """A validated graph of typed nodes. JSON (``to_json``) is the canonical form.

    >>> wf = Workflow.from_dict({"id": "hello", "nodes": {"greet": {"type": "template",
    ...     "config": {"template": "Hello {{ inputs.name }}"}}}})
    >>> Workflow.from_json(wf.to_json()) == wf
    True
    """

    id: str
    name: str | None = None
    version: int = Field(1, ge=1)
    description: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict, description="JSON schema of run inputs.")
    state: dict[str, Any] = Field(default_factory=dict, description="JSON schema of run state.")
    nodes: dict[str, Node] = Field(default_factory=dict)
    edges: list[Edge] = Field(default_factory=list)
    entry: list[str] = Field(default_factory=list, description="Start nodes (default: no inputs).")
    outputs: dict[str, Any] = Field(
        default_factory=dict, description="Run outputs as templates (default: output nodes)."
    )
    max_concurrency: int | None = Field(None, ge=1, description="Nodes running at once.")

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: dict[str, Any], load_issues: list[ValidationIssue] | None = None
    ) -> Workflow:
        """Build from the canonical dict (nodes keyed by id, or a list of nodes with ids).

        Problems that still leave a workflow to look at (a duplicate id, an unreadable edge)
        are raised together with everything :meth:`validate` finds.
        """
        from fm_lab.spec.io import normalise
        from fm_lab.spec.limits import json_problem

        problem = json_problem(data, "$", plain=False)
        if problem is not None:
            raise DocumentError(problem[1], code="too_deep")
        normalised, issues = normalise(data)
        issues = [*(load_issues or []), *issues]
        try:
            workflow = cls.model_validate(normalised)
        except ValidationError as exc:
            issues += pydantic_issues(exc, "")
            repaired = _repaired(normalised, exc)
            if repaired is not None:  # e.g. only the id is missing: report the rest too
                with contextlib.suppress(ValidationError):
                    issues += cls.model_validate(repaired).issues()
            raise WorkflowValidationError(issues) from None
        if issues:
            raise WorkflowValidationError(issues + workflow.issues())
        return workflow

    @classmethod
    def from_json(cls, text: str) -> Workflow:
        """Parse the canonical JSON form."""
        from fm_lab.spec.io import load_json

        data = load_json(text)
        if not isinstance(data, dict):
            raise DocumentError("a workflow document is a mapping", code="not_a_mapping")
        return cls.from_dict(data)

    @classmethod
    def from_yaml(cls, text: str) -> Workflow:
        """Parse YAML (same structure as JSON; duplicate keys are reported)."""
        from fm_lab.spec.yaml_io import load_yaml

        data, issues = load_yaml(text)
        return cls.from_dict(data, issues)

    @classmethod
    def from_file(cls, path: str | Path) -> Workflow:
        """Load ``*.json``, ``*.yaml`` or ``*.yml`` (e.g. ``examples/quickstart.flow.yaml``)."""
        from fm_lab.spec.io import read_document

        path = Path(path)
        text = read_document(path)
        try:
            if path.suffix == ".json":
                return cls.from_json(text)
            return cls.from_yaml(text)
        except DocumentError as exc:
            raise exc.at(str(path)) from None

    # ---- serialisation ------------------------------------------------------------------
    def downstream(self, nodes: Iterable[str]) -> list[str]:
        """``nodes`` and every node reachable from them along edges."""
        seen = list(dict.fromkeys(nodes))
        reached = set(seen)
        for node_id in seen:  # grows while iterating: a breadth-first walk
            for edge in self.edges:
                if edge.source == node_id and edge.target not in reached:
                    reached.add(edge.target)
                    seen.append(edge.target)
        return seen

    def to_dict(self) -> dict[str, Any]:
        """The canonical dict: defaults left out, nodes keyed by id."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        ordered: dict[str, Any] = {"id": self.id}
        for key in type(self).model_fields:
            if key == "nodes":
                nodes = data.get("nodes", {})
                for node in nodes.values():
                    node.pop("id", None)
                ordered["nodes"] = nodes
            elif key in data and key != "id":
                ordered[key] = data[key]
        return ordered

    def to_json(self, indent: int | None = 2) -> str:
        """The canonical JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def update_from(self, other: Workflow) -> None:
        """Make this workflow equal to ``other`` in place, so that every variable bound to it
        (a notebook's ``%%flow`` name, a canvas) sees the change."""
        for name in type(self).model_fields:
            self.__dict__[name] = other.__dict__[name]
        self.__pydantic_fields_set__ = set(other.model_fields_set)

    def to_yaml(self) -> str:
        """YAML text that loads back to an equal workflow."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def content_hash(self, data: dict[str, Any] | None = None) -> str:
        """A stable hash of the canonical JSON (identifies a workflow version); pass the
        result of :meth:`to_dict` when you already have it."""
        canonical = json.dumps(
            self.to_dict() if data is None else data, sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of the workflow document (used by editors and the widget)."""
        schema = cls.model_json_schema()
        node = schema.get("$defs", {}).get("Node", {})
        # in a document the id is the key of the node in `nodes`, so it is not required inside
        node["required"] = [r for r in node.get("required", []) if r != "id"]
        return schema

    # ---- checks -------------------------------------------------------------------------
    def validate(  # type: ignore[override]
        self, registry: NodeTypeLookup | None = None
    ) -> Workflow:
        """Raise :class:`WorkflowValidationError` listing every problem; return self if valid.
        Node types are looked up in ``registry`` (default: the default registry)."""
        from fm_lab.spec.validate import check, default_registry

        issues = check(self, registry if registry is not None else default_registry())
        if issues:
            raise WorkflowValidationError(issues, subject=f"workflow {self.id!r}")
        return self

    def issues(self, registry: NodeTypeLookup | None = None) -> list[ValidationIssue]:
        """Every problem found, without raising."""
        from fm_lab.spec.validate import check, default_registry

        return check(self, registry if registry is not None else default_registry())

    def _repr_html_(self) -> str:
        from fm_lab.spec.render import workflow_html

        return workflow_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        from fm_lab.spec.render import workflow_text

        printer.text(workflow_text(self))


# fields whose bad value can be left out (or, for the id, stood in for) so that the rest of
# a document is still checked; the graph (node types and configs, edge ends) is not among them
_TOP_OPTIONAL = {"name", "version", "description", "inputs", "state", "outputs",
                 "max_concurrency"}
_NODE_OPTIONAL = {"label", "description", "position", "retry", "timeout_s", "cache"}
_EDGE_OPTIONAL = {"source_handle", "condition"}


def _repaired(data: dict[str, Any], exc: ValidationError) -> dict[str, Any] | None:
    """``data`` without the fields ``exc`` complains about, when all of them are optional
    or the id; None when a complaint touches the graph itself."""
    fixed = copy.deepcopy(data)
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        extra = err["type"] == "extra_forbidden"
        if loc == ("id",):
            fixed["id"] = "<missing id>"
        elif len(loc) >= 1 and (loc[0] in _TOP_OPTIONAL or (extra and len(loc) == 1)):
            fixed.pop(str(loc[0]), None)
        elif (len(loc) >= 3 and loc[0] in ("nodes", "edges")
              and (loc[2] in (_NODE_OPTIONAL if loc[0] == "nodes" else _EDGE_OPTIONAL)
                   or (extra and len(loc) == 3))):
            fixed[str(loc[0])][loc[1]].pop(loc[2], None)
        else:
            return None
    return fixed
