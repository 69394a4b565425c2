"""Voice for agents: ``Agent(voice=Voice(...))`` listens (speech to text), speaks (text to
speech) and takes a turn from audio in to audio out, all through :mod:`fm_lab.llm.voice`.

>>> from fm_lab.agents import Agent
>>> agent = Agent("clerk", "Be brief.", voice=Voice(speech_model="offline/tone"))
>>> turn = agent.talk("question.wav")                                   # doctest: +SKIP
>>> turn.heard.text, turn.text, turn.audio.path                         # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.audio import Audio
from fm_lab.llm.voice import Transcript, aspeak, atranscribe

if TYPE_CHECKING:
    from fm_lab.agents.result import AgentResult


@dataclass
class Voice:
    """How an agent hears and speaks: models (default: ``$FM_LAB_TRANSCRIPTION_MODEL`` and
    ``$FM_LAB_SPEECH_MODEL``, else the offline ones) with their fallbacks, the voice, the
    audio format, a language hint and where audio files go (``folder``; default
    ``$FM_LAB_HOME/audio``)."""

    speech_model: str | None = None
    transcription_model: str | None = None
    voice: str | None = None
    format: str = "wav"
    speech_fallbacks: Sequence[str] = ()
    transcription_fallbacks: Sequence[str] = ()
    language: str | None = None
    speed: float = 1.0
    instructions: str | None = None
    folder: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    """More litellm parameters for every voice call (``model_params`` per model name too)."""

    async def listen(self, audio: Any) -> Transcript:
        """What ``audio`` says."""
        return await atranscribe(audio, model=self.transcription_model,
                                 fallbacks=self.transcription_fallbacks,
                                 language=self.language, **self.params)

    async def speak(self, text: str) -> Audio:
        """``text`` said aloud, as an audio file."""
        if self.folder:
            Path(self.folder).expanduser().mkdir(parents=True, exist_ok=True)
        return await aspeak(text, model=self.speech_model, fallbacks=self.speech_fallbacks,
                            voice=self.voice, format=self.format, speed=self.speed,
                            instructions=self.instructions, path=self.folder, **self.params)


@dataclass
class VoiceTurn:
    """A turn from audio in to audio out: what was heard, the agent's result and its answer
    said aloud (None when the agent answered nothing)."""

    heard: Transcript
    result: AgentResult
    audio: Audio | None

    @property
    def text(self) -> str | None:
        """The agent's answer as text."""
        return self.result.text

    def _repr_html_(self) -> str:
        player = self.audio._repr_html_() if self.audio is not None else ""
        return (f"<p><b>heard:</b> {html.escape(self.heard.text)}</p>"
                f"<p><b>answer:</b> {html.escape(self.text or '')}</p>{player}")
