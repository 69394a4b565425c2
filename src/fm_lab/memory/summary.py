"""Summary memory: once ``threshold`` messages have slipped out of the last-N window, a model
condenses them (with the previous summary) into one running summary per thread."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fm_lab.memory.history import History, StoredMessage
from fm_lab.memory.sql import first
from fm_lab.tracing.redact import redactor

if TYPE_CHECKING:
    from fm_lab.store.base import SqlStore

INSTRUCTIONS = (
    "You condense a conversation for later turns. Merge the summary so far with the new "
    "messages into one short summary: facts, decisions, open questions, names and numbers. "
    "Answer with the summary only.")


class Summarizer:
    """Condense old messages with ``model`` (any litellm or ``offline/`` model) when at least
    ``threshold`` of them are outside the last-N window and not yet summarised."""

    def __init__(self, model: str, *, threshold: int = 20, instructions: str = INSTRUCTIONS,
                 **params: Any) -> None:
        if threshold < 1:
            raise ValueError(f"summary threshold must be at least 1, got {threshold}")
        self.model = model
        self.threshold = threshold
        self.instructions = instructions
        self.params = params

    @staticmethod
    def read(store: SqlStore, thread_id: str) -> tuple[str, int]:
        """``(summary, last summarised sequence)`` of a thread ("", 0 when none)."""
        with store.connection() as con:
            row = first(con.execute("select summary, through_sequence from memory_summaries "
                              "where thread_id = ?", [thread_id]))
        return (str(row[0]), int(row[1])) if row else ("", 0)

    def prompt(self, summary: str, older: list[StoredMessage]) -> list[dict[str, Any]]:
        """The messages asking the model for the new summary."""
        lines = [f"{s.message['role']}: {s.text}" for s in older if s.text.strip()]
        return [{"role": "system", "content": self.instructions},
                {"role": "user", "content": f"Summary so far:\n{summary or '(none)'}\n\n"
                                            "New messages:\n" + "\n".join(lines)}]

    async def refresh(self, store: SqlStore, thread_id: str, live_from: int | None) -> str:
        """The thread's summary, condensing first if enough messages before ``live_from``
        (the first sequence still in the last-N window; None: no window, every message is
        old) are not summarised yet."""
        from fm_lab.llm.client import acomplete

        summary, through = self.read(store, thread_id)
        older = History(store).messages(thread_id, since=through, until=live_from)
        if len(older) < self.threshold:
            return summary
        answer = await acomplete(self.prompt(summary, older), model=self.model, **self.params)
        new = redactor().text(answer.text or "").strip()  # a model may echo a secret
        if not new:
            return summary
        with store.connection() as con:  # only if nobody summarised these meanwhile
            con.execute(
                "insert into memory_summaries values (?, ?, ?, to_timestamp(?)) "
                "on conflict (thread_id) do update set summary = excluded.summary, "
                "through_sequence = excluded.through_sequence, updated_at = excluded.updated_at "
                "where memory_summaries.through_sequence = ?",
                [thread_id, new, older[-1].sequence, time.time(), through])
        return new
