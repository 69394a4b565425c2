"""Working memory: a Markdown note or a pydantic-shaped JSON object kept per thread or per
resource, updated by the model through the ``update_working_memory`` tool.

Updates are serialised per key by an asyncio lock in the process and, across processes, by a
compare-and-swap on the row's ``version`` in the store (a lost race re-reads and re-applies).
Secrets in updates are masked (the tracing redaction) before they are applied and stored."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from fm_lab.memory.sql import first
from fm_lab.tracing.redact import redactor
from fm_lab.tracing.spans import span

if TYPE_CHECKING:
    from fm_lab.agents.tools import Tool
    from fm_lab.store.base import RunStore, SqlStore

WorkingScope = Literal["thread", "resource"]
DEFAULT_TEMPLATE = """# About the user
- Name:
- Preferences:
- Goals:
# Facts
"""
_FIELD = re.compile(r"^\s*[-*]?\s*([^:\n]{1,80}):\s*(.*?)\s*$")


class WorkingMemoryError(ValueError):
    """An update that cannot be applied (nothing was changed)."""


@dataclass
class UpdateResult:
    """What an update did: ``changed`` is False for a duplicate."""

    changed: bool
    message: str
    content: str
    version: int


def _norm(line: str) -> str:
    return " ".join(line.strip().lstrip("-*").split()).casefold()


def _merge(old: Any, new: Any) -> Any:
    """Objects merge key by key, lists gain the items they lack, anything else is replaced."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for key, value in new.items():
            out[key] = _merge(old.get(key), value) if key in old else value
        return out
    if isinstance(old, list) and isinstance(new, list):
        return old + [item for item in new if item not in old]
    return new


