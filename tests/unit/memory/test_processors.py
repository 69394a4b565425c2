"""TokenLimiter keeps tool call/result pairs; ToolCallFilter drops calls with their results."""

import pytest

from fm_lab.memory import TokenLimiter, ToolCallFilter, repair_tool_pairs


def call(cid, name):
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": "{}"}}


def conversation():
    return [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "old question " + "word " * 60},
        {"role": "assistant", "content": None,
         "tool_calls": [call("c1", "search"), call("c2", "clock")]},
        {"role": "tool", "tool_call_id": "c1", "content": "result " * 40},
        {"role": "tool", "tool_call_id": "c2", "content": "12:00"},
        {"role": "assistant", "content": "done " * 30},
        {"role": "user", "content": "new question"},
    ]


def test_token_limiter_drops_oldest_and_keeps_tool_pairs():
    msgs = conversation()
    limiter = TokenLimiter(10_000)
    full = limiter.count(msgs)
    assert limiter.process(msgs) == msgs
    for budget in range(10, full, 7):
        kept = TokenLimiter(budget).process(msgs)
        assert kept[0]["role"] == "system" and kept[-1]["content"] == "new question"
        ids = [m.get("tool_call_id") for m in kept if m["role"] == "tool"]
        has_call = any(m.get("tool_calls") for m in kept)
        assert ids in ([], ["c1", "c2"]) and has_call == bool(ids)
        # oldest first: what is kept is a suffix of the non-system messages
        rest = [m for m in msgs if m["role"] != "system"]
        body = kept[1:]
        assert body == rest[len(rest) - len(body):]
        if len(kept) > 2:
            assert limiter.count(kept) <= budget
    tight = TokenLimiter(limiter.count([msgs[0], msgs[-1]]) + 1).process(msgs)
    assert tight == [msgs[0], msgs[-1]]


def test_token_limiter_rejects_a_nonsense_budget():
    with pytest.raises(ValueError, match="max_tokens"):
        TokenLimiter(0)


def test_tool_call_filter_all_and_by_name():
    msgs = conversation()
    assert ToolCallFilter().process(msgs) == [m for i, m in enumerate(msgs) if i not in (2, 3, 4)]
    only_search = ToolCallFilter(exclude=["search"]).process(msgs)
    assert [m.get("tool_call_id") for m in only_search if m["role"] == "tool"] == ["c2"]
    (assistant,) = [m for m in only_search if m.get("tool_calls")]
    assert [c["id"] for c in assistant["tool_calls"]] == ["c2"]
    assert msgs[2]["tool_calls"][0]["id"] == "c1"  # the input is not modified
    assert ToolCallFilter(exclude=["nothing"]).process(msgs) == msgs


def test_repair_tool_pairs_drops_halves():
    msgs = conversation()
    assert repair_tool_pairs(msgs) == msgs
    cut = repair_tool_pairs(msgs[3:])  # results without their call
    assert all(m["role"] != "tool" for m in cut)
    head = repair_tool_pairs(msgs[:4])  # call c2 without its result
    assert [c["id"] for c in head[2]["tool_calls"]] == ["c1"]
