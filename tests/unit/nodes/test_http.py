"""The ``http`` node against a real HTTP server on 127.0.0.1 (no other network)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import fm_lab
from fm_lab.engine.errors import NodeError
from fm_lab.nodes import default_registry
from fm_lab.nodes.http import HttpConfig, HttpNode, _retry_after, _retry_delay
from fm_lab.spec import WorkflowValidationError

default_registry().register(HttpNode)


# ---- a local server -----------------------------------------------------------------------


@dataclass
class Server:
    base: str
    stop: threading.Event
    requests: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r["path"] == path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(
        self,
        status: int,
        body: bytes | str | Any,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        if isinstance(body, str):
            data = body.encode()
        elif isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _count(self, key: str) -> int:
        state: Server = self.server.state
        with state.lock:
            state.counters[key] = state.counters.get(key, 0) + 1
            return state.counters[key]

    def _handle(self) -> None:
        state: Server = self.server.state
        parts = urlsplit(self.path)
        query = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        seen = {
            "method": self.command,
            "path": parts.path,
            "query": query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        with state.lock:
            state.requests.append(seen)
        path = parts.path
        if path == "/json":
            self._send(200, {"hello": "world", "n": [1, 2]}, "application/json; charset=utf-8")
        elif path == "/echo":
            self._send(200, seen, headers={"X-Echo": "yes"})
        elif path == "/text":
            self._send(200, '{"looks": "like json"}', "text/plain; charset=utf-8")
        elif path == "/html":
            self._send(200, "<html>not json</html>", "application/json")
        elif path.startswith("/flaky/"):  # /flaky/<key>?fail=N&status=S
            if self._count(path) <= int(query.get("fail", "2")):
                self._send(int(query.get("status", "503")), {"error": "try again"})
            else:
                self._send(200, {"ok": True})
        elif path == "/retry-after":
            if self._count(path) == 1:
                self._send(429, "slow down", "text/plain", headers={"Retry-After": "1"})
            else:
                self._send(200, {"ok": True})
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), "nothing here for you", "text/plain")
        elif path == "/slow":
            state.stop.wait(float(query.get("delay", "2")))
            self._send(200, {"slow": True})
        elif path == "/redirect":
            self._send(302, "", "text/plain", headers={"Location": "/json"})
        elif path == "/big":
            self._send(200, b"x" * int(query.get("size", "5000")), "application/octet-stream")
        elif path == "/big-chunked":  # no Content-Length: the limit must trip while streaming
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"y" * 1024
            for _ in range(int(query.get("chunks", "64"))):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(404, "unknown path", "text/plain")

    def _safe_handle(self) -> None:
        try:
            self._handle()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _safe_handle


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = False  # server_close() joins the handler threads
    state = Server(base=f"http://127.0.0.1:{httpd.server_address[1]}", stop=threading.Event())
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()  # wake sleeping handlers
        httpd.shutdown()
        thread.join()
        httpd.server_close()


@pytest.fixture
def store() -> Iterator[fm_lab.Store]:
    store = fm_lab.Store(":memory:")
    yield store
    store.close()


@pytest.fixture
def call(store):
    def call(config: dict[str, Any]):
        workflow = {"id": "h", "nodes": {"call": {"type": "http", "config": config}}}
        return fm_lab.run(workflow, store=store)

    return call


# ---- successful calls ---------------------------------------------------------------------


def test_get_json_is_parsed(call, server):
    result = call({"url": server.url("/json")})
    assert result.status == "succeeded", result.error
    out = result.node("call").output
    assert out["status"] == 200
    assert out["body"] == {"hello": "world", "n": [1, 2]}
    assert out["headers"]["content-type"] == "application/json; charset=utf-8"
    assert all(k == k.lower() for k in out["headers"])
    assert out["url"] == server.url("/json")
    assert out["attempts"] == 1
    assert isinstance(out["elapsed_ms"], float) and out["elapsed_ms"] >= 0


def test_post_json_body_reaches_the_server(call, server):
    result = call({"method": "post", "url": server.url("/echo"), "json": {"a": 1, "b": ["x"]}})
    assert result.status == "succeeded", result.error
    echo = result.node("call").output["body"]
    assert echo["method"] == "POST"
    assert json.loads(echo["body"]) == {"a": 1, "b": ["x"]}
    assert echo["headers"]["content-type"] == "application/json"
    assert result.node("call").output["headers"]["x-echo"] == "yes"


def test_put_form_body_reaches_the_server(call, server):
    result = call(
        {
            "method": "PUT",
            "url": server.url("/echo"),
            "form": {"name": "Ada Lovelace", "lang": "en&fr"},
        }
    )
    assert result.status == "succeeded", result.error
    echo = result.node("call").output["body"]
    assert echo["method"] == "PUT"
    assert echo["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(echo["body"]) == {"name": ["Ada Lovelace"], "lang": ["en&fr"]}


def test_query_params_and_headers_are_sent(call, server):
    result = call(
        {
            "url": server.url("/echo?fixed=1"),
            "query": {"q": "a b", "n": 3, "flag": True, "many": ["x", "y"]},
            "headers": {"X-Token": "secret", "Accept": "application/json"},
        }
    )
    assert result.status == "succeeded", result.error
    echo = result.node("call").output["body"]
    assert echo["query"] == {"fixed": "1", "q": "a b", "n": "3", "flag": "true", "many": ["x", "y"]}
    assert echo["headers"]["x-token"] == "secret"
    assert echo["headers"]["accept"] == "application/json"


def test_templated_config_is_rendered(store, server):
    workflow = {
        "id": "h",
        "inputs": {"type": "object"},
        "nodes": {
            "call": {
                "type": "http",
                "config": {
                    "url": server.base + "/echo",
                    "query": {"who": "{{ inputs.who }}"},
                    "json": {"n": "{{ inputs.n }}"},
                    "method": "POST",
                },
            }
        },
    }
    result = fm_lab.run(workflow, {"who": "ada", "n": 4}, store=store)
    assert result.status == "succeeded", result.error
    echo = result.node("call").output["body"]
    assert echo["query"] == {"who": "ada"}
    assert json.loads(echo["body"]) == {"n": 4}


def test_redirects_are_followed(call, server):
    out = call({"url": server.url("/redirect")}).node("call").output
    assert out["status"] == 200
    assert out["url"] == server.url("/json")
    assert out["body"]["hello"] == "world"


def test_parse_modes(call, server):
    text = call({"url": server.url("/text")}).node("call").output["body"]
    assert text == '{"looks": "like json"}'  # auto: text/plain stays text
    forced = call({"url": server.url("/text"), "parse": "json"}).node("call").output["body"]
    assert forced == {"looks": "like json"}
    as_text = call({"url": server.url("/json"), "parse": "text"}).node("call").output["body"]
    assert json.loads(as_text) == {"hello": "world", "n": [1, 2]}
    raw = call({"url": server.url("/big?size=10"), "parse": "bytes"}).node("call").output
    assert raw["body"] == b"x" * 10


def test_head_has_no_body(call, server):
    out = call({"method": "HEAD", "url": server.url("/json")}).node("call").output
    assert out["status"] == 200
    assert out["body"] is None


# ---- retries ------------------------------------------------------------------------------


def test_503_twice_then_200_succeeds_on_the_third_attempt(call, server):
    result = call({"url": server.url("/flaky/a?fail=2"), "backoff_s": 0.01})
    assert result.status == "succeeded", result.error
    out = result.node("call").output
    assert out["status"] == 200 and out["body"] == {"ok": True}
    assert out["attempts"] == 3
    assert server.hits("/flaky/a") == 3


def test_5xx_after_retries_is_a_retryable_provider_error(call, server):
    result = call(
        {"url": server.url("/flaky/b?fail=9&status=502"), "backoff_s": 0.01, "max_retries": 1}
    )
    assert result.status == "failed"
    assert result.error["node"] == "call"
    assert result.error["kind"] == "provider"
    assert result.error["retryable"] is True
    assert "502" in result.error["message"]
    assert server.hits("/flaky/b") == 2


def test_429_retry_after_is_honoured(call, server):
    started = time.monotonic()
    result = call({"url": server.url("/retry-after"), "backoff_s": 0.01})
    waited = time.monotonic() - started
    assert result.status == "succeeded", result.error
    out = result.node("call").output
    assert out["attempts"] == 2
    assert waited >= 0.9
    assert out["elapsed_ms"] >= 900


def test_retry_after_is_capped(call, server):
    result = call({"url": server.url("/retry-after"), "max_retry_after_s": 0.05})
    assert result.status == "succeeded", result.error
    assert result.node("call").output["attempts"] == 2
    # the wait chosen for a 429 asking for an hour is the cap (no clock involved)
    config = HttpConfig.model_validate({"url": server.url("/"), "max_retry_after_s": 0.05})
    asks_an_hour = httpx.Response(429, headers={"Retry-After": "3600"})
    assert _retry_delay(config, asks_an_hour, 1) == 0.05
    assert _retry_delay(config.model_copy(update={"max_retry_after_s": 7200}), asks_an_hour,
                        1) == 3600


def test_404_fails_as_user_error_without_retries(call, server):
    result = call({"url": server.url("/status/404"), "backoff_s": 0.01})
    assert result.status == "failed"
    error = result.error
    assert error["node"] == "call"
    assert error["kind"] == "user"
    assert error["retryable"] is False
    for part in ("404", "GET", server.url("/status/404"), "nothing here for you"):
        assert part in error["message"]
    assert server.hits("/status/404") == 1


def test_error_status_is_output_when_raise_for_status_is_off(call, server):
    result = call({"url": server.url("/status/404"), "raise_for_status": False})
    assert result.status == "succeeded", result.error
    out = result.node("call").output
    assert out["status"] == 404
    assert out["body"] == "nothing here for you"


def test_timeout_fails_as_timeout(call, server):
    # the server would answer after 60 s (it is released at teardown): only the timeout ends
    # the request
    result = call({"url": server.url("/slow?delay=60"), "timeout_s": 0.2, "max_retries": 0})
    assert result.status == "failed"
    assert result.error["kind"] == "timeout"
    assert result.error["retryable"] is True
    assert "timed out" in result.error["message"]


def test_connection_errors_are_retried_then_provider_errors(call, server):
    dead = "http://127.0.0.1:9/nothing"  # discard port: connection refused
    result = call({"url": dead, "max_retries": 1, "backoff_s": 0.01})
    assert result.status == "failed"
    assert result.error["kind"] == "provider"
    assert result.error["retryable"] is True
    assert "2 attempts" in result.error["message"]


# ---- limits and bad bodies ----------------------------------------------------------------


def test_response_over_max_bytes_fails(call, server):
    result = call({"url": server.url("/big?size=5000"), "max_bytes": 1000})
    assert result.status == "failed"
    assert "max_bytes=1000" in result.error["message"]
    assert result.error["retryable"] is False


def test_streamed_response_over_max_bytes_stops_early(call, server):
    result = call({"url": server.url("/big-chunked?chunks=64"), "max_bytes": 4000})
    assert result.status == "failed"
    assert "max_bytes=4000" in result.error["message"]
    assert "stopped after reading" in result.error["message"]


def test_body_that_is_not_json_is_a_validation_error(call, server):
    result = call({"url": server.url("/html")})  # claims JSON, sends HTML
    assert result.status == "failed"
    assert result.error["kind"] == "validation"
    assert "not JSON" in result.error["message"]


# ---- config ----------------------------------------------------------------------------


def test_json_and_form_together_are_rejected(call):
    with pytest.raises(WorkflowValidationError) as info:
        call(
            {"method": "POST", "url": "http://127.0.0.1:9/x", "json": {"a": 1}, "form": {"b": "2"}}
        )
    [issue] = info.value.issues
    assert issue.location == "nodes.call.config.form"
    assert "json" in issue.message and "form" in issue.message


@pytest.mark.parametrize(
    "config, location",
    [
        ({"url": "ftp://example.com/x"}, "nodes.call.config.url"),
        ({"url": "/relative"}, "nodes.call.config.url"),
        ({"url": "http://x", "method": "TRACE"}, "nodes.call.config.method"),
        ({"url": "http://x", "query": {"a": {"nested": 1}}}, "nodes.call.config.query"),
        ({"url": "http://x", "timeout": 3}, "nodes.call.config.timeout"),
    ],
)
def test_bad_config_is_rejected(call, config, location):
    with pytest.raises(WorkflowValidationError) as info:
        call(config)
    assert [i.location for i in info.value.issues] == [location]


def test_config_accepts_json_by_alias_and_by_name():
    assert HttpConfig.model_validate({"url": "http://x", "json": [1]}).json_body == [1]
    assert HttpConfig.model_validate({"url": "http://x", "json_body": [2]}).json_body == [2]
    schema = HttpNode.json_schema()
    assert "json" in schema["properties"]
    assert schema["description"]
    assert all(p.get("description") for p in schema["properties"].values())


@pytest.mark.parametrize(
    "value, expected",
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("-5", 0.0),
        ("soon", None),
        (None, None),
        ("", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
    ],
)
def test_retry_after_parsing(value, expected):
    assert _retry_after(value) == expected


def test_retry_after_http_date_in_the_future():
    from email.utils import formatdate

    seconds = _retry_after(formatdate(time.time() + 30, usegmt=True))
    assert seconds is not None and 25 <= seconds <= 31


# ---- abort --------------------------------------------------------------------------------


async def test_abort_stops_the_backoff_wait(server):
    abort = asyncio.Event()
    ctx = SimpleNamespace(abort=abort)
    node = HttpNode(
        HttpConfig.model_validate(
            {"url": server.url("/flaky/c?fail=9"), "backoff_s": 20, "max_retries": 3}
        )
    )
    asyncio.get_running_loop().call_later(0.2, abort.set)
    with pytest.raises(NodeError) as info:  # without the abort it would wait 20 s, then retry
        await node.run(ctx, {})  # type: ignore[arg-type]
    assert "aborted" in str(info.value)
    assert server.hits("/flaky/c") == 1


def test_importing_fm_lab_does_not_import_httpx():
    import subprocess
    import sys

    code = "import sys, fm_lab; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
