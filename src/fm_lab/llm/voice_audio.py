"""Audio going into and out of voice calls: a file, URL, bytes or an earlier
:class:`~fm_lab.audio.Audio` read and checked (it exists, is audio, is not beyond
:data:`MAX_AUDIO_BYTES`), and audio a provider returned written to a file.

Every refusal is a :class:`AudioInputError` with one line naming the problem.
"""

from __future__ import annotations

import hashlib
import io
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fm_lab.audio import Audio
from fm_lab.exceptions import NodeError

MAX_AUDIO_BYTES = 25 * 1024 * 1024
"""The largest audio a voice call takes (25 MiB, OpenAI's transcription limit)."""

FORMATS = ("wav", "mp3", "flac", "ogg", "opus", "webm", "m4a", "aac", "pcm")
"""Audio formats by name; speech providers write a subset (OpenAI: mp3, opus, aac, flac,
wav, pcm), the offline ones wav."""

# what a file of each format starts with (m4a: an MP4 "ftyp" box at byte 4)
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"RIFF", 0, "wav"), (b"fLaC", 0, "flac"), (b"OggS", 0, "ogg"), (b"ID3", 0, "mp3"),
    (b"\x1aE\xdf\xa3", 0, "webm"), (b"ftyp", 4, "m4a"), (b"\xff\xf1", 0, "aac"),
    (b"\xff\xf9", 0, "aac"),
)


class AudioInputError(NodeError):
    """Audio a voice call cannot take (missing, not audio, too large, unknown format)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="user", retryable=False, domain="voice")


@dataclass(frozen=True)
class AudioData:
    """Audio bytes with what is known of them."""

    data: bytes
    format: str
    name: str
    path: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def seconds(self) -> float | None:
        return wav_seconds(self.data) if self.format == "wav" else None

    def describe(self) -> dict[str, Any]:
        """What spans record of the audio (never its bytes)."""
        return {"sha256": self.sha256, "bytes": len(self.data), "format": self.format,
                "path": self.path, "seconds": self.seconds}


def sniff(data: bytes) -> str | None:
    """The audio format ``data`` starts like, or None."""
    for magic, offset, name in _MAGIC:
        if data[offset:offset + len(magic)] == magic:
            return name if name != "wav" or data[8:12] == b"WAVE" else None
    if len(data) > 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:  # an MPEG frame
        return "mp3"
    return None


def wav_seconds(data: bytes) -> float | None:
    """How long WAV ``data`` plays (None when it is not readable WAV)."""
    try:
        with wave.open(io.BytesIO(data)) as reader:
            rate = reader.getframerate()
            return reader.getnframes() / rate if rate else None
    except (wave.Error, EOFError):
        return None


def _checked(data: bytes, where: str, path: str | None = None) -> AudioData:
    if len(data) > MAX_AUDIO_BYTES:
        raise AudioInputError(f"{where}: {len(data) / 2**20:.1f} MiB, beyond the "
                              f"{MAX_AUDIO_BYTES // 2**20} MiB a voice call takes")
    if not data:
        raise AudioInputError(f"{where}: empty, not audio")
    found = sniff(data)
    if found is None:
        raise AudioInputError(f"{where}: not audio (expected {', '.join(FORMATS[:-1])} "
                              f"data, {len(data)} bytes of something else)")
    if found == "wav" and wav_seconds(data) is None:
        raise AudioInputError(f"{where}: not readable WAV audio")
    name = Path(path).name if path else f"audio.{found}"
    return AudioData(data, found, name, path)


def _from_file(path: Path) -> AudioData:
    if not path.is_file():
        raise AudioInputError(f"audio file not found: {path}")
    size = path.stat().st_size
    if size > MAX_AUDIO_BYTES:  # refused before reading it
        raise AudioInputError(f"audio file {path}: {size / 2**20:.1f} MiB, beyond the "
                              f"{MAX_AUDIO_BYTES // 2**20} MiB a voice call takes")
    return _checked(path.read_bytes(), f"audio file {path}", str(path))


async def _from_url(url: str) -> AudioData:
    import httpx

    from fm_lab.security.egress import client_options
    from fm_lab.security.policy import current_policy

    try:
        async with (httpx.AsyncClient(follow_redirects=True, timeout=60.0,
                                      **client_options(current_policy())) as client,
                    client.stream("GET", url) as response):
            if response.status_code >= 400:
                raise AudioInputError(f"audio URL {url} answered HTTP {response.status_code}")
            data = bytearray()
            async for piece in response.aiter_bytes():
                data += piece
                if len(data) > MAX_AUDIO_BYTES:
                    raise AudioInputError(f"audio URL {url}: beyond the "
                                          f"{MAX_AUDIO_BYTES // 2**20} MiB a voice call takes")
    except httpx.HTTPError as exc:
        raise AudioInputError(f"audio URL {url} could not be read: "
                              f"{type(exc).__name__}: {exc}") from None
    return _checked(bytes(data), f"audio URL {url}", url.rsplit("/", 1)[-1] or None)


async def read_audio(audio: Any) -> AudioData:
    """``audio`` (bytes, a file path, an http(s) URL, or an :class:`Audio`/dict with a
    ``path``) as checked :class:`AudioData`."""
    if isinstance(audio, AudioData):
        return audio
    if isinstance(audio, bytes | bytearray | memoryview):
        return _checked(bytes(audio), "audio bytes")
    if isinstance(audio, dict):
        if "path" not in audio:
            raise AudioInputError(f"audio given as a dict needs a 'path' (an Audio output); "
                                  f"got keys {sorted(audio)}")
        audio = audio["path"]
    if isinstance(audio, str) and audio.startswith(("http://", "https://")):
        return await _from_url(audio)
    if isinstance(audio, str | os.PathLike):
        return _from_file(Path(audio).expanduser())
    raise AudioInputError(f"audio must be bytes, a file path, a URL or an Audio output, "
                          f"not {type(audio).__name__}")


def audio_folder() -> Path:
    """Where spoken audio is written unless a path is given: ``$FM_LAB_HOME/audio``."""
    from fm_lab.store.default import home

    return home() / "audio"


def write_audio(data: bytes, fmt: str, path: str | os.PathLike[str] | None,
                **fields: Any) -> Audio:
    """Write ``data`` to ``path`` (a file, or an existing folder; default
    :func:`audio_folder`), named ``<sha256 prefix>.<fmt>`` in a folder (the same audio is one
    file), and describe it."""
    digest = hashlib.sha256(data).hexdigest()
    target = Path(path).expanduser() if path else audio_folder()
    if target.is_dir() or not path:
        target = target / f"{digest[:20]}.{fmt}"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
    temporary.write_bytes(data)
    temporary.replace(target)  # a reader never sees half a file
    seconds = wav_seconds(data) if fmt == "wav" else None
    return Audio(path=str(target.resolve()), format=fmt, seconds=seconds, bytes=len(data),
                 sha256=digest, **fields)
