"""Exact offline replay: an agent run answered from its own recorded responses, no provider
called; a changed code node is the one difference reported; on every store."""

from __future__ import annotations

from typing import Any

import pytest

import fm_lab
from fm_lab.llm.offline import script
from fm_lab.store import MemoryStore


def test_replay_of_an_agent_run_calls_no_provider_and_reports_changes(
        each_store: Any, register: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def reply(messages: list[dict[str, Any]], tools: Any) -> Any:
        if messages[-1]["role"] == "tool":
            return f"it has {messages[-1]['content']} words"
        return {"tool_calls": [{"name": "words", "arguments": {"text": "a b c"}}]}

    def words(text: str) -> int:
        """Count the words of ``text``."""
        return len(text.split())

    def shape(text: str) -> str:
        return text.upper()

    tool, finish = register(words), register(shape)
    wf = {"id": "replayed", "nodes": {
        "count": {"type": "agent", "config": {
            "instructions": "Count words.", "model": script(f"replay_{tool}", fn=reply),
            "tools": [tool], "prompt": "Count: {{ inputs.text }}"}},
        "shout": {"type": "code", "config": {"function": finish,
                                             "args": {"text": "{{ nodes.count.output.text }}"}}}},
        "edges": ["count -> shout"]}
    run = fm_lab.run(wf, {"text": "a b c"}, store=each_store)
    assert run.status == "succeeded", run.error
    assert run.outputs == {"shout": "IT HAS 3 WORDS"}
    assert run.reproducible

    import litellm

    sent: list[str] = []

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        sent.append(kwargs.get("model", "?"))
        raise AssertionError("a replay called a provider")

    monkeypatch.setattr(litellm, "acompletion", refuse)
    same = fm_lab.replay(run.run_id, store=each_store)
    assert (same.identical, same.misses, sent) == (True, [], [])
    assert same.run.outputs == run.outputs and same.run.forked_from == run.run_id

    fm_lab.register_function(lambda text: text.lower(), name=finish)  # the code changed
    changed = run.replay()
    assert list(changed.differences["path"]) == ["shout"] and sent == []
    row = changed.differences.iloc[0]
    assert (row["output_a"], row["output_b"]) == ("IT HAS 3 WORDS", "it has 3 words")
    assert "1 differ: shout" in repr(changed)


def test_replay_of_forks_answers_reused_calls_from_the_run_that_made_them(
        each_store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    model = script("replay_forks", default="hello")
    wf = {"id": "replay_forks", "nodes": {
        "draft": {"type": "llm", "config": {"model": model,
                                            "prompt": "greet {{ inputs.who }}"}},
        "edit": {"type": "template", "config": {"template": "{{ nodes.draft.output }}!"}}},
        "edges": ["draft -> edit"]}
    parent = fm_lab.run(wf, {"who": "Ada"}, store=each_store)
    again = parent.fork("edit").fork("edit")  # draft reused from the parent, twice over
    edited = parent.fork("draft", output="hi").fork("edit")  # draft: an edit, reused

    import litellm

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a replay called a provider")

    monkeypatch.setattr(litellm, "acompletion", refuse)
    for run in (again, edited):
        found = run.replay()
        assert found.identical and found.misses == [], found.differences
    assert edited.replay().run.outputs == {"edit": "hi!"}
    assert again.reproducible and edited.reproducible
    if isinstance(each_store, MemoryStore):  # a run whose recorded answers are gone
        each_store.spans.clear()
        assert not parent.reproducible and parent.replay().misses == [("draft", model)]


def test_another_run_during_a_replay_calls_its_model_not_the_replay_s_recording() -> None:
    """The recorded answers belong to the replay's own context: a run started beside it in
    the same process (another cell's task) asks its model as usual."""
    import asyncio

    answers = iter(["first", "second", "third"])
    model = script("replay_scoped", fn=lambda messages, tools: next(answers))
    wf = {"id": "scoped", "nodes": {"ask": {"type": "llm", "config": {
        "model": model, "prompt": "Say something."}}}}
    store = MemoryStore()
    recorded = fm_lab.run(wf, store=store)
    assert recorded.outputs == {"ask": "first"}

    async def both() -> tuple[Any, Any]:
        return await asyncio.gather(fm_lab.areplay(recorded.run_id, store=store),
                                    fm_lab.arun(wf, store=store))

    replayed, beside = asyncio.run(both())
    assert replayed.identical and replayed.run.outputs == {"ask": "first"}  # the recording
    assert beside.outputs == {"ask": "second"}  # its model, asked
