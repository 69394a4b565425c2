"""Agent and LLM calls outside workflow runs are traced: one trace per call (or per
``traced`` block) in the default store, redacted, with tokens and cost in ``usage()``; a
busy store file keeps them in a journal until the next open."""

import shutil
import subprocess
import sys
import uuid

import pytest

import fm_lab
from fm_lab.agents import Agent, tool
from fm_lab.llm import acomplete, astream, complete, script
from fm_lab.tracing import traced
from fm_lab.tracing.redact import MASK


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr("fm_lab.store.default._STORE", None)  # restored after the test
    return fm_lab.connect(tmp_path / "fm.duckdb")


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def _adder(name):
    """Asks for ``add`` once, then answers with the tool's result."""
    def reply(messages, tools):
        if messages[-1]["role"] == "tool":
            return f"the sum is {messages[-1]['content']}"
        return {"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}
    model = script(name, fn=reply)
    fm_lab.set_price(model, input_per_mtok=1.0, output_per_mtok=2.0)
    return model


def test_a_standalone_generate_stores_its_trace_and_usage(store):
    key = f"sk-test{uuid.uuid4().hex}"
    agent = Agent("adder", "Add.", model=_adder("standalone-adder"), tools=[add])
    result = agent.generate(f"2 + 3? my key is {key}")
    assert result.text == "the sum is 5" and result.trace_id
    spans = fm_lab.trace(result.trace_id)
    assert list(zip(spans["depth"], spans["kind"], strict=True)) == [
        (0, "agent"), (1, "llm"), (1, "tool"), (1, "llm")]
    assert spans["trace_id"].nunique() == 1 and spans["run_id"].isna().all()
    assert spans["parent_span_id"].isna().iloc[0]
    assert set(fm_lab.traces()["span_id"]) == set(spans["span_id"])
    text = spans[["input", "output"]].to_string()
    assert key not in str(spans["input"].tolist()) and MASK in str(spans["input"].tolist())
    assert "the sum is 5" in text
    usage = fm_lab.usage().set_index("model").loc["offline/standalone-adder"]
    assert usage["calls"] == 2
    assert usage["input_tokens"] == result.usage["input_tokens"] > 0
    assert usage["output_tokens"] == result.usage["output_tokens"] > 0
    expected = (result.usage["input_tokens"] * 1.0 + result.usage["output_tokens"] * 2.0) / 1e6
    assert usage["cost_usd"] == pytest.approx(expected)
    assert not list(store.journal_dir.glob("*.journal"))  # ingested and removed


async def test_a_traced_block_is_one_trace_with_calls_streams_and_runs(store):
    agent = Agent("adder", model=_adder("traced-adder"), tools=[add])
    with traced("report", team="ops") as root:
        await agent.agenerate("2 + 3?")
        async for _ in agent.astream("2 + 3?"):
            pass
        await acomplete([{"role": "user", "content": "hi"}], model="offline/echo")
        with fm_lab.tracing.span("mine"):
            pass
        run = await fm_lab.arun({"id": "tiny", "nodes": {"t": {
            "type": "template", "config": {"template": "hi"}}}})
    spans = fm_lab.trace(root.trace_id)
    assert spans["trace_id"].nunique() == 1
    top = spans[spans["depth"] == 1]
    assert spans.iloc[0]["kind"] == "trace" and spans.iloc[0]["name"] == "report"
    assert sorted(top["kind"]) == ["agent", "agent", "custom", "llm", "workflow"]
    assert (spans[spans["kind"] == "tool"]["depth"] == 2).all()
    assert fm_lab.trace(run.run_id)["span_id"].tolist() == spans["span_id"].tolist()


async def test_standalone_llm_calls_and_streams_are_traces_of_their_own(store):
    await acomplete([{"role": "user", "content": "one"}], model="offline/echo")
    chunks = [c async for c in astream([{"role": "user", "content": "two"}],
                                       model="offline/echo")]
    assert chunks[-1].type == "finish"
    assert complete([{"role": "user", "content": "three"}], model="offline/echo").text
    spans = fm_lab.traces()  # complete ran on a worker thread (a loop is running here)
    assert list(spans["kind"]) == ["llm"] * 3 and spans["trace_id"].nunique() == 3
    assert spans["parent_span_id"].isna().all()


def test_a_memory_store_and_a_sync_stream_in_a_block(tmp_path, monkeypatch):
    monkeypatch.setattr("fm_lab.store.default._STORE", None)
    fm_lab.connect(":memory:")
    agent = Agent("adder", model=_adder("memory-adder"), tools=[add])
    with traced("block") as root:
        assert [c.type for c in agent.stream("2 + 3?")][-1] == "finish"  # on a thread
    kinds = fm_lab.trace(root.trace_id)["kind"].tolist()
    assert kinds[0] == "trace" and kinds.count("llm") == 2 and "tool" in kinds


@pytest.mark.slow
def test_a_busy_file_keeps_the_trace_in_a_journal_until_the_next_open(store, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); sys.stdin.read()", store.path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        agent = Agent("adder", model=_adder("busy-adder"), tools=[add])
        result = agent.generate("2 + 3?")  # does not wait for the file, nor fail
        assert result.text == "the sum is 5"
        (journal,) = store.journal_dir.glob("trace-*.journal")
        shutil.copy(journal, tmp_path / "copy")
    finally:
        holder.communicate("")
    assert len(fm_lab.trace(result.trace_id)) == 4  # this process ingests it on its next open
    assert not journal.exists()
    shutil.copy(tmp_path / "copy", journal)  # as if it had died between ingest and unlink
    store.recover_journals()
    assert len(fm_lab.trace(result.trace_id)) == 4  # not twice


def test_a_read_only_store_leaves_calls_untraced(tmp_path, monkeypatch):
    monkeypatch.setattr("fm_lab.store.default._STORE", None)
    fm_lab.connect(tmp_path / "absent.duckdb", read_only=True)
    result = Agent("adder", model=_adder("readonly-adder"), tools=[add]).generate("2 + 3?")
    assert result.text == "the sum is 5" and result.trace_id is None
