"""An MCP server written for the tests with the official SDK: ``python servers.py`` serves
stdio, ``python servers.py --http PORT [--token T]`` serves streamable HTTP on 127.0.0.1 (and,
with ``--token``, refuses requests without ``Authorization: Bearer T``)."""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer

app = MCPServer("calc", instructions="A calculator for the tests.")


@app.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool()
def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper()


@app.tool()
def repeat(text: str, times: int) -> str:
    """The text repeated (a big result on demand)."""
    return text * times


@app.tool()
def crash() -> str:
    """Ends the server process at once (to test how a dead server is reported)."""
    sys.stderr.write("calc: crashing on purpose\n")
    sys.stderr.flush()
    os._exit(3)


@app.tool()
def pid() -> int:
    """This server's process id (a test kills it between calls)."""
    return os.getpid()


@app.tool()
def fail(reason: str) -> str:
    """Raises: the client reads an error result."""
    raise ValueError(f"failed on purpose: {reason}")


@app.tool()
def credential_digest() -> str:
    """The SHA-256 (12 hex digits) of the connection token fm_lab gave this process."""
    import hashlib

    token = os.environ.get("FM_LAB_CONNECTION_TOKEN", "")
    return hashlib.sha256(token.encode()).hexdigest()[:12] if token else "none"


@app.resource("notes://readme", description="How to use the calculator.")
def readme() -> str:
    return "Add numbers with add(a, b)."


@app.prompt()
def review(code: str) -> str:
    """Ask for a code review."""
    return f"Please review this code:\n{code}"


def main() -> None:
    if "--http" in sys.argv:
        port = int(sys.argv[sys.argv.index("--http") + 1])
        token = sys.argv[sys.argv.index("--token") + 1] if "--token" in sys.argv else None
        import anyio
        import uvicorn

        starlette_app = app.streamable_http_app(host="127.0.0.1")
        served = starlette_app
        if token is not None:
            async def guarded(scope, receive, send):  # type: ignore[no-untyped-def]
                if scope["type"] == "http":
                    headers = dict(scope.get("headers") or [])
                    if headers.get(b"authorization") != f"Bearer {token}".encode():
                        await send({"type": "http.response.start", "status": 401,
                                    "headers": [(b"content-type", b"text/plain")]})
                        await send({"type": "http.response.body", "body": b"unauthorized"})
                        return
                await starlette_app(scope, receive, send)
            served = guarded  # type: ignore[assignment]
        config = uvicorn.Config(served, host="127.0.0.1", port=port, log_level="warning",
                                lifespan="on")
        anyio.run(uvicorn.Server(config).serve)
    else:
        app.run()


if __name__ == "__main__":
    main()
