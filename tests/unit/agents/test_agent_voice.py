"""``Agent(voice=...)``: listen, speak, and a turn from audio in to audio out traced as one
trace (transcription, agent, llm, speech) with the offline models."""

from __future__ import annotations

import pytest

import fm_lab
from fm_lab.agents import Agent, Voice, VoiceTurn
from fm_lab.llm import script, script_transcription, speak
from fm_lab.llm.voice_offline import tone


@pytest.fixture
def store():
    """The default store (in this test's own ``FM_LAB_HOME``): where calls outside runs are
    traced."""
    return fm_lab.default_store()


def _clerk(tmp_path) -> Agent:
    model = script("voice-desk", [("opening hours", "We open at nine.")], default="Sorry?")
    question = tone("When do you open?")
    ears = script_transcription("voice-desk-ears", {question: "What are your opening hours?"})
    return Agent("desk", "Answer briefly.", model=model, voice=Voice(
        speech_model="offline/tone", transcription_model=ears, voice="high",
        folder=str(tmp_path / "desk")))


def test_an_agent_listens_and_speaks(tmp_path, store):
    agent = _clerk(tmp_path)
    heard = agent.listen(tone("When do you open?"))
    assert heard.text == "What are your opening hours?"
    said = agent.speak("We open at nine.")
    assert said.read() == tone("We open at nine.", "high")
    assert said.path.startswith(str(tmp_path / "desk"))


def test_a_turn_from_audio_in_to_audio_out_is_one_trace(tmp_path, store):
    agent = _clerk(tmp_path)
    question = tmp_path / "question.wav"
    question.write_bytes(tone("When do you open?"))
    turn = agent.talk(question)
    assert isinstance(turn, VoiceTurn)
    assert turn.heard.text == "What are your opening hours?"
    assert turn.text == "We open at nine."
    assert turn.audio is not None and turn.audio.read() == tone("We open at nine.", "high")
    shown = turn._repr_html_()
    assert "What are your opening hours?" in shown and "<audio" in shown
    spans = fm_lab.trace(turn.result.trace_id, store=store)
    assert spans["trace_id"].nunique() == 1
    assert spans["kind"].tolist() == ["transcription", "agent", "llm", "speech"]
    kinds = set(fm_lab.usage(by=["model"], store=store)["model"])
    assert kinds == {"offline/voice-desk-ears", "offline/voice-desk", "offline/tone"}


def test_an_agent_without_a_voice_says_how_to_give_it_one():
    agent = Agent("mute", "Be brief.", model="offline/echo")
    with pytest.raises(ValueError, match=r"agent 'mute' has no voice: .*voice=fm_lab.agents"):
        agent.listen(b"RIFF")
    talker = Agent("talker", "Be brief.", model="offline/echo", voice=True)
    assert talker.voice == Voice()
    clip = speak("hello", model="offline/tone")
    assert talker.listen(clip).text == "hello"  # the default offline transcriber
