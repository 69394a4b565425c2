"""``run_sync`` (fm_lab/sync.py): the main thread keeps one event loop for call after call, and
each call still behaves as ``asyncio.run``: the caller's context copied in, nothing leaked out,
left-over tasks cancelled and async generators closed before it returns; an interrupted call
leaves the next one a fresh loop; other threads, and a running loop's thread, get their own."""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fm_lab.sync import run_sync

NAME: contextvars.ContextVar[str] = contextvars.ContextVar("NAME", default="unset")


@pytest.fixture
def python_sigint() -> Any:
    """Python's own SIGINT handler (Ctrl-C raises KeyboardInterrupt), as a script and a
    Jupyter kernel have it, whatever an earlier test in this process installed."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


async def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


async def _until_cancelled(seen: list[str], winding_down: bool = False) -> None:
    """Sleep until cancelled, then note it in ``seen`` (after a turn of the loop when
    ``winding_down``, as cleanup that awaits)."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        if winding_down:
            await asyncio.sleep(0.01)
        seen.append("cancelled")
        raise


def test_the_main_thread_keeps_one_loop_for_call_after_call() -> None:
    assert threading.current_thread() is threading.main_thread()
    first, second = run_sync(_loop()), run_sync(_loop())
    assert first is second and not first.is_closed()


def test_each_call_runs_in_a_copy_of_the_callers_context() -> None:
    async def read_and_set() -> str:
        seen = NAME.get()
        NAME.set("inside")
        return seen

    token = NAME.set("caller")
    try:
        assert run_sync(read_and_set()) == "caller"
        assert NAME.get() == "caller"  # the call's change stays in its copy
        NAME.set("later")
        assert run_sync(read_and_set()) == "later"  # no earlier call's copy comes back
    finally:
        NAME.reset(token)


def test_tasks_a_call_leaves_are_cancelled_before_it_returns() -> None:
    seen: list[str] = []

    async def leave_one() -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(_until_cancelled(seen))
        await asyncio.sleep(0)  # it starts
        return task

    task = run_sync(leave_one())
    assert task.cancelled() and seen == ["cancelled"]
    assert run_sync(_loop()) is task.get_loop()  # the loop serves the next call


def test_async_generators_a_call_leaves_open_are_closed_before_it_returns() -> None:
    closed: list[bool] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            closed.append(True)

    async def take_one() -> tuple[int, Any]:
        gen = numbers()
        return await gen.__anext__(), gen  # the generator stays alive, suspended

    first, gen = run_sync(take_one())
    assert (first, closed) == (0, [True])
    again, gen = run_sync(take_one())  # the kept loop still takes new generators, unwarned
    assert (again, closed) == (0, [True, True])
    del gen


def test_an_error_in_the_call_is_raised_and_the_loop_kept() -> None:
    async def boom() -> None:
        raise ValueError("boom")

    before = run_sync(_loop())
    with pytest.raises(ValueError, match="boom"):
        run_sync(boom())
    assert run_sync(_loop()) is before


def test_an_interrupted_call_leaves_the_next_one_a_fresh_loop(python_sigint: None) -> None:
    async def interrupted() -> None:
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)  # Ctrl-C
        await asyncio.sleep(3600)

    before = run_sync(_loop())
    with pytest.raises(KeyboardInterrupt):
        run_sync(interrupted())
    assert before.is_closed()
    after = run_sync(_loop())
    assert after is not before and not after.is_closed()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_cancels_the_call_which_winds_down_first(python_sigint: None) -> None:
    wound_down: list[str] = []

    async def interrupted() -> None:
        try:
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            await asyncio.sleep(3600)
        finally:
            wound_down.append(repr(signal.getsignal(signal.SIGINT)))

    with pytest.raises(KeyboardInterrupt):
        run_sync(interrupted())
    assert wound_down == ["<fm_lab: Ctrl-C cancels the run>"]  # cancelled, not killed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_call_that_handles_its_ctrl_c_returns_its_result(python_sigint: None) -> None:
    async def stubborn() -> str:
        try:
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            return "kept going"
        return "not interrupted"

    assert run_sync(stubborn()) == "kept going"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_sigint_handler_set_by_someone_else_is_kept(python_sigint: None) -> None:
    seen: list[int] = []

    def theirs(signum: int, frame: object) -> None:
        seen.append(signum)

    async def interrupted() -> str:
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        await asyncio.sleep(0.01)
        return "done"

    signal.signal(signal.SIGINT, theirs)
    assert run_sync(interrupted()) == "done"
    assert seen == [signal.SIGINT] and signal.getsignal(signal.SIGINT) is theirs


def test_other_threads_get_a_loop_per_call() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    def twice() -> None:
        loops.extend([run_sync(_loop()), run_sync(_loop())])

    worker = threading.Thread(target=twice)
    worker.start()
    worker.join(600)  # a hang guard, not a timing assertion
    assert len(loops) == 2 and loops[0] is not loops[1]
    assert all(loop.is_closed() for loop in loops)


