"""``Memory``: an agent's memory (history, semantic recall, working memory, summary) on a
store (DuckDB or PostgreSQL) with vectors in pgvector or LanceDB (:mod:`.vector_backend`);
it implements :class:`~fm_lab.agents.AgentMemory`."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.agents.memory_api import MemoryContext
from fm_lab.memory.embedders import Embedder, Vectors, default_embedder
from fm_lab.memory.history import History, StoredMessage, check_message
from fm_lab.memory.processors import repair_tool_pairs
from fm_lab.memory.summary import Summarizer
from fm_lab.memory.vector_backend import (
    MessageIndex,
    VectorChoice,
    check_choice,
    choose,
    delete_thread_vectors,
    message_index,
)
from fm_lab.memory.vectors import Scope
from fm_lab.memory.working import WorkingMemory
from fm_lab.tracing.spans import span

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.agents.tools import Tool
    from fm_lab.store.base import SqlStore

_IDENTITY_CAPACITY = 10_000


@dataclass
class Recall:
    """Semantic recall settings: ``top_k`` hits, each with ``message_range`` neighbours
    (``n`` on both sides or ``{"before": b, "after": a}``), searched in the ``scope``
    "thread" or "resource" (every thread of the resource)."""

    top_k: int = 3
    message_range: int | Mapping[str, int] = 2
    scope: Scope = "thread"

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"recall top_k must be at least 1, got {self.top_k}")
        if self.scope not in ("thread", "resource"):
            raise ValueError(f"recall scope must be 'thread' or 'resource', got {self.scope!r}")
        self.bounds()

    def bounds(self) -> tuple[int, int]:
        """``(before, after)`` neighbours of each hit."""
        rng = self.message_range
        if isinstance(rng, int):
            before = after = rng
        else:
            unknown = set(rng) - {"before", "after"}
            if unknown:
                raise ValueError(f"message_range takes 'before' and 'after', not {unknown}")
            before, after = int(rng.get("before", 0)), int(rng.get("after", 0))
        if before < 0 or after < 0:
            raise ValueError(f"message_range must not be negative, got {rng!r}")
        return before, after


class Memory:
    """Memory for agents: the last ``last_messages`` of the thread, semantic ``recall`` of
    older messages with their neighbours, optional ``working_memory`` and ``summary``.

    ``store`` is a :class:`~fm_lab.Store`, a path, or None for the default store. ``vectors``
    says where message vectors live: ``"pgvector"`` (in the store's tables; a PostgreSQL
    store with the extension), ``"lancedb"`` (a LanceDB folder: ``vector_path``, else
    ``<db>.lance`` beside a DuckDB file, else ``$FM_LAB_VECTORS`` for a server store) or
    ``"auto"``: pgvector when the store has it, else LanceDB. ``embedder`` defaults to
    ``LiteLLMEmbedder($FM_LAB_EMBEDDING_MODEL)`` when that is set, else the lexical
    :class:`HashingEmbedder`.

    >>> memory = Memory(store=":memory:", last_messages=10)
    >>> memory.last_messages
    10
    """

    def __init__(
        self,
        *,
        store: SqlStore | str | Path | None = None,
        last_messages: int = 20,
        recall: Recall | bool = True,
        working_memory: WorkingMemory | bool = False,
        summary: Summarizer | None = None,
        embedder: Embedder | None = None,
        vector_path: str | Path | None = None,
        vectors: VectorChoice = "auto",
    ) -> None:
        if last_messages < 0:
            raise ValueError(f"last_messages must not be negative, got {last_messages}")
        self._store = store if store is None or not isinstance(store, str | Path) else _open(store)
        self.last_messages = last_messages
        self.recall_settings: Recall | None = (
            Recall() if recall is True else (recall if isinstance(recall, Recall) else None))
        self.working_memory: WorkingMemory | None = (
            WorkingMemory() if working_memory is True
            else (working_memory if isinstance(working_memory, WorkingMemory) else None))
        self.summary = summary
        self.embedder: Embedder = embedder or default_embedder()
        self._vector_path = Path(vector_path) if vector_path is not None else None
        self.vector_choice = check_choice(vectors)
        self._vectors: MessageIndex | None = None
        self._seen: OrderedDict[int, tuple[Mapping[str, Any], str]] = OrderedDict()

    # ---- parts ---------------------------------------------------------------------------
    @property
    def store(self) -> SqlStore:
        if self._store is None:
            from fm_lab.store.base import sql_store
            from fm_lab.store.default import default_store

            self._store = sql_store(default_store(), "agent memory")
        return self._store

    @property
    def history(self) -> History:
        return History(self.store)

    @property
    def vector_backend(self) -> str:
        """``"pgvector"`` or ``"lancedb"``: where this memory's vectors live."""
        return choose(self.store, self.vector_choice, self._vector_path)

    @property
    def vectors(self) -> MessageIndex:
        """The message vector table (opened on first use; raises EmbedderMismatchError when
        it was written by another embedder)."""
        if self._vectors is None:
            vectors = message_index(self.store, self.embedder, self.vector_choice,
                                    self._vector_path)
            vectors.check()
            self._vectors = vectors
        return self._vectors

    def _working(self) -> WorkingMemory | None:
        if self.working_memory is not None and self.working_memory.store is None:
            self.working_memory.store = self.store
        return self.working_memory

    # ---- the agent contract --------------------------------------------------------------
    async def prepare(self, *, thread_id: str, resource_id: str | None,
                      query: str) -> MemoryContext:
        """Recalled messages (time order), then the last N of the thread; working memory and
        summary as system text; the ``update_working_memory`` tool when enabled."""
        _check_ids(thread_id, resource_id)
        working = self._working()
        key = working.key_for(thread_id, resource_id) if working is not None else None
        with self.store.hold():  # one open of the DuckDB file for both reads
            with span("memory.history", kind="memory", thread_id=thread_id) as read:
                last = self.history.last(thread_id, self.last_messages)
                read.set_attribute("memory.messages", len(last))
            note = None
            if working is not None and key is not None:
                with span("memory.working.read", kind="memory", key=key) as read:
                    note = working.get(key)
                    read.set_attribute("memory.chars", len(note))
        live_from = last[0].sequence if last else None
        recalled: list[StoredMessage] = []
        if self.recall_settings is not None and query.strip():
            recalled = await self.recall(query, thread_id=thread_id, resource_id=resource_id,
                                         live_from=live_from)
        for stored in [*recalled, *last]:
            self._remember(stored.message, stored.message_id)
        system: list[str] = []
        tools: list[Tool] = []
        if self.summary is not None:
            with span("memory.summary", kind="memory", thread_id=thread_id) as summarised:
                text = await self.summary.refresh(self.store, thread_id, live_from)
                summarised.set_attribute("memory.chars", len(text or ""))
            if text:
                system.append(f"## Summary of earlier messages\n{text}")
        if working is not None and note is not None:
            system.append(working.system_text(note))
            tools.append(working.tool(thread_id, resource_id))
        return MemoryContext(messages=repair_tool_pairs(s.message for s in [*recalled, *last]),
                             system="\n\n".join(system) or None, tools=tools)

    async def save(self, *, thread_id: str, resource_id: str | None,
                   messages: Sequence[Mapping[str, Any]]) -> None:
        """SqlStore new messages at the end of the thread and index their text. A message seen
        before (the same dict, or the same ``id`` key) is not stored again; system messages
        are not stored."""
        await self.append(thread_id, resource_id, messages)

    async def append(self, thread_id: str, resource_id: str | None,
                     messages: Sequence[Mapping[str, Any]]) -> list[StoredMessage]:
        """:meth:`save`, returning what was stored (with sequence numbers)."""
        _check_ids(thread_id, resource_id)
        for index, message in enumerate(messages):
            check_message(index, message)
        batch = [(self._message_id(thread_id, m), m) for m in messages
                 if m.get("role") != "system"]
        if not batch:
            return []
        if self.recall_settings is not None:
            _ = self.vectors  # an embedder mismatch refuses the save before anything is stored
        with span("memory.history.append", kind="memory", thread_id=thread_id) as write:
            stored = self.history.append(thread_id, resource_id, batch)
            write.set_attribute("memory.messages", len(stored))
        for mid, message in batch:
            self._remember(message, mid)
        if self.recall_settings is not None:
            await self._index(stored)
        return stored

    async def _index(self, stored: Sequence[StoredMessage]) -> None:
        with span("memory.index", kind="memory", vectors=self.vector_backend) as indexing:
            texts = [s.text for s in stored if s.text.strip()]
            indexing.set_attribute("memory.vectors", len(texts))
            await self._add_vectors(stored, texts)

    async def _add_vectors(self, stored: Sequence[StoredMessage], texts: list[str]) -> None:
        vectors = await self.embedder.aembed(texts) if texts else None
        try:
            self.vectors.add(stored, vectors if vectors is not None else _empty(self.embedder))
        except Exception as exc:
            raise RuntimeError(f"messages were stored in {self.store.path} but indexing their "
                               f"vectors failed ({exc}); Memory.reindex() rebuilds them") from exc

    def _message_id(self, thread_id: str, message: Mapping[str, Any]) -> str:
        explicit = message.get("id")
        if isinstance(explicit, str) and explicit:
            return f"{thread_id}/{explicit}"
        known = self._seen.get(id(message))
        if known is not None and known[0] is message:
            return known[1]
        return uuid.uuid4().hex

    def _remember(self, message: Mapping[str, Any], message_id: str) -> None:
        self._seen[id(message)] = (message, message_id)  # holds it: the id cannot be reused
        self._seen.move_to_end(id(message))
        while len(self._seen) > _IDENTITY_CAPACITY:
            self._seen.popitem(last=False)

    # ---- recall --------------------------------------------------------------------------
    async def recall(self, query: str, *, thread_id: str, resource_id: str | None = None,
                     live_from: int | None = None, top_k: int | None = None,
                     scope: Scope | None = None,
                     message_range: int | Mapping[str, int] | None = None
                     ) -> list[StoredMessage]:
        """The ``top_k`` messages nearest to ``query`` in scope with their neighbours, in time
        order, leaving out this thread's messages from sequence ``live_from`` on."""
        base = self.recall_settings or Recall()
        settings = Recall(top_k or base.top_k,
                          base.message_range if message_range is None else message_range,
                          scope or base.scope)
        with span("memory.recall", kind="memory", input={"query": query},
                  scope=settings.scope, top_k=settings.top_k,
                  vectors=self.vector_backend) as recalling:
            vector = (await self.embedder.aembed([query]))[0]
            hits = self.vectors.search(vector, top_k=settings.top_k, scope=settings.scope,
                                       thread_id=thread_id, resource_id=resource_id,
                                       live_from=live_from)
            before, after = settings.bounds()
            found = [s for s in self.vectors.windows(hits, before, after)
                     if not (s.thread_id == thread_id and live_from is not None
                             and s.sequence >= live_from)]
            recalling.set_attribute("memory.hits", len(hits))
            recalling.set_attribute("memory.messages", len(found))
        return found

    def reindex(self) -> int:
        """Rebuild the vector table from the stored messages with this memory's embedder
        (after an embedder change or a failed indexing); return the number of vectors."""
        message_index(self.store, self.embedder, self.vector_choice,
                      self._vector_path).drop()
        self._vectors = None
        rows = self.store.sql("select thread_id from memory_threads")["thread_id"].tolist()
        total = 0
        for thread_id in rows:
            stored = self.history.messages(thread_id)
            for start in range(0, len(stored), 256):
                chunk = stored[start:start + 256]
                texts = [s.text for s in chunk if s.text.strip()]
                self.vectors.add(chunk, self.embedder.embed(texts) if texts
                                 else _empty(self.embedder))
                total += len(chunk)
        if total:
            self.vectors.optimize()
        return total

    # ---- inspection ----------------------------------------------------------------------
    def threads(self) -> pd.DataFrame:
        """Threads of this memory's store as a DataFrame."""
        from fm_lab.memory import views

        return views.threads(self.store)

    def messages(self, thread_id: str) -> pd.DataFrame:
        """A thread's messages as a DataFrame."""
        from fm_lab.memory import views

        return views.messages(thread_id, self.store)

    def working(self, thread_or_resource: str) -> pd.DataFrame:
        """Working memories kept under a thread or resource id, as a DataFrame."""
        from fm_lab.memory import views

        return views.working(thread_or_resource, self.store)

    def delete_thread(self, thread_id: str) -> int:
        """Delete a thread's messages and vectors; return how many messages it had."""
        count = self.history.delete_thread(thread_id)
        delete_thread_vectors(self.store, thread_id, self._vector_path)
        return count


def _empty(embedder: Embedder) -> Vectors:
    import numpy as np

    return np.zeros((0, embedder.dim), np.float32)


def _open(path: str | Path) -> SqlStore:
    from fm_lab.store.duckdb_store import Store

    return Store(path)


def _check_ids(thread_id: str, resource_id: str | None) -> None:
    if not isinstance(thread_id, str) or not thread_id:
        raise ValueError(f"thread_id must be a non-empty string, got {thread_id!r}")
    if resource_id is not None and (not isinstance(resource_id, str) or not resource_id):
        raise ValueError(f"resource_id must be a non-empty string or None, got {resource_id!r}")
