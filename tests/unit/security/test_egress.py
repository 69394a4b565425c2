"""``http`` nodes under the restricted policy: internal addresses refused before any traffic,
redirects checked at every hop, names resolved once and connected to as checked. A real
``http.server`` on 127.0.0.1 counts the requests it sees (no other network is used)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import pytest

import fm_lab
from fm_lab.security.egress import CheckedTransport, EgressRefusedError
from fm_lab.security.policy import Policy
from fm_lab.store.memory_store import MemoryStore


@dataclass
class Counting:
    base: str
    port: int
    seen: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)


class Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.state.seen.append((self.path, self.headers.get("Host", "")))
        target = parse_qs(urlsplit(self.path).query).get("to")
        if target:  # /redirect?to=<url>
            self.send_response(302)
            self.send_header("Location", target[0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[Counting]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    httpd.state = Counting(f"http://127.0.0.1:{port}", port)  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.state  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every TCP connection httpcore opens, by address (the real connect still happens)."""
    made: list[str] = []
    real = httpcore.AnyIOBackend.connect_tcp

    async def recording(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        made.append(host)
        return await real(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", recording)
    return made


def fetch(url: str, policy: str | None = None) -> fm_lab.Run:
    flow = {"id": "fetch", "nodes": {"get": {"type": "http", "config": {
        "url": url, "max_retries": 0, "timeout_s": 10}}}}
    return fm_lab.run(flow, store=MemoryStore(), policy=policy)


def error_of(run: fm_lab.Run) -> str:
    assert run.status == "failed" and run.error is not None
    assert run.error["type"] == EgressRefusedError.__name__, run.error
    return str(run.error["message"])


def test_trusted_reaches_the_loopback_server(server):
    run = fetch(server.base + "/hello")
    assert run.status == "succeeded", run.error
    assert run.outputs["get"]["body"] == {"ok": True}
    assert server.seen == [("/hello", f"127.0.0.1:{server.port}")]


def test_restricted_refuses_loopback_private_and_metadata_without_traffic(server, connects):
    cases = {
        server.base + "/x": ("127.0.0.1", "a loopback address"),
        "http://10.0.0.1/x": ("10.0.0.1", "a private address"),
        "http://169.254.169.254/latest/meta-data/": ("169.254.169.254",
                                                    "a cloud metadata address"),
        "http://[::1]:9/": ("::1", "a loopback address"),
        "http://[::ffff:a00:1]/": ("::ffff:a00:1", "a private address"),
    }
    for url, (address, why) in cases.items():
        message = error_of(fetch(url, "restricted"))
        host = urlsplit(url).hostname
        assert f"http connection to host '{host}' (address {address}, {why}) refused by the " \
               "restricted policy; allow it in FM_LAB_HTTP_ALLOW" in message
    assert server.seen == [] and connects == []


def test_metadata_host_names_are_refused_before_resolving(monkeypatch, connects):
    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("resolved")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    message = error_of(fetch("http://metadata.google.internal/computeMetadata/v1/",
                             "restricted"))
    assert "host 'metadata.google.internal' (a cloud metadata host) refused by the " \
           "restricted policy" in message
    assert connects == []


def test_an_allow_listed_address_is_reached_and_redirects_out_are_refused(monkeypatch,
                                                                           server, connects):
    monkeypatch.setenv("FM_LAB_HTTP_ALLOW", "127.0.0.1/32")
    run = fetch(server.base + "/fine", "restricted")
    assert run.status == "succeeded", run.error
    for target, address in (("http://169.254.169.254/latest/", "169.254.169.254"),
                            ("http://10.0.0.1/", "10.0.0.1"),
                            ("http://127.0.0.2/", "127.0.0.2")):
        message = error_of(fetch(f"{server.base}/redirect?to={target}", "restricted"))
        assert f"(address {address}, " in message
    assert [path for path, _host in server.seen] == [
        "/fine", *(f"/redirect?to={t}" for t in (
            "http://169.254.169.254/latest/", "http://10.0.0.1/", "http://127.0.0.2/"))]
    assert set(connects) == {"127.0.0.1"}  # the refused hops were never connected to


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch, connects):
    def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        assert host == "rebind.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 80))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    message = error_of(fetch("http://rebind.example/", "restricted"))
    assert "host 'rebind.example' (address 10.0.0.1, a private address)" in message
    assert connects == []


def test_a_name_is_resolved_once_and_its_checked_address_connected_to(monkeypatch, server,
                                                                      connects):
    """Rebinding between check and connect cannot work: nothing resolves the name again."""
    monkeypatch.setenv("FM_LAB_HTTP_ALLOW", "127.0.0.1")
    answers = iter(["127.0.0.1", "10.0.0.1"])  # a second lookup would get a private address
    lookups: list[str] = []

    def once(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", once)
    run = fetch(f"http://named.example:{server.port}/named", "restricted")
    assert run.status == "succeeded", run.error
    assert lookups == ["named.example"] and connects == ["127.0.0.1"]
    assert server.seen == [("/named", f"named.example:{server.port}")]  # Host: the name


def test_one_refused_address_among_several_refuses_the_name(monkeypatch, connects):
    def mixed(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", mixed)
    assert "(address 127.0.0.1, a loopback address)" in error_of(
        fetch("http://mixed.example/", "restricted"))
    assert connects == []


def test_an_allow_listed_host_name_may_resolve_anywhere(monkeypatch, server):
    monkeypatch.setenv("FM_LAB_HTTP_ALLOW", "*.internal.example")

    def local(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", local)
    run = fetch(f"http://api.internal.example:{server.port}/ok", "restricted")
    assert run.status == "succeeded", run.error


def test_the_transport_really_uses_the_checked_backend():
    """httpx has no back-end option: the transport swaps its pool. If httpx renames the
    attribute this fails instead of letting requests through unchecked."""
    transport = CheckedTransport(Policy("restricted"))
    assert type(transport._pool._network_backend).__name__ == "CheckedBackend"
