"""MCP servers as fm_lab tools, on the official ``mcp`` SDK.

Every session lives on one background event loop (a daemon thread) that owns the SDK's async
context managers, so a session is opened once and reused by every call from any thread or
event loop (a notebook's, the engine's, a sync cell's); sessions close when the process
exits. A session that breaks (a stdio server that died, an HTTP server gone) is reopened once
for the call that found it broken; if that fails too the call raises one line naming the
server, its transport and, for stdio, the last line it wrote to stderr.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import json
import shlex
import tempfile
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from fm_lab.tracing.spans import Span, span

if TYPE_CHECKING:
    from mcp_types import CallToolResult

    from fm_lab.mcp.tools import McpTool
    from mcp import ClientSession

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RESULT_CHARS = 1_000_000
"""The largest tool result taken (characters of text, structured JSON and encoded data): a
bigger one is a tool error, never a model's context, a span or a stored output."""


class McpError(RuntimeError):
    """An MCP server that cannot be reached, died, or did not answer in time."""


class McpToolError(McpError):
    """A tool call the server answered with an error result."""


class _Loop:
    """The daemon thread whose event loop owns every MCP session of the process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fm_lab-mcp",
                                       daemon=True)
        self.thread.start()

    def submit(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]


_LOOP: _Loop | None = None
_LOOP_LOCK = threading.Lock()


def _loop() -> _Loop:
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None:
            _LOOP = _Loop()
            atexit.register(close_all)
        return _LOOP


class McpServer:
    """One MCP server: a command started over stdio, or a streamable-HTTP ``url``.

    Made (and registered by name, for ``mcp_tool`` nodes) by :func:`server`. ``tools()`` are
    agent tools; ``call``, ``resources``, ``read_resource``, ``prompts``, ``get_prompt`` (and
    their ``a``-prefixed async forms) use the server directly.
    """

    def __init__(self, name: str, *, command: Sequence[str] | str | None = None,
                 url: str | None = None, env: Mapping[str, str] | None = None,
                 cwd: str | None = None, headers: Mapping[str, str] | None = None,
                 connection: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_result_chars: int = DEFAULT_MAX_RESULT_CHARS) -> None:
        if (command is None) == (url is None):
            raise ValueError(f"MCP server {name!r}: give command= (stdio) or url= (HTTP), "
                             "one of them")
        if isinstance(command, str):
            command = shlex.split(command)
        if command is not None and not command:
            raise ValueError(f"MCP server {name!r}: command= is empty")
        self.name = name
        self.command = list(command) if command is not None else None
        self.url = url
        self.env = dict(env or {})
        self.cwd = cwd
        self.headers = dict(headers or {})
        self.connection = connection
        self.timeout_s = timeout_s
        self.max_result_chars = max_result_chars
        self._session: ClientSession | None = None
        self._stop: asyncio.Event | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stderr: Any = None
        self._opening: asyncio.Lock | None = None
        self._listed: Any = None  # the last tools/list answer (dropped with its session)
        self.restarts = 0
        """How many times a broken session was reopened."""

    # ---- description -------------------------------------------------------------------------
    @property
    def transport(self) -> str:
        """``stdio: <command>`` or ``http: <url>`` (for messages and spans)."""
        if self.command is not None:
            return "stdio: " + shlex.join(self.command)
        return f"http: {self.url}"

    def spec(self) -> dict[str, Any]:
        """What makes two registrations of a name the same server (never a secret value)."""
        return {"command": self.command, "url": self.url, "env": sorted(self.env),
                "cwd": self.cwd, "headers": sorted(self.headers), "connection": self.connection}

    def __repr__(self) -> str:
        return f"McpServer({self.name!r}, {self.transport!r})"

    # ---- tools ---------------------------------------------------------------------------------
    # Each method is a request on the MCP loop and a conversion of its answer; the sync form
    # waits for the request from the calling thread (one hop), the async one awaits it.
    def tools(self, *, prefix: str = "", only: Sequence[str] | None = None) -> list[McpTool]:
        """The server's tools as agent tools (``Agent(tools=[*server.tools()])``), named
        ``prefix + name``; ``only``: just these."""
        return self._tool_list(self._blocking(*_LIST_TOOLS), prefix, only)

    async def atools(self, *, prefix: str = "", only: Sequence[str] | None = None,
                     cached: bool = False) -> list[McpTool]:
        """Async :meth:`tools` (``cached``: the list this session gave last, if any: what an
        ``mcp_tool`` node checks its arguments against)."""
        listed = self._listed if cached and self._listed is not None else await self._run(
            *_LIST_TOOLS)
        return self._tool_list(listed, prefix, only)

    def _tool_list(self, listed: Any, prefix: str, only: Sequence[str] | None) -> list[McpTool]:
        from fm_lab.mcp.tools import McpTool

        self._listed = listed
        found = [McpTool.from_mcp(self, t, prefix) for t in listed.tools
                 if only is None or t.name in only]
        missing = sorted(set(only or ()) - {t.remote_name for t in found})
        if missing:
            raise McpError(f"MCP server {self.name!r} has no tool {', '.join(missing)} "
                           f"(it has {', '.join(sorted(t.name for t in listed.tools))})")
        return found

    def call(self, tool: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """Call ``tool`` (a ``tool`` span with the server's name); its result as Python: the
        structured content when the tool gives one, else its text."""
        args = dict(arguments or {})
        with self._span(tool, args) as tool_span:
            tool_span.output = self._output(tool, self._blocking(*_call_tool(tool, args)))
        return tool_span.output

    async def acall(self, tool: str, arguments: Mapping[str, Any] | None = None, *,
                    traced: bool = True) -> Any:
        """Async :meth:`call` (``traced=False``: no span of its own, for callers that have
        opened one)."""
        args = dict(arguments or {})
        if not traced:
            return self._output(tool, await self._run(*_call_tool(tool, args)))
        with self._span(tool, args) as tool_span:
            tool_span.output = self._output(tool, await self._run(*_call_tool(tool, args)))
        return tool_span.output

    def _output(self, tool: str, result: CallToolResult) -> Any:
        size = _size(result)
        if size > self.max_result_chars:
            raise McpToolError(f"{self.name}.{tool}: its result has {size:,} characters, above "
                               f"max_result_chars={self.max_result_chars:,}; ask the tool for "
                               "less, or raise max_result_chars")
        return _output(self.name, tool, result)

    def span_attributes(self) -> dict[str, Any]:
        """What a tool span of this server carries (server name and transport kind)."""
        return {"mcp.server": self.name, "mcp.transport": "stdio" if self.command else "http"}

    def _span(self, tool: str, arguments: dict[str, Any]) -> Span:
        return span(tool, kind="tool", input={"arguments": arguments}, entity_id=tool,
                    **self.span_attributes(), **{"mcp.tool": tool})

    # ---- resources and prompts -----------------------------------------------------------------
    def resources(self) -> list[dict[str, Any]]:
        """The server's resources: ``uri, name, description, mime_type`` each."""
        return _dumped(self._blocking(*_LIST_RESOURCES).resources)

    async def aresources(self) -> list[dict[str, Any]]:
        """Async :meth:`resources`."""
        return _dumped((await self._run(*_LIST_RESOURCES)).resources)

    def read_resource(self, uri: str) -> str | bytes | list[Any]:
        """A resource's content: its text (or bytes), or a list when it has several parts."""
        return _contents(self._blocking(*_read_resource(uri)))

    async def aread_resource(self, uri: str) -> str | bytes | list[Any]:
        """Async :meth:`read_resource`."""
        return _contents(await self._run(*_read_resource(uri)))

    def prompts(self) -> list[dict[str, Any]]:
        """The server's prompts: ``name, description, arguments`` each."""
        return _dumped(self._blocking(*_LIST_PROMPTS).prompts)

    async def aprompts(self) -> list[dict[str, Any]]:
        """Async :meth:`prompts`."""
        return _dumped((await self._run(*_LIST_PROMPTS)).prompts)

    def get_prompt(self, name: str,
                   arguments: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Prompt ``name`` filled in: chat messages (``role``, ``content``) an agent takes."""
        return _messages(self._blocking(*_get_prompt(name, arguments)))

    async def aget_prompt(self, name: str,
                          arguments: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Async :meth:`get_prompt`."""
        return _messages(await self._run(*_get_prompt(name, arguments)))

    # ---- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the session (a stdio server's process ends); the next call opens a new one."""
        if _LOOP is not None and self._owner is not None:
            with contextlib.suppress(Exception):
                _LOOP.submit(self._close()).result(timeout=10)
        self._close_stderr()

    def _close_stderr(self) -> None:
        stream, self._stderr = self._stderr, None
        if stream is not None:
            stream.close()

    def __enter__(self) -> McpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _close(self) -> None:
        owner, stop = self._owner, self._stop
        self._session = self._owner = self._stop = self._listed = None
        if stop is not None:
            stop.set()
        if owner is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(owner, timeout=5)

    # ---- running on the background loop ------------------------------------------------------
    def _blocking(self, fn: Callable[[ClientSession], Awaitable[T]], what: str) -> T:
        """``fn(session)`` on the MCP loop, waited for by this (synchronous) thread."""
        mcp = _loop()
        if threading.current_thread() is mcp.thread:
            raise RuntimeError(f"a synchronous call to MCP server {self.name!r} from the MCP "
                               "loop would wait for itself: use the a-prefixed method")
        return mcp.submit(self._on_loop(fn, what)).result()

    async def _run(self, fn: Callable[[ClientSession], Awaitable[T]], what: str) -> T:
        """``fn(session)`` on the MCP loop, awaited from the caller's loop."""
        future = _loop().submit(self._on_loop(fn, what))
        return await asyncio.wrap_future(future)

    async def _on_loop(self, fn: Callable[[ClientSession], Awaitable[T]], what: str) -> T:
        for attempt in (1, 2):
            session = await self._ensure(restart=attempt == 2)
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await fn(session)
            except TimeoutError:
                raise McpError(f"MCP server {self.name!r} ({self.transport}) did not answer "
                               f"{what} within {self.timeout_s:g} s") from None
            except Exception as exc:
                if not _broken(exc):
                    raise
                problem = _describe(exc)
                await self._close()
                if attempt == 2:
                    raise McpError(f"MCP server {self.name!r} ({self.transport}) stopped "
                                   f"during {what} and again after a restart: {problem}"
                                   f"{self._last_stderr()}") from None
        raise AssertionError("unreachable")

    async def _ensure(self, restart: bool) -> ClientSession:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._session is not None:
                return self._session
            if restart:
                self.restarts += 1
            ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._owner = asyncio.create_task(self._own(ready, self._stop),
                                              name=f"fm_lab-mcp-{self.name}")
            try:
                async with asyncio.timeout(self.timeout_s):
                    self._session = await asyncio.shield(ready)
            except Exception as exc:
                await self._close()
                again = " after a restart" if restart else ""
                if isinstance(exc, ImportError):
                    raise McpError("MCP servers need the mcp package: pip install "
                                   "'fm_lab[mcp]'") from None
                raise McpError(f"MCP server {self.name!r} ({self.transport}) could not be "
                               f"started{again}: {_describe(exc)}{self._last_stderr()}"
                               ) from None
            return self._session

    async def _own(self, ready: asyncio.Future[ClientSession], stop: asyncio.Event) -> None:
        """Open the transport and session, hand the session over, hold both until ``stop``
        (the SDK's context managers are entered and left in this one task)."""
        from mcp import ClientSession

        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(await self._transport())
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                ready.set_result(session)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception)
                                    else McpError(f"{type(exc).__name__}"))

    async def _transport(self) -> contextlib.AbstractAsyncContextManager[Any]:
        if self.command is not None:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            self._close_stderr()  # the last session's: read by now
            self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8",  # noqa: SIM115
                                                  errors="replace")
            env = {**self.env, **(await self._connection_env())}
            params = StdioServerParameters(command=self.command[0], args=self.command[1:],
                                           env=env or None, cwd=self.cwd)
            return stdio_client(params, errlog=self._stderr)
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        auth = _connection_auth(self.connection) if self.connection is not None else None
        client = httpx2.AsyncClient(headers=self.headers, auth=auth,
                                    timeout=httpx2.Timeout(self.timeout_s, read=300.0))
        assert self.url is not None

        @contextlib.asynccontextmanager
        async def opened() -> Any:
            async with client, streamable_http_client(self.url or "", http_client=client) as s:
                yield s

        return opened()

    async def _connection_env(self) -> dict[str, str]:
        """A stdio server with a connection gets its credential as ``FM_LAB_CONNECTION_TOKEN``
        (a bearer/API-key token, an OAuth2 access token) and its headers as JSON in
        ``FM_LAB_CONNECTION_HEADERS``."""
        if self.connection is None:
            return {}
        import json

        from fm_lab.connections import get

        found = get(self.connection)
        headers = await found.aheaders()
        value = next(iter(headers.values()))
        token = value.split(" ", 1)[1] if value.startswith(("Bearer ", "Basic ")) else value
        return {"FM_LAB_CONNECTION_TOKEN": token,
                "FM_LAB_CONNECTION_HEADERS": json.dumps(headers)}

    def _last_stderr(self) -> str:
        stream = self._stderr
        if stream is None:
            return ""
        try:
            stream.flush()
            stream.seek(0)
            lines = [line.strip() for line in stream.read().splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return f" (its stderr ends: {lines[-1][:200]})" if lines else ""


def _connection_auth(name: str) -> Any:
    """An ``httpx2.Auth`` adding connection ``name``'s headers to every request (an OAuth2
    token is fetched when due, and again once when a request answers 401)."""
    import httpx2

    from fm_lab.connections import get

    class ConnectionAuth(httpx2.Auth):
        async def async_auth_flow(self, request: httpx2.Request
                                  ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
            found = get(name)
            request.headers.update(await found.aheaders())
            response = yield request
            if response.status_code == 401 and found.kind == "oauth2_client_credentials":
                found.invalidate()
                request.headers.update(await found.aheaders())
                yield request

    return ConnectionAuth()


def _broken(exc: BaseException) -> bool:
    """Whether ``exc`` says the session's transport is gone (not an answer from the server)."""
    import anyio
    from mcp.shared.exceptions import MCPError
    from mcp_types.jsonrpc import CONNECTION_CLOSED

    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    if isinstance(exc, BaseExceptionGroup):
        return any(_broken(e) for e in exc.exceptions)
    return isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError
                      | anyio.EndOfStream | OSError | EOFError)


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


Request = tuple[Callable[["ClientSession"], Awaitable[Any]], str]
_LIST_TOOLS: Request = (lambda s: s.list_tools(), "tools/list")
_LIST_RESOURCES: Request = (lambda s: s.list_resources(), "resources/list")
_LIST_PROMPTS: Request = (lambda s: s.list_prompts(), "prompts/list")


def _call_tool(tool: str, arguments: dict[str, Any]) -> Request:
    return lambda s: s.call_tool(tool, arguments), f"tools/call {tool}"


def _read_resource(uri: str) -> Request:
    return lambda s: s.read_resource(uri), f"resources/read {uri}"


def _get_prompt(name: str, arguments: Mapping[str, str] | None) -> Request:
    return lambda s: s.get_prompt(name, dict(arguments or {})), f"prompts/get {name}"


def _dumped(items: Sequence[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json", exclude_none=True) for item in items]


def _contents(read: Any) -> str | bytes | list[Any]:
    """A read resource's parts: text, or bytes of a blob; the part alone when there is one."""
    import base64

    parts: list[Any] = [c.text if getattr(c, "text", None) is not None
                        else base64.b64decode(getattr(c, "blob", "") or "")
                        for c in read.contents]
    return parts[0] if len(parts) == 1 else parts


def _messages(got: Any) -> list[dict[str, Any]]:
    """A prompt's messages as chat messages (text content as a string)."""
    return [{"role": m.role, "content": m.content.text if getattr(m.content, "type", None)
             == "text" else m.content.model_dump(mode="json", exclude_none=True)}
            for m in got.messages]


def _size(result: CallToolResult) -> int:
    """Characters of what :func:`_output` takes from a tool result: its structured JSON when
    it has one, else its parts' text and encoded data."""
    if result.structured_content is not None:
        return len(json.dumps(result.structured_content, default=str))
    return sum(len(getattr(c, "text", None) or "") + len(getattr(c, "data", None) or "")
               for c in result.content)


def _output(server: str, tool: str, result: CallToolResult) -> Any:
    """A tool result as Python (an error result raises :class:`McpToolError`)."""
    texts = [str(getattr(c, "text", "")) for c in result.content
             if getattr(c, "type", None) == "text"]
    if result.is_error:
        message = " ".join(" ".join(texts).split())[:500] or "the tool reported an error"
        raise McpToolError(f"{server}.{tool}: {message}")
    structured = result.structured_content
    if structured is not None:
        return structured["result"] if set(structured) == {"result"} else structured
    if len(texts) == len(result.content):
        return texts[0] if len(texts) == 1 else "\n".join(texts)
    return [c.model_dump(mode="json", exclude_none=True) for c in result.content]


_SERVERS: dict[str, McpServer] = {}
_SERVERS_LOCK = threading.Lock()


def server(name: str, *, command: Sequence[str] | str | None = None, url: str | None = None,
           env: Mapping[str, str] | None = None, cwd: str | None = None,
           headers: Mapping[str, str] | None = None, connection: str | None = None,
           timeout_s: float = DEFAULT_TIMEOUT_S,
           max_result_chars: int = DEFAULT_MAX_RESULT_CHARS) -> McpServer:
    """An MCP server, registered under ``name`` for ``mcp_tool`` nodes; started on first use
    and kept open. ``command``: started over stdio (a list, or a string split like a shell
    would); ``url``: streamable HTTP. ``connection``: a named connection
    (:mod:`fm_lab.connections`) whose headers HTTP requests carry (a stdio server gets the
    credential in its environment). A tool result above ``max_result_chars`` is a tool
    error. Registering a name again with the same settings returns
    the same server (a notebook cell run twice); with other settings it replaces it.

    >>> calc = fm_lab.mcp.server("calc", command=["python", "calc_server.py"])  # doctest: +SKIP
    >>> agent = fm_lab.Agent("maths", tools=[*calc.tools()])                    # doctest: +SKIP
    """
    made = McpServer(name, command=command, url=url, env=env, cwd=cwd, headers=headers,
                     connection=connection, timeout_s=timeout_s,
                     max_result_chars=max_result_chars)
    with _SERVERS_LOCK:
        old = _SERVERS.get(name)
        if old is not None and old.spec() == made.spec() and old.env == made.env \
                and old.headers == made.headers:
            old.timeout_s, old.max_result_chars = timeout_s, max_result_chars
            return old
        _SERVERS[name] = made
    if old is not None:
        old.close()
    return made


def get_server(name: str) -> McpServer:
    """The server registered as ``name``."""
    with _SERVERS_LOCK:
        found = _SERVERS.get(name)
        known = ", ".join(sorted(_SERVERS)) or "none"
    if found is None:
        raise McpError(f"no MCP server named {name!r} (registered: {known}); register it "
                       f"with fm_lab.mcp.server({name!r}, command=[...] or url=...)")
    return found


def close_all() -> None:
    """Close every registered server's session (run at exit)."""
    with _SERVERS_LOCK:
        servers = list(_SERVERS.values())
    for found in servers:
        found.close()
