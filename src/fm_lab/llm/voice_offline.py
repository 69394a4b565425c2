"""Offline voice models for tests and the demo: no network, no key, no model weights.

Speech (WAV only):

- ``offline/voice``: the system's ``espeak-ng`` when it is on PATH, else the tone generator;
- ``offline/espeak``: ``espeak-ng`` (a clear error when it is missing); voices are its
  language names (``en``, ``en-us``, ``de``, ... ``espeak-ng --voices``), ``default`` is ``en``;
- ``offline/tone``: a deterministic tone per character (voices ``default``, ``low``, ``high``),
  written with the standard library's :mod:`wave`.

Transcription is scripted: :func:`script_transcription` maps audio (its sha256, or its
bytes) to text and returns the model name; any other ``offline/<name>`` transcribes what an
offline speech model said in this process.

>>> model = script_transcription("clerk", {b"RIFF...": "hello"})
>>> model
'offline/clerk'
"""

from __future__ import annotations

import hashlib
import io
import math
import shutil
import struct
import subprocess
import tempfile
import threading
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fm_lab.llm.voice_audio import AudioData, AudioInputError

SPEECH_MODELS = ("offline/voice", "offline/espeak", "offline/tone")
TONE_VOICES = {"default": 220.0, "low": 110.0, "high": 440.0}
_RATE = 16_000
_CHAR_S = 0.06  # a tone per character, 60 ms at speed 1
_ESPEAK_WPM = 175


class OfflineTranscriptMiss(LookupError):
    """No transcript is scripted for this audio: the next fallback model is asked."""


@dataclass
class TranscriptScript:
    """Audio sha256 -> text (or ``{"text", "language", "segments"}``), else ``default``."""

    table: dict[str, str | dict[str, Any]] = field(default_factory=dict)
    default: str | None = None


_SCRIPTS: dict[str, TranscriptScript] = {}
_SPOKEN: dict[str, str] = {}  # what offline speech models said in this process, by sha256
_LOCK = threading.Lock()


def _key(audio: str | bytes) -> str:
    return hashlib.sha256(audio).hexdigest() if isinstance(audio, bytes) else audio.lower()


def script_transcription(name: str, table: dict[str | bytes, str | dict[str, Any]] | None = None,
                         *, default: str | None = None) -> str:
    """Register a scripted offline transcriber and return its name ``offline/<name>``:
    ``table`` maps audio (its bytes, or their sha256 in hex) to the transcript (text, or
    ``{"text", "language", "segments"}``); audio not in it gets ``default``, else the next
    fallback model is asked."""
    if f"offline/{name}" in SPEECH_MODELS:
        raise ValueError(f"offline/{name} is a speech model; name the transcriber otherwise")
    with _LOCK:
        _SCRIPTS[name] = TranscriptScript({_key(k): v for k, v in (table or {}).items()},
                                          default)
    return f"offline/{name}"


def remember(data: bytes, text: str) -> None:
    """Note that ``data`` says ``text`` (unscripted offline transcribers answer with it)."""
    with _LOCK:
        _SPOKEN[_key(data)] = text


def transcript(model: str, audio: AudioData, language: str | None) -> dict[str, Any]:
    """What offline transcriber ``model`` hears in ``audio``: OpenAI ``verbose_json``."""
    name = model.split("/", 1)[-1]
    found: str | dict[str, Any] | None
    script = _SCRIPTS.get(name)
    if script is not None:
        found = script.table.get(audio.sha256, script.default)
    else:
        found = _SPOKEN.get(audio.sha256)
    if found is None:
        raise OfflineTranscriptMiss(
            f"{model}: no transcript for audio sha256 {audio.sha256[:16]}... "
            f"(script one with fm_lab.llm.script_transcription)")
    entry = found if isinstance(found, dict) else {"text": found}
    seconds = audio.seconds
    text = str(entry["text"])
    segments = entry.get("segments") or [
        {"id": 0, "start": 0.0, "end": round(seconds or 0.0, 3), "text": text}]
    return {"text": text, "language": entry.get("language") or language or "en",
            "duration": seconds, "segments": segments}


def espeak_path() -> str | None:
    """``espeak-ng`` on PATH, or None."""
    return shutil.which("espeak-ng")


def _espeak_voices(command: str) -> set[str]:
    listed = subprocess.run([command, "--voices"], capture_output=True, text=True, timeout=30,
                            check=True).stdout.splitlines()[1:]
    names: set[str] = set()
    for line in listed:  # Pty Language Age/Gender VoiceName File (Other Languages)...
        words = line.split()
        if len(words) >= 5:
            names |= {words[1], words[3], words[4].rsplit("/", 1)[-1]}
            names |= {w.lstrip("(") for w in words[5:] if w.startswith("(")}
    return {name.lower() for name in names}


_VOICES: dict[str, set[str]] = {}


def _espeak(text: str, voice: str | None, speed: float) -> bytes:
    command = espeak_path()
    if command is None:
        raise AudioInputError("offline/espeak needs espeak-ng on PATH (apt-get install "
                              "espeak-ng); offline/voice and offline/tone work without it")
    chosen = "en" if voice in (None, "default") else str(voice)
    known = _VOICES.get(command) or _VOICES.setdefault(command, _espeak_voices(command))
    if chosen.split("+", 1)[0].lower() not in known:
        raise AudioInputError(f"unknown voice {chosen!r} for offline/espeak; choose an "
                              f"espeak-ng language such as en, en-us, de, fr "
                              f"(espeak-ng --voices lists {len(known)})")
    with tempfile.TemporaryDirectory(prefix="fm_lab-espeak-") as folder:
        out = Path(folder) / "speech.wav"
        subprocess.run([command, "-v", chosen, "-s", str(round(_ESPEAK_WPM * speed)),
                        "-w", str(out), "--", text], capture_output=True, timeout=120,
                       check=True)
        return out.read_bytes()


def tone(text: str, voice: str | None = None, speed: float = 1.0) -> bytes:
    """``text`` as tones, one per character (spaces are silence), 16 kHz mono WAV: the same
    text, voice and speed give the same bytes."""
    chosen = voice if voice is not None else "default"
    if chosen not in TONE_VOICES:
        raise AudioInputError(f"unknown voice {chosen!r} for offline/tone; choose from "
                              f"{', '.join(TONE_VOICES)}")
    base, step = TONE_VOICES[chosen], max(1, round(_RATE * _CHAR_S / speed))
    frames = bytearray()
    for char in text:
        pitch = 0.0 if char.isspace() else base * 2 ** ((ord(char) % 24) / 12)
        for i in range(step):
            fade = min(1.0, i / 80, (step - i) / 80)  # no clicks between tones
            value = math.sin(2 * math.pi * pitch * i / _RATE) * 0.3 * fade
            frames += struct.pack("<h", round(value * 32767))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(_RATE)
        writer.writeframes(bytes(frames))
    return buffer.getvalue()


def speech(model: str, text: str, voice: str | None, fmt: str, speed: float) -> bytes:
    """What offline speech ``model`` says: WAV bytes (remembered for the offline
    transcribers)."""
    if model not in SPEECH_MODELS:
        raise AudioInputError(f"unknown offline speech model {model!r}; choose from "
                              f"{', '.join(SPEECH_MODELS)}")
    if fmt != "wav":
        raise AudioInputError(f"{model} writes wav audio only, not {fmt!r}")
    use_espeak = model == "offline/espeak" or (model == "offline/voice" and espeak_path())
    data = _espeak(text, voice, speed) if use_espeak else tone(text, voice, speed)
    remember(data, text)
    return data