class WorkingMemory:
    """Working memory settings: ``scope`` ("thread" or "resource"), and either a Markdown
    ``template`` or a pydantic ``schema`` (then the memory is a JSON object of that shape).

    >>> WorkingMemory(scope="resource").initial()[:16]
    '# About the user'
    """

    def __init__(self, *, scope: WorkingScope = "resource", template: str | None = None,
                 schema: type[BaseModel] | None = None, store: RunStore | None = None) -> None:
        if scope not in ("thread", "resource"):
            raise ValueError(f"working memory scope must be 'thread' or 'resource', got {scope!r}")
        if template is not None and schema is not None:
            raise ValueError("give working memory a template or a schema, not both")
        self.scope: WorkingScope = scope
        self.template = DEFAULT_TEMPLATE if template is None and schema is None else template
        self.schema = schema
        self.store = store
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}

    # ---- keys and reads ------------------------------------------------------------------
    def key_for(self, thread_id: str, resource_id: str | None) -> str:
        """The key of the memory this thread/resource uses."""
        if self.scope == "resource":
            if resource_id is None:
                raise ValueError("working memory with scope='resource' needs a resource_id")
            return resource_id
        return thread_id

    def initial(self) -> str:
        """The content before any update."""
        return "{}" if self.schema is not None else (self.template or "")

    def _store(self) -> SqlStore:
        from fm_lab.store.base import sql_store

        if self.store is None:
            from fm_lab.store.default import default_store

            self.store = default_store()
        return sql_store(self.store, "working memory")

    def read(self, key: str) -> tuple[str, int]:
        """``(content, version)``; version 0 means nothing stored yet."""
        with self._store().connection() as con:
            row = first(con.execute("select content, version from memory_working "
                              "where scope = ? and key = ?", [self.scope, key]))
        return (str(row[0]), int(row[1])) if row else (self.initial(), 0)

    def get(self, key: str) -> str:
        """The current content for ``key``."""
        return self.read(key)[0]

    # ---- updates -------------------------------------------------------------------------
    def apply(self, content: str, text: str, *, search: str | None = None,
              replace_all: bool = False) -> tuple[str, str]:
        """The content after an update and a message saying what happened (raises
        :class:`WorkingMemoryError` when the update cannot apply). Secrets in ``text`` and
        ``search`` are masked first, as they are in the stored content."""
        if self.schema is not None:
            return self._apply_json(content, text, replace_all)
        redact = redactor()
        text, search = redact(text).strip(), redact(search)
        if replace_all:
            return text + "\n", "working memory replaced"
        if search:
            if search not in content:
                raise WorkingMemoryError(f"search text {search!r} is not in working memory")
            return content.replace(search, text, 1), "working memory updated"
        lines = content.splitlines()
        have = {_norm(line) for line in lines}
        added = 0
        for line in text.splitlines():
            if not line.strip() or _norm(line) in have:
                continue
            field = _FIELD.match(line)
            slot = next((i for i, old in enumerate(lines)
                         if field and (m := _FIELD.match(old)) and not m[2]
                         and m[1].strip().casefold() == field[1].strip().casefold()), None)
            if slot is not None:
                lines[slot] = line
            else:
                lines.append(line)
            have.add(_norm(line))
            added += 1
        if not added:
            return content, "already in working memory: nothing added"
        return "\n".join(lines) + "\n", f"working memory updated ({added} line(s))"

    def _apply_json(self, content: str, text: str, replace_all: bool) -> tuple[str, str]:
        assert self.schema is not None
        try:
            update = redactor()(json.loads(text))
        except json.JSONDecodeError as exc:
            raise WorkingMemoryError(f"working memory takes a JSON object here: {exc}") from exc
        if not isinstance(update, dict):
            raise WorkingMemoryError("working memory takes a JSON object here")
        merged = update if replace_all else _merge(json.loads(content), update)
        try:
            self.schema.model_validate(merged)
        except ValidationError as exc:
            raise WorkingMemoryError(
                f"the update does not fit the working memory schema: {exc}") from exc
        new = json.dumps(merged, sort_keys=True)
        if new == json.dumps(json.loads(content), sort_keys=True):
            return content, "already in working memory: nothing changed"
        return new, "working memory updated"

    def _lock(self, key: str) -> asyncio.Lock:
        loop_key = (id(asyncio.get_running_loop()), key)
        lock = self._locks.get(loop_key)
        if lock is None:
            lock = self._locks[loop_key] = asyncio.Lock()
        return lock

    def _swap(self, key: str, new: str, version: int) -> bool:
        with self._store().connection() as con:
            if version == 0:
                rows = con.execute(
                    "insert into memory_working values (?, ?, ?, 1, to_timestamp(?)) "
                    "on conflict do nothing returning version",
                    [self.scope, key, new, time.time()]).fetchall()
            else:
                rows = con.execute(
                    "update memory_working set content = ?, version = version + 1, "
                    "updated_at = to_timestamp(?) where scope = ? and key = ? and version = ? "
                    "returning version", [new, time.time(), self.scope, key, version]).fetchall()
        return bool(rows)

    async def update(self, key: str, text: str, *, search: str | None = None,
                     replace_all: bool = False, max_attempts: int = 100) -> UpdateResult:
        """Apply one update to ``key``'s memory: append new lines (duplicates are skipped; a
        ``- Field: value`` line fills an empty ``- Field:``), replace ``search`` with ``text``,
        or ``replace_all``. JSON (schema) memories merge ``text`` as an object."""
        with span("memory.working.write", kind="memory", key=key) as write:
            result = await self._update(key, text, search, replace_all, max_attempts)
            write.set_attribute("memory.changed", result.changed)
            write.set_attribute("memory.chars", len(result.content))
            return result

    async def _update(self, key: str, text: str, search: str | None, replace_all: bool,
                      max_attempts: int) -> UpdateResult:
        async with self._lock(key):
            for attempt in range(max_attempts):
                with self._store().hold():  # one open of the file for read + swap
                    content, version = self.read(key)
                    new, message = self.apply(content, text, search=search,
                                              replace_all=replace_all)
                    if new == content:
                        return UpdateResult(False, message, content, version)
                    if self._swap(key, new, version):
                        return UpdateResult(True, message, new, version + 1)
                await asyncio.sleep(min(0.001 * 2 ** attempt, 0.05))  # another process won
        raise WorkingMemoryError(f"working memory {key!r} kept changing under this update "
                                 f"({max_attempts} attempts); nothing was changed")

    # ---- what the model sees -------------------------------------------------------------
    def system_text(self, content: str) -> str:
        """The system-prompt section that shows the memory and how to update it."""
        who = "this user" if self.scope == "resource" else "this conversation"
        if self.schema is not None:
            how = ("Call update_working_memory with `text` a JSON object of the fields to "
                   "change (objects merge, lists gain new items; replace_all=true rewrites "
                   f"it). Its JSON schema: {json.dumps(self.schema.model_json_schema())}")
        else:
            how = ("Call update_working_memory with `text` to add lines (duplicates are "
                   "ignored), with `search` to replace that exact text by `text`, or "
                   "replace_all=true to rewrite it all.")
        return (f"## Working memory\nWhat you keep about {who} across messages. Update it when "
                f"you learn something worth keeping. {how}\n<working_memory>\n"
                f"{content.strip()}\n</working_memory>")

    def tool(self, thread_id: str, resource_id: str | None) -> Tool:
        """The ``update_working_memory`` tool bound to this thread/resource."""
        from fm_lab.agents.tools import tool

        key = self.key_for(thread_id, resource_id)

        async def update_working_memory(text: str, search: str | None = None,
                                        replace_all: bool = False) -> str:
            try:
                result = await self.update(key, text, search=search, replace_all=replace_all)
            except WorkingMemoryError as exc:
                return f"working memory not changed: {exc}"
            return result.message

        made: Tool = tool(update_working_memory, description=(
            "Update your working memory (facts to keep across messages). `text`: lines to "
            "add, or the replacement for `search`; replace_all=true rewrites it all."))
        return made
