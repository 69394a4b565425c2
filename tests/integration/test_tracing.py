"""Tracing end to end on real DuckDB files: the span tree of a run (diamond, branch, foreach,
retry, subflow), spans across a SIGKILL and a resume, redaction of secrets down to the bytes of
the files, usage and cost roll-ups, plots and the ``fm-lab traces``/``usage`` commands."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pandas as pd
import pydantic
import pytest

import fm_lab
from fm_lab.cli import main as cli_main
from fm_lab.store import run_groups
from fm_lab.tracing import pricing, redact, span
from fm_lab.tracing.redact import Redactor

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)

PNG = b"\x89PNG\r\n\x1a\n"


def _table():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch prices online
    import litellm

    return litellm.model_cost


def _cost(model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0,
          priced_as: str | None = None) -> float:
    """By hand: uncached input at the input price, cached input at the cache-read price, output
    (reasoning included, once) at the output price."""
    entry = _table()[priced_as or model]
    return ((input_tokens - cached_tokens) * entry["input_cost_per_token"]
            + cached_tokens * entry["cache_read_input_token_cost"]
            + output_tokens * entry["output_cost_per_token"])


def _check_tree_order(frame: pd.DataFrame) -> None:
    """``frame`` (fm_lab.trace) is a pre-order walk: every span comes after its parent, right
    after its parent's earlier subtrees, at its parent's depth + 1."""
    ids = set(frame["span_id"])
    ancestors: list[str] = []
    for row in frame.itertuples():
        parent = row.parent_span_id if row.parent_span_id in ids else None
        assert row.depth <= len(ancestors), f"{row.name} jumps a level"
        del ancestors[row.depth:]
        if parent is None:
            assert row.depth == 0, f"{row.name}: a root at depth {row.depth}"
        else:
            assert ancestors and ancestors[-1] == parent, f"{row.name} is not under its parent"
        ancestors.append(row.span_id)


# ---- the span tree of a run -----------------------------------------------------------------

def _value(x: int = 1, inputs: dict | None = None) -> int:
    return x + sum(v for v in (inputs or {}).values() if isinstance(v, int))


def _same(x: int) -> int:
    return x


def _tree_workflow(register) -> tuple[fm_lab.Workflow, list[int]]:
    """a -> (l, r) -> j -> br -(yes)-> y, -(no)-> n (skipped); a -> loop (3 items);
    a -> fl (fails once, retried); a -> sub (child run c1 -> c2)."""
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise fm_lab.NodeError("provider hiccup", kind="provider")
        return "ok"

    value, same, flaky_name = register(_value), register(_same), register(flaky)
    child = {"id": "child", "nodes": {
        "c1": {"type": "code", "config": {"function": value, "args": {"x": 5}}},
        "c2": {"type": "code", "config": {"function": value}},
    }, "edges": [{"source": "c1", "target": "c2"}]}
    b = fm_lab.WorkflowBuilder("tree")
    a = b.node("a", "code", function=value)
    left, right = b.node("l", "code", function=value), b.node("r", "code", function=value)
    join = b.node("j", "code", function=value)
    br = b.node("br", "branch", routes=[{"handle": "yes", "when": "{{ nodes.j.output > 0 }}"},
                                        {"handle": "no", "when": "{{ nodes.j.output <= 0 }}"}])
    yes, no = b.node("y", "code", function=value), b.node("n", "code", function=value)
    loop = b.node("loop", "foreach", items=[10, 20, 30], concurrency=2,
                  node={"type": "code", "config": {"function": same, "args": {"x": "{{ item }}"}}})
    fl = b.node("fl", "code", function=flaky_name, retry={"max_attempts": 3, "backoff_s": 0.01})
    sub = b.node("sub", "subflow", workflow=child)
    a >> [left, right]
    left >> join
    right >> join
    join >> br
    br.route("yes") >> yes
    br.route("no") >> no
    a >> [loop, fl, sub]
    return b.build(), calls


@pytest.fixture
def tree_run(store, register):
    workflow, calls = _tree_workflow(register)
    run = fm_lab.run(workflow, store=store)
    assert run.status == "succeeded", run.error
    assert len(calls) == 2
    assert run.node("n").status == "skipped"
    spans = store.sql("select *, extract(epoch from started_at)::float8 as t0, "
                      "extract(epoch from ended_at)::float8 as t1 from spans")
    return run, spans.set_index("span_id", drop=False)


EXECUTED = {"a", "l", "r", "j", "br", "y", "loop", "fl", "sub"}


def test_every_executed_node_has_exactly_one_span_under_the_workflow_span(store, tree_run):
    run, spans = tree_run
    root = spans[(spans["kind"] == "workflow") & (spans["run_id"] == run.run_id)]
    assert len(root) == 1
    root = root.iloc[0]
    assert pd.isna(root["parent_span_id"]) and root["name"] == "tree" and root["status"] == "ok"
    nodes = spans[(spans["kind"] == "node") & (spans["run_id"] == run.run_id)]
    assert sorted(nodes["name"]) == sorted(EXECUTED)  # one each; the skipped n has none
    assert (nodes["parent_span_id"] == root["span_id"]).all()
    assert (nodes["node_id"] == nodes["name"]).all()
    assert (nodes["workflow_id"] == "tree").all() and (nodes["status"] == "ok").all()
    assert spans["span_id"].is_unique
    # every span of the run and of its child run is in the run's trace
    trace_ids = store.sql("select run_id, trace_id from runs").set_index("run_id")["trace_id"]
    assert len(trace_ids) == 2 and trace_ids.nunique() == 1
    assert (spans["trace_id"] == trace_ids[run.run_id]).all()
    assert len(spans) == 1 + 9 + 3 + 1 + 1 + 2


def test_foreach_items_and_failed_attempts_nest_under_their_node(tree_run):
    _, spans = tree_run
    by_name = spans.set_index("name")
    items = spans[spans["kind"] == "item"].sort_values("name")
    assert items["name"].tolist() == ["loop[0]", "loop[1]", "loop[2]"]
    assert (items["parent_span_id"] == by_name.loc["loop", "span_id"]).all()
    assert items["node_id"].tolist() == ["loop[0]", "loop[1]", "loop[2]"]
    assert [json.loads(o) for o in items["output"]] == [10, 20, 30]
    attempts = spans[spans["kind"] == "attempt"]
    assert len(attempts) == 1
    attempt = attempts.iloc[0]
    assert attempt["parent_span_id"] == by_name.loc["fl", "span_id"]
    assert attempt["status"] == "error" and attempt["name"] == "fl attempt 1"
    assert json.loads(attempt["error"])["message"] == "provider hiccup"
    fl = by_name.loc["fl"]
    assert fl["status"] == "ok" and json.loads(fl["attributes"])["attempts"] == 2


def test_a_child_runs_spans_are_in_the_parents_trace_under_the_subflow_node(store, tree_run):
    run, spans = tree_run
    child_id = store.sql("select run_id from runs where parent_run_id = ?",
                         [run.run_id])["run_id"].item()
    child = spans[spans["run_id"] == child_id]
    assert sorted(child["kind"]) == ["node", "node", "workflow"]
    child_root = child[child["kind"] == "workflow"].iloc[0]
    sub_span = spans[(spans["name"] == "sub") & (spans["kind"] == "node")].iloc[0]
    assert child_root["parent_span_id"] == sub_span["span_id"]
    assert child_root["name"] == "child"
    kids = child[child["kind"] == "node"]
    assert sorted(kids["name"]) == ["c1", "c2"]
    assert (kids["parent_span_id"] == child_root["span_id"]).all()
    assert (kids["workflow_id"] == "child").all()


def test_spans_lie_within_their_parents_time(tree_run):
    _, spans = tree_run
    slack = 0.002
    for row in spans.itertuples():
        assert row.t0 <= row.t1 + 1e-6
        if isinstance(row.parent_span_id, str):
            parent = spans.loc[row.parent_span_id]
            assert parent["t0"] - slack <= row.t0 and row.t1 <= parent["t1"] + slack, row.name


def test_trace_returns_tree_order_with_depth(store, tree_run):
    run, spans = tree_run
    frame = fm_lab.trace(run.run_id, store=store)
    assert sorted(frame["span_id"]) == sorted(spans["span_id"])
    _check_tree_order(frame)
    depth = dict(zip(frame["name"], frame["depth"], strict=True))
    assert depth["tree"] == 0
    assert all(depth[n] == 1 for n in EXECUTED)
    assert depth["loop[0]"] == depth["fl attempt 1"] == depth["child"] == 2
    assert depth["c1"] == depth["c2"] == 3
    assert frame.iloc[0]["name"] == "tree"
    # the child run's id gives the same (whole) trace
    child_id = spans[spans["name"] == "child"]["run_id"].item()
    assert fm_lab.trace(child_id, store=store)["span_id"].tolist() == frame["span_id"].tolist()
    assert fm_lab.trace("no-such-run", store=store).empty


def test_traces_filters_by_kind_status_and_run(store, tree_run):
    run, _ = tree_run
    items = fm_lab.traces(kind="item", store=store)
    assert sorted(items["name"]) == ["loop[0]", "loop[1]", "loop[2]"]
    errors = fm_lab.tracing.errors(store=store)
    assert errors["kind"].tolist() == ["attempt"]
    assert len(fm_lab.traces(run_id=run.run_id, limit=None, store=store)) == 14
    slow = fm_lab.slowest(3, store=store)
    assert len(slow) == 3 and (slow["kind"] == "node").all()
    assert slow["duration_ms"].is_monotonic_decreasing


def test_fm_lab_errors_stays_the_tracing_function_once_the_engine_is_loaded(store, tree_run):
    """``fm_lab.errors`` is public API (failed spans); the ``fm_lab.errors`` submodule, which
    the engine imports, must not shadow it."""
    import fm_lab.engine.runner  # loaded by any run anyway

    assert callable(fm_lab.errors), f"fm_lab.errors is {fm_lab.errors!r}"
    assert fm_lab.errors(store=store)["kind"].tolist() == ["attempt"]


def _many_spans(x: int) -> int:
    for n in range(20):
        with span(f"step{n}", kind="tool"):
            time.sleep(0.0005)
    return x


def test_spans_from_worker_threads_all_reach_duckdb_while_the_run_ingests(
        store, register, monkeypatch):
    """Sync code runs in worker threads and its spans end there, while the scheduler ingests
    batches: not one record may be lost between the journal, the batch and DuckDB."""
    from fm_lab.tracing import recorder as session

    monkeypatch.setattr(session, "INGEST_EVERY_S", 0.005)  # many ingests during the run
    monkeypatch.setattr(session, "INGEST_FIRST_S", 0.005)
    items = 400
    b = fm_lab.WorkflowBuilder("threads")
    b.node("loop", "foreach", items=list(range(items)), concurrency=32,
           node={"type": "code", "config": {"function": register(_many_spans),
                                            "args": {"x": "{{ item }}"}}})
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads interleave more often, as on a busy machine
    try:
        run = fm_lab.run(b.build(), store=store)
    finally:
        sys.setswitchinterval(switch)
    assert run.status == "succeeded", run.error
    counts = store.sql("select kind, count(*) as n from spans group by kind")
    assert dict(zip(counts["kind"], counts["n"], strict=True)) == {
        "workflow": 1, "node": 1, "item": items, "tool": items * 20}


# ---- spans across a SIGKILL -----------------------------------------------------------------

KILL_FUNCTIONS = """
import time
from pathlib import Path

