"""Errors of node executions, classified so retry policies and users can act on them."""

from __future__ import annotations

import asyncio
import sys
import traceback
from typing import Any

from fm_lab.exceptions import ErrorKind, NodeError


class StateValidationError(NodeError):
    """A state update does not match the workflow's state schema."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="validation", retryable=False, domain="state")


class RunFailedError(RuntimeError):
    """Raised by ``Run.raise_for_status()`` for a failed run."""


def classify(exc: BaseException, node_type: str) -> dict[str, Any]:
    """Describe ``exc`` as a stored error: kind, domain, retryable, message, type, traceback."""
    kind: ErrorKind
    retryable: bool
    domain = node_type
    if isinstance(exc, NodeError):
        kind = exc.kind
        retryable = (
            exc.retryable
            if exc.retryable is not None
            else kind in ("provider", "timeout", "system")
        )
        domain = exc.domain or node_type
    elif isinstance(exc, TimeoutError | asyncio.TimeoutError) or _is_http_timeout(exc):
        kind, retryable = "timeout", True
    elif _is_validation(exc):
        kind, retryable = "validation", False
    elif _is_provider(exc):
        kind, retryable = "provider", True
    elif isinstance(exc, MemoryError | OSError) and not isinstance(exc, FileNotFoundError):
        kind, retryable = "system", True
    else:
        kind, retryable = "user", False
    message = str(exc) or type(exc).__name__
    return {
        "kind": kind,
        "domain": domain,
        "retryable": retryable,
        "type": type(exc).__name__,
        "message": message,
        "traceback": "".join(traceback.format_exception(exc, limit=-8)),
    }


def _is_validation(exc: BaseException) -> bool:
    from pydantic import ValidationError

    from fm_lab.spec.errors import WorkflowValidationError
    from fm_lab.store.codec import NotSerialisableError

    jinja2 = sys.modules.get("jinja2")  # a template error needs jinja2 loaded: not imported
    return isinstance(exc, ValidationError | WorkflowValidationError | NotSerialisableError) or (
        jinja2 is not None and isinstance(exc, jinja2.TemplateError))


def _is_http_timeout(exc: BaseException) -> bool:
    httpx = sys.modules.get("httpx")  # (as jinja2 above)
    return httpx is not None and isinstance(exc, httpx.TimeoutException)


def _is_provider(exc: BaseException) -> bool:
    httpx = sys.modules.get("httpx")
    if httpx is None:
        return False
    if isinstance(exc, httpx.HTTPStatusError):
        return bool(exc.response.status_code >= 500 or exc.response.status_code == 429)
    return isinstance(exc, httpx.TransportError)


class ResumeError(ValueError):
    """A resume request that cannot be applied; the run is left unchanged."""


class ResumeNotAllowedError(ResumeError):
    """The user resuming is not among a suspension's assignees or roles; the run is left
    unchanged (the refusal is logged in the audit log)."""


class ResumeValidationError(ResumeError):
    """Resume data does not match the suspended node's resume schema.

    ``.issues`` lists every problem (location and message), like WorkflowValidationError.
    """

    def __init__(self, message: str, issues: list[Any]) -> None:
        self.issues = issues
        super().__init__(message + "".join(f"\n  - {i}" for i in issues))
