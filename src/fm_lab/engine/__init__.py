"""The kernel-side engine: plans, the scheduler, runs and the user-facing entry points."""

from fm_lab.engine.api import (
    aresume,
    arun,
    connect,
    default_store,
    get_run,
    resume,
    run,
    runs,
    validate,
)
from fm_lab.engine.errors import NodeError, RunFailedError, StateValidationError
from fm_lab.engine.run import NodeResult, Run

__all__ = [
    "NodeError",
    "NodeResult",
    "Run",
    "RunFailedError",
    "StateValidationError",
    "aresume",
    "arun",
    "connect",
    "default_store",
    "get_run",
    "resume",
    "run",
    "runs",
    "validate",
]