from fm_lab.tracing import span


def step(name):
    return name


def slow(marker):
    with span("prep", kind="tool") as s:   # ends before the kill, inside an uncommitted node
        s.output = "prepared"
    flag = Path(marker)
    if not flag.exists():
        flag.write_text("reached")
        time.sleep(120)
    return "slow"


def later(delay):
    time.sleep(delay)
    return "later"
"""

KILL_RUNNER = """
import sys

import fm_lab

path, run_id, module, marker = sys.argv[1:]
b = fm_lab.WorkflowBuilder("killed")
a = b.node("a", "code", function=module + ":step", args={"name": "a"})
nb = b.node("b", "code", function=module + ":step", args={"name": "b"})
nc = b.node("c", "code", function=module + ":step", args={"name": "c"})
d = b.node("d", "code", function=module + ":slow", args={"marker": marker})
q = b.node("q", "code", function=module + ":later", args={"delay": 0.2})
e = b.node("e", "code", function=module + ":step", args={"name": "e"})
a >> [nb, nc]
nb >> d
nc >> d
nb >> q
d >> e
run = fm_lab.run(b.build(), store=fm_lab.Store(path), run_id=run_id)
print("finished", run.status)
"""


@dataclasses.dataclass
class Killed:
    run_id: str
    committed: list[str]
    after_kill: pd.DataFrame
    after_resume: pd.DataFrame
    resumed_status: str


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> Killed:
    """a -> (b, c) -> d (slow, killed) -> e; b -> q commits while d sleeps."""
    tmp = tmp_path_factory.mktemp("kill")
    module = f"trace_kill_fns_{uuid.uuid4().hex[:8]}"
    (tmp / f"{module}.py").write_text(textwrap.dedent(KILL_FUNCTIONS))
    script = tmp / "runner.py"
    script.write_text(textwrap.dedent(KILL_RUNNER))
    path, marker, run_id = tmp / "fm_lab.duckdb", tmp / "d.reached", "kill-1"
    journal = Path(f"{path}.journal") / f"{run_id}.journal"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(tmp), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.Popen([sys.executable, str(script), str(path), run_id, module, str(marker)],
                            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        # wait until d sleeps and q's checkpoint (one group commit) is in the journal
        while not (marker.exists() and journal.exists()
                   and b'"node":"q"' in journal.read_bytes()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run did not get to d"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    sys.path.insert(0, str(tmp))  # the resumed run imports the functions here
    try:
        store = fm_lab.Store(path)  # recovers the journal left by the dead process
        committed = store.node_executions(run_id)
        committed = sorted(committed[committed["status"] == "succeeded"]["node_id"])
        after_kill = fm_lab.trace(run_id, store=store)
        resumed = fm_lab.resume(run_id, store=store)
        after_resume = fm_lab.trace(run_id, store=store)
        store.close()
    finally:
        sys.path.remove(str(tmp))
    return Killed(run_id, committed, after_kill, after_resume, resumed.status)


@pytest.mark.slow
def test_node_spans_survive_a_sigkill_exactly_for_committed_nodes(killed):
    assert killed.committed == ["a", "b", "c", "q"]
    nodes = killed.after_kill[killed.after_kill["kind"] == "node"]
    assert sorted(nodes["name"]) == killed.committed
    assert "d" not in set(nodes["node_id"]) and "e" not in set(nodes["node_id"])
    assert len(set(killed.after_kill["trace_id"])) == 1


@pytest.mark.slow
def test_spans_opened_inside_the_killed_node_do_not_survive_it(killed):
    """Spans are journaled with their node's checkpoint: the killed d never committed, so
    nothing it opened may be stored (else it is an orphan, duplicated on resume)."""
    from_d = killed.after_kill[killed.after_kill["node_id"] == "d"]
    assert from_d.empty, from_d[["kind", "name", "parent_span_id"]].to_dict("records")
    after = killed.after_resume
    assert (after["name"] == "prep").sum() == 1


@pytest.mark.slow
def test_after_resume_the_trace_has_every_node_once(killed):
    assert killed.resumed_status == "succeeded"
    nodes = killed.after_resume[killed.after_resume["kind"] == "node"]
    assert sorted(nodes["name"]) == ["a", "b", "c", "d", "e", "q"]
    assert len(set(killed.after_resume["trace_id"])) == 1


@pytest.mark.slow
def test_after_resume_every_node_is_under_one_workflow_span(killed):
    frame = killed.after_resume
    workflow = frame[frame["kind"] == "workflow"]
    assert len(workflow) == 1
    nodes = frame[frame["kind"] == "node"]
    orphans = nodes[nodes["parent_span_id"] != workflow["span_id"].item()]
    assert orphans.empty, (
        f"nodes committed before the crash point at a workflow span that was never written: "
        f"{orphans[['name', 'parent_span_id']].to_dict('records')}")
    _check_tree_order(frame)
    assert (frame[frame["kind"] == "node"]["depth"] == 1).all()


# ---- redaction ------------------------------------------------------------------------------

OPENAI_KEY = "sk-proj-Zq8Xw7Vu6Ts5Rq4Po3Nm2"
BEARER_TOKEN = "abcdefgh12345678"
COOKIE = "sessionid=ck-77f0e1d2c3b4a596"
MARKED = "marked-value-4711-zeta"
CUSTOM = "ACME-ORD-900417"
ENV_SECRET = "svc-env-5e4d3c2b1a09f8e7"
VISIBLE = "visible-marker-7f3a9c"  # stored next to the secrets: proves the byte scan sees text
SECRETS = {"openai key": OPENAI_KEY, "bearer token": BEARER_TOKEN, "cookie": COOKIE,
           "marked secret": MARKED, "custom pattern": CUSTOM, "env var": ENV_SECRET}


def _assert_nowhere(blobs: dict[str, bytes]) -> None:
    assert blobs, "nothing to scan"
    found = {(what, name) for name, data in blobs.items()
             for what, value in SECRETS.items() if value.encode() in data}
    assert not found, f"secrets stored in clear: {sorted(found)}"


def _store_files(store_path: Path) -> dict[str, bytes]:
    files = {store_path.name: store_path.read_bytes()}
    wal = Path(f"{store_path}.wal")
    if wal.exists():
        files[wal.name] = wal.read_bytes()
    journal_dir = Path(f"{store_path}.journal")
    for path in journal_dir.rglob("*") if journal_dir.exists() else []:
        if path.is_file():
            files[f"journal/{path.name}"] = path.read_bytes()
    return files


def _call_api(headers: dict, note: str, token: str, marked: str, inputs: dict | None = None):
    env_value = os.environ["MY_SERVICE_API_KEY"]
    with span("http.call", kind="tool", input={"headers": headers, "note": note},
              target="svc") as s:
        s.set_attribute("auth", f"Bearer {BEARER_TOKEN}")
        s.output = {"echo": headers, "env": f"used {env_value}"}
    return {"headers": headers, "text": f"key={token} order {CUSTOM} env {env_value}",
            "marked": marked, "plain": f"the password is {marked}", "note": note,
            "marker": VISIBLE}


def _snoop(journal_dir: str, copy_to: str, inputs: dict | None = None) -> str:
    """Copy the live journal (the upstream node is committed in it) before the run deletes it."""
    for path in Path(journal_dir).glob("*.journal"):
        Path(copy_to).write_bytes(path.read_bytes())
    return "copied"


def _flaky_with_secret(token: str, attempts: list) -> str:
    attempts.append(1)
    if len(attempts) == 1:
        raise fm_lab.NodeError(f"401 for key {token}", kind="provider")
    return "ok"


@pytest.mark.parametrize("stored", ["one_by_one", "later", "held_group"])
def test_secrets_are_masked_everywhere_they_could_be_stored(
        stored, store_path, register, monkeypatch, tmp_path):
    """Also where a short run is stored later, with others, from its journal's text
    (store/run_groups.py): outside a hold, or inside one."""
    monkeypatch.setenv("MY_SERVICE_API_KEY", ENV_SECRET)
    monkeypatch.setattr(redact, "_REDACTOR", Redactor())  # fresh: reads the environment now
    marked = fm_lab.secret(MARKED)
    fm_lab.tracing.redact_pattern(r"ACME-ORD-\d{6}")
    attempts: list = []
    flaky = register(lambda token: _flaky_with_secret(token, attempts))
    copy = tmp_path / "journal_copy.bin"
    b = fm_lab.WorkflowBuilder("leaky", inputs={"type": "object"})
    call = b.node("call", "code", function=register(_call_api), args={
        "headers": {"Authorization": f"Bearer {BEARER_TOKEN}", "Cookie": COOKIE,
                    "Accept": "application/json"},
        "note": "run {{ run.id }}",  # templated: the rendered config is stored as the input
        "token": "{{ inputs.token }}", "marked": marked})
    retry = b.node("retry", "code", function=flaky, args={"token": "{{ inputs.token }}"},
                   retry={"max_attempts": 2, "backoff_s": 0.01})
    snoop = b.node("snoop", "code", function=register(_snoop), args={
        "journal_dir": f"{store_path}.journal", "copy_to": str(copy)})
    call >> snoop
    retry >> snoop
    store = fm_lab.Store(store_path, group_delay_s=0 if stored == "one_by_one" else 60)
    with store.hold() if stored == "held_group" else contextlib.nullcontext():
        run = fm_lab.run(b.build(), {"token": OPENAI_KEY, "cookie": COOKIE}, store=store)
        # queued: stored from the journal text
        assert run_groups.pending(store.path) == (stored != "one_by_one")
    assert run.status == "succeeded", run.error
    assert run.node("retry").attempts == 2

    stored = store.sql("select * from spans")
    assert len(stored) == 6  # workflow, call, http.call, retry, its failed attempt, snoop
    store.sql("checkpoint")
    store.close()
    files = _store_files(store_path)
    assert VISIBLE.encode() in files[store_path.name]
    assert b"[REDACTED]" in files[store_path.name]
    assert copy.exists() and VISIBLE.encode() in copy.read_bytes()
    files["journal copy taken during the run"] = copy.read_bytes()
    _assert_nowhere(files)
    # and through SQL, every text column of every table
    store = fm_lab.Store(store_path)
    for table in ("runs", "workflows", "node_executions", "spans", "steps", "suspensions"):
        text = store.sql(f"select * from {table}").to_json(date_format="iso").encode()
        _assert_nowhere({table: text})
    store.close()


@dataclasses.dataclass
class _Creds:
    api_key: str
    note: str


class _Reply(pydantic.BaseModel):
    text: str


def test_secrets_inside_dataclass_pydantic_and_dataframe_outputs_are_masked(store, register):
    """Node outputs may be any value the codec stores (pydantic models such as LLM responses,
    dataclasses, DataFrames): secrets inside them must be masked too."""
    b = fm_lab.WorkflowBuilder("leaky_objects")
    b.node("dc", "code", function=register(lambda: _Creds(OPENAI_KEY, "x")))
    b.node("pm", "code", function=register(lambda: _Reply(text=f"Bearer {BEARER_TOKEN}")))
    b.node("df", "code", function=register(lambda: pd.DataFrame({"key": [OPENAI_KEY]})))
    run = fm_lab.run(b.build(), store=store)
    assert run.status == "succeeded", run.error
    outputs = store.sql("select node_id, output from node_executions")
    spans = store.sql("select name, output from spans")
    _assert_nowhere({"node_executions": outputs.to_json(date_format="iso").encode(),
                     "spans": spans.to_json(date_format="iso").encode()})


# ---- usage and costs ------------------------------------------------------------------------

def _chat(calls: list[dict]) -> int:
    for call in calls:
        with span("chat", kind="llm", input={"messages": [{"role": "user", "content": "hi"}]},
                  agent="assistant") as s:
            s.set_usage(provider="openai", **call)
            s.output = "hello"
    return len(calls)


BIG = {"model": "gpt-4o", "input_tokens": 1000, "output_tokens": 500, "cached_tokens": 200,
       "reasoning_tokens": 100}
SMALL_1 = {"model": "gpt-4o-mini", "input_tokens": 2000, "output_tokens": 300,
           "cached_tokens": 1500}
SMALL_2 = {"model": "gpt-4o-mini", "input_tokens": 400, "output_tokens": 50}
ECHO = {"model": "offline/echo", "input_tokens": 50, "output_tokens": 50}
KID = {"model": "gpt-4o", "input_tokens": 300, "output_tokens": 40, "reasoning_tokens": 20}
SOLO = {"model": "gpt-4o-mini", "input_tokens": 100, "output_tokens": 10}


def _c(call: dict, priced_as: str | None = None) -> float:
    return _cost(call["model"], call["input_tokens"], call["output_tokens"],
                 call.get("cached_tokens", 0), priced_as)


@pytest.fixture
def spend(store, register, monkeypatch):
    """Run 1: big (gpt-4o), small (2 x gpt-4o-mini), echo (offline), sub -> child run with kid
    (gpt-4o). Run 2: solo (gpt-4o-mini)."""
    monkeypatch.setattr(pricing, "_OVERRIDES", {})
    chat = register(_chat)
    b = fm_lab.WorkflowBuilder("spend")
    b.node("big", "code", function=chat, args={"calls": [BIG]})
    b.node("small", "code", function=chat, args={"calls": [SMALL_1, SMALL_2]})
    b.node("echo", "code", function=chat, args={"calls": [ECHO]})
    b.node("sub", "subflow", workflow={"id": "kid_flow", "nodes": {"kid": {
        "type": "code", "config": {"function": chat, "args": {"calls": [KID]}}}}})
    first = fm_lab.run(b.build(), store=store)
    other = fm_lab.WorkflowBuilder("other")
    other.node("solo", "code", function=chat, args={"calls": [SOLO]})
    second = fm_lab.run(other.build(), store=store)
    assert first.status == second.status == "succeeded"
    return first.run_id, second.run_id


def test_usage_by_model(store, spend):
    frame = fm_lab.usage(by=["model"], store=store).set_index("model")
    assert set(frame.index) == {"gpt-4o", "gpt-4o-mini", "offline/echo"}
    big = frame.loc["gpt-4o"]
    assert big["calls"] == 2
    assert big["input_tokens"] == 1300 and big["output_tokens"] == 540
    assert big["cached_tokens"] == 200 and big["reasoning_tokens"] == 120
    # (1000 - 200) * 2.5e-6 + 200 * 1.25e-6 + 500 * 1e-5 = 0.00725; 300 * 2.5e-6 + 40 * 1e-5
    assert big["cost_usd"] == pytest.approx(_c(BIG) + _c(KID), rel=1e-12)
    assert big["cost_usd"] == pytest.approx(0.00725 + 0.00115, rel=1e-12)
    mini = frame.loc["gpt-4o-mini"]
    assert mini["calls"] == 3
    assert (mini["input_tokens"], mini["output_tokens"], mini["cached_tokens"]) == (
        2500, 360, 1500)
    assert mini["cost_usd"] == pytest.approx(_c(SMALL_1) + _c(SMALL_2) + _c(SOLO), rel=1e-12)
    assert bool(big["priced"]) and bool(mini["priced"])
    echo = frame.loc["offline/echo"]
    assert echo["calls"] == 1 and echo["cost_usd"] == 0 and not bool(echo["priced"])
    assert frame.index[0] == "gpt-4o"  # most expensive first


def test_usage_by_run_rolls_child_runs_into_their_root(store, spend):
    first, second = spend
    frame = fm_lab.usage(by="run", store=store).set_index("run")
    assert set(frame.index) == {first, second}
    assert frame.loc[first, "calls"] == 5
    assert frame.loc[first, "cost_usd"] == pytest.approx(
        _c(BIG) + _c(SMALL_1) + _c(SMALL_2) + _c(KID), rel=1e-12)
    assert not bool(frame.loc[first, "priced"])  # the offline call is in it
    assert frame.loc[second, "calls"] == 1
    assert frame.loc[second, "cost_usd"] == pytest.approx(_c(SOLO), rel=1e-12)
    assert bool(frame.loc[second, "priced"])
    only = fm_lab.usage(by="model", run_id=first, store=store).set_index("model")
    assert only.loc["gpt-4o-mini", "calls"] == 2  # SOLO is another run's
    assert only.loc["gpt-4o", "calls"] == 2  # KID is the child run's, rolled into the root


def test_usage_by_node_and_by_day(store, spend):
    by_node = fm_lab.usage(by="node", store=store).set_index("node")
    assert by_node["calls"].to_dict() == {"big": 1, "small": 2, "echo": 1, "kid": 1, "solo": 1}
    assert by_node.loc["small", "cost_usd"] == pytest.approx(_c(SMALL_1) + _c(SMALL_2))
    assert by_node.loc["kid", "cost_usd"] == pytest.approx(_c(KID))
    by_day = fm_lab.usage(by="day", store=store)
    assert len(by_day) == 1
    assert by_day["day"].dt.date.item() == dt.date.today()
    total = _c(BIG) + _c(SMALL_1) + _c(SMALL_2) + _c(KID) + _c(SOLO)
    assert by_day["cost_usd"].item() == pytest.approx(total, rel=1e-12)
    assert by_day["calls"].item() == 6
    both = fm_lab.usage(by=["model", "agent"], store=store)
    assert set(both["agent"]) == {"assistant"}


def test_usage_priced_as_another_model(store, spend):
    frame = fm_lab.usage(by="model", price_as="gpt-4o-mini", store=store).set_index("model")
    assert frame.loc["gpt-4o", "cost_usd"] == pytest.approx(
        _c(BIG, "gpt-4o-mini") + _c(KID, "gpt-4o-mini"), rel=1e-12)
    assert frame.loc["offline/echo", "cost_usd"] == pytest.approx(_c(ECHO, "gpt-4o-mini"))
    assert frame["priced"].all()
    assert frame.loc["gpt-4o-mini", "cost_usd"] == pytest.approx(
        _c(SMALL_1) + _c(SMALL_2) + _c(SOLO), rel=1e-12)


def test_set_price_overrides_the_table_and_prices_offline_models(store, spend):
    fm_lab.set_price("gpt-4o", input_per_mtok=10.0, output_per_mtok=20.0,
                     cached_input_per_mtok=1.0)
    fm_lab.set_price("offline/echo", input_per_mtok=1.0, output_per_mtok=1.0)
    frame = fm_lab.usage(by="model", store=store).set_index("model")
    assert frame.loc["gpt-4o", "cost_usd"] == pytest.approx(
        ((800 * 10 + 200 * 1 + 500 * 20) + (300 * 10 + 40 * 20)) / 1e6, rel=1e-12)
    assert frame.loc["offline/echo", "cost_usd"] == pytest.approx(100 / 1e6)
    assert frame["priced"].all()


def test_usage_by_run_keeps_a_root_run_id_that_contains_a_dot(store, register, monkeypatch):
    """Run ids are the caller's to choose (``run(..., run_id=...)``); the root of a child run
    is its parent run, not whatever precedes the first dot."""
    monkeypatch.setattr(pricing, "_OVERRIDES", {})
    chat = register(_chat)
    b = fm_lab.WorkflowBuilder("dotted")
    b.node("big", "code", function=chat, args={"calls": [BIG]})
    b.node("sub", "subflow", workflow={"id": "kid_flow", "nodes": {"kid": {
        "type": "code", "config": {"function": chat, "args": {"calls": [KID]}}}}})
    run = fm_lab.run(b.build(), store=store, run_id="nightly.2026-11-24")
    assert run.status == "succeeded", run.error
    frame = fm_lab.usage(by="run", store=store)
    assert frame["run"].tolist() == ["nightly.2026-11-24"]
    assert frame["calls"].item() == 2
    assert fm_lab.usage(by="model", run_id="nightly.2026-11-24", store=store)["calls"].sum() == 2


# ---- plots ----------------------------------------------------------------------------------

def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def test_plots_render_to_png_without_a_display(store, spend, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    first, _ = spend
    trace_png = _png(fm_lab.plot_trace(first, store=store))
    assert trace_png.startswith(PNG) and len(trace_png) > 5000
    for by in ("day", "model", ["model", "node"]):
        assert _png(fm_lab.plot_usage(by, store=store)).startswith(PNG)
    assert _png(fm_lab.plot_usage("model", "input_tokens", store=store)).startswith(PNG)
    with pytest.raises(ValueError, match="unknown metric"):
        fm_lab.plot_usage("model", "colour", store=store)
    with pytest.raises(LookupError, match="no spans"):
        fm_lab.plot_trace("no-such-run", store=store)


def test_plot_usage_of_an_empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    empty = fm_lab.Store(tmp_path / "empty.duckdb")
    for by in ("day", "model"):
        figure = fm_lab.plot_usage(by, store=empty)
        assert _png(figure).startswith(PNG)
        assert "no model calls recorded" in [t.get_text() for t in figure.axes[0].texts]
    empty.close()


# ---- the command line -----------------------------------------------------------------------

def test_cli_traces_json_and_usage_csv(store, store_path, spend, capsys, monkeypatch):
    monkeypatch.setattr("fm_lab.store.default._STORE", None)  # the CLI makes its store the default
    first, _ = spend
    assert cli_main(["--store", str(store_path), "traces", "--run", first, "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    frame = fm_lab.trace(first, store=store)
    assert [r["span_id"] for r in records] == frame["span_id"].tolist()
    assert [r["depth"] for r in records] == frame["depth"].tolist()
    assert records[0]["kind"] == "workflow" and records[0]["name"] == "spend"
    llm = [r for r in records if r["kind"] == "llm"]
    assert len(llm) == 5 and {r["model"] for r in llm} == {"gpt-4o", "gpt-4o-mini",
                                                            "offline/echo"}

    assert cli_main(["--store", str(store_path), "usage", "--by", "model", "--csv"]) == 0
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert set(rows) == {"gpt-4o", "gpt-4o-mini", "offline/echo"}
    assert int(rows["gpt-4o-mini"]["calls"]) == 3
    assert int(rows["gpt-4o"]["cached_tokens"]) == 200
    assert float(rows["gpt-4o"]["cost_usd"]) == pytest.approx(_c(BIG) + _c(KID), rel=1e-9)
    assert rows["offline/echo"]["priced"] == "False"

    assert cli_main(["--store", str(store_path), "traces", "--kind", "llm", "--limit", "2"]) == 0
    assert "chat" in capsys.readouterr().out
