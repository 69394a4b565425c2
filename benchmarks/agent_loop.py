"""Agent loop overhead per step, without model latency, against pydantic-ai.

The conversation (the same for every contender): the model asks for the ``add`` tool
``STEPS - 1`` times (one call per step, arguments validated, tool run, result fed back), then
answers with text: ``STEPS`` model calls and ``STEPS - 1`` tool calls per run. Models are
scripted functions that answer at once, so what is timed is the framework, not a model:

- ``fm_lab (whole stack)``: ``Agent.agenerate`` over the offline provider, i.e. the agent loop
  + ``litellm.acompletion`` + the provider (litellm's token counter included).
- ``fm_lab loop only``: the same runs minus the time spent inside ``litellm.acompletion``
  (measured by wrapping it): the agent loop, MessageList, tool validation, spans.
- ``fm_lab in a workflow``: the same agent as an ``agent`` node of an in-memory workflow run
  (spans recorded, model answers and tool results journaled as steps), per step.
- ``fm_lab plain, file store`` / ``fm_lab durable, file store``: ``Agent.agenerate`` on one
  file store (fsync durability), plain (the turn is a trace of its own) and ``durable=True``
  (the turn is a one-node workflow run: every model answer and tool result journaled as a
  step, made durable before the next), alternating run by run; their ratio is printed too.
- ``pydantic-ai``: ``pydantic_ai.Agent`` with a ``FunctionModel`` running the same script and
  an equivalent ``tool_plain`` (no provider layer at all).

Figures are medians over ``--runs`` runs after a warm-up, in microseconds per step.

Usage::

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/agent_loop.py [--runs 30] [--steps 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

import fm_lab
from fm_lab.agents import Agent, register, tool
from fm_lab.llm import script


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def _fm_script(steps: int) -> str:
    def reply(messages: list[dict[str, Any]], tools: Any) -> Any:
        done = sum(1 for m in messages if m["role"] == "tool")
        if done < steps - 1:
            return {"tool_calls": [{"id": f"c{done}", "name": "add",
                                    "arguments": {"a": done, "b": 1}}]}
        return f"done {done}"
    return script("bench-loop", fn=reply)


class _LitellmClock:
    """Time spent inside litellm.acompletion (provider included)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._real = litellm.acompletion

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self._real(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


async def _timed(fn: Callable[[], Awaitable[Any]], runs: int, steps: int) -> list[float]:
    await fn()  # warm-up
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - started) / steps * 1e6)
    return out


async def bench_fm_lab(runs: int, steps: int) -> dict[str, float]:
    agent = Agent("bench", "Add.", model=_fm_script(steps), tools=[add], max_steps=steps + 1)
    clock = _LitellmClock()
    litellm.acompletion = clock
    try:
        whole = []
        loop_only = []
        await agent.agenerate("go")
        for _ in range(runs):
            clock.seconds = 0.0
            started = time.perf_counter()
            result = await agent.agenerate("go")
            elapsed = time.perf_counter() - started
            assert result.text == f"done {steps - 1}" and result.steps == steps
            whole.append(elapsed / steps * 1e6)
            loop_only.append((elapsed - clock.seconds) / steps * 1e6)
    finally:
        litellm.acompletion = clock._real
    register(agent, replace=True)
    store = fm_lab.Store(":memory:")
    flow = {"id": "bench", "nodes": {"agent": {"type": "agent", "config": {
        "agent": "bench", "prompt": "go"}}}}

    async def in_workflow() -> None:
        run = await fm_lab.arun(flow, store=store)
        assert run.status == "succeeded", run.error

    workflow = await _timed(in_workflow, runs, steps)
    plain, durable = await _plain_and_durable(agent, runs, steps)
    return {"fm_lab (whole stack)": statistics.median(whole),
            "fm_lab loop only": statistics.median(loop_only),
            "fm_lab in a workflow": statistics.median(workflow),
            "fm_lab plain, file store": statistics.median(plain),
            "fm_lab durable, file store": statistics.median(durable)}


async def _plain_and_durable(agent: Agent, runs: int, steps: int
                             ) -> tuple[list[float], list[float]]:
    """``agenerate`` plain and durable on one file store, alternating; us per step."""
    plain: list[float] = []
    durable: list[float] = []
    with tempfile.TemporaryDirectory(prefix="fm_agent_") as tmp:
        store = fm_lab.Store(os.path.join(tmp, "agent.duckdb"))
        for i in range(runs + 1):  # the first pair warms up
            for flag, out in ((False, plain), (True, durable)):
                started = time.perf_counter()
                result = await agent.agenerate("go", durable=flag, store=store)
                elapsed = time.perf_counter() - started
                assert result.text == f"done {steps - 1}", result.text
                if i:
                    out.append(elapsed / steps * 1e6)
        store.close()
    return plain, durable


async def bench_pydantic_ai(runs: int, steps: int) -> dict[str, float]:
    from pydantic_ai import Agent as PaiAgent
    from pydantic_ai.messages import (
        ModelRequest,
        ModelResponse,
        TextPart,
        ToolCallPart,
        ToolReturnPart,
    )
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def reply(messages: list[Any], info: AgentInfo) -> ModelResponse:
        done = sum(1 for m in messages if isinstance(m, ModelRequest)
                   for p in m.parts if isinstance(p, ToolReturnPart))
        if done < steps - 1:
            return ModelResponse(parts=[ToolCallPart("add", {"a": done, "b": 1},
                                                     tool_call_id=f"c{done}")])
        return ModelResponse(parts=[TextPart(f"done {done}")])

    agent = PaiAgent(FunctionModel(reply), instructions="Add.")

    @agent.tool_plain
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    async def once() -> None:
        result = await agent.run("go")
        assert result.output == f"done {steps - 1}"

    return {"pydantic-ai (FunctionModel)": statistics.median(await _timed(once, runs, steps))}


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    # the agents without a store of their own trace into the default store: keep it out of
    # the working directory
    os.environ.setdefault("FM_LAB_HOME", tempfile.mkdtemp(prefix="fm_agent_home_"))
    figures = await bench_fm_lab(args.runs, args.steps)
    try:
        figures.update(await bench_pydantic_ai(args.runs, args.steps))
    except ImportError:
        print("pydantic-ai is not installed (pip install -e '.[bench]'): no peer figure")
    versions = ", ".join(f"{name} {_version(name)}" for name in ("litellm", "pydantic-ai-slim"))
    print(f"agent loop, {args.steps} steps per run ({args.steps - 1} tool calls), median of "
          f"{args.runs} runs; python {platform.python_version()}, {versions}")
    for name, value in figures.items():
        print(f"  {name:30} {value:10.0f} us/step")
    ratio = figures["fm_lab durable, file store"] / figures["fm_lab plain, file store"]
    print(f"  durable / plain (same file store, same run): {ratio:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
