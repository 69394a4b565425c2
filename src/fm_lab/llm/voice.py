"""Voice calls: speech to text (``litellm.atranscription``) and text to speech
(``litellm.aspeech``) with the chat client's fallback chain and retries
(:func:`fm_lab.llm.client._with_fallbacks`). Every call is a span (kind ``transcription`` or
``speech``) with the model, the audio seconds and characters (attributes
``fm_lab.audio_seconds`` and ``fm_lab.characters``) and the cost from litellm's per-second
and per-character prices, so :func:`fm_lab.usage` counts voice beside tokens. Offline models
(``offline/...``, :mod:`fm_lab.llm.voice_offline`) answer without litellm.

>>> clip = speak("Hello there", model="offline/tone")     # doctest: +SKIP
>>> clerk = script_transcription("clerk", {clip.read(): "Hello there"})  # doctest: +SKIP
>>> transcribe(clip, model=clerk).text                     # doctest: +SKIP
'Hello there'
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fm_lab.audio import Audio
from fm_lab.llm.client import _litellm, _with_fallbacks
from fm_lab.llm.voice_audio import FORMATS, AudioInputError, read_audio, sniff, write_audio
from fm_lab.llm.voice_offline import speech as offline_speech
from fm_lab.llm.voice_offline import transcript as offline_transcript
from fm_lab.sync import run_sync
from fm_lab.tracing.pricing import voice_cost
from fm_lab.tracing.spans import Span, current
from fm_lab.tracing.standalone import standalone

SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
"""What ``speak`` may ask a provider for (OpenAI's speech formats)."""
MAX_SPEECH_CHARACTERS = 4096
"""The longest text one speech call takes (OpenAI's limit)."""


def default_speech_model() -> str:
    """``$FM_LAB_SPEECH_MODEL`` (any litellm speech model, with its key) or
    ``offline/voice``."""
    return os.environ.get("FM_LAB_SPEECH_MODEL", "offline/voice")


def default_transcription_model() -> str:
    """``$FM_LAB_TRANSCRIPTION_MODEL`` (any litellm transcription model) or
    ``offline/transcriber`` (it transcribes what offline speech said)."""
    return os.environ.get("FM_LAB_TRANSCRIPTION_MODEL", "offline/transcriber")


@dataclass
class Transcript:
    """What was said: the text, its language, segments with their timings (seconds), and
    how long the audio played."""

    text: str
    language: str | None
    segments: list[dict[str, Any]]
    seconds: float | None
    model: str
    cost_usd: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (a ``transcribe`` node's output)."""
        return {"text": self.text, "language": self.language, "segments": self.segments,
                "seconds": self.seconds, "model": self.model, "cost_usd": self.cost_usd}


def _segment(item: Any) -> dict[str, Any]:
    get = item.get if isinstance(item, dict) else lambda k, d=None: getattr(item, k, d)
    return {"start": float(get("start", 0.0) or 0.0), "end": float(get("end", 0.0) or 0.0),
            "text": str(get("text", "") or "").strip()}


def _plain(response: Any) -> dict[str, Any]:
    """A litellm ``TranscriptionResponse`` as ``verbose_json`` fields."""
    fields: dict[str, Any] = (response.model_dump() if hasattr(response, "model_dump")
                              else dict(response))
    hidden = getattr(response, "_hidden_params", None) or {}
    if fields.get("duration") is None:
        fields["duration"] = hidden.get("audio_transcription_duration")
    return fields


def _provider(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else "openai"


def _end(span: Span, model: str, output: Any, *, seconds: float | None, characters: int,
         cost: float | None) -> None:
    span.set_usage(model=model, provider=_provider(model), cost_usd=cost)
    span.set_attribute("fm_lab.audio_seconds", round(seconds, 3) if seconds else 0.0)
    span.set_attribute("fm_lab.characters", characters)
    span.output = output
    span.end()


async def atranscribe(audio: Any, *, model: str | None = None,
                      fallbacks: Sequence[str] = (), language: str | None = None,
                      prompt: str | None = None, retries: int = 2, backoff_s: float = 0.5,
                      timeout_s: float = 120.0,
                      model_params: dict[str, dict[str, Any]] | None = None,
                      **params: Any) -> Transcript:
    """Transcribe ``audio`` (bytes, a file path, an http(s) URL or an :class:`Audio`) with
    ``model``, then each of ``fallbacks``; a ``transcription`` span per attempt.
    ``model_params`` adds litellm parameters per model name (``api_base``, ...)."""
    clip = await read_audio(audio)
    models = [model or default_transcription_model(), *fallbacks]

    async def call(name: str) -> dict[str, Any]:
        if name.startswith("offline/"):
            return offline_transcript(name, clip, language)
        extra = {"max_retries": 0, **params, **(model_params or {}).get(name, {})}
        extra.setdefault("response_format", "verbose_json")
        optional = {k: v for k, v in (("language", language), ("prompt", prompt)) if v}
        response = await _litellm().atranscription(
            model=name, file=(clip.name, clip.data), timeout=timeout_s, drop_params=True,
            **optional, **extra)
        return _plain(response)

    attempts: list[dict[str, Any]] = []
    with standalone():
        answer, name, span = await _with_fallbacks(
            models, [], retries, backoff_s, attempts, call, current(), kind="transcription",
            span_input={"audio": clip.describe(), "language": language})
        seconds = answer.get("duration") or clip.seconds
        seconds = float(seconds) if seconds is not None else None
        text = str(answer.get("text") or "").strip()
        cost = voice_cost(name, seconds_in=seconds or 0.0)
        segments = [_segment(s) for s in answer.get("segments") or []]
        found = Transcript(text, answer.get("language") or language, segments, seconds, name,
                           cost, attempts)
        _end(span, name, {"text": text, "language": found.language}, seconds=seconds,
             characters=len(text), cost=cost)
    attempts.append({"model": name, "ok": True})
    return found


def transcribe(audio: Any, **options: Any) -> Transcript:
    """Synchronous :func:`atranscribe` (works inside Jupyter's running loop too)."""
    return run_sync(atranscribe(audio, **options))


def _check_speech(text: str, fmt: str) -> None:
    if not text.strip():
        raise AudioInputError("nothing to say: the text is empty")
    if len(text) > MAX_SPEECH_CHARACTERS:
        raise AudioInputError(f"the text is {len(text)} characters, beyond the "
                              f"{MAX_SPEECH_CHARACTERS} one speech call takes")
    if fmt not in SPEECH_FORMATS:
        raise AudioInputError(f"unknown audio format {fmt!r}; choose from "
                              f"{', '.join(SPEECH_FORMATS)}")


async def aspeak(text: str, *, model: str | None = None, fallbacks: Sequence[str] = (),
                 voice: str | None = None, format: str = "wav", speed: float = 1.0,
                 instructions: str | None = None, path: str | os.PathLike[str] | None = None,
                 retries: int = 2, backoff_s: float = 0.5, timeout_s: float = 120.0,
                 model_params: dict[str, dict[str, Any]] | None = None,
                 **params: Any) -> Audio:
    """Say ``text`` with ``model`` (then each of ``fallbacks``) in ``voice`` and write the
    audio to ``path`` (a file or a folder; default: ``$FM_LAB_HOME/audio/<hash>.<format>``);
    a ``speech`` span
    per attempt. Providers other than offline ones get ``voice`` (default ``alloy``),
    ``response_format``, ``speed`` and ``instructions`` as litellm passes them on."""
    _check_speech(text, format)
    models = [model or default_speech_model(), *fallbacks]

    async def call(name: str) -> bytes:
        if name.startswith("offline/"):  # espeak-ng or the tones, off the event loop
            return await asyncio.to_thread(offline_speech, name, text, voice, format, speed)
        extra = {"max_retries": 0, **params, **(model_params or {}).get(name, {})}
        optional = {k: v for k, v in (("speed", speed if speed != 1.0 else None),
                                      ("instructions", instructions)) if v is not None}
        response = await _litellm().aspeech(model=name, input=text, voice=voice or "alloy",
                                            response_format=format, timeout=timeout_s,
                                            **optional, **extra)
        data: bytes = response.content
        return data

    attempts: list[dict[str, Any]] = []
    with standalone():
        data, name, span = await _with_fallbacks(
            models, [], retries, backoff_s, attempts, call, current(), kind="speech",
            span_input={"text": text, "voice": voice, "format": format})
        try:
            if format != "pcm" and sniff(data) is None:  # raw pcm has no header to check
                raise AudioInputError(f"{name} answered with {len(data)} bytes that are not "
                                      f"{format} audio")
            clip = write_audio(data, format, path, model=name, voice=voice,
                               characters=len(text))
        except BaseException as exc:
            span.end("error", {"type": type(exc).__name__, "message": str(exc)[:500]})
            raise
        cost = voice_cost(name, characters=len(text), seconds_out=clip.seconds or 0.0)
        clip["cost_usd"] = cost
        _end(span, name, {k: v for k, v in clip.items() if k != "__fm_type__"},
             seconds=clip.seconds, characters=len(text), cost=cost)
    attempts.append({"model": name, "ok": True})
    return clip


def speak(text: str, **options: Any) -> Audio:
    """Synchronous :func:`aspeak` (works inside Jupyter's running loop too)."""
    return run_sync(aspeak(text, **options))


__all__ = ["FORMATS", "MAX_SPEECH_CHARACTERS", "SPEECH_FORMATS", "Transcript", "aspeak",
           "atranscribe", "default_speech_model", "default_transcription_model", "speak",
           "transcribe"]
