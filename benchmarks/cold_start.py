"""What a new kernel pays before fm_lab's first answers, beside its peers in the same run.

Every figure comes from a fresh Python process (the median of ``--reps``); the clock starts
before the first import, so imports count, as they do after a kernel restart:

- ``import``: ``import fm_lab`` / ``import langgraph.graph`` + its ``SqliteSaver``.
- ``--help``: ``python -m fm_lab --help``, whole process (spawn to exit) / ``python -c pass``.
- ``first 10-node chain``: import, build and run a chain of 10 no-op nodes on a new file
  store / LangGraph ``StateGraph`` with ``SqliteSaver`` (``durability="sync"``) on a new file.
- ``later 10-node chain``: the second run in that process (store or saver reused).
- ``... both stored in DuckDB``: fm_lab's runs return once durable in their journals and go
  into DuckDB together a moment later, on a background thread; this is ``store.close()``
  storing both at once (LangGraph's saver stored each as it ran: no figure).
- ``first offline LLM answer``: a one-node workflow whose ``llm`` node asks a scripted offline
  model (answered directly, no litellm) / a pydantic-ai ``Agent`` on a ``FunctionModel``.
- ``... via litellm, preloaded``: the same through litellm's custom provider
  (``FM_LAB_OFFLINE_VIA_LITELLM=1``, the route of provider models), the clock started once
  ``fm_lab.llm.client.preload()`` (what ``%load_ext fm_lab`` starts) has finished: a notebook a
  few seconds after loading.
- ``first durable agent turn``: an ``agent`` node (one tool call, then text: 2 model steps)
  in a file-store run (journaled steps) / the pydantic-ai agent with the same tool.
- ``peak RSS``: the process's maximum resident memory after both chain runs (stored).

Usage::

    python benchmarks/cold_start.py [--reps 3] [--json out.json]

The peers need the ``bench`` extra (``pip install -e '.[bench]'``); without it their column
says ``n/a``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

_CLOCK = "import time, resource, json\n_t0 = time.perf_counter()\n"
_REPORT = ("print(json.dumps({'s': _t1 - _t0, 'rss_mb': "
           "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **_extra}))\n")

_NOOP = """
import fm_lab

@fm_lab.register_node
class Noop(fm_lab.NodeType):
    type_name = "noop"
    description = "does nothing"

    async def run(self, ctx, inputs):
        return None
"""

FM_IMPORT = "import fm_lab\n_t1 = time.perf_counter(); _extra = {}\n"
FM_CHAIN = _NOOP + """
chain = {"id": "chain10", "nodes": {f"n{i}": {"type": "noop"} for i in range(10)},
         "edges": [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(9)]}
store = fm_lab.connect("runs.duckdb")
assert fm_lab.run(chain, store=store).status == "succeeded"
_t1 = time.perf_counter()
assert fm_lab.run(chain, store=store).status == "succeeded"
_t2 = time.perf_counter()
store.close()  # both runs into DuckDB now (else a moment later, on a background thread)
_extra = {"later_s": _t2 - _t1, "stored_s": time.perf_counter() - _t2}
"""
_FM_LLM = """
import fm_lab
from fm_lab.llm import script
model = script("cold", default="Hello from offline.")
flow = {"id": "ask", "nodes": {"ask": {"type": "llm",
        "config": {"model": model, "prompt": "hi"}}}}
store = fm_lab.connect("runs.duckdb")
"""
FM_LLM = _FM_LLM + """
run = fm_lab.run(flow, store=store)
assert run.status == "succeeded" and run.outputs["ask"] == "Hello from offline.", run.error
_t1 = time.perf_counter(); _extra = {}
"""
FM_LLM_PRELOADED = _FM_LLM + """
import os
os.environ["FM_LAB_OFFLINE_VIA_LITELLM"] = "1"
from fm_lab.llm.client import _PRELOAD, preload
preload(); _PRELOAD[0].join()
_t0 = time.perf_counter()
run = fm_lab.run(flow, store=store)
assert run.status == "succeeded", run.error
_t1 = time.perf_counter(); _extra = {}
"""
FM_AGENT = """
import fm_lab
from fm_lab.agents import Agent, register, tool
from fm_lab.llm import script

@tool
def add(a: int, b: int) -> int:
    \"\"\"Add two numbers.\"\"\"
    return a + b

