"""``fm-lab mcp serve``: stored or given workflows as the tools of an MCP server."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fm_lab.security.policy import MODES


def add_parser(sub: Any) -> None:
    """Add the ``mcp`` command group to ``fm-lab``'s subparsers."""
    parser = sub.add_parser("mcp", help="fm_lab workflows as an MCP server")
    group = parser.add_subparsers(dest="mcp_command", required=True, metavar="MCP_COMMAND")
    serve = group.add_parser("serve", help="serve workflows as MCP tools (stdio by default)")
    serve.add_argument("--workflows", metavar="DIR", help="serve the workflow files in DIR "
                       "(default: every workflow stored in the store)")
    serve.add_argument("--workflow", action="append", default=[], metavar="FILE",
                       help="serve this workflow file too (repeatable)")
    serve.add_argument("--policy", choices=MODES, default="restricted",
                       help="execution policy of the runs (default: restricted; an MCP "
                       "client is someone else's code)")
    serve.add_argument("--port", type=int, help="serve streamable HTTP on this port instead "
                       "of stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1; "
                       "there is no authentication: keep it on loopback or behind a proxy)")


def run(args: argparse.Namespace, store: Any) -> int:
    """Run an ``mcp`` command; returns the exit code."""
    import anyio

    from fm_lab.mcp.serve import (
        WorkflowServer,
        load_workflows,
        saved_by_others,
        serve_http,
        serve_stdio,
    )

    workflows = load_workflows(args.workflows, args.workflow, store=store)
    stored = not (args.workflows or args.workflow)
    server = WorkflowServer(workflows, store=store, policy=args.policy,
                            restricted=saved_by_others(store) if stored else ())
    where = f"http://{args.host}:{args.port}/mcp" if args.port else "stdio"
    print(f"fm-lab mcp serve: {len(workflows)} workflow(s) on {where}, {args.policy} policy",
          file=sys.stderr)
    if args.port:
        anyio.run(serve_http, server, args.host, args.port)
    else:
        anyio.run(serve_stdio, server)
    return 0
