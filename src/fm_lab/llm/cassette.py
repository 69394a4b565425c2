"""Record and replay provider responses, so a notebook re-run costs nothing and is
reproducible.

>>> with cassette("calls.jsonl", mode="auto"):   # doctest: +SKIP
...     agent.generate("Summarise the report")
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from fm_lab.store.base import SqlStore

Mode = Literal["record", "replay", "auto"]
# request parameters that change the answer (anything else, e.g. timeouts or litellm's
# mock_response, does not enter the key)
_KEY_PARAMS = ("tools", "tool_choice", "temperature", "top_p", "max_tokens", "stop", "seed",
               "response_format", "reasoning_effort", "n", "presence_penalty",
               "frequency_penalty")


class CassetteMiss(LookupError):
    """A replayed request was never recorded."""


def request_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any],
                stream: bool) -> str:
    """The hash that names a request in a cassette."""
    request = {"model": model, "messages": messages, "stream": stream,
               **{k: params[k] for k in _KEY_PARAMS if params.get(k) is not None}}
    text = json.dumps(request, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _excerpt(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            text = str(message.get("content") or "")
            return text if len(text) <= 80 else text[:77] + "..."
    return ""


class Cassette:
    """Provider responses by request key, in a JSONL file (one request per line)."""

    def __init__(self, path: str | Path, mode: Mode) -> None:
        if mode not in ("record", "replay", "auto"):
            raise ValueError(f"cassette mode must be record, replay or auto, not {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self.entries: dict[str, dict[str, Any]] = {}
        self.hits = 0
        self.recorded = 0
        self._lock = threading.Lock()
        if mode == "replay" and not self.path.exists():
            raise FileNotFoundError(f"cassette {self.path} does not exist (record it first)")
        if mode != "record" and self.path.exists():
            for number, line in enumerate(self.path.read_text("utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        entry = json.loads(line)
                        self.entries[entry["key"]] = entry
                    except (ValueError, KeyError) as exc:
                        raise ValueError(f"{self.path}:{number}: not a cassette entry ({exc})"
                                         ) from exc
        elif mode == "record":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("", "utf-8")

    def lookup(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any],
               stream: bool) -> tuple[str, dict[str, Any] | None]:
        """The request's key and its recorded entry (None: call the provider and record).
        Raises :class:`CassetteMiss` in replay mode."""
        key = request_key(model, messages, params, stream)
        entry = None if self.mode == "record" else self.entries.get(key)
        if entry is None and self.mode == "replay":
            raise CassetteMiss(
                f"cassette {self.path} has no recorded response for this request: model "
                f"{model!r}, last user message {_excerpt(messages)!r}"
                f"{' (streamed)' if stream else ''}, request hash {key}; record it with "
                "mode='record' or 'auto'")
        if entry is not None:
            self.hits += 1
        return key, entry

    def record(self, key: str, model: str, messages: list[dict[str, Any]],
               response: dict[str, Any] | None = None,
               chunks: list[dict[str, Any]] | None = None) -> None:
        """Append a provider response (or a stream's chunks) under ``key``."""
        entry = {"key": key, "model": model, "request": _excerpt(messages),
                 "response": response, "chunks": chunks}
        with self._lock:
            self.entries[key] = entry
            self.recorded += 1
            self.path.parent.mkdir(parents=True, exist_ok=True)  # a fresh store's folder
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry, default=str) + "\n")


_ACTIVE: list[Cassette] = []
_SCOPED: ContextVar[Cassette | None] = ContextVar("fm_lab_cassette", default=None)


def active() -> Cassette | None:
    """The cassette answering here: one :func:`scoped` to this context, else the innermost
    open cassette (process-wide, so threads that do not carry the context see it too)."""
    return _SCOPED.get() or (_ACTIVE[-1] if _ACTIVE else None)


def cassette_path(path_or_store: str | Path | SqlStore, name: str = "default") -> Path:
    """Where a cassette lives: the path given, or ``<store>.cassettes/<name>.jsonl`` beside a
    store's DuckDB file (so a notebook's recordings travel with its runs)."""
    from fm_lab.store.base import JOURNAL, SqlStore, has

    if not isinstance(path_or_store, SqlStore):
        return Path(path_or_store)
    if path_or_store.memory or not has(path_or_store, JOURNAL):
        kind = "a memory store" if path_or_store.memory else "a server store"
        raise ValueError(f"{path_or_store.path} is {kind}, with no folder beside it for "
                         "cassettes: give a file path")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"cassette name {name!r} must be a plain file name")
    return Path(str(path_or_store.path) + ".cassettes") / f"{name}.jsonl"


@contextmanager
def cassette(path_or_store: str | Path | SqlStore, mode: Mode = "auto", *,
             name: str = "default") -> Iterator[Cassette]:
    """Record provider responses (``record``), answer only from the recording (``replay``:
    no provider is called; an unknown request raises :class:`CassetteMiss` naming it), or
    both (``auto``: replay what is there, record the rest). The recording is a JSONL file:
    ``path_or_store`` is its path, or a :class:`~fm_lab.Store` (``fm_lab.default_store()``)
    whose folder keeps it as ``<name>.jsonl``."""
    with installed(Cassette(cassette_path(path_or_store, name), mode)) as tape:
        yield tape


@contextmanager
def scoped(tape: Cassette) -> Iterator[Cassette]:
    """Answer the model calls of this context only (its tasks, and the threads it hands its
    context to, as code nodes and agents do) from ``tape``: a replay, while other runs in the
    process go on calling their providers."""
    token = _SCOPED.set(tape)
    try:
        yield tape
    finally:
        _SCOPED.reset(token)


@contextmanager
def installed(tape: Cassette) -> Iterator[Cassette]:
    """Answer model calls from ``tape`` (a :class:`Cassette` or a subclass, e.g. a run's
    recorded responses for ``fm_lab.replay``) for the length of the block."""
    _ACTIVE.append(tape)
    try:
        yield tape
    finally:
        _ACTIVE.remove(tape)