def reply(messages, tools):
    if any(m["role"] == "tool" for m in messages):
        return "3"
    return {"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]}

register(Agent("adder", "Add.", model=script("adder", fn=reply), tools=[add]))
flow = {"id": "turn", "nodes": {"agent": {"type": "agent",
        "config": {"agent": "adder", "prompt": "1+2?"}}}}
run = fm_lab.run(flow, store=fm_lab.connect("runs.duckdb"))
assert run.status == "succeeded", run.error
_t1 = time.perf_counter(); _extra = {}
"""

LG_IMPORT = """
from langgraph.graph import StateGraph
from langgraph.checkpoint.sqlite import SqliteSaver
_t1 = time.perf_counter(); _extra = {}
"""
LG_CHAIN = """
import sqlite3
from typing import TypedDict
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

class State(TypedDict, total=False):
    count: int

def noop(state):
    return {}

builder = StateGraph(State)
for i in range(10):
    builder.add_node(f"n{i}", noop)
builder.add_edge(START, "n0")
for i in range(9):
    builder.add_edge(f"n{i}", f"n{i + 1}")
builder.add_edge("n9", END)
saver = SqliteSaver(sqlite3.connect("lg.sqlite", check_same_thread=False))
saver.setup()
graph = builder.compile(checkpointer=saver)
graph.invoke({}, {"configurable": {"thread_id": "a"}}, durability="sync")
_t1 = time.perf_counter()
graph.invoke({}, {"configurable": {"thread_id": "b"}}, durability="sync")
_extra = {"later_s": time.perf_counter() - _t1}
"""
_PAI = """
from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel

def reply(messages, info):
    if any(isinstance(p, ToolReturnPart) for m in messages for p in m.parts):
        return ModelResponse(parts=[TextPart("3")])
    return ModelResponse(parts=[ToolCallPart("add", {"a": 1, "b": 2})])

agent = Agent(FunctionModel(reply), instructions="Add.")

@agent.tool_plain
def add(a: int, b: int) -> int:
    \"\"\"Add two numbers.\"\"\"
    return a + b
"""
PAI_TURN = _PAI + """
assert agent.run_sync("1+2?").output == "3"
_t1 = time.perf_counter(); _extra = {}
"""
PAI_ANSWER = """
from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, TextPart
from pydantic_ai.models.function import FunctionModel

agent = Agent(FunctionModel(lambda messages, info: ModelResponse(parts=[TextPart("Hello")])))
assert agent.run_sync("hi").output == "Hello"
_t1 = time.perf_counter(); _extra = {}
"""


def _once(code: str) -> dict[str, Any] | None:
    """Run ``code`` in a new interpreter in a new folder; its figures, or None if it failed."""
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run([sys.executable, "-c", _CLOCK + textwrap.dedent(code) + _REPORT],
                              capture_output=True, text=True, cwd=folder)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  (failed: {last[:160]})", file=sys.stderr)
        return None
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _process(args: list[str]) -> dict[str, Any]:
    """Wall time of a whole process, spawn to exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], capture_output=True, check=True)
    return {"s": time.perf_counter() - started}


def _median(samples: list[dict[str, Any] | None], key: str) -> float | None:
    values = [s[key] for s in samples if s is not None and key in s]
    return statistics.median(values) if len(values) == len(samples) and values else None


def _measure(reps: int) -> dict[str, dict[str, float | None]]:
    """Every (fm_lab, peer) pair, alternating rep by rep so a slow spell hits both."""
    pairs: dict[str, tuple[Any, Any]] = {
        "import": (lambda: _once(FM_IMPORT), lambda: _once(LG_IMPORT)),
        "--help (whole process)": (lambda: _process(["-m", "fm_lab", "--help"]),
                                   lambda: _process(["-c", "pass"])),
        "first 10-node chain": (lambda: _once(FM_CHAIN), lambda: _once(LG_CHAIN)),
        "first offline LLM answer": (lambda: _once(FM_LLM), lambda: _once(PAI_ANSWER)),
        "  ... via litellm, preloaded": (lambda: _once(FM_LLM_PRELOADED),
                                    lambda: _once(PAI_ANSWER)),
        "first durable agent turn": (lambda: _once(FM_AGENT), lambda: _once(PAI_TURN)),
    }
    samples: dict[str, tuple[list[Any], list[Any]]] = {k: ([], []) for k in pairs}
    for rep in range(reps):
        for name, (ours, peer) in pairs.items():
            print(f"rep {rep + 1}/{reps}: {name.strip()}", file=sys.stderr)
            samples[name][0].append(ours())
            samples[name][1].append(peer())
    table = {name: {"fm_lab": _median(a, "s"), "peer": _median(b, "s")}
             for name, (a, b) in samples.items()}
    chain = samples["first 10-node chain"]
    table["later 10-node chain"] = {"fm_lab": _median(chain[0], "later_s"),
                                    "peer": _median(chain[1], "later_s")}
    table["  ... both stored in DuckDB"] = {"fm_lab": _median(chain[0], "stored_s"),
                                          "peer": None}
    table["peak RSS, 10-node chain (MB)"] = {"fm_lab": _median(chain[0], "rss_mb"),
                                             "peer": _median(chain[1], "rss_mb")}
    return table


_PEERS = {"import": "LangGraph + SqliteSaver", "--help (whole process)": "python -c pass",
          "first 10-node chain": "LangGraph + SqliteSaver",
          "later 10-node chain": "LangGraph, saver reused",
          "  ... both stored in DuckDB": "(each stored as it ran)",
          "first offline LLM answer": "pydantic-ai FunctionModel",
          "  ... via litellm, preloaded": "pydantic-ai FunctionModel",
          "first durable agent turn": "pydantic-ai FunctionModel (not durable)",
          "peak RSS, 10-node chain (MB)": "LangGraph + SqliteSaver"}


def _cell(value: float | None, mb: bool) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f} MB" if mb else f"{value * 1000:.0f} ms"


def _print(table: dict[str, dict[str, float | None]], reps: int) -> None:
    print(f"cold start, fresh processes, median of {reps}; python {platform.python_version()}")
    print(f"{'':32} {'fm_lab':>10} {'peer':>10} {'ratio':>6}  peer")
    for name, row in table.items():
        mb = "MB" in name
        ours, peer = row["fm_lab"], row["peer"]
        ratio = f"{ours / peer:.2g}x" if ours and peer else "n/a"
        print(f"{name:32} {_cell(ours, mb):>10} {_cell(peer, mb):>10} {ratio:>6}  "
              f"{_PEERS[name]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", help="also write the table here")
    args = parser.parse_args()
    table = _measure(args.reps)
    _print(table, args.reps)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(table, out, indent=2)


if __name__ == "__main__":
    main()
