"""Executors beyond this process: where a run executes when ``executor=`` names one (e.g.
``"temporal"``), and how a stored run is recognised as owned by one (its ``owner_host`` is the
executor's address, ``temporal://127.0.0.1:7233/default?task_queue=fm_lab``).

The engine does not import an executor's package (it sits above the engine, see
docs/design.md "Layers"): a package registers its executor here when imported
(:func:`register_executor`), and a known name is imported by its module path on first use, as
an entry point would be.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fm_lab.engine.run import Run
    from fm_lab.nodes.registry import NodeRegistry
    from fm_lab.security.policy import Policy
    from fm_lab.spec.models import Workflow
    from fm_lab.store.base import RunStore

KNOWN: dict[str, str] = {"temporal": "fm_lab.temporal.executor"}
"""Executor scheme -> the module that registers it when imported."""


class RunHandle(Protocol):
    """A submitted run: its id, and a way to wait for it to finish or suspend."""

    run_id: str

    async def wait(self) -> Run:
        """The run once it has finished or suspended (it keeps executing elsewhere)."""
        ...


class RemoteExecutor(Protocol):
    """What the engine asks of an executor that runs workflows outside this process."""

    async def submit(self, target: str, workflow: Workflow, inputs: dict[str, Any], *,
                     run_id: str | None, store: RunStore, registry: NodeRegistry,
                     policy: Policy | str | None,
                     request_context: dict[str, Any] | None) -> RunHandle:
        """Validate and start a run of ``workflow`` at ``target`` (``"temporal"`` or its URL);
        return at once. Invalid workflows or inputs raise before anything is stored."""
        ...

    async def resume(self, owner: str, run_id: str, path_id: str, data: Any, user: str,
                     store: RunStore) -> None:
        """Deliver ``data`` (already checked) to the suspension ``path_id`` of ``run_id``,
        owned by ``owner``; return once the run has finished or suspended again."""
        ...

    async def settled(self, owner: str, run_id: str) -> None:
        """Return once ``run_id`` (owned by ``owner``) has finished or suspended."""
        ...

    async def cancel(self, owner: str, run_id: str, wait_s: float) -> None:
        """Cancel ``run_id`` (owned by ``owner``), waiting up to ``wait_s`` for it to stop."""
        ...


_EXECUTORS: dict[str, RemoteExecutor] = {}


def register_executor(scheme: str, executor: RemoteExecutor) -> None:
    """Make ``executor`` the one ``executor=scheme`` (or ``scheme://...``) runs on."""
    _EXECUTORS[scheme] = executor


def scheme_of(target: str) -> str:
    """``"temporal"`` of ``"temporal"`` and of ``"temporal://host:port/..."``."""
    return target.split("://", 1)[0]


def executor_for(target: str) -> RemoteExecutor:
    """The executor ``target`` names, imported on first use; a clear error for others."""
    scheme = scheme_of(target)
    if scheme not in _EXECUTORS and scheme in KNOWN:
        try:
            importlib.import_module(KNOWN[scheme])
        except ImportError as exc:
            raise ImportError(f"executor={target!r} needs the {scheme} extra: pip install "
                              f"'fm_lab[{scheme}]' ({exc})") from None
    found = _EXECUTORS.get(scheme)
    if found is None:
        raise ValueError(f"unknown executor {target!r}: use 'local' or one of "
                         f"{', '.join(sorted(set(KNOWN) | set(_EXECUTORS)))}")
    return found


def remote_owner(store: RunStore, run_id: str) -> str | None:
    """The executor address owning stored run ``run_id`` (None: a local run, or none)."""
    from fm_lab.store.base import SQL, has, sql_store

    if not has(store, SQL) or store.memory or getattr(store, "file_missing", False):
        return None  # (a missing file stays missing: load_run explains what became of it)
    frame = sql_store(store, "remote runs").sql(
        "select owner_host from runs where run_id = ?", [run_id])
    if frame.empty:
        return None
    host = frame["owner_host"].iloc[0]
    if isinstance(host, str) and "://" in host and scheme_of(host) in set(KNOWN) | set(
            _EXECUTORS):
        return host
    return None


__all__ = ["KNOWN", "RemoteExecutor", "RunHandle", "executor_for", "register_executor",
           "remote_owner", "scheme_of"]
