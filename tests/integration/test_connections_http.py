"""Connections on the wire: an ``http`` node authenticates with a named connection against a
loopback API, and the secret is found zero times in the DuckDB file, the journals, the
LanceDB files and an OpenTelemetry export; OAuth2 client-credentials tokens are fetched from
a loopback token endpoint and fetched again when they expire or are refused."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import fm_lab
from fm_lab import connections
from fm_lab.tracing import export_otel

SECRET = "zz-conn-secret-8d1f4e2a6c"
CLIENT_SECRET = "zz-client-secret-71c3b9"


class _Api:
    """A loopback API that wants ``Authorization: Bearer <a valid token>`` (and echoes the
    header back, as careless APIs do), and an OAuth2 token endpoint issuing tok-1, tok-2..."""

    def __init__(self) -> None:
        self.valid = {SECRET}
        self.issued: list[str] = []
        self.expires_in = 3600
        self.seen: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                auth = self.headers.get("authorization", "")
                api.seen.append(auth)
                if auth.removeprefix("Bearer ") not in api.valid:
                    self._send(401, {"error": "unauthorized"})
                    return
                self._send(200, {"user": "ada", "you_sent": auth})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                basic = base64.b64decode(
                    self.headers.get("authorization", "Basic ").split(" ", 1)[1]).decode()
                if form.get("grant_type") != ["client_credentials"] or \
                        basic != f"robot:{CLIENT_SECRET}":
                    self._send(401, {"error": "invalid_client"})
                    return
                token = f"tok-{len(api.issued) + 1}-a7c9e5"
                api.issued.append(token)
                api.valid = {token}  # the newest token is the only valid one
                self._send(200, {"access_token": token, "token_type": "bearer",
                                 "expires_in": api.expires_in})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def api() -> Iterator[_Api]:
    server = _Api()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _workflow(url: str) -> dict[str, Any]:
    return {"id": "whoami", "nodes": {"me": {"type": "http", "config": {
        "url": f"{url}/user", "connection": "github", "max_retries": 0}}},
        "outputs": {"user": "{{ nodes.me.output.body.user }}",
                    "echo": "{{ nodes.me.output.body.you_sent }}"}}


def _files_containing(root: Path, secret: str) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and secret.encode() in p.read_bytes()]


def test_an_http_node_uses_a_connection_and_the_secret_is_stored_nowhere(api, tmp_path):
    connections.set("github", token=SECRET, backend="file")
    home = tmp_path / "data"
    store = fm_lab.connect(home / "fm_lab.duckdb")
    run = fm_lab.run(_workflow(api.url), store=store)
    assert run.status == "succeeded", run.error
    assert api.seen == [f"Bearer {SECRET}"]
    assert run.outputs["user"] == "ada"
    assert run.outputs["echo"].endswith("[REDACTED]")  # the API echoed it: masked

    kb = fm_lab.kb.create("notes", store=store)  # LanceDB files beside the DuckDB file
    kb.add_text(f"The API answered {run.outputs} for token {SECRET}.", source="note")
    exporter = InMemorySpanExporter()
    assert export_otel(exporter, run_id=run.run_id, store=store) > 0
    exported = json.dumps([json.loads(s.to_json()) for s in exporter.get_finished_spans()])
    store.close()

    assert any(p.suffix == ".journal" for p in home.rglob("*"))
    assert any(".lance" in str(p) for p in home.rglob("*"))
    assert _files_containing(home, SECRET) == []
    assert SECRET not in exported


def test_an_unknown_connection_fails_the_node_in_one_line(api):
    run = fm_lab.run(_workflow(api.url))
    assert run.status == "failed"
    assert "no connection named 'github'" in str(run.error)


def test_oauth2_tokens_are_fetched_and_fetched_again_when_they_expire(api):
    connections.set("github", kind="oauth2_client_credentials", client_id="robot",
                    client_secret=CLIENT_SECRET, token_url=f"{api.url}/token", scope="read")
    api.expires_in = 10  # inside the refresh margin: stale at once, fetched for every use
    first = fm_lab.run(_workflow(api.url))
    second = fm_lab.run(_workflow(api.url))
    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert api.issued == ["tok-1-a7c9e5", "tok-2-a7c9e5"]
    assert api.seen == ["Bearer tok-1-a7c9e5", "Bearer tok-2-a7c9e5"]
    assert "tok-2" not in second.outputs["echo"]  # fetched tokens are masked too


def test_a_refused_oauth2_token_is_replaced_once(api):
    connections.set("github", kind="oauth2_client_credentials", client_id="robot",
                    client_secret=CLIENT_SECRET, token_url=f"{api.url}/token")
    assert fm_lab.run(_workflow(api.url)).status == "succeeded"  # tok-1, valid an hour
    api.valid = set()  # the server revokes it
    again = fm_lab.run(_workflow(api.url))
    assert again.status == "succeeded", again.error
    assert api.issued == ["tok-1-a7c9e5", "tok-2-a7c9e5"]
    assert api.seen[-2:] == ["Bearer tok-1-a7c9e5", "Bearer tok-2-a7c9e5"]


def test_a_bad_client_secret_is_reported_in_one_line(api):
    connections.set("github", kind="oauth2_client_credentials", client_id="robot",
                    client_secret="wrong-secret-123", token_url=f"{api.url}/token")
    run = fm_lab.run(_workflow(api.url))
    assert run.status == "failed"
    assert "token endpoint" in str(run.error) and "answered 401" in str(run.error)
    assert "wrong-secret-123" not in str(run.error)


def test_an_mcp_server_over_http_refreshes_a_refused_oauth2_token(api):
    from tests.mcp.helpers import http_server

    connections.set("mcp-oauth", kind="oauth2_client_credentials", client_id="robot",
                    client_secret=CLIENT_SECRET, token_url=f"{api.url}/token")
    with http_server("--token", "tok-2-a7c9e5") as url:  # it wants the second token
        remote = fm_lab.mcp.server("calc-oauth", url=url, connection="mcp-oauth")
        try:
            assert remote.call("add", {"a": 2, "b": 2}) == 4
        finally:
            remote.close()
    assert api.issued == ["tok-1-a7c9e5", "tok-2-a7c9e5"]  # tok-1 was refused: fetched again
