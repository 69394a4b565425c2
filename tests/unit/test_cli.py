"""The fm-lab command, called in-process through cli.main and once as a real subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fm_lab.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.flow.yaml"
ORDERS = ROOT / "examples" / "order_pricing.flow.yaml"
HEAVY = {"duckdb", "pandas", "pyarrow", "numpy", "litellm", "lancedb", "matplotlib", "pydantic",
         "jinja2", "httpx"}


@pytest.fixture
def store_args(tmp_path):
    return ["--store", str(tmp_path / "cli.duckdb")]


def test_run_json_prints_one_object(store_args, capsys):
    code = main([*store_args, "run", str(QUICKSTART), "-i", "review=Great, it works!",
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["status"] == "succeeded"
    assert set(out) == {"run_id", "status", "outputs", "error", "policy"}
    assert out["outputs"]["triage"]["summary"]["sentiment"] == "positive"


def test_run_human_output_has_node_timings(store_args, capsys):
    assert main([*store_args, "run", str(ORDERS), "--inputs-json",
                 '{"items": [{"sku": "a", "price": 120}]}']) == 0
    out = capsys.readouterr().out
    assert "duration_ms" in out and "shipping" in out and "succeeded" in out


def test_runs_show_and_resume(store_args, capsys):
    main([*store_args, "run", str(QUICKSTART), "-i", "review=fine", "--json"])
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert main([*store_args, "runs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in listed] == [run_id]
    assert main([*store_args, "show", run_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "succeeded"
    assert main([*store_args, "resume", run_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "succeeded"


def test_rerun_with_an_edited_workflow_file_and_a_changed_input(tmp_path, store_args, capsys):
    flow = tmp_path / "greet.yaml"
    flow.write_text('id: greet\nnodes:\n  hi: {type: template, config: {template: '
                    '"Hello {{ inputs.who }}"}}\n  n: {type: template, config: {template: '
                    '"{{ inputs.n }}"}}\n', encoding="utf-8")
    assert main([*store_args, "run", str(flow), "-i", "who=Ada", "-i", "n=1", "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    flow.write_text(flow.read_text(encoding="utf-8").replace("Hello", "Hi"), encoding="utf-8")
    assert main([*store_args, "rerun", run_id, "--workflow", str(flow), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"] == {"hi": "Hi Ada", "n": 1}
    assert main([*store_args, "rerun", run_id, "-i", "n=2", "--json"]) == 0  # who is kept
    assert json.loads(capsys.readouterr().out)["outputs"] == {"hi": "Hello Ada", "n": 2}
    assert main([*store_args, "rerun", run_id, "nope"]) == 1
    assert "fm-lab: error: workflow 'greet' has no node 'nope'" in capsys.readouterr().err


def test_validate_lists_every_issue_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nnodes:\n  a: {type: nope}\n  b: {type: code}\nedges: [a -> c]\n")
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "nodes.a.type" in err and "nodes.b.config.function" in err and "edges[0].target" in err
    assert "Traceback" not in err
    assert main(["validate", str(bad), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert {i["location"] for i in payload["issues"]} >= {"nodes.a.type", "edges[0].target"}


def test_invalid_inputs_and_missing_files_are_user_errors(store_args, capsys):
    assert main([*store_args, "run", str(ORDERS), "-i", "items=[]"]) == 1
    assert "inputs.items" in capsys.readouterr().err
    assert main([*store_args, "run", "missing.yaml"]) == 1
    assert "missing.yaml" in capsys.readouterr().err
    assert main([*store_args, "show", "nope"]) == 1
    assert main([*store_args, "run", str(ORDERS), "--input", "novalue"]) == 1


def test_failed_run_exits_1_with_the_error(tmp_path, store_args, capsys):
    wf = tmp_path / "fail.yaml"
    wf.write_text("id: f\nnodes:\n  a: {type: code, config: {function: 'math:sqrt', "
                  "args: {x: -1}}}\n")
    assert main([*store_args, "run", str(wf), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "failed"
    assert out["error"]["node"] == "a" and out["error"]["kind"] == "user"


def test_help_is_real_and_imports_nothing_heavy():
    out = subprocess.run([sys.executable, "-m", "fm_lab", "--help"], capture_output=True,
                         text=True, check=True)
    for command in ("run", "rerun", "resume", "runs", "show", "validate"):
        assert command in out.stdout
    # fast because --help loads none of the engine's heavy dependencies (timing belongs in
    # benchmarks): the modules it imported, counted in a fresh interpreter
    probe = ("import sys\nfrom fm_lab.cli import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             f"print(sorted(set(sys.modules) & set({sorted(HEAVY)!r})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.splitlines()[-1] == "[]"