def test_inside_a_running_loop_the_call_runs_on_a_thread_in_the_callers_context() -> None:
    async def notebook_cell() -> tuple[str, str]:
        async def where() -> str:
            return threading.current_thread().name

        token = NAME.set("cell")
        try:
            inner = run_sync(where())  # as fm_lab.run inside Jupyter's running loop
            copied = run_sync(_name())
        finally:
            NAME.reset(token)
        return inner, copied

    async def _name() -> str:
        return NAME.get()

    inner, copied = asyncio.run(notebook_cell())
    assert inner.startswith("fm_lab-run") and copied == "cell"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_on_a_loop_of_its_own() -> None:
    parent_loop = run_sync(_loop())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        try:
            child_loop = run_sync(_loop())
            ok = child_loop is not parent_loop and run_sync(_loop()) is child_loop
            os.write(write, b"ok" if ok else b"same")
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        assert pipe.read() == b"ok"
    assert os.waitstatus_to_exitcode(status) == 0
    assert run_sync(_loop()) is parent_loop


def test_a_call_that_leaves_callbacks_scheduled_leaves_the_next_one_a_fresh_loop() -> None:
    fired: list[str] = []

    async def schedule_later() -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, fired.append, "late")  # asyncio.run drops it with its loop
        return loop

    before = run_sync(schedule_later())
    after = run_sync(_loop())
    assert before.is_closed() and after is not before and fired == []
    assert run_sync(_loop()) is after  # a clean call keeps its loop again


def _cell(body: Any) -> Any:
    """Run ``body`` (a coroutine) as a notebook cell runs: on a running loop in the main
    thread, with Python's own SIGINT handler (a kernel interrupt raises KeyboardInterrupt)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(body)
    finally:
        loop.close()


def test_calls_inside_a_running_loop_share_one_kept_thread_and_loop() -> None:
    async def where() -> tuple[str, asyncio.AbstractEventLoop]:
        return threading.current_thread().name, asyncio.get_running_loop()

    async def cell() -> list[tuple[str, asyncio.AbstractEventLoop]]:
        return [run_sync(where()), run_sync(where())]

    (name, first), (_, second) = _cell(cell())
    assert name == "fm_lab-run" and first is second and not first.is_closed()


def test_a_call_made_inside_a_call_gets_a_thread_of_its_own() -> None:
    async def inner() -> str:
        return f"inner on {threading.current_thread().name}"

    async def outer() -> tuple[str, str]:
        return run_sync(inner()), threading.current_thread().name  # a node calling fm_lab.run

    async def cell() -> tuple[str, str]:
        return run_sync(outer())

    nested, outer_thread = _cell(cell())
    assert nested == "inner on fm_lab-run" and outer_thread == "fm_lab-run"


def test_a_kernel_interrupt_cancels_the_call_and_is_raised_once_it_wound_down(
        python_sigint: None) -> None:
    started, wound = threading.Event(), []

    async def long_run() -> None:
        started.set()
        await _until_cancelled(wound, winding_down=True)

    def interrupt() -> None:
        assert started.wait(600)  # a hang guard, not a timing assertion
        # delivered to this thread, not the waiting main one: a kernel's SIGINT may land on
        # any thread of the process, and the main thread must still notice it
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    async def cell() -> None:
        threading.Thread(target=interrupt).start()
        run_sync(long_run())

    with pytest.raises(KeyboardInterrupt):
        _cell(cell())
    assert wound == ["cancelled"]  # before the interrupt reached the cell

    async def after() -> str:
        return "still serving"

    async def next_cell() -> str:
        return run_sync(after())

    assert _cell(next_cell()) == "still serving"


def test_the_running_loop_is_the_current_loop_in_every_call() -> None:
    async def current_is_running() -> bool:  # as code that asks the policy does
        return asyncio.get_event_loop_policy().get_event_loop() is asyncio.get_running_loop()

    assert [run_sync(current_is_running()) for _ in range(3)] == [True, True, True]


def test_inside_a_running_loop_a_call_returns_after_its_cleanup() -> None:
    events: list[str] = []

    async def call() -> str:
        asyncio.get_running_loop().create_task(_until_cancelled(events, winding_down=True))
        await asyncio.sleep(0)
        return "result"

    async def cell() -> None:
        events.append(f"returned {run_sync(call())}")

    _cell(cell())
    assert events == ["cancelled", "returned result"]  # as asyncio.run orders them


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_collecting_garbage_leaves_the_parents_loop_working() -> None:
    """A child that drops the parent's loops and collects them would unregister the parent's
    self-pipe from the epoll instance both share: the parent's next wait for another thread's
    work would never wake."""
    async def from_a_thread() -> str:
        return await asyncio.to_thread(lambda: "woken")

    async def cell() -> str:
        return run_sync(from_a_thread())

    assert run_sync(from_a_thread()) == "woken"
    assert _cell(cell()) == "woken"  # the loop thread has a loop too
    pid = os.fork()
    if pid == 0:
        try:
            import gc
            import warnings

            warnings.simplefilter("ignore")  # as a worker process runs (pytest's filter would
            gc.collect()  # turn the unclosed loop's warning into an error before its close)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    # a hang guard, not a timing assertion: Ctrl-C ends a call that would never wake
    guard = threading.Timer(600, lambda: os.kill(os.getpid(), signal.SIGINT))
    guard.start()
    try:
        assert run_sync(from_a_thread()) == "woken"  # the main thread's kept loop
        assert _cell(cell()) == "woken"  # the loop thread's
    finally:
        guard.cancel()
