"""Threads and messages in the store (DuckDB or PostgreSQL): append with per-thread sequence
numbers (a message id is stored once), the last N of a thread, a thread's messages by
sequence range. Messages are stored with secrets masked (the tracing redaction), and so is
everything derived from them."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fm_lab.agents.memory_api import Message
from fm_lab.memory.sql import first, transaction
from fm_lab.tracing.redact import redactor

if TYPE_CHECKING:
    from fm_lab.store.base import SqlStore

ROLES = frozenset({"system", "user", "assistant", "tool"})
COLUMNS = ("message_id, thread_id, resource_id, sequence, role, content, text, tool_calls, "
           "tool_call_id, name, extract(epoch from created_at)::float8")


class ThreadResourceError(ValueError):
    """A thread belongs to one resource; saving it under another is refused."""


@dataclass
class StoredMessage:
    """A message as stored: its ids, place in the thread and the chat dict."""

    message_id: str
    thread_id: str
    resource_id: str | None
    sequence: int
    created_at: float
    message: Message
    text: str


def text_of(message: Mapping[str, Any]) -> str:
    """The searchable text of a message: its text parts, else its tool calls."""
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = " ".join(str(p.get("text", "")) for p in content
                        if isinstance(p, Mapping) and p.get("type", "text") == "text")
    else:
        text = ""
    if not text.strip() and message.get("tool_calls"):
        text = " ".join(f"{_call_name(c)}({_call_args(c)})" for c in message["tool_calls"])
    return text


def _call_name(call: Mapping[str, Any]) -> str:
    fn = call.get("function")
    return str(fn.get("name") if isinstance(fn, Mapping) else call.get("name", ""))


def _call_args(call: Mapping[str, Any]) -> str:
    fn = call.get("function")
    args = fn.get("arguments") if isinstance(fn, Mapping) else call.get("arguments")
    return args if isinstance(args, str) else json.dumps(args)


def check_message(index: int, message: Any) -> None:
    """Raise a ValueError naming the problem unless ``message`` is an OpenAI chat dict."""
    if not isinstance(message, Mapping):
        raise ValueError(f"message {index} is a {type(message).__name__}, not a chat dict")
    role = message.get("role")
    if role not in ROLES:
        raise ValueError(f"message {index} has role {role!r}; expected one of {sorted(ROLES)}")
    if role == "tool" and not message.get("tool_call_id"):
        raise ValueError(f"message {index} is a tool result without a tool_call_id")


def from_row(row: Sequence[Any]) -> StoredMessage:
    """A StoredMessage from a row selected with :data:`COLUMNS`."""
    message: Message = {"role": row[4], "content": json.loads(row[5]) if row[5] else None}
    if row[7]:
        message["tool_calls"] = json.loads(row[7])
    if row[8]:
        message["tool_call_id"] = row[8]
    if row[9]:
        message["name"] = row[9]
    return StoredMessage(row[0], row[1], row[2], int(row[3]), float(row[10]), message,
                         row[6] or "")


class History:
    """Message history of one store."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def append(self, thread_id: str, resource_id: str | None,
               messages: Sequence[tuple[str, Mapping[str, Any]]]) -> list[StoredMessage]:
        """SqlStore ``(message_id, message)`` pairs at the end of the thread in one transaction;
        ids already stored are skipped. Returns what was stored: the messages with secrets
        masked (their text, and so their vectors, too)."""
        import pyarrow as pa

        now = time.time()
        redact = redactor()
        masked = [(mid, redact(dict(message))) for mid, message in messages]
        with self.store.connection() as con, transaction(con):
            # the thread's row first: its row lock (PostgreSQL) holds other writers of the
            # thread until commit, so sequences stay unique and gap-free across processes
            row = first(con.execute(
                "insert into memory_threads values (?, ?, to_timestamp(?), to_timestamp(?)) "
                "on conflict (thread_id) do update set updated_at = excluded.updated_at "
                "returning resource_id", [thread_id, resource_id, now, now]))
            if row is not None and row[0] != resource_id:
                raise ThreadResourceError(
                    f"thread {thread_id!r} belongs to resource {row[0]!r}, not "
                    f"{resource_id!r}; use another thread id for this resource")
            ids = [mid for mid, _ in masked]
            known = {r[0] for r in con.execute(
                "select message_id from memory_messages where message_id = any(?)",
                [ids]).fetchall()} if ids else set()
            fresh, seen = [], set()
            for mid, message in masked:
                if mid not in known and mid not in seen:
                    fresh.append((mid, message))
                    seen.add(mid)
            top = first(con.execute("select coalesce(max(sequence), 0) from memory_messages "
                                    "where thread_id = ?", [thread_id]))
            start = int(top[0] if top else 0) + 1
            stored = [StoredMessage(mid, thread_id, resource_id, start + i, now + i * 1e-6,
                                    message, text_of(message))
                      for i, (mid, message) in enumerate(fresh)]
            if stored:
                con.register("_fm_messages", arrow_rows(stored, pa))
                try:
                    con.execute("insert into memory_messages select message_id, thread_id, "
                                "resource_id, sequence, role, content, text, tool_calls, "
                                "tool_call_id, name, to_timestamp(created_at) "
                                "from _fm_messages")
                finally:
                    con.unregister("_fm_messages")
        return stored

    def last(self, thread_id: str, n: int) -> list[StoredMessage]:
        """The last ``n`` messages of the thread, oldest first."""
        if n <= 0:
            return []
        with self.store.connection() as con:
            rows = con.execute(
                f"select {COLUMNS} from memory_messages where thread_id = ? "
                "order by sequence desc limit ?", [thread_id, n]).fetchall()
        return [from_row(r) for r in reversed(rows)]

    def messages(self, thread_id: str, since: int = 0,
                 until: int | None = None) -> list[StoredMessage]:
        """Messages of a thread with ``since < sequence < until``, oldest first."""
        upper, params = ("", [thread_id, since]) if until is None else (
            "and sequence < ? ", [thread_id, since, until])
        with self.store.connection() as con:
            rows = con.execute(
                f"select {COLUMNS} from memory_messages where thread_id = ? and sequence > ? "
                f"{upper}order by sequence", params).fetchall()
        return [from_row(r) for r in rows]

    def delete_thread(self, thread_id: str) -> int:
        """Delete a thread's messages, working memory and summary; return how many messages."""
        with self.store.connection() as con, transaction(con):
            row = first(con.execute(
                "select count(*) from memory_messages where thread_id = ?", [thread_id]))
            con.execute("delete from memory_messages where thread_id = ?", [thread_id])
            con.execute("delete from memory_threads where thread_id = ?", [thread_id])
            con.execute("delete from memory_working where scope = 'thread' and key = ?",
                        [thread_id])
            con.execute("delete from memory_summaries where thread_id = ?", [thread_id])
        return int(row[0]) if row else 0


def arrow_rows(stored: Sequence[StoredMessage], pa: Any) -> Any:
    """The rows of ``stored`` as an Arrow table in memory_messages' column order."""
    def dump(value: Any) -> str | None:
        return None if value is None else json.dumps(value)

    return pa.table({
        "message_id": [s.message_id for s in stored],
        "thread_id": [s.thread_id for s in stored],
        "resource_id": pa.array([s.resource_id for s in stored], pa.string()),
        "sequence": pa.array([s.sequence for s in stored], pa.int64()),
        "role": [s.message["role"] for s in stored],
        "content": pa.array([dump(s.message.get("content")) for s in stored], pa.string()),
        "text": [s.text for s in stored],
        "tool_calls": pa.array([dump(s.message.get("tool_calls")) for s in stored], pa.string()),
        "tool_call_id": pa.array([s.message.get("tool_call_id") for s in stored], pa.string()),
        "name": pa.array([s.message.get("name") for s in stored], pa.string()),
        "created_at": pa.array([s.created_at for s in stored], pa.float64()),
    })
