"""The voice nodes: ``transcribe`` (audio -> text with segments, timings and language) and
``speak`` (text -> an audio file, shown as a player in notebooks); both adapt
:mod:`fm_lab.llm.voice` (fallbacks and retries as for ``llm``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from fm_lab.nodes.base import NodeContext, NodeType, plain_names


def _speech_model() -> str:
    from fm_lab.llm.voice import default_speech_model

    return default_speech_model()


def _transcription_model() -> str:
    from fm_lab.llm.voice import default_transcription_model

    return default_transcription_model()


class _VoiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fallbacks: list[str] = Field(default_factory=list)
    retries: int = Field(2, ge=0, le=10, description="Retries per model on rate limits, 5xx "
                         "and timeouts before the next fallback.")


def _restricted_path(value: Any, what: str) -> None:
    """Under the restricted policy a workflow reads and writes audio files only in the audio
    folder (``$FM_LAB_HOME/audio``, where ``speak`` writes); URLs pass the egress checks."""
    from pathlib import Path

    from fm_lab.llm.voice_audio import audio_folder
    from fm_lab.security.policy import PolicyError, current_policy

    if isinstance(value, dict):
        value = value.get("path")
    if not isinstance(value, str) or value.startswith(("http://", "https://")):
        return
    if not current_policy().restricted:
        return
    folder = audio_folder().resolve()
    if not Path(value).expanduser().resolve().is_relative_to(folder):
        raise PolicyError(f"the restricted policy lets a workflow {what} audio files only "
                          f"under {folder}, not {value}")


class _VoiceNode(NodeType):
    """What both voice nodes share: they ask models (a model and its fallbacks)."""

    idempotent = True
    calls_models = True
    default_model: ClassVar[Callable[[], str]]

    @classmethod
    def models(cls, config: dict[str, Any]) -> list[str] | None:
        """The model and its fallbacks, unless a template names them."""
        return plain_names(config.get("model") or cls.default_model(),
                           config.get("fallbacks", []))


class TranscribeNode(_VoiceNode):
    """Turns audio into text: outputs ``{text, language, segments: [{start, end, text}],
    seconds, model, cost_usd}``.

    ```yaml
    heard:
      type: transcribe
      config:
        audio: "{{ nodes.say.output }}"   # a file path, an http(s) URL or a speak output
        model: whisper-1                  # default: $FM_LAB_TRANSCRIPTION_MODEL or offline
        fallbacks: [groq/whisper-large-v3]
    ```
    """

    type_name = "transcribe"
    description = "Transcribes audio (a file, URL or speak output) to text with timings."
    default_model = _transcription_model

    class Config(_VoiceConfig):
        audio: Any = Field(description="A file path, an http(s) URL or a speak node's output.")
        model: str = Field(default_factory=_transcription_model,
                           description="A litellm transcription model.")
        language: str | None = Field(None, description="ISO-639-1 hint (e.g. en).")
        prompt: str | None = Field(None, description="Words to expect (names, terms).")

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        from fm_lab.llm.voice import atranscribe

        config = self.config
        _restricted_path(config.audio, "read")
        heard = await atranscribe(config.audio, model=config.model,
                                  fallbacks=config.fallbacks, language=config.language,
                                  prompt=config.prompt, retries=config.retries)
        return heard.to_dict()


class SpeakNode(_VoiceNode):
    """Says a text: writes an audio file (under ``$FM_LAB_HOME/audio`` unless ``path`` is
    given) and outputs ``{path, format, seconds, bytes, sha256, model, voice, characters,
    cost_usd}``, which a notebook shows as a player.

    ```yaml
    say:
      type: speak
      config:
        text: "{{ nodes.answer.output }}"
        model: tts-1                      # default: $FM_LAB_SPEECH_MODEL or offline/voice
        voice: alloy
        format: mp3
    ```
    """

    type_name = "speak"
    description = "Says a text with a speech model; outputs the audio file."
    default_model = _speech_model

    class Config(_VoiceConfig):
        text: str
        model: str = Field(default_factory=_speech_model,
                           description="A litellm speech model.")
        voice: str | None = Field(None, description="The provider's voice (OpenAI: alloy, "
                                  "echo, ...; offline/espeak: en, de, ...).")
        format: str = Field("wav", description="mp3, opus, aac, flac, wav or pcm.")
        speed: float = Field(1.0, ge=0.25, le=4.0)
        instructions: str | None = None
        path: str | None = Field(None, description="Where to write the audio file (a file "
                                 "or a folder).")

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        from fm_lab.llm.voice import aspeak

        config = self.config
        _restricted_path(config.path, "write")
        return await aspeak(config.text, model=config.model, fallbacks=config.fallbacks,
                            voice=config.voice, format=config.format, speed=config.speed,
                            instructions=config.instructions, path=config.path,
                            retries=config.retries)
