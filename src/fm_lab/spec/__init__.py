"""The workflow spec: models, (de)serialisation, validation."""

from fm_lab.spec.builder import WorkflowBuilder
from fm_lab.spec.errors import ValidationIssue, WorkflowValidationError
from fm_lab.spec.models import Edge, Node, Position, RetryPolicy, Workflow

__all__ = [
    "Edge",
    "Node",
    "Position",
    "RetryPolicy",
    "ValidationIssue",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowValidationError",
]
