"""Agent memory: history and semantic recall (DuckDB + LanceDB), working memory, summaries,
processors, and inspection as DataFrames.

>>> from fm_lab.memory import Memory, Recall
>>> memory = Memory(store=":memory:", last_messages=10, recall=Recall(top_k=2, scope="thread"))
"""

from fm_lab.memory.embedders import (
    Embedder,
    EmbedderMismatchError,
    HashingEmbedder,
    LiteLLMEmbedder,
    SentenceTransformerEmbedder,
    default_embedder,
)
from fm_lab.memory.history import StoredMessage, ThreadResourceError
from fm_lab.memory.memory import Memory, Recall
from fm_lab.memory.processors import TokenLimiter, ToolCallFilter, repair_tool_pairs
from fm_lab.memory.summary import Summarizer
from fm_lab.memory.views import delete_thread, messages, threads, working
from fm_lab.memory.working import UpdateResult, WorkingMemory, WorkingMemoryError

__all__ = [
    "Embedder",
    "EmbedderMismatchError",
    "HashingEmbedder",
    "LiteLLMEmbedder",
    "Memory",
    "Recall",
    "SentenceTransformerEmbedder",
    "StoredMessage",
    "Summarizer",
    "ThreadResourceError",
    "TokenLimiter",
    "ToolCallFilter",
    "UpdateResult",
    "WorkingMemory",
    "WorkingMemoryError",
    "default_embedder",
    "delete_thread",
    "messages",
    "repair_tool_pairs",
    "threads",
    "working",
]
