"""``fm-lab mcp serve`` driven by the MCP SDK's own client over stdio: workflows are tools
whose input schema is the workflow's, a suspended run answers with its pending path and the
``resume`` tool continues it; runs are restricted unless the server was told otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from tests.mcp.helpers import free_port, wait_for_port

import fm_lab
from mcp import ClientSession

SRC = str(Path(fm_lab.__file__).resolve().parents[1])

GREET = """
id: greet
description: Greets someone.
inputs:
  type: object
  required: [name]
  properties: {name: {type: string}}
nodes:
  hello: {type: template, config: {template: "Hello {{ inputs.name }}!"}}
outputs: {greeting: "{{ nodes.hello.output }}"}
"""
APPROVE = """
id: spend
inputs:
  type: object
  required: [amount]
  properties: {amount: {type: number}}
nodes:
  ask: {type: approval, config: {message: "Spend {{ inputs.amount }}?", label: boss}}
  done: {type: template, config: {template: "approved={{ nodes.ask.output.approved }}"}}
edges: [ask -> done]
outputs: {result: "{{ nodes.done.output }}"}
"""
UNSAFE = """
id: unsafe
nodes:
  cwd: {type: code, config: {function: "os:getcwd"}}
"""


@pytest.fixture
def folder(tmp_path):
    for name, text in (("greet", GREET), ("spend", APPROVE), ("unsafe", UNSAFE)):
        (tmp_path / f"{name}.flow.yaml").write_text(text)
    return tmp_path


def _params(folder: Path, home: Path, *extra: str) -> StdioServerParameters:
    env = {"PYTHONPATH": SRC, "FM_LAB_HOME": str(home), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return StdioServerParameters(command=sys.executable, env=env, args=[
        "-m", "fm_lab", "mcp", "serve", "--workflows", str(folder), *extra])


async def _call(session: ClientSession, name: str, arguments: dict) -> tuple[dict, bool]:
    result = await session.call_tool(name, arguments)
    return json.loads(result.content[0].text), result.is_error


def test_workflows_are_tools_and_a_suspended_run_is_resumed(folder, tmp_path):
    async def drive() -> None:
        async with stdio_client(_params(folder, tmp_path / "home")) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert set(tools) == {"greet", "spend", "unsafe", "resume"}
            assert tools["greet"].input_schema["required"] == ["name"]
            assert tools["greet"].description == "Greets someone."

            answer, failed = await _call(session, "greet", {"name": "Ada"})
            assert not failed and answer["status"] == "succeeded"
            assert answer["outputs"] == {"greeting": "Hello Ada!"}

            answer, failed = await _call(session, "greet", {})  # the workflow's own schema
            assert failed and "name" in answer["error"]

            answer, failed = await _call(session, "spend", {"amount": 12})
            assert answer["status"] == "suspended" and not failed
            [waiting] = answer["pending"]
            assert waiting["label"] == "boss"
            assert waiting["payload"]["message"] == "Spend 12?"

            answer, failed = await _call(session, "resume", {
                "run_id": answer["run_id"], "path": waiting["path"],
                "data": {"approved": True, "by": "lee"}})
            assert not failed and answer["status"] == "succeeded"
            assert answer["outputs"] == {"result": "approved=True"}

            answer, failed = await _call(session, "unsafe", {})  # restricted by default
            assert failed and "os:getcwd" in answer["error"]

    anyio.run(drive)


def test_trusted_policy_is_an_opt_in(folder, tmp_path):
    async def drive() -> None:
        params = _params(folder, tmp_path / "home", "--policy", "trusted")
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            answer, failed = await _call(session, "unsafe", {})
            assert not failed and answer["status"] == "succeeded", answer

    anyio.run(drive)


def test_stored_workflows_are_served_when_no_folder_is_given(tmp_path):
    home = tmp_path / "home"
    store = fm_lab.connect(home / "fm_lab.duckdb")
    fm_lab.run(fm_lab.Workflow.from_yaml(GREET), {"name": "x"}, store=store)
    store.close()

    async def drive() -> None:
        env = {"PYTHONPATH": SRC, "FM_LAB_HOME": str(home),
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        params = StdioServerParameters(command=sys.executable, env=env,
                                       args=["-m", "fm_lab", "mcp", "serve"])
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            assert {t.name for t in (await session.list_tools()).tools} == {"greet", "resume"}

    anyio.run(drive)


def test_streamable_http_with_port(folder, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": SRC, "FM_LAB_HOME": str(tmp_path / "home")}
    server = subprocess.Popen([sys.executable, "-m", "fm_lab", "mcp", "serve", "--workflows",
                               str(folder), "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def drive() -> None:
        async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            answer, failed = await _call(session, "greet", {"name": "Lin"})
            assert not failed and answer["outputs"] == {"greeting": "Hello Lin!"}

    try:
        wait_for_port(port, server)
        anyio.run(drive)
    finally:
        server.terminate()
        server.wait(10)
