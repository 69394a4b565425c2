"""``fm-lab connections list|set|rm``: names, kinds and where each is stored, never values.
Secret values are read from a prompt (or one line each on stdin when it is not a terminal),
never from the command line, where shells and process lists would keep them."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from fm_lab.connections.auth import KINDS, SECRETS


def add_parser(sub: Any) -> None:
    """Add the ``connections`` command group to ``fm-lab``'s subparsers."""
    parser = sub.add_parser("connections", help="named credentials (values never shown)")
    group = parser.add_subparsers(dest="connections_command", required=True, metavar="COMMAND")
    listing = group.add_parser("list", help="names, kinds and where each is stored")
    listing.add_argument("--json", action="store_true")
    put = group.add_parser("set", help="add or replace a connection (secrets are prompted for)")
    put.add_argument("name")
    put.add_argument("--kind", choices=KINDS, default="bearer")
    for option in ("username", "client-id", "token-url", "scope", "audience", "header"):
        put.add_argument(f"--{option}")
    put.add_argument("--backend", choices=("auto", "keyring", "file"), default=None)
    remove = group.add_parser("rm", help="remove a connection")
    remove.add_argument("name")


def run(args: argparse.Namespace) -> int:
    """Run a ``connections`` command; returns the exit code."""
    from fm_lab import connections

    command = args.connections_command
    if command == "list":
        found = connections.list()
        if args.json:
            print(json.dumps(found))
        elif not found:
            print("no connections")
        for item in [] if args.json else found:
            extra = " ".join(f"{k}={v}" for k, v in item.items()
                             if k not in ("name", "kind", "stored"))
            print(f"{item['name']}\t{item['kind']}\t{item['stored']}\t{extra}".rstrip())
        return 0
    if command == "rm":
        if not connections.rm(args.name):
            print(f"fm-lab: error: no connection named {args.name!r}", file=sys.stderr)
            return 1
        print(f"removed {args.name}")
        return 0
    secrets = {field: _ask(f"{args.name} {field}: ") for field in SECRETS[args.kind]}
    public = {key: getattr(args, key) for key in ("username", "client_id", "token_url", "scope",
                                                  "audience", "header")}
    shown = connections.set(args.name, kind=args.kind, backend=args.backend,
                            **{k: v for k, v in {**public, **secrets}.items() if v})
    print(f"stored {shown['name']} ({shown['kind']}) in the {shown['stored']}")
    return 0


def _ask(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")
