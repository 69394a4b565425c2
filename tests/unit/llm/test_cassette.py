"""Record/replay: responses recorded from real litellm calls (offline provider and litellm's
mock_response) replay with zero provider calls; a miss names the request."""

import json

import litellm
import pytest

from fm_lab.agents import Agent, tool
from fm_lab.llm import CassetteMiss, acomplete, astream, cassette, script

ASK = [{"role": "user", "content": "What is the capital of Norway?"}]


def _refuse_provider(monkeypatch):
    """From here on, any provider call fails the test."""
    async def refuse(*args, **kwargs):
        raise AssertionError("the provider was called during replay")
    monkeypatch.setattr(litellm, "acompletion", refuse)


@pytest.fixture
def no_provider(monkeypatch):
    _refuse_provider(monkeypatch)


@tool
def capital(country: str) -> str:
    """The capital of a country."""
    return {"Norway": "Oslo"}[country]


def _geo_model(name, answers):
    def reply(messages, tools):
        answers.append(messages[-1]["role"])
        if messages[-1]["role"] == "tool":
            return f"It is {messages[-1]['content']}."
        return {"tool_calls": [{"id": "call_c", "name": "capital",
                                "arguments": {"country": "Norway"}}]}
    return script(name, fn=reply)


def test_record_then_replay_with_zero_provider_calls(tmp_path, monkeypatch):
    tape = tmp_path / "calls.jsonl"
    answers = []
    agent = Agent("geo", model=_geo_model("geo_rec", answers), tools=[capital])
    with cassette(tape, mode="record") as recording:
        recorded = agent.generate("Capital of Norway?")
    assert recording.recorded == 2 and len(tape.read_text().splitlines()) == 2
    assert answers == ["user", "tool"]

    _refuse_provider(monkeypatch)
    with cassette(tape, mode="replay") as replay:
        again = agent.generate("Capital of Norway?")
    assert again.text == recorded.text == "It is Oslo."
    assert again.usage == recorded.usage and replay.hits == 2
    assert answers == ["user", "tool"]  # the script was not asked again


async def test_litellm_mock_responses_and_streams_replay(tmp_path, monkeypatch):
    tape = tmp_path / "mock.jsonl"
    with cassette(tape, mode="record"):
        first = await acomplete(ASK, model="gpt-4o-mini", mock_response="Oslo.")
        streamed = [c async for c in astream(ASK, model="gpt-4o-mini", mock_response="Oslo!")]
    _refuse_provider(monkeypatch)
    with cassette(tape, mode="replay"):
        second = await acomplete(ASK, model="gpt-4o-mini")
        replayed = [c async for c in astream(ASK, model="gpt-4o-mini")]
    assert second.text == first.text == "Oslo." and second.usage == first.usage
    assert [c.to_dict() for c in replayed] == [c.to_dict() for c in streamed]


async def test_a_replay_miss_names_the_request(tmp_path, no_provider):
    tape = tmp_path / "empty.jsonl"
    tape.write_text("")
    with cassette(tape, mode="replay"), pytest.raises(CassetteMiss) as info:
        await acomplete(ASK, model="gpt-4o", fallbacks=["gpt-4o-mini"])
    message = str(info.value)
    assert "'gpt-4o'" in message and "What is the capital of Norway?" in message
    assert "request hash" in message
    with pytest.raises(FileNotFoundError, match="record it first"), cassette(
            tmp_path / "missing.jsonl", mode="replay"):
        pass


async def test_auto_replays_what_it_has_and_records_the_rest(tmp_path):
    tape = tmp_path / "auto.jsonl"
    model = script("auto_geo", default="Oslo")
    with cassette(tape, mode="auto") as first:
        await acomplete(ASK, model=model)
    with cassette(tape, mode="auto") as second:
        await acomplete(ASK, model=model)
        await acomplete([{"role": "user", "content": "And Sweden?"}], model=model)
    assert (first.recorded, first.hits) == (1, 0)
    assert (second.recorded, second.hits) == (1, 1)
    assert [json.loads(line)["request"] for line in tape.read_text().splitlines()] == [
        "What is the capital of Norway?", "And Sweden?"]


def test_parameters_that_change_the_answer_change_the_key(tmp_path):
    from fm_lab.llm.cassette import request_key

    base = request_key("gpt-4o", ASK, {}, stream=False)
    assert request_key("gpt-4o", ASK, {"timeout": 3, "mock_response": "x"}, False) == base
    assert request_key("gpt-4o", ASK, {"temperature": 0.2}, False) != base
    assert request_key("gpt-4o", ASK, {}, True) != base
    with pytest.raises(ValueError, match="mode"):
        cassette(tmp_path / "x.jsonl", mode="rewind").__enter__()


def test_a_store_keeps_named_cassettes_beside_its_file(tmp_path, monkeypatch):
    from fm_lab.store import Store

    store = Store(tmp_path / "fm.duckdb")
    answers = []
    agent = Agent("geo", model=_geo_model("geo_store", answers), tools=[capital])
    with cassette(store, mode="record", name="geo") as recording:
        agent.generate("Capital of Norway?")
    assert recording.path == tmp_path / "fm.duckdb.cassettes" / "geo.jsonl"
    _refuse_provider(monkeypatch)
    with cassette(store, mode="replay", name="geo") as replay:
        assert agent.generate("Capital of Norway?").text == "It is Oslo."
    assert replay.hits == 2
    with pytest.raises(ValueError, match="memory store"):
        cassette(Store(":memory:")).__enter__()
    with pytest.raises(ValueError, match="plain file name"):
        cassette(store, name="../escape").__enter__()


def test_default_mode_on_a_fresh_store_records_then_replays(tmp_path, monkeypatch):
    """The README's ``cassette(fm_lab.default_store(), name=...)`` (mode auto) on a store
    whose cassette folder does not exist yet."""
    import fm_lab

    monkeypatch.setattr("fm_lab.store.default._STORE", None)
    store = fm_lab.connect(tmp_path / "fresh" / "fm.duckdb")
    agent = Agent("geo", model=_geo_model("geo_fresh", []), tools=[capital])
    with cassette(fm_lab.default_store(), name="x") as first:
        assert agent.generate("Capital of Norway?").text == "It is Oslo."
    assert first.recorded == 2 and first.path.parent == tmp_path / "fresh" / "fm.duckdb.cassettes"
    _refuse_provider(monkeypatch)
    with cassette(store, name="x") as again:
        assert agent.generate("Capital of Norway?").text == "It is Oslo."
    assert again.hits == 2 and again.recorded == 0
