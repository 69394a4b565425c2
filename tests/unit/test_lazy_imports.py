"""What a new process does not import: litellm until a model other than an offline one is
asked, jsonschema until a value or schema is bad, pandas, pyarrow and httpx for a short run,
jinja2 until a template is rendered and PyYAML until a document is YAML (each costs 0.3-4 s or
megabytes in a new kernel)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ("litellm", "jsonschema", "pandas", "pyarrow", "tiktoken", "httpx", "jinja2", "yaml")


def _loaded_after(code: str, tmp_path: object) -> dict[str, bool]:
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        from fm_lab.llm import client
        loaded = {{name: name in sys.modules for name in {HEAVY!r}}}
        print(json.dumps({{**loaded, "preload": bool(client._PRELOAD)}}))
        """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=False, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout.splitlines()[-1]))


def test_offline_script_and_a_run_without_model_nodes_import_none_of_them(tmp_path):
    loaded = _loaded_after("""
        import fm_lab
        from fm_lab.llm import script
        script("quiet", default="hi")
        flow = {"id": "plain",
                "inputs": {"type": "object", "required": ["name"],
                           "properties": {"name": {"type": "string", "minLength": 1}}},
                "state": {"type": "object", "properties": {"n": {"type": "integer"}}},
                "nodes": {f"t{i}": {"type": "template",
                                    "config": {"template": "hi {{ inputs.name }}"}}
                          for i in range(3)},
                "edges": [{"source": "t0", "target": "t1"}, {"source": "t1", "target": "t2"}]}
        store = fm_lab.connect("runs.duckdb")
        run = fm_lab.run(flow, {"name": "Ada"}, store=store)
        assert run.status == "succeeded", run.error
        """, tmp_path)
    assert loaded == {**dict.fromkeys(HEAVY, False), "jinja2": True, "preload": False}


def test_a_run_without_templates_imports_no_jinja2_and_a_json_file_no_yaml(tmp_path):
    (tmp_path / "flow.json").write_text(json.dumps({"id": "plain", "nodes": {
        "a": {"type": "template", "config": {"template": "hello"}},
        "b": {"type": "code", "config": {"function": "operator:truediv",
                                         "args": {"a": 1, "b": 0}}}},
        "edges": [{"source": "a", "target": "b"}]}))
    loaded = _loaded_after("""
        import fm_lab
        run = fm_lab.run("flow.json", store=fm_lab.connect("runs.duckdb"), policy="trusted")
        assert run.status == "failed", run.status  # a failed node is classified too
        """, tmp_path)
    assert loaded == {**dict.fromkeys(HEAVY, False), "preload": False}


def test_offline_llm_and_agent_nodes_and_a_durable_turn_import_no_litellm(tmp_path):
    loaded = _loaded_after("""
        import fm_lab
        from fm_lab.agents import Agent, register, tool
        from fm_lab.llm import script

        @tool
        def add(a: int, b: int) -> int:
            \"\"\"Add two numbers.\"\"\"
            return a + b

        def reply(messages, tools):
            if messages[-1]["role"] == "tool":
                return "The sum is " + messages[-1]["content"]
            return {"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}

        adder = script("adder", fn=reply)
        register(Agent("summer", model=adder, tools=[add]))
        flow = {"id": "models", "nodes": {
            "ask": {"type": "llm", "config": {"model": script("poet", default="Roses."),
                                              "fallbacks": [adder],
                                              "prompt": "A poem on {{ inputs.topic }}"}},
            "sum": {"type": "agent", "config": {"agent": "summer", "prompt": "2 + 3?"}},
            "inline": {"type": "agent", "config": {"model": adder, "agents": ["summer"],
                                                   "tools": ["tests_add:add"],
                                                   "prompt": "{{ nodes.ask.output }}"}}},
            "edges": [{"source": "ask", "target": "inline"}]}
        import sys, types
        sys.modules["tests_add"] = types.SimpleNamespace(add=add)
        store = fm_lab.connect("runs.duckdb")
        run = fm_lab.run(flow, {"topic": "sums"}, store=store, policy="trusted")
        assert run.status == "succeeded", run.error
        assert run.node("ask").output == "Roses."
        assert run.node("sum").output["text"] == "The sum is 5"
        turn = Agent("durable", model=adder, tools=[add], durable=True).generate("2 + 3?")
        assert turn.text == "The sum is 5", turn
        """, tmp_path)
    assert not loaded["litellm"] and not loaded["tiktoken"] and not loaded["preload"]


def test_a_model_node_with_a_provider_model_preloads_litellm(tmp_path):
    loaded = _loaded_after("""
        import pathlib
        import fm_lab
        from fm_lab.llm import cassette
        flow = {"id": "remote", "nodes": {"ask": {"type": "llm", "config": {
            "model": "gpt-4o-mini", "prompt": "hi", "retries": 0}}}}
        pathlib.Path("empty.jsonl").write_text("")
        with cassette("empty.jsonl", mode="replay"):  # no provider is called
            run = fm_lab.run(flow, store=fm_lab.connect("runs.duckdb"))
        assert run.status == "failed" and "CassetteMiss" in str(run.error), run.error
        """, tmp_path)
    assert loaded["litellm"] and loaded["preload"]


def test_a_bad_value_still_gets_jsonschemas_messages(tmp_path):
    loaded = _loaded_after("""
        import fm_lab
        flow = {"id": "plain", "inputs": {"type": "object", "required": ["name"]},
                "nodes": {"t": {"type": "template", "config": {"template": "x"}}}}
        try:
            fm_lab.run(flow, {}, store=fm_lab.connect("runs.duckdb"))
        except Exception as exc:
            assert "name" in str(exc), exc
        else:
            raise AssertionError("no error")
        """, tmp_path)
    assert loaded["jsonschema"] and not loaded["litellm"]


def test_the_cli_help_imports_neither_asyncio_nor_duckdb(tmp_path):
    probe = textwrap.dedent("""
        import contextlib, io, json, sys
        from fm_lab.cli import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            main(["--help"])
        print(json.dumps({name: name in sys.modules for name in ("asyncio", "duckdb")}))
        """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=str(tmp_path))
    assert json.loads(out.stdout.splitlines()[-1]) == {"asyncio": False, "duckdb": False}
