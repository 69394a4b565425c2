"""What a new process does not import: litellm until a model is asked, jsonschema until a value
or schema is bad, pandas, pyarrow and httpx for a short run (each costs 0.3-4 s or tens of MB
in a new kernel)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ("litellm", "jsonschema", "pandas", "pyarrow", "tiktoken", "httpx")


def _loaded_after(code: str, tmp_path: object) -> dict[str, bool]:
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps({{name: name in sys.modules for name in {HEAVY!r}}}))
        """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=str(tmp_path))
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
    assert loaded == dict.fromkeys(HEAVY, False)


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
