"""Store settings: what an operator sets once for everyone who runs on a store, kept in the
store itself (table ``store_settings``), each change a ``store.setting`` entry of the audit log.

The keys (:data:`KEYS`) are the execution policy's: ``policy.allow`` (module patterns that
restricted runs may import, added to ``FM_LAB_ALLOW``), ``policy.http_allow`` (hosts and
networks restricted ``http`` nodes may reach, added to ``FM_LAB_HTTP_ALLOW``) and
``policy.default`` (the mode of runs that choose none: ``trusted`` or ``restricted``).

>>> check_setting("policy.allow", "mypkg.*, tools.text")
['mypkg.*', 'tools.text']
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from fm_lab.security.policy import MODES, PolicySettingError

SETTING_CHANGE: Final = "store.setting"  # the audit action of a change
CACHE_S: Final = 5.0  # how long a store trusts the settings it read (other processes may write)
ADMIN_ROLE: Final = "admin"  # who may change a team store's settings (FM_LAB_ROLES)

_MODULE_PATTERN = re.compile(r"^[A-Za-z_*?][A-Za-z0-9_.*?]*$")
_HOST_ENTRY = re.compile(r"^[A-Za-z0-9_.:*\[\]/-]+$")
_MAX_ITEMS = 200


class SettingError(PolicySettingError):
    """A setting that is not one, or a value it cannot take."""


def _entries(key: str, value: object) -> list[str]:
    """A list setting's items: a list of strings or one comma-separated string."""
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    elif isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        items = [item.strip() for item in value]
    else:
        raise SettingError(f"{key} takes a list of strings or a comma-separated string, "
                           f"not {type(value).__name__}")
    items = [item for item in items if item]
    if len(items) > _MAX_ITEMS:
        raise SettingError(f"{key} has {len(items)} entries; at most {_MAX_ITEMS}")
    return list(dict.fromkeys(items))


def _matching(key: str, value: object, pattern: re.Pattern[str], what: str) -> list[str]:
    """A list setting whose every entry matches ``pattern`` (``what`` they should be)."""
    items = _entries(key, value)
    bad = [item for item in items if not pattern.match(item)]
    if bad:
        raise SettingError(f"{key} entries are {what}; not: {', '.join(map(repr, bad))}")
    return items


def _module_patterns(value: object) -> list[str]:
    return _matching("policy.allow", value, _MODULE_PATTERN, "module patterns (mypkg.*)")


def _hosts(value: object) -> list[str]:
    from fm_lab.security.addresses import Allowance

    items = _matching("policy.http_allow", value, _HOST_ENTRY,
                      "hosts or networks (intranet.example, 10.0.0.0/8)")
    try:
        Allowance.parse(tuple(items), "policy.http_allow")
    except PolicySettingError as exc:  # an entry with '/' that is no network
        raise SettingError(str(exc)) from None
    return items


def _mode(value: object) -> str:
    if not isinstance(value, str) or value.strip().lower() not in MODES:
        raise SettingError(f"policy.default is trusted or restricted, not {value!r}")
    return value.strip().lower()


KEYS: Final[dict[str, Callable[[object], Any]]] = {
    "policy.allow": _module_patterns,
    "policy.http_allow": _hosts,
    "policy.default": _mode,
}


def check_setting(key: str, value: object) -> Any:
    """``value`` as ``key`` stores it (lists cleaned of blanks and repeats; None: the key
    is removed), or :class:`SettingError` naming what is wrong."""
    checker = KEYS.get(key)
    if checker is None:
        raise SettingError(f"no store setting {key!r}; known: {', '.join(KEYS)}")
    return None if value is None else checker(value)


def _valid(pairs: Iterable[tuple[object, object]]) -> dict[str, Any]:
    """``(key, JSON text)`` pairs as settings; values no longer valid (written by hand) are
    left out rather than trusted."""
    found: dict[str, Any] = {}
    for key, text in pairs:
        try:
            found[str(key)] = check_setting(str(key), json.loads(str(text)))
        except (SettingError, ValueError, TypeError):
            continue
    return found


def read_settings(con: Any) -> dict[str, Any]:
    """The stored settings (``con``: a DuckDB connection or :class:`PgConnection`)."""
    return _valid(con.execute("select key, value from store_settings").fetchall())


def stricter(one: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Settings that allow no more than either ``one`` or ``other``: the allow-lists both
    have, and the default policy only where both agree (else ``restricted``). A DuckDB file
    store's copy holds this while a change is being committed, so a crash between the table
    and its copy never leaves a revoked allowance in force."""
    merged: dict[str, Any] = {}
    for key in ("policy.allow", "policy.http_allow"):
        both = [v for v in one.get(key) or [] if v in (other.get(key) or [])]
        if both:
            merged[key] = both
    if one.get("policy.default") == other.get("policy.default"):
        if "policy.default" in one:
            merged["policy.default"] = one["policy.default"]
    else:
        merged["policy.default"] = "restricted"
    return merged


def save_mirror(path: Path, settings: dict[str, Any]) -> None:
    """Write ``settings`` to ``path`` whole (a temporary file renamed over it), unless it
    already holds them: a DuckDB file store's copy that runs read without opening the file,
    which another process may hold."""
    text = json.dumps({key: json.dumps(value) for key, value in sorted(settings.items())})
    with contextlib.suppress(OSError):
        if path.read_text(encoding="utf-8") == text:
            return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def load_mirror(path: Path) -> dict[str, Any]:
    """The settings :func:`save_mirror` wrote: none if it wrote nothing; if the copy is
    damaged, a ``restricted`` default and no allow-lists (what it said is unknown, so nothing
    it might have loosened is assumed) until a writable open rewrites it."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        return {}
    except ValueError:
        stored = None
    if not isinstance(stored, dict):
        return {"policy.default": "restricted"}
    return _valid(stored.items())


def write_setting(con: Any, key: str, value: Any, actor: str) -> Any:
    """Store ``value`` under ``key`` (None: remove it) inside the caller's transaction;
    return the value it had."""
    row = con.execute("select value from store_settings where key = ?", [key]).fetchone()
    before = json.loads(row[0]) if row else None
    con.execute("delete from store_settings where key = ?", [key])
    if value is not None:
        con.execute("insert into store_settings (key, value, set_by, set_at) "
                    "values (?, ?, ?, current_timestamp)", [key, json.dumps(value), actor])
    return before


class SettingsCache:
    """A store's settings as last read, trusted for :data:`CACHE_S` seconds (its own writes
    clear it at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._read_at = 0.0

    def get(self, read: Callable[[], dict[str, Any]], fresh: bool = False) -> dict[str, Any]:
        """The settings, read again with ``read`` when the cached copy is stale (or
        ``fresh``)."""
        with self._lock:
            if fresh or self._value is None or time.monotonic() - self._read_at > CACHE_S:
                self._value = read()
                self._read_at = time.monotonic()
            return dict(self._value)

    def clear(self) -> None:
        with self._lock:
            self._value = None
