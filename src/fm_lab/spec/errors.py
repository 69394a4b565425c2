"""Validation problems of a workflow definition, reported all at once."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ValidationIssue:
    """One problem in a workflow definition.

    ``location`` is a dotted path such as ``nodes.fetch.config.url`` or ``edges[2].target``.
    """

    location: str
    message: str
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class WorkflowValidationError(ValueError):
    """Raised with *every* problem found in a workflow definition or its run inputs.

    >>> err = WorkflowValidationError([ValidationIssue("nodes.a.type", "unknown node type 'x'")])
    >>> err.issues[0].location
    'nodes.a.type'
    """

    def __init__(self, issues: list[ValidationIssue], subject: str = "workflow") -> None:
        self.issues = list(issues)
        self.subject = subject
        super().__init__(self._summary())

    def _summary(self) -> str:
        count = len(self.issues)
        head = f"{self.subject} is invalid ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([head, *(f"  - {issue}" for issue in self.issues)])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td><code>{html.escape(i.location)}</code></td>"
            f"<td>{html.escape(i.message)}</td></tr>"
            for i in self.issues
        )
        return (
            f"<div><b>{html.escape(self.subject)} is invalid</b> "
            f"({len(self.issues)} problems)<table>{rows}</table></div>"
        )


class DocumentError(WorkflowValidationError):
    """A document that cannot be read at all: not a file, too big, not UTF-8, not YAML or
    JSON, nested too deep, an alias bomb. ``str()`` is one line naming the source.

    >>> str(DocumentError("not UTF-8", "flow.yaml"))
    'flow.yaml: not UTF-8'
    """

    def __init__(self, problem: str, source: str | None = None, code: str = "unreadable") -> None:
        self.problem = problem
        self.source = source
        super().__init__([ValidationIssue("$", problem, code)], subject="workflow document")

    def _summary(self) -> str:
        return f"{self.source or 'document'}: {self.problem}"

    def at(self, source: str) -> DocumentError:
        """This error naming ``source`` (unless it already names one)."""
        if self.source is not None:
            return self
        return DocumentError(self.problem, source, self.issues[0].code)


def pydantic_issues(exc: object, prefix: str) -> list[ValidationIssue]:
    """Turn a pydantic ``ValidationError`` into located issues under ``prefix``."""
    from pydantic import ValidationError

    assert isinstance(exc, ValidationError)
    issues = []
    for err in exc.errors(include_url=False):
        loc = prefix
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else f".{part}"
        issues.append(ValidationIssue(loc.lstrip("."), err["msg"], err["type"]))
    return issues
