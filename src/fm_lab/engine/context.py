"""What a node sees while it runs: its run, inputs, state, request context, and the durable
operations (suspend, journaled steps, sleeps, nested bodies, child runs)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fm_lab.exceptions import NodeError, Suspended

if TYPE_CHECKING:
    from fm_lab.engine.runner import Runner
    from fm_lab.engine.session import RunSession

EXPIRED = "__fm_expired__"
SUSPEND_SLEEPS_FROM_S = 60.0  # a sleep at least this long suspends the run (see sleep_until)


class NodeRunContext:
    """The engine's implementation of :class:`fm_lab.nodes.NodeContext`."""

    __slots__ = (
        "_runner",
        "_step_counts",
        "_suspends",
        "attempt",
        "events",
        "node_id",
        "path",
        "resume_schema",
        "state_patch",
    )

    def __init__(
        self,
        runner: Runner,
        node_id: str,
        attempt: int,
        path: str | None = None,
        resume_schema: dict[str, Any] | None = None,
    ) -> None:
        self._runner = runner
        self.node_id = node_id
        self.path = path if path is not None else runner.prefix + node_id
        self.attempt = attempt
        self.state_patch: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] | None = None
        self.resume_schema = resume_schema
        self._suspends = 0
        self._step_counts: dict[str, int] = {}

    @property
    def session(self) -> RunSession:
        return self._runner.session

    @property
    def run_id(self) -> str:
        return self._runner.session.run_id

    @property
    def inputs(self) -> Mapping[str, Any]:
        """The run's (validated) inputs."""
        return MappingProxyType(self._runner.inputs)

    @property
    def request_context(self) -> dict[str, Any]:
        """Per-run key-value context shared by every node (and later tools and agents)."""
        return self._runner.session.request_context

    @property
    def abort(self) -> asyncio.Event:
        """Set when the run is cancelled or failing; long nodes should check it."""
        return self._runner.session.abort

    @property
    def state(self) -> Mapping[str, Any]:
        """The workflow state as this node sees it (its own updates included)."""
        if self.state_patch:
            return MappingProxyType({**self._runner.state, **self.state_patch})
        return MappingProxyType(self._runner.state)

    def set_state(self, updates: Mapping[str, Any]) -> None:
        """Merge ``updates`` into the state; raises StateValidationError if the result does not
        match the state schema. Applied when the node succeeds."""
        merged = {**self._runner.state, **(self.state_patch or {}), **updates}
        self._runner.plan.check_state(merged, self.node_id)
        self.state_patch = {**(self.state_patch or {}), **updates}

    def add_event(self, name: str, **attributes: Any) -> None:
        """Attach an event (a log line, a milestone) to this node's span."""
        if self.events is None:
            self.events = []
        self.events.append({"name": name, "time": time.time(), "attributes": attributes})
        if name == "log":  # a line for run event streams too (fm_lab.stream)
            self._runner.session.emit({**attributes, "type": "log", "path": self.path,
                                       "node_id": self.node_id})

    def progress(self, total: int) -> None:
        """Announce how many items this node will work through (progress bars, widgets)."""
        self._runner.session.emit({"type": "items", "path": self.path, "node_id": self.node_id,
                                   "total": total})

    def scope(self) -> dict[str, Any]:
        """The template scope: ``nodes``, ``inputs``, ``state`` and ``run``."""
        return self._runner.scope()

    # ---- human in the loop ---------------------------------------------------------------
    @property
    def resume_data(self) -> Any:
        """The data this path was resumed with (None on a first run)."""
        return self.session.resume.get(self.path)

    async def suspend(
        self,
        payload: Any = None,
        *,
        label: str | None = None,
        schema: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        on_timeout: str = "fail",
        default: Any = None,
        assignees: Sequence[str] = (),
        roles: Sequence[str] = (),
    ) -> Any:
        """Wait for outside data: the run suspends here and, once resumed with data that
        matches ``schema`` (default: the node type's resume schema), this call returns it.

        ``timeout_s``: when it expires, ``on_timeout="fail"`` fails the path and
        ``"default"`` resumes it with ``default``. ``assignees`` (user names) and ``roles``
        restrict who may answer (``fm_lab.pending(mine=True)`` lists it for them; anyone
        else's resume is refused); none: anyone.
        """
        key = self._suspend_key()
        if key in self.session.resume:  # answered: every later execution gets the same answer
            data = self.session.resume[key]
            if isinstance(data, dict) and data.get(EXPIRED):
                raise NodeError(
                    f"the suspension of {key} expired before it was resumed",
                    kind="timeout",
                    retryable=False,
                )
            return data
        expires = time.time() + timeout_s if timeout_s is not None else None
        raise Suspended(
            key,
            label=label or self.node_id,
            payload=payload,
            resume_schema=schema if schema is not None else self.resume_schema,
            expires_at=expires,
            on_timeout=on_timeout,
            default=default,
            assignees=assignees,
            roles=roles,
        )

    def _suspend_key(self) -> str:
        """The path of this node's next suspension (``path``, ``path#2``, ...)."""
        self._suspends += 1
        return self.path if self._suspends == 1 else f"{self.path}#{self._suspends}"

    async def step(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` once per run: its result is journaled, and when the node runs again
        (after a suspend or a crash) the recorded result is returned instead of re-running it.
        Use it for side effects before a suspend (charges, e-mails)."""
        count = self._step_counts.get(name, 0) + 1
        self._step_counts[name] = count
        key = f"{self.path}#{name}" + (f"#{count}" if count > 1 else "")
        steps = self.session.steps
        if key in steps:
            return steps[key]
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        recorder = self.session.recorder
        recorder.append(
            {"k": "step", "path": self.path, "name": key, "result": result, "created": time.time()}
        )
        await recorder.durable()
        steps[key] = result
        return result

    async def sleep(self, seconds: float, *, suspend: bool | None = None) -> None:
        """Sleep durably: after a restart only the time left is slept. ``suspend``: see
        :meth:`sleep_until` (default: for ``SUSPEND_SLEEPS_FROM_S`` seconds or more)."""
        wake_at = await self.step("sleep", time.time)
        if suspend is None:
            suspend = seconds >= SUSPEND_SLEEPS_FROM_S
        await self.sleep_until(float(wake_at) + seconds, suspend=suspend)

    async def sleep_until(self, timestamp: float, *, suspend: bool | None = None) -> None:
        """Sleep until a UNIX time (returns at once if it has passed); stops on abort.

        With ``suspend`` (default: when the wait is ``SUSPEND_SLEEPS_FROM_S`` or more) the
        path suspends instead, expiring at ``timestamp``: the process is free meanwhile, and a
        timer (:mod:`fm_lab.timers`, ``fm-lab recover``) resumes the run once it is due."""
        key = self._suspend_key()  # taken in every execution, so later suspends keep theirs
        if key in self.session.resume:  # woken by a timer (or resumed early)
            return
        remaining = timestamp - time.time()
        if remaining <= 0:
            return
        if suspend is None:
            suspend = remaining >= SUSPEND_SLEEPS_FROM_S
        if suspend:
            raise Suspended(key, label=self.node_id, payload={"sleep_until": timestamp},
                            expires_at=timestamp, on_timeout="default")
        try:
            await asyncio.wait_for(self.abort.wait(), remaining)
        except TimeoutError:
            return
        raise asyncio.CancelledError("run aborted")

    # ---- composition ---------------------------------------------------------------------
    async def run_body(
        self,
        body: Mapping[str, Any],
        key: str,
        *,
        scope: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> Any:
        """Run a body (``{"node": {...}}`` or ``{"workflow": ...}``) at ``path + key`` with
        its own checkpoint; a finished body is not run again."""
        from fm_lab.engine.bodies import run_body

        return await run_body(
            self._runner, self.path + key, body, scope or {}, inputs or {}, default_id=self.node_id
        )

    async def run_child(self, workflow: Any, inputs: Mapping[str, Any]) -> Any:
        """Run ``workflow`` as a child run linked to this run; returns its outputs."""
        from fm_lab.engine.bodies import run_child

        return await run_child(self._runner, self.path, workflow, dict(inputs))

    def commit(self) -> None:
        """Make the checkpoints written so far durable now, on this thread. Rarely needed: the
        engine commits every record within one write and fsync, off the event loop."""
        self.session.recorder.commit()
