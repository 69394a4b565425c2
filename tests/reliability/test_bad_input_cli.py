"""Hostile or odd input to ``fm-lab``: each case runs the real command in a subprocess and must
exit 1 with exactly one ``fm-lab: error: ...`` line on stderr naming the problem, never a
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import fm_lab

ROOT = Path(__file__).resolve().parents[2]
OK_FLOW = 'id: ok\nnodes:\n  greet: {type: template, config: {template: "hi {{ inputs.name }}"}}\n'

pytestmark = pytest.mark.slow


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A billion-laughs document: ``width ** levels`` strings from a few hundred bytes."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    lines.append("id: bomb")
    lines.append("nodes:\n  x:\n    type: template\n    config:")
    lines.append(f"      template: hi\n      junk: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def fm_lab_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m fm_lab.cli`` in ``tmp_path`` with this checkout's sources first."""
    env = dict(os.environ)
    env["FM_LAB_HOME"] = str(tmp_path / "home")
    env.pop("FM_LAB_STORE", None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "fm_lab.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return name


def folder(tmp_path: Path, name: str) -> str:
    (tmp_path / name).mkdir()
    return name


def stored_run(tmp_path: Path, run_id: str = "r1") -> Path:
    """A store holding one succeeded run ``run_id``; returns its file."""
    path = tmp_path / "runs.duckdb"
    store = fm_lab.Store(path)
    try:
        fm_lab.run(fm_lab.Workflow.from_yaml(OK_FLOW), {"name": "x"}, run_id=run_id,
                   store=store)
    finally:
        store.close()
    return path


def truncated_store(tmp_path: Path) -> str:
    path = stored_run(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return str(path)


def deleted_store(tmp_path: Path) -> str:
    path = stored_run(tmp_path)
    path.unlink()
    return str(path)


Args = Callable[[Path], list[str]]

CASES: dict[str, tuple[Args, str]] = {
    "alias bomb, validate": (
        lambda t: ["validate", write(t, "bomb.yaml", alias_bomb())], "alias bomb"),
    "alias bomb, run": (lambda t: ["run", write(t, "bomb.yaml", alias_bomb())], "alias bomb"),
    "recursive alias": (lambda t: ["validate", write(t, "loop.yaml", "id: &a [*a]\n")],
                        "recursive document"),
    "UTF-16 file": (lambda t: ["validate", write(t, "u16.yaml", OK_FLOW.encode("utf-16"))],
                    "UTF-16"),
    "UTF-16 without BOM": (
        lambda t: ["validate", write(t, "u16le.yaml", OK_FLOW.encode("utf-16-le"))],
        "NUL bytes"),
    "latin-1 file": (lambda t: ["validate", write(t, "l1.yaml", "id: caf\xe9\n".encode("latin-1"))],
                     "not UTF-8"),
    "random bytes": (lambda t: ["run", write(t, "junk.yaml", bytes(range(128, 256)))],
                     "not UTF-8"),
    "directory as workflow": (lambda t: ["run", folder(t, "wf.yaml")], "is a directory"),
    "missing workflow file": (lambda t: ["run", "nowhere.yaml"], "no workflow file"),
    "YAML 5,000 deep": (
        lambda t: ["validate", write(t, "deep.yaml", "a: " + "[" * 5000 + "]" * 5000)],
        "nested deeper than 200 levels"),
    "YAML block nesting": (
        lambda t: ["validate", write(t, "block.yaml", "".join(
            "  " * i + f"k{i}:\n" for i in range(400)) + "  " * 400 + "v: 1\n")],
        "nested deeper than 200 levels"),
    "JSON workflow 5,000 deep": (
        lambda t: ["run", write(t, "deep.json", '{"id": ' + "[" * 5000 + "]" * 5000 + "}")],
        "nested deeper than 200 levels"),
    "--inputs-json 20,000 deep": (
        lambda t: ["run", write(t, "ok.yaml", OK_FLOW), "--inputs-json",
                   "[" * 20000 + "]" * 20000],
        "--inputs-json: nested deeper than 200 levels"),
    "--inputs-json not JSON": (
        lambda t: ["run", write(t, "ok.yaml", OK_FLOW), "--inputs-json", '{"name": '],
        "--inputs-json: not JSON"),
    "--input value 5,000 deep": (
        lambda t: ["run", write(t, "ok.yaml", OK_FLOW), "-i", "name=" + "[" * 5000 + "]" * 5000],
        "--input name: nested deeper"),
    "--data 5,000 deep": (lambda t: ["resume", "r1", "--data", "[" * 5000 + "]" * 5000],
                          "--data: nested deeper"),
    "directory as --store": (
        lambda t: ["--store", folder(t, "st"), "run", write(t, "ok.yaml", OK_FLOW)],
        "is a directory, not a DuckDB file"),
    "a file where the store's folder should be": (
        lambda t: ["--store", write(t, "f", "x") + "/s.duckdb", "runs"],
        "cannot make the folders of the fm_lab store"),
    "garbage store": (
        lambda t: ["--store", write(t, "g.duckdb", os.urandom(4096)), "runs"],
        "is not a DuckDB file"),
    "empty store": (lambda t: ["--store", write(t, "e.duckdb", b""), "runs"],
                    "is not a DuckDB file"),
    "text file as store": (lambda t: ["--store", write(t, "t.duckdb", OK_FLOW), "runs"],
                           "is not a DuckDB file"),
    "truncated store": (lambda t: ["--store", truncated_store(t), "runs"], "move it aside"),
    "run id of an existing run": (
        lambda t: ["--store", str(stored_run(t)), "run", write(t, "ok.yaml", OK_FLOW),
                   "--run-id", "r1", "-i", "name=y"],
        "run id 'r1' already names a succeeded run"),
    "empty run id": (lambda t: ["run", write(t, "ok.yaml", OK_FLOW), "--run-id", ""],
                     "run id '' is not allowed"),
    "run id with ..": (lambda t: ["run", write(t, "ok.yaml", OK_FLOW), "--run-id", "../../x"],
                       "run id '../../x' is not allowed"),
    "show a bad run id": (lambda t: ["show", "../x"], "is not allowed"),
    "cancel a bad run id": (lambda t: ["cancel", "a/b"], "is not allowed"),
    "show an unknown run": (lambda t: ["show", "nope"], "no run 'nope'"),
    "resume after the store file was deleted": (
        lambda t: ["--store", deleted_store(t), "resume", "r1"],
        "the store file does not exist (one was created"),
    "batch id with ..": (
        lambda t: ["batch", "workflow", write(t, "ok.yaml", OK_FLOW), "--csv",
                   write(t, "items.csv", "name\na\n"), "--batch-id", "../b"],
        "batch id '../b' is not allowed"),
    "batch items file too deep": (
        lambda t: ["batch", "notebook", "nb.ipynb", "--grid",
                   write(t, "grid.json", "[" * 5000 + "]" * 5000)],
        "grid.json: nested deeper than 200 levels"),
    "missing id with other problems": (
        lambda t: ["validate", write(t, "noid.yaml", "nodes:\n  a: {type: nope}\n")],
        "id: Field required; nodes.a.type: unknown node type 'nope'"),
    "missing required inputs once each": (
        lambda t: ["run", write(t, "req.yaml", "id: req\ninputs:\n  type: object\n"
                   "  required: [a, b]\nnodes:\n  x: {type: template, config: {template: hi}}\n")],
        "(2 problems): inputs.a: required but missing; inputs.b: required but missing"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_line(tmp_path, case):
    make_args, phrase = CASES[case]
    done = fm_lab_cli(tmp_path, *make_args(tmp_path))
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("fm-lab: error: ")
    assert phrase in lines[0]


def test_a_bad_run_id_creates_no_file_outside_the_journal_folder(tmp_path):
    workdir = tmp_path / "a" / "b"
    workdir.mkdir(parents=True)
    done = fm_lab_cli(workdir, "run", write(workdir, "ok.yaml", OK_FLOW), "--run-id", "../../x")
    assert done.returncode == 1
    assert not [p for p in tmp_path.rglob("x*") if p.name.startswith("x")]


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    """``fm-lab run ... | head -c1``: the reader is gone before fm-lab writes."""
    write(tmp_path, "ok.yaml", OK_FLOW)
    env = dict(os.environ, FM_LAB_HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT / "src"),
                                                      os.environ.get("PYTHONPATH", "")) if p))
    proc = subprocess.Popen([sys.executable, "-m", "fm_lab.cli", "run", "ok.yaml", "-i",
                             "name=pipe"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()
    err = proc.communicate(timeout=120)[1].decode()
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert err == ""


def test_output_into_head_ends_quietly(tmp_path):
    """The same through a real shell pipeline."""
    write(tmp_path, "ok.yaml", OK_FLOW)
    env = dict(os.environ, FM_LAB_HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT / "src"),
                                                      os.environ.get("PYTHONPATH", "")) if p))
    command = f"'{sys.executable}' -m fm_lab.cli run ok.yaml -i name=head | head -c1"
    done = subprocess.run(["sh", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout == "r"
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
