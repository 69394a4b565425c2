"""Model calls through litellm: fallbacks, retries, streaming, spans with usage, record/replay
cassettes; the offline provider; voice (speech to text, text to speech)."""

from fm_lab.llm.cassette import Cassette, CassetteMiss, cassette
from fm_lab.llm.chunks import (
    Chunk,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallChunk,
    ToolOutputChunk,
    ToolResultChunk,
)
from fm_lab.llm.client import Completion, acomplete, astream, complete, cost_usd
from fm_lab.llm.offline import script
from fm_lab.llm.voice import Transcript, aspeak, atranscribe, speak, transcribe
from fm_lab.llm.voice_offline import script_transcription

__all__ = ["Cassette", "CassetteMiss", "Chunk", "Completion", "Finish", "ReasoningDelta",
           "TextDelta", "ToolCallChunk", "ToolOutputChunk", "ToolResultChunk", "Transcript",
           "acomplete", "aspeak", "astream", "atranscribe", "cassette", "complete", "cost_usd",
           "script", "script_transcription", "speak", "transcribe"]
