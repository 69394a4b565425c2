"""The kernel-side engine: plans, the scheduler, runs and the user-facing entry points."""

from fm_lab.engine.api import (
    arerun,
    aresume,
    arun,
    asignal,
    cancel,
    connect,
    default_store,
    get_run,
    pending,
    recover,
    rerun,
    resume,
    run,
    runs,
    signal,
    validate,
)
from fm_lab.engine.errors import (
    ResumeError,
    ResumeValidationError,
    RunFailedError,
    StateValidationError,
)
from fm_lab.engine.run import NodeResult, Run
from fm_lab.exceptions import NodeError

__all__ = [
    "NodeError",
    "NodeResult",
    "ResumeError",
    "ResumeValidationError",
    "Run",
    "RunFailedError",
    "StateValidationError",
    "arerun",
    "aresume",
    "arun",
    "asignal",
    "cancel",
    "connect",
    "default_store",
    "get_run",
    "pending",
    "recover",
    "rerun",
    "resume",
    "run",
    "runs",
    "signal",
    "validate",
]
