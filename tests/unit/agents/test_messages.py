"""MessageList: sources, incremental saves, serialization, and the OpenAI/Anthropic/storage/UI
forms (checked against the SDKs' own request types)."""

import json

import pytest
from pydantic import TypeAdapter

from fm_lab.agents import MessageList

CALL = {"id": "call_1", "type": "function",
        "function": {"name": "convert", "arguments": json.dumps({"amount": 10})}}


def _plain(value):
    """Validated SDK params with their lazy iterables (``Iterable[...]`` fields) consumed."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or hasattr(value, "__next__"):
        return [_plain(v) for v in value]
    return value


def _conversation() -> MessageList:
    ml = MessageList()
    ml.add_system("You convert money.")
    ml.add_memory([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}])
    ml.add_user("10 euros in dollars?")
    ml.add_response({"role": "assistant", "content": None, "tool_calls": [CALL]})
    ml.add_response({"role": "tool", "tool_call_id": "call_1", "content": '{"usd": 11.0}'})
    ml.add_response({"role": "assistant", "content": "That is 11 USD."})
    return ml


def test_sources_and_drain_unsaved_hand_each_new_message_out_once():
    ml = _conversation()
    assert ml.sources() == ["system", "memory", "memory", "user", "response", "response",
                            "response"]
    first = ml.drain_unsaved()
    assert [m["role"] for m in first] == ["user", "assistant", "tool", "assistant"]
    assert ml.drain_unsaved() == []
    ml.add_user("and in yen?")
    assert ml.drain_unsaved() == [{"role": "user", "content": "and in yen?"}]


def test_serialize_round_trip_keeps_sources_and_saved_marks():
    ml = _conversation()
    ml.drain_unsaved()
    ml.add_user("more")
    data = json.loads(json.dumps(ml.serialize()))
    back = MessageList.deserialize(data)
    assert back.messages == ml.messages and back.sources() == ml.sources()
    assert back.drain_unsaved() == [{"role": "user", "content": "more"}]
    with pytest.raises(ValueError, match="not a serialized MessageList"):
        MessageList.deserialize({"entries": []})


def test_bad_messages_are_refused_with_the_reason():
    ml = MessageList()
    with pytest.raises(ValueError, match="role"):
        ml.add({"content": "who am I"}, "user")
    with pytest.raises(ValueError, match="tool_call_id"):
        ml.add({"role": "tool", "content": "x"}, "response")
    with pytest.raises(ValueError, match="source"):
        ml.add({"role": "user", "content": "x"}, "model")


def test_openai_form_is_what_the_openai_sdk_accepts():
    from openai.types.chat import ChatCompletionMessageParam

    messages = _conversation().to_openai()
    adapter = TypeAdapter(list[ChatCompletionMessageParam])  # alive while its iterators run
    validated = _plain(adapter.validate_python(messages))
    assert validated == messages  # nothing unknown was dropped
    assert messages[4]["tool_calls"][0]["function"]["name"] == "convert"


def test_anthropic_form_is_what_the_anthropic_sdk_accepts():
    from anthropic.types import MessageParam

    system, messages = _conversation().to_anthropic()
    assert system == "You convert money."
    adapter = TypeAdapter(list[MessageParam])
    validated = _plain(adapter.validate_python(messages))
    assert validated == messages
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user",
                                             "assistant"]
    assert messages[3]["content"] == [{"type": "tool_use", "id": "call_1", "name": "convert",
                                       "input": {"amount": 10}}]
    assert messages[4]["content"] == [{"type": "tool_result", "tool_use_id": "call_1",
                                       "content": '{"usd": 11.0}'}]


def test_anthropic_round_trip_gives_back_the_openai_messages():
    ml = _conversation()
    system, messages = ml.to_anthropic()
    assert MessageList.from_anthropic(system, messages).to_openai() == ml.to_openai()


def test_consecutive_tool_results_merge_into_one_anthropic_user_turn():
    ml = MessageList()
    ml.add_user("both")
    ml.add_response({"role": "assistant", "content": "Two calls.", "tool_calls": [
        CALL, {**CALL, "id": "call_2"}]})
    ml.add_response({"role": "tool", "tool_call_id": "call_1", "content": "a"})
    ml.add_response({"role": "tool", "tool_call_id": "call_2", "content": "b"})
    ml.add_user("thanks")
    _, messages = ml.to_anthropic()
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["type"] for b in messages[2]["content"]] == ["tool_result", "tool_result", "text"]
    assert messages[1]["content"][0] == {"type": "text", "text": "Two calls."}


def test_storage_and_ui_forms():
    ml = _conversation()
    assert [m["role"] for m in ml.to_storage()] == ["user", "assistant", "user", "assistant",
                                                    "tool", "assistant"]
    ui = ml.to_ui()
    assert ui[4]["parts"] == [{"type": "tool-call", "id": "call_1", "name": "convert",
                               "arguments": {"amount": 10}}]
    assert ui[5]["parts"] == [{"type": "tool-result", "id": "call_1", "name": "convert",
                               "result": '{"usd": 11.0}'}]
    assert ui[0]["source"] == "system" and ui[3]["source"] == "user"
