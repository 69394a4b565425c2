"""Exceptions a node may raise: importable from every layer (this module imports nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

ErrorKind = Literal["user", "validation", "provider", "timeout", "system"]


class NodeError(Exception):
    """An error a node raises on purpose, with its kind and whether a retry may help.

    >>> raise NodeError("quota exceeded", kind="provider", retryable=True)
    Traceback (most recent call last):
    fm_lab.exceptions.NodeError: quota exceeded
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind = "user",
        retryable: bool | None = None,
        domain: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.retryable = retryable
        self.domain = domain


class Suspended(Exception):
    """Raised inside a node by ``ctx.suspend``: the node's path waits for outside data.

    ``leaf`` suspensions carry a label, payload and resume schema and are listed by
    ``fm_lab.pending()``; a composite node (foreach, parallel, subflow) raises a non-leaf one
    when some of its sub-paths wait. ``assignees`` and ``roles`` name who may answer (none:
    anyone). ``payload_schema``: the JSON schema ``payload`` was checked against (the
    widget's form shows the payload by it).
    """

    def __init__(
        self,
        path: str,
        *,
        label: str | None = None,
        payload: Any = None,
        resume_schema: dict[str, Any] | None = None,
        leaf: bool = True,
        expires_at: float | None = None,
        on_timeout: str = "fail",
        default: Any = None,
        assignees: Sequence[str] = (),
        roles: Sequence[str] = (),
        payload_schema: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{path} is suspended" + (f" ({label})" if label else ""))
        self.path = path
        self.label = label
        self.payload = payload
        self.resume_schema = resume_schema
        self.leaf = leaf
        self.expires_at = expires_at
        self.on_timeout = on_timeout
        self.default = default
        self.assignees = list(assignees)
        self.roles = list(roles)
        self.payload_schema = payload_schema
