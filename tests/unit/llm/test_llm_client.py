"""The litellm client and the offline provider: real litellm calls, its own mocked failures."""

import json

import litellm
import pytest

import fm_lab
from fm_lab.llm import acomplete, script
from fm_lab.llm.offline_tokens import count_messages
from fm_lab.tracing.spans import SpanContext, activate, deactivate

HELLO = [{"role": "user", "content": "hello there"}]


def _rate_limit(model):
    return litellm.RateLimitError("slow down", llm_provider="openai", model=model)


@pytest.fixture
def spans():
    """Collect the spans acomplete writes, as a run's node would."""
    records = []
    token = activate(SpanContext("0" * 32, "1" * 16, "run-x", records.append))
    yield records
    deactivate(token)


async def test_offline_script_answers_with_counted_tokens(spans):
    model = script("greet", [(r"hello", "Hi! How can I help?")], default="?")
    answer = await acomplete(HELLO, model=model)
    assert answer.text == "Hi! How can I help?"
    assert answer.usage["input_tokens"] == count_messages(HELLO) == 9
    assert answer.usage["output_tokens"] > 0
    (span,) = spans
    assert span["kind"] == "llm" and span["model"] == model and span["provider"] == "offline"
    assert span["attrs"]["gen_ai.usage.input_tokens"] == answer.usage["input_tokens"]


async def test_offline_tool_calls():
    model = script("tools", [("weather", {"tool_calls": [
        {"name": "get_weather", "arguments": {"city": "Oslo"}}]})])
    answer = await acomplete([{"role": "user", "content": "weather please"}], model=model)
    (call,) = answer.tool_calls
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Oslo"}


async def test_rate_limits_retry_then_fall_back_in_order(spans):
    backup = script("backup", default="from the backup")
    answer = await acomplete(
        HELLO, model="gpt-4o", fallbacks=["gpt-4o-mini", backup], retries=1, backoff_s=0.001,
        model_params={"gpt-4o": {"mock_response": _rate_limit("gpt-4o")},
                      "gpt-4o-mini": {"mock_response": _rate_limit("gpt-4o-mini")}})
    assert answer.text == "from the backup"
    assert [a["model"] for a in answer.attempts] == [
        "gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o-mini", backup]
    assert [s["status"] for s in spans] == ["error", "error", "error", "error", "ok"]


async def test_context_window_moves_on_without_retrying():
    backup = script("big", default="long context ok")
    error = litellm.ContextWindowExceededError("too long", model="gpt-4o",
                                               llm_provider="openai")
    answer = await acomplete(HELLO, model="gpt-4o", fallbacks=[backup], retries=3,
                             model_params={"gpt-4o": {"mock_response": error}})
    assert [a["model"] for a in answer.attempts] == ["gpt-4o", backup]


async def test_auth_errors_fail_clearly_and_never_fall_back():
    backup = script("never", default="should not be asked")
    error = litellm.AuthenticationError("bad key", llm_provider="openai", model="gpt-4o")
    with pytest.raises(fm_lab.NodeError, match="AuthenticationError") as info:
        await acomplete(HELLO, model="gpt-4o", fallbacks=[backup],
                        model_params={"gpt-4o": {"mock_response": error}})
    assert info.value.kind == "provider" and info.value.retryable is False


async def test_litellm_mock_response_text_passes_through():
    answer = await acomplete(HELLO, model="gpt-4o", mock_response="mocked!")
    assert answer.text == "mocked!"
