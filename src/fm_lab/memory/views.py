"""Memory as DataFrames: threads, a thread's messages, working memories; deleting a thread
removes its messages, vectors, summary and thread-scoped working memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.store.base import RunStore, SqlStore


def _store(store: RunStore | None) -> SqlStore:
    from fm_lab.store.base import sql_store

    if store is not None:
        return sql_store(store, "memory views")
    from fm_lab.store.default import default_store

    return sql_store(default_store(), "memory views")


def threads(store: RunStore | None = None) -> pd.DataFrame:
    """One row per thread, most recently updated first, with its message count."""
    return _store(store).sql(
        "select t.thread_id, t.resource_id, t.created_at, t.updated_at, "
        "(select count(*) from memory_messages m where m.thread_id = t.thread_id) as messages "
        "from memory_threads t order by t.updated_at desc")


def messages(thread_id: str, store: RunStore | None = None) -> pd.DataFrame:
    """A thread's messages in order (``content``/``tool_calls`` as stored JSON)."""
    return _store(store).sql(
        "select sequence, message_id, role, text, content, tool_calls, tool_call_id, name, "
        "created_at, resource_id from memory_messages where thread_id = ? order by sequence",
        [thread_id])


def working(thread_or_resource: str, store: RunStore | None = None) -> pd.DataFrame:
    """The working memories kept under this thread or resource id."""
    return _store(store).sql(
        "select scope, key, content, version, updated_at from memory_working where key = ? "
        "order by scope", [thread_or_resource])


def delete_thread(thread_id: str, store: RunStore | None = None) -> int:
    """Delete a thread everywhere (its rows and its vectors, in pgvector or LanceDB); return
    its message count."""
    from fm_lab.memory.history import History
    from fm_lab.memory.vector_backend import delete_thread_vectors

    target = _store(store)
    count = History(target).delete_thread(thread_id)
    delete_thread_vectors(target, thread_id)
    return count
