"""fm-lab pending / resume --data / signal / cancel / recover, as a user types them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fm_lab.cli import main

ROOT = Path(__file__).resolve().parents[2]
INVOICES = ROOT / "examples" / "invoice_batch.flow.yaml"
BATCH = {"invoices": [{"vendor": "a", "amount": 10}, {"vendor": "b", "amount": 5000}]}


@pytest.fixture
def store_args(tmp_path):
    return ["--store", str(tmp_path / "cli.duckdb")]


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_pending_then_resume_from_the_command_line(store_args, capsys):
    assert main([*store_args, "run", str(INVOICES), "--inputs-json", json.dumps(BATCH),
                 "--json"]) == 0
    run = _json(capsys)
    assert run["status"] == "suspended"
    assert main([*store_args, "pending", "--json"]) == 0
    (waiting,) = _json(capsys)
    assert waiting["path_id"] == "review[1]/approve"
    assert waiting["payload"] == {"message": "Pay 5000 to b?", "details": None}

    assert main([*store_args, "resume", run["run_id"], "--path", "review[1]/approve",
                 "--data", '{"approved": "maybe"}', "--json"]) == 1
    rejected = _json(capsys)
    assert rejected["issues"][0]["location"] == "data.approved"

    assert main([*store_args, "resume", run["run_id"], "--path", "review[1]/approve",
                 "--data", '{"approved": true, "by": "kim"}', "--json"]) == 0
    done = _json(capsys)
    assert done["status"] == "succeeded"
    assert done["outputs"] == {"summary": {"approved": 2, "total": 2}}
    assert main([*store_args, "pending"]) == 0
    assert "nothing is waiting" in capsys.readouterr().out


def test_signal_and_cancel(tmp_path, store_args, capsys):
    flow = tmp_path / "event.flow.yaml"
    flow.write_text(
        "id: ev\nnodes:\n  wait: {type: wait_for_event, config: {event: paid}}\n"
        "  after: {type: template, config: {template: 'got {{ nodes.wait.output.n }}'}}\n"
        "edges: [wait -> after]\n"
    )
    main([*store_args, "run", str(flow), "--json"])
    first = _json(capsys)["run_id"]
    assert main([*store_args, "signal", first, "paid", "--data", '{"n": 3}', "--json"]) == 0
    assert _json(capsys)["outputs"] == {"after": "got 3"}

    main([*store_args, "run", str(flow), "--json"])
    second = _json(capsys)["run_id"]
    assert main([*store_args, "cancel", second]) == 0
    capsys.readouterr()
    assert main([*store_args, "show", second, "--json"]) == 0
    assert _json(capsys)["status"] == "cancelled"
    assert main([*store_args, "signal", second, "paid", "--json"]) == 1
    assert "cancelled, not suspended" in _json(capsys)["error"]


def test_recover_with_nothing_to_do(store_args, capsys):
    assert main([*store_args, "recover"]) == 0
    assert "nothing to recover" in capsys.readouterr().out


def test_pending_in_a_fresh_process(tmp_path, store_args, capsys):
    main([*store_args, "run", str(INVOICES), "--inputs-json", json.dumps(BATCH), "--json"])
    capsys.readouterr()
    out = subprocess.run([sys.executable, "-m", "fm_lab", *store_args, "pending"],
                         capture_output=True, text=True, check=True)
    assert "review[1]/approve" in out.stdout
