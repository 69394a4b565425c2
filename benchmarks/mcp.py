"""Per-call overhead of an MCP tool through fm_lab beside the MCP SDK's bare client, same run.

The server is the tests' calculator (``tests/mcp/servers.py``, written with the SDK's
``MCPServer``); every contender calls its ``add`` tool. Transports: stdio (a subprocess per
client) and streamable HTTP (one server subprocess on a loopback port, a session per client).

Contenders, each with its own session to its own server process (stdio) or its own session
(HTTP), all opened and warmed up before timing:

1. ``sdk``: ``await ClientSession.call_tool("add", ...)`` in one asyncio loop: the floor.
2. ``fm_lab acall``: ``await server.acall("add", ...)`` from another asyncio loop: the hop
   to fm_lab's MCP loop thread and back, the result conversion and the ``tool`` span (a no-op
   outside a run, as here).
3. ``fm_lab tool``: what an agent does per call: ``McpTool.parse`` (the server's JSON Schema
   checks the arguments) + ``McpTool.call``.
4. ``fm_lab call (sync)``: ``server.call("add", ...)`` from synchronous code (a notebook cell).

Calls run in interleaved blocks (``--block`` calls per contender per round, ``--rounds``
rounds) so drift hits every contender alike; per-call median and p95 wall times are printed
in microseconds, with the overhead over the SDK's median, and the client process's CPU time
per call (every thread: the SDK's loop, fm_lab's MCP loop) with its overhead over the SDK's:
on a loaded machine the CPU figure is the steadier measure of what fm_lab adds.

Usage::

    .venv/bin/python benchmarks/mcp.py                 # 5 rounds x 200 calls per contender
    .venv/bin/python benchmarks/mcp.py --rounds 2 --block 50 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# this file is named like the SDK's package: `python benchmarks/mcp.py` puts benchmarks/ first
# on sys.path, where `import mcp` would find this file
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import fm_lab  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SERVER = str(ROOT / "tests" / "mcp" / "servers.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int) -> None:
    for _ in range(600):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"no server on port {port}")


class _SdkClient:
    """The SDK's bare client on a loop of its own thread (so it can be driven in blocks)."""

    def __init__(self, transport: str, url: str | None) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.stop = asyncio.Event()
        self.ready: asyncio.Future[Any] = self.loop.create_future()
        asyncio.run_coroutine_threadsafe(self._own(transport, url), self.loop)
        self.session = asyncio.run_coroutine_threadsafe(self._ready(), self.loop).result(60)

    async def _ready(self) -> Any:
        return await self.ready

    async def _own(self, transport: str, url: str | None) -> None:
        from mcp.client.stdio import StdioServerParameters, stdio_client
        from mcp.client.streamable_http import streamable_http_client

        from mcp import ClientSession

        opened = (stdio_client(StdioServerParameters(command=sys.executable, args=[SERVER]))
                  if transport == "stdio" else streamable_http_client(url or ""))
        try:
            async with opened as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                self.ready.set_result(session)
                await self.stop.wait()
        except Exception as exc:
            if not self.ready.done():
                self.ready.set_exception(exc)

    def block(self, n: int) -> list[float]:
        async def run() -> list[float]:
            times = []
            for i in range(n):
                start = time.perf_counter()
                await self.session.call_tool("add", {"a": i, "b": 1})
                times.append(time.perf_counter() - start)
            return times
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)


def _async_block(loop: asyncio.AbstractEventLoop,
                 one: Callable[[int], Awaitable[Any]]) -> Callable[[int], list[float]]:
    def block(n: int) -> list[float]:
        async def run() -> list[float]:
            times = []
            for i in range(n):
                start = time.perf_counter()
                await one(i)
                times.append(time.perf_counter() - start)
            return times
        return loop.run_until_complete(run())
    return block


def _sync_block(server: fm_lab.mcp.McpServer) -> Callable[[int], list[float]]:
    def block(n: int) -> list[float]:
        times = []
        for i in range(n):
            start = time.perf_counter()
            server.call("add", {"a": i, "b": 1})
            times.append(time.perf_counter() - start)
        return times
    return block


def measure(transport: str, rounds: int, block: int, url: str | None) -> dict[str, Any]:
    """Per-call times of every contender on ``transport``."""
    def spec() -> dict[str, Any]:
        return {"command": [sys.executable, SERVER]} if transport == "stdio" else {"url": url}

    sdk = _SdkClient(transport, url)
    via_acall = fm_lab.mcp.server(f"bench-{transport}-acall", **spec())
    via_tool = fm_lab.mcp.server(f"bench-{transport}-tool", **spec())
    via_sync = fm_lab.mcp.server(f"bench-{transport}-sync", **spec())
    loop = asyncio.new_event_loop()
    [add] = via_tool.tools(only=["add"])

    async def tool_call(i: int) -> Any:
        return await add.call(add.parse({"a": i, "b": 1}))

    contenders: dict[str, Callable[[int], list[float]]] = {
        "sdk": sdk.block,
        "fm_lab acall": _async_block(loop, lambda i: via_acall.acall("add", {"a": i, "b": 1})),
        "fm_lab tool": _async_block(loop, tool_call),
        "fm_lab call (sync)": _sync_block(via_sync),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for run in contenders.values():  # warm-up: sessions open, code paths hot
        run(50)
    cpu: dict[str, float] = dict.fromkeys(contenders, 0.0)
    for _ in range(rounds):
        for name, run in contenders.items():
            before = time.process_time()  # every thread of this process: client-side work
            samples[name] += run(block)
            cpu[name] += time.process_time() - before
    sdk.close()
    for server in (via_acall, via_tool, via_sync):
        server.close()
    loop.close()
    floor = statistics.median(samples["sdk"])
    cpu_floor = cpu["sdk"] / len(samples["sdk"])
    result = {}
    for name, times in samples.items():
        times.sort()
        median = statistics.median(times)
        per_call_cpu = cpu[name] / len(times)
        result[name] = {"calls": len(times), "median_us": round(median * 1e6, 1),
                        "p95_us": round(times[int(len(times) * 0.95)] * 1e6, 1),
                        "overhead_us": round((median - floor) * 1e6, 1),
                        "client_cpu_us": round(per_call_cpu * 1e6, 1),
                        "cpu_overhead_us": round((per_call_cpu - cpu_floor) * 1e6, 1)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    port = _free_port()
    http = subprocess.Popen([sys.executable, SERVER, "--http", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port)
        report = {"python": platform.python_version(), "machine": platform.machine(),
                  "stdio": measure("stdio", args.rounds, args.block, None),
                  "http": measure("http", args.rounds, args.block,
                                  f"http://127.0.0.1:{port}/mcp")}
    finally:
        http.terminate()
        http.wait(10)
    for transport in ("stdio", "http"):
        print(f"\n{transport}: per call: wall median, p95 and over the SDK's median; the "
              "client process's CPU and over the SDK's")
        for name, row in report[transport].items():
            print(f"  {name:<20} {row['median_us']:>9.1f} us  p95 {row['p95_us']:>9.1f} us  "
                  f"{row['overhead_us']:+9.1f} us | cpu {row['client_cpu_us']:>8.1f} us "
                  f"{row['cpu_overhead_us']:+8.1f} us  ({row['calls']} calls)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
