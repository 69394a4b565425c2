"""A run in this process is cancelled by ``fm_lab.cancel`` called in another process: the
other process leaves a cancel request (a file beside a DuckDB store, a row in PostgreSQL), this
run's periodic check consumes it and stops."""

from __future__ import annotations

import asyncio
import sys

import fm_lab

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)


async def test_a_cancel_from_another_process_stops_the_run_and_is_consumed(store, register,
                                                                          reopen):
    started = asyncio.Event()
    seen = []

    async def watch(ctx) -> str:
        started.set()
        try:
            await ctx.abort.wait()  # set when the cancel file is consumed
            seen.append("abort")
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "never"

    wf = {"id": "watched", "nodes": {
        "first": {"type": "template", "config": {"template": "kept"}},
        "watch": {"type": "code", "config": {"function": register(watch)}},
        "after": {"type": "template", "config": {"template": "never"}}},
        "edges": ["first -> watch", "watch -> after"]}
    task = asyncio.create_task(fm_lab.arun(wf, store=store, run_id="live-here"))
    await asyncio.wait_for(started.wait(), 30)

    other = await asyncio.create_subprocess_exec(  # this loop keeps running meanwhile
        sys.executable, "-c",
        "import sys, fm_lab; fm_lab.cancel('live-here', store=fm_lab.connect(sys.argv[1]))",
        getattr(store, "url", store.path), stderr=asyncio.subprocess.PIPE)
    _, err = await other.communicate()
    assert other.returncode == 0, err.decode()

    run = await asyncio.wait_for(task, 60)  # a guard: the node would sleep an hour
    assert run.status == "cancelled"
    assert seen == ["abort", "cancelled"]
    assert not store.take_cancel_request("live-here")  # consumed: no later resume sees it
    assert run.node("first").output == "kept"
    assert run.node("after").status == "pending"
    assert fm_lab.get_run("live-here", store=reopen(store)).status == "cancelled"
