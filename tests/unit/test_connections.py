"""Named connections: kept in a 0600 file (or a keyring backend when there is one), listed
without their values, masked by the tracing redactor from the moment they are set."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import keyring
import pytest
from keyring.backend import KeyringBackend

import fm_lab
from fm_lab import connections
from fm_lab.connections import ConnectionSettingError
from fm_lab.connections.store import path
from fm_lab.tracing.redact import redactor

TOKEN = "conn-unit-token-3b9f27c1"


def test_a_connection_is_stored_in_an_owner_only_file_and_listed_without_values():
    shown = connections.set("github", token=TOKEN, backend="file")
    assert shown == {"name": "github", "kind": "bearer", "stored": "file"}
    file = path()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    connections.set("svc", kind="api_key", token="k" * 12, header="X-Key", backend="file")
    listed = connections.list()
    assert [c["name"] for c in listed] == ["github", "svc"]
    assert listed[1] == {"name": "svc", "kind": "api_key", "stored": "file", "header": "X-Key"}
    assert TOKEN not in json.dumps(listed)
    assert connections.get("github").headers() == {"Authorization": f"Bearer {TOKEN}"}
    assert connections.get("svc").headers() == {"X-Key": "k" * 12}
    assert TOKEN not in repr(connections.get("github"))
    assert connections.rm("github") and not connections.rm("github")
    with pytest.raises(ConnectionSettingError, match=r"no connection named 'github'.*svc"):
        connections.get("github")


def test_values_are_masked_from_the_moment_they_are_set():
    connections.set("masked", kind="basic", username="ada", password="pw-9f8e7d6c",
                    backend="file")
    header = connections.get("masked").headers()["Authorization"]
    assert redactor()({"note": f"sent {header} with pw-9f8e7d6c"}) == {
        "note": "sent Basic [REDACTED] with [REDACTED]"}


def test_a_file_others_can_read_is_refused():
    connections.set("github", token=TOKEN, backend="file")
    os.chmod(path(), 0o644)
    with pytest.raises(ConnectionSettingError, match=r"readable by others.*chmod 600"):
        connections.list()


def test_bad_definitions_fail_in_one_line():
    with pytest.raises(ConnectionSettingError, match="needs token_url, client_id"):
        connections.set("x", kind="oauth2_client_credentials", client_secret="s" * 8)
    with pytest.raises(ConnectionSettingError, match="takes no password"):
        connections.set("x", kind="bearer", token="t" * 8, password="p" * 8)
    with pytest.raises(ConnectionSettingError, match="kind 'oauth'"):
        connections.set("x", kind="oauth", token="t" * 8)  # type: ignore[arg-type]


class _MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.values.get((service, username))

    def set_password(self, service, username, password):
        self.values[(service, username)] = password

    def delete_password(self, service, username):
        self.values.pop((service, username))


def test_a_usable_keyring_keeps_the_secrets_and_the_file_only_names():
    before = keyring.get_keyring()
    ring = _MemoryKeyring()
    keyring.set_keyring(ring)
    try:
        assert connections.set("github", token=TOKEN)["stored"] == "keyring"
        assert TOKEN not in path().read_text()
        assert ring.values == {("fm_lab", "github/token"): TOKEN}
        connections._CACHE.clear()
        assert connections.get("github").headers()["Authorization"] == f"Bearer {TOKEN}"
        connections.rm("github")
        assert ring.values == {}
    finally:
        keyring.set_keyring(before)


def test_the_command_lists_sets_and_removes_without_showing_values(tmp_path):
    env = {**os.environ, "FM_LAB_CONNECTIONS_BACKEND": "file"}
    src = os.path.dirname(os.path.dirname(fm_lab.__file__))
    env["PYTHONPATH"] = src

    def cli(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "fm_lab", "connections", *args],
                              input=stdin, capture_output=True, text=True, env=env)

    made = cli("set", "github", "--kind", "bearer", stdin=TOKEN + "\n")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "stored github (bearer) in the file"
    listed = cli("list")
    assert listed.stdout.split() == ["github", "bearer", "file"]
    assert TOKEN not in listed.stdout + listed.stderr + made.stdout + made.stderr
    assert json.loads(cli("list", "--json").stdout) == [
        {"name": "github", "kind": "bearer", "stored": "file"}]
    assert cli("rm", "github").returncode == 0
    gone = cli("rm", "github")
    assert gone.returncode == 1 and "no connection named 'github'" in gone.stderr
