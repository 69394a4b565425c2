"""Where connections are kept: their names, kinds and public fields in a JSON index, their
secret values in the system keyring when it has a usable backend, else in the same file,
which is written and read only with owner-only permissions (0600)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

Backend = Literal["keyring", "file"]
CONNECTIONS_ENV = "FM_LAB_CONNECTIONS"
BACKEND_ENV = "FM_LAB_CONNECTIONS_BACKEND"
KEYRING_SERVICE = "fm_lab"
_LOCK = threading.Lock()


class ConnectionSettingError(ValueError):
    """A connection that is unknown, badly defined or kept insecurely."""


def path() -> Path:
    """The index file: ``$FM_LAB_CONNECTIONS``, else ``$FM_LAB_HOME/connections.json``."""
    chosen = os.environ.get(CONNECTIONS_ENV)
    if chosen:
        return Path(chosen).expanduser()
    from fm_lab.store.default import home

    return home() / "connections.json"


def keyring_usable() -> bool:
    """Whether ``keyring`` is installed and has a backend that can store secrets."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return False
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        return False
    inner = getattr(backend, "backends", None)  # the chainer: usable when it chains something
    return inner is None or bool(inner)


def choose_backend(requested: str | None = None) -> Backend:
    """``requested`` (or ``$FM_LAB_CONNECTIONS_BACKEND``): ``keyring``, ``file`` or ``auto``
    (the default: the keyring when usable, else the file)."""
    wanted = (requested or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if wanted == "file":
        return "file"
    if wanted == "keyring":
        if not keyring_usable():
            raise ConnectionSettingError("no usable keyring backend here (keyring.get_keyring() "
                                   "cannot store secrets): use backend='file'")
        return "keyring"
    if wanted != "auto":
        raise ConnectionSettingError(f"connections backend {wanted!r}: use auto, keyring or file")
    return "keyring" if keyring_usable() else "file"


def read_index() -> dict[str, dict[str, Any]]:
    """Every stored connection's record (secrets included when they live in the file)."""
    file = path()
    try:
        info = file.stat()
    except FileNotFoundError:
        return {}
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.S_IMODE(info.st_mode)
        raise ConnectionSettingError(f"{file} is readable by others (mode {mode:o}): run "
                                     f"chmod 600 {file}")
    try:
        data = json.loads(file.read_text(encoding="utf-8") or "{}")
    except ValueError as exc:
        raise ConnectionSettingError(f"{file} is not valid JSON: {exc}") from None
    found = data.get("connections", {})
    return found if isinstance(found, dict) else {}


def write_index(records: dict[str, dict[str, Any]]) -> None:
    """Replace the index file (created 0600, replaced atomically)."""
    file = path()
    file.parent.mkdir(parents=True, exist_ok=True)
    temp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"version": 1, "connections": records}, out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, file)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


@contextlib.contextmanager
def editing() -> Iterator[dict[str, dict[str, Any]]]:
    """The index, written back when the block ends without an error."""
    with _LOCK:
        records = read_index()
        yield records
        write_index(records)


def put_secrets(name: str, backend: Backend, secrets: dict[str, str],
                record: dict[str, Any]) -> None:
    """Keep ``secrets`` in ``backend`` (in ``record`` for the file)."""
    if backend == "file":
        record["secrets"] = dict(secrets)
        return
    import keyring

    for field, value in secrets.items():
        keyring.set_password(KEYRING_SERVICE, f"{name}/{field}", value)
    record["secret_fields"] = sorted(secrets)


def get_secrets(name: str, record: dict[str, Any]) -> dict[str, str]:
    """The secret values of a stored connection."""
    if record.get("stored") != "keyring":
        return {str(k): str(v) for k, v in (record.get("secrets") or {}).items()}
    import keyring

    found: dict[str, str] = {}
    for field in record.get("secret_fields", []):
        value = keyring.get_password(KEYRING_SERVICE, f"{name}/{field}")
        if value is None:
            raise ConnectionSettingError(f"connection {name!r}: its {field} is missing from the "
                                   "keyring; set the connection again")
        found[field] = value
    return found


def drop_secrets(name: str, record: dict[str, Any]) -> None:
    """Remove a connection's secrets from the keyring (the file's go with its record)."""
    if record.get("stored") != "keyring":
        return
    import keyring
    from keyring.errors import PasswordDeleteError

    for field in record.get("secret_fields", []):
        with contextlib.suppress(PasswordDeleteError):
            keyring.delete_password(KEYRING_SERVICE, f"{name}/{field}")
