"""MCP servers as tools and nodes: real servers written with the SDK (tests/mcp/servers.py),
over stdio and streamable HTTP, driven by agents on scripted offline models."""

from __future__ import annotations

import json
import re
import sys

import pytest
from tests.mcp.helpers import SERVERS, http_server

import fm_lab
from fm_lab.agents import Agent
from fm_lab.llm import script

TOKEN = "mcp-test-token-5f1c9a7e"


@pytest.fixture(scope="module")
def calc():
    server = fm_lab.mcp.server("calc", command=[sys.executable, SERVERS])
    yield server
    server.close()


@pytest.fixture(scope="module")
def calc_url():
    with http_server("--token", TOKEN) as url:
        yield url
        fm_lab.mcp.close_all()  # the sessions end before their server does


def _model_that_fixes_its_arguments(name: str):
    """Calls add with a word for a number, reads the feedback, then calls it right."""
    def reply(messages, tools):
        assert {"add", "shout"} <= {t["function"]["name"] for t in tools}
        results = [m["content"] for m in messages if m["role"] == "tool"]
        if not results:
            return {"tool_calls": [{"name": "add", "arguments": {"a": "two", "b": 3}}]}
        if len(results) == 1:
            assert "invalid and the tool was not run" in results[0]
            assert "'two' is not of type 'integer'" in results[0]
            return {"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}
        return f"The sum is {results[-1]}."
    return script(name, fn=reply)


def test_an_agent_calls_a_stdio_tool_and_corrects_an_invalid_argument(calc):
    agent = Agent("maths", model=_model_that_fixes_its_arguments("mcp-stdio"),
                  tools=[*calc.tools()])
    result = agent.generate("What is two plus three?")
    assert result.text == "The sum is 5."
    assert [c["ok"] for c in result.tool_calls] == [False, True]
    assert result.tool_calls[1]["output"] == 5


def test_an_agent_calls_an_http_tool_with_a_connection(calc_url):
    fm_lab.connections.set("calc-http", kind="bearer", token=TOKEN)
    remote = fm_lab.mcp.server("calc-http", url=calc_url, connection="calc-http")
    try:
        agent = Agent("maths", model=_model_that_fixes_its_arguments("mcp-http"),
                      tools=[*remote.tools()])
        assert agent.generate("What is two plus three?").text == "The sum is 5."
    finally:
        remote.close()


def test_a_server_as_a_toolset_is_listed_at_each_turn(calc):
    agent = Agent("maths", model=_model_that_fixes_its_arguments("mcp-toolset"),
                  toolsets=[calc])
    assert agent.generate("What is two plus three?").text == "The sum is 5."


def test_an_http_server_without_the_credentials_is_reported_in_one_line(calc_url):
    bare = fm_lab.mcp.server("calc-bare", url=calc_url, timeout_s=10)
    with pytest.raises(fm_lab.mcp.McpError, match="calc-bare") as caught:
        bare.call("add", {"a": 1, "b": 2})
    assert "\n" not in str(caught.value)


def test_calls_are_tool_spans_naming_the_server(calc):
    store = fm_lab.Store(":memory:")
    agent = Agent("maths", model=_model_that_fixes_its_arguments("mcp-spans"),
                  tools=[*calc.tools()])

    @fm_lab.register_function(name="ask_mcp_agent")
    async def ask():
        return (await agent.agenerate("two plus three?")).text

    run = fm_lab.run({"id": "w", "nodes": {"ask": {"type": "code", "config": {
        "function": "ask_mcp_agent"}}}}, store=store)
    assert run.outputs == {"ask": "The sum is 5."}
    tools = fm_lab.trace(run.run_id, store=store).query("kind == 'tool'")
    assert tools["name"].tolist() == ["add", "add"]
    attributes = [json.loads(a) if isinstance(a, str) else a for a in tools["attributes"]]
    assert all(a["mcp.server"] == "calc" and a["mcp.tool"] == "add" for a in attributes)
    assert tools["status"].tolist() == ["error", "ok"]  # the invalid call, then the real one


def test_the_session_is_reused_and_resources_and_prompts_are_readable(calc):
    calc.call("add", {"a": 1, "b": 1})
    session = calc._session
    assert calc.call("shout", {"text": "hi"}) == "HI"
    assert calc._session is session  # one session for every call
    assert [r["uri"] for r in calc.resources()] == ["notes://readme"]
    assert calc.read_resource("notes://readme") == "Add numbers with add(a, b)."
    assert [p["name"] for p in calc.prompts()] == ["review"]
    assert calc.get_prompt("review", {"code": "x = 1"}) == [
        {"role": "user", "content": "Please review this code:\nx = 1"}]
    with pytest.raises(fm_lab.mcp.McpToolError, match=r"calc\.fail"):
        calc.call("fail", {"reason": "testing"})


def test_the_mcp_tool_node_in_a_workflow(calc, calc_url):
    fm_lab.connections.set("calc-http", kind="bearer", token=TOKEN)
    wf = {"id": "mcp_sum", "inputs": {"type": "object", "properties": {"a": {"type": "integer"}}},
          "nodes": {
              "total": {"type": "mcp_tool", "config": {
                  "server": "calc", "tool": "add", "arguments": {"a": "{{ inputs.a }}", "b": 2}}},
              "loud": {"type": "mcp_tool", "config": {
                  "url": calc_url, "connection": "calc-http", "tool": "shout",
                  "arguments": {"text": "total {{ nodes.total.output }}"}}}},
          "edges": [{"source": "total", "target": "loud"}],
          "outputs": {"total": "{{ nodes.total.output }}", "loud": "{{ nodes.loud.output }}"}}
    run = fm_lab.run(wf, {"a": 3})
    assert run.status == "succeeded", run.error
    assert run.outputs == {"total": 5, "loud": "TOTAL 5"}
    spans = fm_lab.trace(run.run_id).query("kind == 'tool'")
    assert sorted(spans["name"]) == ["add", "shout"]
    bad = fm_lab.run({**wf, "id": "mcp_bad", "nodes": {"total": {
        "type": "mcp_tool", "config": {"server": "calc", "tool": "add",
                                       "arguments": {"a": "x", "b": 2}}}},
        "edges": [], "outputs": {}}, {"a": 1})
    assert bad.status == "failed"
    assert "'x' is not of type 'integer'" in str(bad.error)


def test_a_crashed_server_is_restarted_once_then_reported_in_one_line():
    crashy = fm_lab.mcp.server("crashy", command=[sys.executable, SERVERS])
    try:
        assert crashy.call("add", {"a": 1, "b": 2}) == 3
        with pytest.raises(fm_lab.mcp.McpError) as caught:
            crashy.call("crash")
        message = str(caught.value)
        assert "\n" not in message
        assert "MCP server 'crashy' (stdio: " in message
        assert "stopped during tools/call crash and again after a restart" in message
        assert "calc: crashing on purpose" in message  # the server's last stderr line
        assert crashy.restarts == 1
        assert crashy.call("add", {"a": 2, "b": 2}) == 4  # the next call starts it again
    finally:
        crashy.close()


def test_a_server_killed_between_calls_is_restarted_transparently():
    import os
    import signal

    victim = fm_lab.mcp.server("victim", command=[sys.executable, SERVERS])
    try:
        first = victim.call("pid")
        os.kill(first, signal.SIGKILL)
        second = victim.call("pid")  # the dead session is found, reopened, the call retried
        assert second != first and victim.restarts == 1
    finally:
        victim.close()


def test_a_server_that_cannot_start_is_reported_in_one_line():
    broken = fm_lab.mcp.server("broken", command=[sys.executable, "-c",
                                                   "import sys; sys.exit('no such server')"],
                               timeout_s=20)
    with pytest.raises(fm_lab.mcp.McpError, match="MCP server 'broken'") as caught:
        broken.tools()
    assert "\n" not in str(caught.value)


def test_a_stdio_server_gets_its_connection_in_its_environment():
    import hashlib

    fm_lab.connections.set("calc-env", kind="bearer", token=TOKEN)
    with fm_lab.mcp.server("calc-env", command=[sys.executable, SERVERS],
                           connection="calc-env") as server:
        assert server.call("credential_digest") == hashlib.sha256(
            TOKEN.encode()).hexdigest()[:12]


def test_an_inline_command_is_refused_under_the_restricted_policy():
    wf = {"id": "mcp_inline", "nodes": {"n": {"type": "mcp_tool", "config": {
        "command": [sys.executable, SERVERS], "tool": "add", "arguments": {"a": 1, "b": 2}}}}}
    with pytest.raises(fm_lab.WorkflowValidationError,
                       match=r"nodes\.n\.config\.command: an mcp_tool node may not start"):
        fm_lab.run(wf, policy="restricted")
    assert fm_lab.run(wf, policy="trusted").outputs is not None


def test_sessions_close_with_the_process(tmp_path):
    import os
    import subprocess
    import textwrap

    script = tmp_path / "kernel.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        import fm_lab
        server = fm_lab.mcp.server("calc", command=[sys.executable, {SERVERS!r}])
        print(server.call("pid"), flush=True)
    """))
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(fm_lab.__file__))}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    server_pid = int(done.stdout.split()[-1])
    with pytest.raises(ProcessLookupError):  # the server ended with its client's process
        os.kill(server_pid, 0)


def test_a_huge_result_is_a_tool_error_the_model_sees_and_nothing_stores(calc, tmp_path):
    """A tool answering megabytes: refused in one line before it reaches the model's context,
    the tool span or the store; the model asks for less and goes on."""
    def reply(messages, tools):
        results = [m["content"] for m in messages if m["role"] == "tool"]
        if not results:
            return {"tool_calls": [{"name": "repeat", "arguments": {"text": "ab", "times":
                                                                    1_500_000}}]}
        if len(results) == 1:
            assert re.search(r"its result has 3,000,0\d\d characters, above "
                             r"max_result_chars=1,000,000", results[0]), results[0]
            return {"tool_calls": [{"name": "repeat", "arguments": {"text": "ab", "times": 3}}]}
        return f"Got {results[-1]}."

    store = fm_lab.connect(str(tmp_path / "s.duckdb"))
    agent = Agent("echo", model=script("mcp-huge", fn=reply), tools=[*calc.tools()])
    from fm_lab.tracing.standalone import traced

    with traced("huge", store=store) as root:
        result = agent.generate("Repeat ab a lot.")
    assert result.text == "Got ababab."
    assert [c["ok"] for c in result.tool_calls] == [False, True]
    stored = fm_lab.trace(root.trace_id, store=store)
    assert set(stored["kind"]) >= {"trace", "agent", "llm", "tool"}
    assert stored["output_size"].fillna(0).max() < 10_000  # the megabytes went nowhere
    with pytest.raises(fm_lab.mcp.McpToolError, match=r"^calc\.repeat: its result has "):
        calc.call("repeat", {"text": "x", "times": 1_000_001})
    store.close()
