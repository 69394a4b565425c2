"""Model calls through litellm: fallbacks, retries, streaming, spans with usage, record/replay
cassettes; the offline provider."""

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

__all__ = ["Cassette", "CassetteMiss", "Chunk", "Completion", "Finish", "ReasoningDelta",
           "TextDelta", "ToolCallChunk", "ToolOutputChunk", "ToolResultChunk", "acomplete",
           "astream", "cassette", "complete", "cost_usd", "script"]
