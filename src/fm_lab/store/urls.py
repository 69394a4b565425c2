"""Which store a target names: a file path, ``:memory:``, or a URL whose scheme picks the
implementation (``duckdb://``, ``file://``, ``memory://``, ``postgresql://``, or a scheme
another package registers under the ``fm_lab.stores`` entry-point group). An unknown scheme
is refused with the known ones listed, never taken for a file name."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from fm_lab.store.base import UnsupportedStoreError

if TYPE_CHECKING:
    from fm_lab.store.base import RunStore
    from fm_lab.store.journal import Durability

ENTRY_POINTS = "fm_lab.stores"
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+)://")
Opener = Callable[..., "RunStore"]


def scheme_of(target: str | Path) -> str | None:
    """The URL scheme of ``target`` (lower case), or None for a path or ``:memory:``."""
    if isinstance(target, Path):
        return None
    found = _SCHEME.match(target)
    return found["scheme"].lower() if found else None


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{netloc[1]}").geturl()


def _duckdb(target: str | Path, **options: Any) -> RunStore:
    from fm_lab.store.duckdb_store import Store

    return Store(target, **options)


def _duckdb_url(url: str, **options: Any) -> RunStore:
    rest = url.split("://", 1)[1]
    if rest in ("", ":memory:"):
        return _duckdb(":memory:", **options)
    return _duckdb(unquote(rest), **options)  # duckdb:///abs/path or duckdb://relative/path


def _file_url(url: str, **options: Any) -> RunStore:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise UnsupportedStoreError(f"file URL {redacted(url)!r} names another host "
                                    f"({parts.netloc}); use a local path")
    return _duckdb(unquote(parts.path), **options)


def _memory_url(url: str, **options: Any) -> RunStore:
    from fm_lab.store.memory_store import MemoryStore

    if options.get("read_only"):
        raise UnsupportedStoreError("a memory:// store cannot be opened read-only (it starts "
                                    "empty)")
    return MemoryStore(url.split("://", 1)[1] or "memory")


def _postgres_url(url: str, **options: Any) -> RunStore:
    from fm_lab.store.pg_store import open_postgres

    return open_postgres(url, **options)


_BUILT_IN: dict[str, Opener] = {"duckdb": _duckdb_url, "file": _file_url,
                                "memory": _memory_url, "postgresql": _postgres_url,
                                "postgres": _postgres_url}


def known_schemes() -> list[str]:
    """The schemes :func:`open_store` understands here (built in and registered)."""
    return sorted({*_BUILT_IN, *(ep.name for ep in entry_points(group=ENTRY_POINTS))})


def open_store(target: str | Path, *, read_only: bool = False,
               durability: Durability = "fsync") -> RunStore:
    """The store ``target`` names (see the module docstring).

    >>> open_store("memory://scratch")
    MemoryStore('memory://scratch')
    """
    options: dict[str, Any] = {"read_only": read_only, "durability": durability}
    scheme = scheme_of(target)
    if scheme is None:
        return _duckdb(target, **options)
    url = str(target)
    if scheme in _BUILT_IN:
        return _BUILT_IN[scheme](url, **options)
    for ep in entry_points(group=ENTRY_POINTS, name=scheme):
        opener: Opener = ep.load()
        return opener(url, **options)
    raise UnsupportedStoreError(
        f"no fm_lab store for {scheme}:// URLs ({redacted(url)}); known: "
        f"{', '.join(s + '://' for s in known_schemes())}, a file path or ':memory:'")
