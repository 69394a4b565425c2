"""The offline provider's two routes give the same answers: the direct route (no litellm) and
litellm's custom provider (``FM_LAB_OFFLINE_VIA_LITELLM=1``), for text, tool calls, reasoning,
streams, fallbacks and cassettes: the same Completions, chunks, spans and usage."""

import pytest

from fm_lab.llm import acomplete, astream, cassette, script
from fm_lab.llm.offline_route import direct
from fm_lab.tracing.spans import SpanContext, activate, deactivate

ROUTES = ("direct", "litellm")
ASK = [{"role": "system", "content": "Be brief."},
       {"role": "user", "content": "What's the weather in Oslo, and why?"}]
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]
SEEN_TOOLS: list = []


def _tools_seen(messages, tools):
    SEEN_TOOLS.append(tools)
    return {"content": "Checking.", "tool_calls": [
        {"id": "call_w", "name": "weather", "arguments": {"city": "Oslo"}}]}


def _broken(messages, tools):
    raise ValueError("the script broke")


MODELS = {
    "text": script("parity_text", default="Cloudy, 12 degrees: a low from the west."),
    "tools": script("parity_tools", fn=_tools_seen),
    "reasoning": script("parity_reasoning", default={
        "reasoning": "Let's think, step-by-step: 2+2=4 (obviously)... antidisestablishment",
        "content": "Rain.",
        "tool_calls": [{"id": "call_a", "name": "weather", "arguments": {"city": "Oslo"}},
                       {"id": "call_b", "name": "clock", "arguments": {}}]}),
    "json": script("parity_json", default={"content": {"sky": "grey", "wind": [3, 4]}}),
    "broken": script("parity_broken", fn=_broken),
}


@pytest.fixture
def spans():
    records: list = []
    token = activate(SpanContext("0" * 32, "1" * 16, "run-x", records.append))
    yield records
    deactivate(token)


def _use(route, monkeypatch):
    if route == "litellm":
        monkeypatch.setenv("FM_LAB_OFFLINE_VIA_LITELLM", "1")
    else:
        monkeypatch.delenv("FM_LAB_OFFLINE_VIA_LITELLM", raising=False)
    assert direct([MODELS["text"]]) is (route == "direct")


def _span(record):
    """A span record without its ids and clock."""
    return {k: v for k, v in record.items() if k not in ("span", "started", "ended")}


def _completion(answer):
    """A Completion without its raw JSON (ids and timestamps differ per call)."""
    message = answer.raw["choices"][0]["message"]
    return (answer.text, answer.tool_calls, answer.model, answer.usage, answer.attempts,
            answer.reasoning, message.get("content"), message.get("reasoning_content"),
            answer.raw["choices"][0]["finish_reason"])


async def _both(monkeypatch, spans, ask):
    """``ask()`` on each route: what it returned and the spans it wrote."""
    out = {}
    for route in ROUTES:
        _use(route, monkeypatch)
        spans.clear()
        SEEN_TOOLS.clear()
        out[route] = (await ask(), [_span(s) for s in spans], list(SEEN_TOOLS))
    return out["direct"], out["litellm"]


@pytest.mark.parametrize("kind", ["text", "tools", "reasoning", "json"])
async def test_completions_spans_and_usage_match(kind, monkeypatch, spans):
    async def ask():
        return _completion(await acomplete(ASK, model=MODELS[kind], tools=TOOLS,
                                           temperature=0.1, max_tokens=50))

    mine, theirs = await _both(monkeypatch, spans, ask)
    assert mine == theirs
    assert mine[0][3]["input_tokens"] > 0 and mine[1][0]["status"] == "ok"


@pytest.mark.parametrize("kind", ["text", "tools", "reasoning", "json"])
async def test_stream_chunks_spans_and_usage_match(kind, monkeypatch, spans):
    async def ask():
        return [c.to_dict() async for c in astream(ASK, model=MODELS[kind], tools=TOOLS)]

    mine, theirs = await _both(monkeypatch, spans, ask)
    assert mine == theirs
    assert mine[0][-1]["type"] == "finish" and mine[0][-1]["usage"]["output_tokens"] > 0


async def test_a_broken_script_is_retried_then_fallen_back_from_alike(monkeypatch, spans):
    """The error's class is each route's own (``OfflineScriptError`` here, litellm's
    ``APIConnectionError`` there); retries, fallbacks, spans and the answer match."""
    chain = {"model": MODELS["broken"], "fallbacks": [MODELS["text"]], "retries": 1,
             "backoff_s": 0.001}

    async def ask():
        answer = await acomplete(ASK, **chain)
        return answer.text, answer.model, [(a["model"], "error" in a) for a in answer.attempts]

    def plain(span):
        return {**span, "error": span["error"] and "the script broke" in span["error"]["message"]}

    (mine, my_spans, _), (theirs, their_spans, _) = await _both(monkeypatch, spans, ask)
    assert mine == theirs
    assert [plain(s) for s in my_spans] == [plain(s) for s in their_spans]
    assert [s["status"] for s in my_spans] == ["error", "error", "ok"]

    async def stream():
        chunks = [c.to_dict() async for c in astream(ASK, **chain)]
        return chunks

    mine, theirs = await _both(monkeypatch, spans, stream)
    assert mine[0] == theirs[0] and mine[0][-1]["model"] == MODELS["text"]


@pytest.mark.parametrize("recorded_by", ROUTES)
async def test_a_cassette_of_either_route_replays_on_both(recorded_by, tmp_path, monkeypatch):
    tape = tmp_path / "offline.jsonl"
    _use(recorded_by, monkeypatch)
    with cassette(tape, mode="record"):
        first = _completion(await acomplete(ASK, model=MODELS["reasoning"], tools=TOOLS))
        streamed = [c.to_dict() async for c in astream(ASK, model=MODELS["tools"],
                                                        tools=TOOLS)]
    SEEN_TOOLS.clear()
    for route in ROUTES:
        _use(route, monkeypatch)
        with cassette(tape, mode="replay") as replay:
            again = _completion(await acomplete(ASK, model=MODELS["reasoning"], tools=TOOLS))
            restreamed = [c.to_dict() async for c in astream(ASK, model=MODELS["tools"],
                                                              tools=TOOLS)]
        assert (again, restreamed) == (first, streamed) and replay.hits == 2
    assert SEEN_TOOLS == []  # the script was not asked again


async def test_what_else_goes_through_litellm(monkeypatch):
    monkeypatch.delenv("FM_LAB_OFFLINE_VIA_LITELLM", raising=False)
    offline = MODELS["text"]
    assert direct([offline, MODELS["json"]], {"tools": TOOLS, "temperature": 0})
    assert not direct([offline, "gpt-4o-mini"])
    assert not direct([offline], {"mock_response": "hi"})
    assert not direct([offline], {"reasoning_effort": "low"})  # litellm refuses it
    assert not direct(None)
    answer = await acomplete(ASK, model=offline, mock_response="mocked by litellm")
    assert answer.text == "mocked by litellm"
