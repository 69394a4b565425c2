"""Named connections: credentials kept out of workflows, notebooks and stores.

>>> import fm_lab
>>> fm_lab.connections.set("github", token=getpass(), kind="bearer")  # doctest: +SKIP
>>> # an http node: config: {url: "https://api.github.com/user", connection: github}

Secrets go to the system keyring when it has a usable backend, else into
``$FM_LAB_HOME/connections.json`` (``$FM_LAB_CONNECTIONS``), owner-only (0600). Their values
are masked in journals, spans, stores and exports (the tracing redactor learns each one the
moment it is set or loaded). ``fm-lab connections list|set|rm`` manages them from a shell.
"""

from __future__ import annotations

import builtins
import threading
from typing import Any

from fm_lab.connections.auth import KINDS, OPTIONAL, PUBLIC, SECRETS, Connection, Kind, guard
from fm_lab.connections.store import (
    ConnectionSettingError,
    choose_backend,
    drop_secrets,
    editing,
    get_secrets,
    path,
    read_index,
)

_CACHE: dict[tuple[str, str], Connection] = {}  # one per file, name and process: OAuth2
# tokens are reused
_CACHE_LOCK = threading.Lock()


def set(name: str, *, kind: Kind = "bearer", token: str | None = None,
        username: str | None = None, password: str | None = None,
        client_id: str | None = None, client_secret: str | None = None,
        token_url: str | None = None, scope: str | None = None, audience: str | None = None,
        header: str | None = None, backend: str | None = None) -> dict[str, Any]:
    """Store connection ``name`` (replacing one of that name); returns what :func:`list`
    shows of it. ``kind``: ``bearer`` (``token``), ``api_key`` (``token``, sent in ``header``,
    default ``X-API-Key``), ``basic`` (``username``, ``password``) or
    ``oauth2_client_credentials`` (``token_url``, ``client_id``, ``client_secret``, optional
    ``scope``/``audience``). ``backend``: ``auto`` (default), ``keyring`` or ``file``."""
    _check_name(name)
    if kind not in KINDS:
        raise ConnectionSettingError(f"connection kind {kind!r}: use one of {', '.join(KINDS)}")
    given = {"token": token, "username": username, "password": password, "client_id": client_id,
             "client_secret": client_secret, "token_url": token_url, "scope": scope,
             "audience": audience, "header": header}
    wanted = {*SECRETS[kind], *PUBLIC[kind], *OPTIONAL}
    extra = sorted(k for k, v in given.items() if v is not None and k not in wanted)
    if extra:
        raise ConnectionSettingError(f"a {kind} connection takes no {', '.join(extra)}")
    missing = [k for k in (*SECRETS[kind], *PUBLIC[kind]) if not given[k]]
    if missing:
        raise ConnectionSettingError(f"a {kind} connection needs {', '.join(missing)}")
    secrets = {k: guard(str(given[k])) for k in SECRETS[kind]}
    public = {k: str(v) for k, v in given.items() if v is not None and k not in SECRETS[kind]}
    chosen = choose_backend(backend)
    from fm_lab.connections.store import put_secrets

    with editing() as records:
        old = records.get(name)
        if old is not None:
            drop_secrets(name, old)
        record: dict[str, Any] = {"kind": kind, "stored": chosen, "fields": public}
        put_secrets(name, chosen, secrets, record)
        records[name] = record
    with _CACHE_LOCK:
        _CACHE.pop((str(path()), name), None)
    return {"name": name, "kind": kind, "stored": chosen, **public}


def get(name: str) -> Connection:
    """Connection ``name`` (one object per process, so OAuth2 tokens are reused); a clear
    error naming the known connections when there is none."""
    key = (str(path()), name)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            return found
        records = read_index()
        record = records.get(name)
        if record is None:
            known = ", ".join(sorted(records)) or "none"
            raise ConnectionSettingError(f"no connection named {name!r} (known: {known}); "
                                         f"add it with fm_lab.connections.set({name!r}, ...) "
                                         "or fm-lab connections set")
        found = Connection(name, record["kind"], dict(record.get("fields", {})),
                           record.get("stored", "file"), get_secrets(name, record))
        _CACHE[key] = found
        return found


def list() -> builtins.list[dict[str, Any]]:
    """Every connection's name, kind, where it is stored and its public fields (never a
    secret value), by name."""
    return [{"name": name, "kind": r.get("kind"), "stored": r.get("stored", "file"),
             **r.get("fields", {})} for name, r in sorted(read_index().items())]


def rm(name: str) -> bool:
    """Remove connection ``name`` (and its keyring entries); False when there was none."""
    with editing() as records:
        record = records.pop(name, None)
        if record is not None:
            drop_secrets(name, record)
    with _CACHE_LOCK:
        _CACHE.pop((str(path()), name), None)
    return record is not None


def headers(name: str) -> dict[str, str]:
    """The request headers of connection ``name``."""
    return get(name).headers()


def _check_name(name: str) -> None:
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ConnectionSettingError(f"connection name {name!r}: use letters, digits, '-', '_' "
                                     "and '.'")


__all__ = ["KINDS", "Connection", "ConnectionSettingError", "get", "headers", "list", "rm",
           "set"]
