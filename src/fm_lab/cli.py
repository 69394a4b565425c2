"""The ``fm-lab`` command: run, rerun, resume, runs, show, traces, usage, validate, batch, ...

The commands shared with the ``%flow`` magic are defined in :mod:`fm_lab.commands`; this
module adds how their results are printed and the commands only a terminal has.

User errors (a bad workflow, a missing file, a locked store) print one line,
``fm-lab: error: ...``, and exit 1, never a traceback. ``--json`` prints one JSON object
for scripts.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.engine.run import Run
    from fm_lab.store.base import RunStore


def build_parser() -> argparse.ArgumentParser:
    """The ``fm-lab`` parser: the commands shared with ``%flow`` (:mod:`fm_lab.commands`), each
    with the CLI's print options, and the CLI's own commands."""
    from fm_lab.commands import add_commands, add_policy_option, add_store_option

    parser = argparse.ArgumentParser(prog="fm-lab", description="Run and inspect fm_lab workflows.")
    add_store_option(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    shared = add_commands(sub, "cli")
    for name in ("run", "rerun", "resume", "pending", "runs", "show", "fork", "replay"):
        shared[name].add_argument("--json", action="store_true", help="print one JSON object")
    shared["run"].add_argument("--trace", action="store_true",
                               help="also print the run's trace and its model usage")
    shared["run"].add_argument("--plot", metavar="PNG", help="write the run's waterfall to PNG")
    _formats(shared["traces"])
    _formats(shared["usage"])
    _formats(shared["audit"])
    _formats(shared["diff"])

    signal = sub.add_parser("signal", help="deliver an event to a waiting run")
    signal.add_argument("run_id")
    signal.add_argument("event")
    signal.add_argument("--data", metavar="JSON", help="event data (JSON)")
    signal.add_argument("--json", action="store_true")

    cancel = sub.add_parser("cancel", help="cancel a run")
    cancel.add_argument("run_id")

    recover = sub.add_parser(
        "recover", help="resume runs left running by dead processes and fire due waits")
    recover.add_argument("--json", action="store_true")
    recover.add_argument("--watch", action="store_true",
                         help="keep doing so every --interval seconds until interrupted")
    recover.add_argument("--interval", type=float, default=2.0, metavar="S")

    check = sub.add_parser("validate", help="validate a workflow file")
    check.add_argument("file")
    add_policy_option(check)
    check.add_argument("--json", action="store_true")

    from fm_lab.batch.cli import add_notebook_parser
    worker = sub.add_parser("worker", help="run a Temporal worker for fm_lab runs")
    worker.add_argument("--temporal", required=True, metavar="ADDRESS",
                        help="the Temporal frontend, HOST:PORT")
    worker.add_argument("--task-queue", default="fm_lab", metavar="QUEUE")
    worker.add_argument("--namespace", default="default")
    add_policy_option(worker)
    worker.add_argument("--import", dest="imports", action="append", default=[],
                        metavar="MODULE", help="import MODULE first (it registers node types "
                        "or functions); repeat for more")

    from fm_lab.batch.cli import add_parser as add_batch_parser

    add_batch_parser(sub)
    add_notebook_parser(sub)
    _store_parser(sub)
    _mcp_parsers(sub)
    from fm_lab.evals.cli import add_parser as add_eval_parser

    add_eval_parser(sub)
    return parser


def _mcp_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    """``fm-lab mcp serve`` and ``fm-lab connections list|set|rm``."""
    from fm_lab.connections.cli import add_parser as add_connections_parser
    from fm_lab.mcp.cli import add_parser as add_mcp_parser

    add_mcp_parser(sub)
    add_connections_parser(sub)


def _cmd_mcp(args: argparse.Namespace) -> int:
    from fm_lab.mcp.cli import run as run_mcp

    try:
        return run_mcp(args, _store(args))
    except (ValueError, ImportError) as exc:  # two workflows with one name, no mcp package
        return _fail(args, exc)


def _cmd_connections(args: argparse.Namespace) -> int:
    from fm_lab.connections.cli import run as run_connections

    try:
        return run_connections(args)
    except ValueError as exc:  # a bad or unknown connection, an insecure file
        return _fail(args, exc)


def _cmd_eval(args: argparse.Namespace) -> int:
    from fm_lab.evals.cli import run as run_eval

    try:
        return run_eval(args, _store(args))
    except (ValueError, LookupError) as exc:  # a bad file, threshold, dataset or experiment
        return _fail(args, exc)


def _store_parser(sub: argparse._SubParsersAction[Any]) -> None:
    store = sub.add_parser("store", help="migrate a store's tables; copy one store into another")
    group = store.add_subparsers(dest="store_command", required=True, metavar="STORE_COMMAND")
    migrate = group.add_parser(
        "migrate", help="bring a store's tables up to date (a DuckDB path or a postgresql:// "
        "URL) and print the schema version before and after")
    migrate.add_argument("target", metavar="URL")
    migrate.add_argument("--check", action="store_true", help="apply nothing; exit 1 when "
                         "migrations are pending (for deploy pipelines)")
    migrate.add_argument("--json", action="store_true", help="print one JSON object")
    copy = group.add_parser(
        "copy", help="copy a store's history (runs, spans, memory, batches, audit log) into "
        "another; running it again copies nothing")
    copy.add_argument("source", metavar="SRC", help="the store to copy (opened read-only)")
    copy.add_argument("target", metavar="DST", help="the store to copy into")
    copy.add_argument("--dry-run", action="store_true", help="count what would be copied")
    copy.add_argument("--include-running", action="store_true",
                      help="also copy runs stored as running in the source")
    copy.add_argument("--json", action="store_true", help="print one JSON object")
    settings = group.add_parser(
        "settings", help="show or change a store's settings (policy.allow, policy.http_allow, "
        "policy.default), each change in the audit log")
    settings.add_argument("target", metavar="URL", nargs="?",
                          help="the store (default: FM_LAB_STORE or ~/.fm_lab/fm_lab.duckdb)")
    settings.add_argument("--set", nargs=2, action="append", default=[],
                          metavar=("KEY", "VALUE"), help="set KEY (lists: comma-separated)")
    settings.add_argument("--unset", action="append", default=[], metavar="KEY",
                          help="remove KEY")
    settings.add_argument("--json", action="store_true", help="print one JSON object")


def _formats(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="JSON records")
    group.add_argument("--csv", action="store_true", help="CSV")


def _print_frame(args: argparse.Namespace, frame: pd.DataFrame, empty: str) -> None:
    if getattr(args, "json", False):
        print(frame.to_json(orient="records", date_format="iso"))
    elif getattr(args, "csv", False):
        print(frame.to_csv(index=False), end="")
    elif frame.empty:
        print(empty)
    else:
        print(_table(frame))


def _shared(args: argparse.Namespace, store: RunStore | None = None) -> Any:
    """What the command shared with ``%flow`` returns (a Run or a DataFrame)."""
    from fm_lab.commands import FileValues, execute

    return execute(args, FileValues(), store or _store(args))


def _cmd_traces(args: argparse.Namespace) -> int:
    frame = _shared(args)
    more = frame.attrs.get("next_cursor")
    if not (args.json or args.csv) and not frame.empty:
        if "depth" in frame.columns:  # one run's tree
            frame = _trace_summary(frame)
        else:
            frame = frame[["started_at", "kind", "name", "status", "duration_ms", "run_id"]]
    _print_frame(args, frame, "no spans")
    if more:  # on stderr, so JSON and CSV exports stay clean
        print(f"next page: --cursor {more}", file=sys.stderr)
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    frame = _shared(args)
    if not (args.json or args.csv) and not frame.empty:
        frame = frame[["seq", "acted_at", "actor", "action", "run_id", "path"]]
    _print_frame(args, frame, "the audit log is empty")
    return 0


def _trace_summary(frame: pd.DataFrame) -> pd.DataFrame:
    shown = frame[["depth", "kind", "name", "status", "duration_ms", "model"]].copy()
    shown["name"] = ["· " * d + str(n) for d, n in zip(shown["depth"], shown["name"],
                                                       strict=True)]
    shown["duration_ms"] = shown["duration_ms"].round(2)
    return shown.drop(columns=["depth"])


def _cmd_usage(args: argparse.Namespace) -> int:
    _print_frame(args, _shared(args), "no model calls recorded")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fm-lab``; returns the exit code. A user error (a bad file or
    argument, an invalid workflow, a store problem, an unknown run) is one line on stderr,
    ``fm-lab: error: ...``, and exit code 1; output cut short by a closed pipe
    (``fm-lab runs | head``) ends quietly."""
    args = build_parser().parse_args(argv)
    try:
        code = int(_COMMANDS[args.command](args))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _pipe_closed()
    except Exception as exc:
        if isinstance(exc, _user_errors()):
            return _fail(args, exc)
        raise


def entry() -> NoReturn:
    """The ``fm-lab`` command: :func:`main`, then a prompt exit. Once litellm is loaded the
    interpreter's teardown (freeing module objects one by one) took 1.3-2.3 s after the run
    had ended; everything is committed by then, so exit handlers run and the process ends
    with ``os._exit``, unless a non-daemon thread still works (then Python exits as usual).
    The code nodes' pool threads do not count: every run has ended when ``main`` returns, so
    they are idle, or still inside a node body its run gave up on (a timeout)."""
    code = main()
    code_nodes = sys.modules.get("fm_lab.nodes.code")  # loaded if a code node ran
    pool: str | None = getattr(code_nodes, "THREAD_PREFIX", None)
    if any(t.is_alive() and not t.daemon and not (pool and t.name.startswith(pool))
           for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    groups = sys.modules.get("fm_lab.store.group_timer")  # loaded if a run was queued
    if groups is not None:
        groups.store_all()  # before atexit's hooks (DuckDB's interrupt its queries)
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _user_errors() -> tuple[type[Exception], ...]:
    from fm_lab.commands import CommandUsageError
    from fm_lab.engine.errors import ResumeError
    from fm_lab.engine.fork import ForkError
    from fm_lab.identity import InvalidIdentityError
    from fm_lab.security.policy import PolicySettingError
    from fm_lab.spec.errors import WorkflowValidationError
    from fm_lab.store.errors import StoreError
    from fm_lab.store.ids import InvalidIdError, RunIdInUseError
    from fm_lab.store.journal import RunLockedError
    from fm_lab.temporal.client import TemporalSetupError

    return (WorkflowValidationError, StoreError, FileNotFoundError, IsADirectoryError,
            NotADirectoryError, PermissionError, CommandUsageError, ResumeError, RunLockedError,
            InvalidIdError, RunIdInUseError, InvalidIdentityError, PolicySettingError,
            ForkError, TemporalSetupError)


def _pipe_closed() -> int:
    """The reader of stdout went away: send the rest to /dev/null (so the flush at exit
    cannot fail again) and stop without a traceback."""
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError):  # ValueError: no file descriptor (tests)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 1


def _fail(args: argparse.Namespace, exc: Exception) -> int:
    from fm_lab.engine.errors import ResumeValidationError
    from fm_lab.spec.errors import WorkflowValidationError

    if getattr(args, "json", False):
        payload: dict[str, Any] = {"status": "error", "error": str(exc)}
        if isinstance(exc, WorkflowValidationError | ResumeValidationError):
            payload["issues"] = [
                {"location": i.location, "message": i.message, "code": i.code} for i in exc.issues
            ]
        print(json.dumps(payload))
    else:
        print(f"fm-lab: error: {_one_line(args, exc)}", file=sys.stderr)
    return 1


def _one_line(args: argparse.Namespace, exc: Exception) -> str:
    """The error as one line: a list of issues joined by '; ', the workflow file named."""
    from fm_lab.spec.errors import DocumentError, WorkflowValidationError

    text = str(exc)
    issues = getattr(exc, "issues", None)
    if issues and not isinstance(exc, DocumentError):
        text = text.splitlines()[0] + " " + "; ".join(str(issue) for issue in issues)
    file = getattr(args, "file", None) or getattr(args, "workflow", None)
    if (isinstance(exc, WorkflowValidationError) and not isinstance(exc, DocumentError)
            and exc.subject.startswith("workflow") and file):
        text = f"{file}: {text}"
    return " ".join(text.split())


def _store(args: argparse.Namespace) -> RunStore:
    from fm_lab.engine.api import connect

    return connect(args.store) if args.store else connect()


def _cmd_run(args: argparse.Namespace) -> int:
    store = _store(args)
    result = _shared(args, store)
    code = _report(args, result)
    if args.trace and not args.json:
        from fm_lab.tracing.query import trace, usage

        print("\ntrace:\n" + _table(_trace_summary(trace(result.run_id, store=store))))
        spent = usage(["model"], run_id=result.run_id, store=store)
        print("\nusage:\n" + (_table(spent) if not spent.empty else "no model calls in this run"))
    if args.plot:
        from fm_lab.tracing.plots import plot_trace

        plot_trace(result.run_id, store=store).savefig(args.plot, dpi=110)
        if not args.json:
            print(f"\nwaterfall written to {args.plot}")
    return code


def _cmd_run_report(args: argparse.Namespace) -> int:
    """``rerun`` and ``resume``: the new state of the run, exit 1 if it failed."""
    return _report(args, _shared(args))


def _cmd_pending(args: argparse.Namespace) -> int:
    frame = _shared(args)
    if args.json:
        print(frame.to_json(orient="records", date_format="iso"))
    elif frame.empty:
        print("nothing is waiting")
    else:
        print(_table(frame[["run_id", "node_id", "label", "path_id", "since", "assignees",
                            "roles", "payload"]]))
    return 0


def _cmd_signal(args: argparse.Namespace) -> int:
    from fm_lab.commands import parse_json
    from fm_lab.engine.api import signal

    data = None if args.data is None else parse_json(args.data, "--data")
    result = signal(args.run_id, args.event, data, store=_store(args))
    return _report(args, result)


def _cmd_cancel(args: argparse.Namespace) -> int:
    from fm_lab.engine.api import cancel

    cancel(args.run_id, store=_store(args))
    print(f"cancel requested for run {args.run_id}")
    return 0


def _cmd_recover(args: argparse.Namespace) -> int:
    import time

    from fm_lab.engine.api import recover

    store = _store(args)
    while True:
        resumed = recover(store=store)
        if args.json and (resumed or not args.watch):
            print(json.dumps([{"run_id": r.run_id, "status": r.status} for r in resumed]),
                  flush=True)
        elif resumed or not args.watch:
            print("\n".join(f"{r.run_id}: {r.status}" for r in resumed) or "nothing to recover",
                  flush=True)
        if not args.watch:
            return 0
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0


def _cmd_show(args: argparse.Namespace) -> int:
    return _report(args, _shared(args), exit_on_status=False)


def _cmd_runs(args: argparse.Namespace) -> int:
    frame = _shared(args)
    if args.json:
        print(frame.to_json(orient="records", date_format="iso"))
    elif frame.empty:
        print("no runs yet")
    else:
        cols = ["run_id", "workflow_id", "status", "created_at", "duration_ms", "started_by"]
        print(_table(frame[cols]))
    return 0


_DIFF_SHOWN = ["path", "change", "status_a", "status_b", "tokens_a", "tokens_b", "cost_a",
               "cost_b"]


def _cmd_diff(args: argparse.Namespace) -> int:
    """``diff``: a table of the nodes, then each changed output's diff."""
    frame = _shared(args)
    if args.json or args.csv or frame.empty:
        _print_frame(args, frame, "no nodes differ" if args.changed else "no nodes")
        return 0
    print(_table(frame[_DIFF_SHOWN]))
    for row in frame[frame["changed"]].itertuples():
        print(f"\n{row.path}:\n{row.output_diff or '(status only)'}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    """``replay``: the replay's run, then each node that differs; exit 1 if any does."""
    found = _shared(args)
    differences = found.differences
    if args.json:
        from fm_lab.store.codec import dumps

        print(dumps({"run_id": found.run.run_id, "source": found.source,
                     "identical": found.identical, "misses": found.misses,
                     "differences": differences[["path", "status_a", "status_b",
                                                 "output_diff"]].to_dict("records")}))
        return 0 if found.identical else 1
    print(f"replay of {found.source} as run {found.run.run_id}: "
          + ("identical, no provider called" if found.identical
             else f"{len(differences)} node(s) differ"))
    for row in differences.itertuples():
        print(f"\n{row.path}: {row.status_a} -> {row.status_b}\n{row.output_diff}")
    return 0 if found.identical else 1


def _cmd_validate(args: argparse.Namespace) -> int:
    from fm_lab.engine.api import validate

    workflow = validate(Path(args.file), policy=args.policy)
    if args.json:
        print(
            json.dumps(
                {
                    "status": "valid",
                    "workflow": workflow.id,
                    "nodes": len(workflow.nodes),
                    "issues": [],
                }
            )
        )
    else:
        print(f"{args.file}: workflow {workflow.id!r} is valid ({len(workflow.nodes)} nodes)")
    return 0


def _report(args: argparse.Namespace, result: Run, exit_on_status: bool = True) -> int:
    from fm_lab.store.codec import dumps

    code = 0 if result.status in ("succeeded", "suspended") or not exit_on_status else 1
    if args.json:
        print(
            dumps(
                {
                    "run_id": result.run_id,
                    "status": result.status,
                    "outputs": result.outputs,
                    "error": _brief(result.error),
                    "policy": result.policy,
                }
            )
        )
        return code
    policy = f" (policy: {result.policy})" if result.policy else ""
    print(f"run {result.run_id} of {result.workflow.id}: {result.status}{policy}")
    if result.error:
        err = result.error
        print(f"error at node {err.get('node')!r} [{err.get('kind')}]: {err.get('message')}")
    frame = result.nodes_df()
    if not frame.empty:
        shown = frame[["node_id", "node_type", "status", "attempts", "duration_ms"]].copy()
        shown["duration_ms"] = shown["duration_ms"].round(2)
        print("\nnodes:\n" + _table(shown))
    if result.outputs is not None:
        print("\noutputs:\n" + json.dumps(result.outputs, indent=2, default=str))
    return code


def _brief(error: dict[str, Any] | None) -> dict[str, Any] | None:
    if not error:
        return None
    return {k: v for k, v in error.items() if k != "traceback"}


def _table(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False)


def _cmd_batch(args: argparse.Namespace) -> int:
    from fm_lab.batch.cli import run as run_batch
    from fm_lab.commands import CommandUsageError

    try:
        return run_batch(args, _store(args))
    except (KeyError, ValueError, TypeError, ImportError) as exc:  # bad items, unknown batch
        if isinstance(exc, _user_errors()):
            raise
        raise CommandUsageError(exc.args[0] if exc.args else str(exc)) from None


def _cmd_worker(args: argparse.Namespace) -> int:
    """``fm-lab worker``: execute fm_lab runs from a Temporal task queue until interrupted."""
    from fm_lab.temporal.worker import serve

    serve(args.temporal, args.task_queue, namespace=args.namespace, policy=args.policy,
          imports=args.imports)
    return 0


def _cmd_store(args: argparse.Namespace) -> int:
    """``fm-lab store migrate|copy``: exit 1 when migrations are pending (``--check``) or
    something was not copied."""
    from fm_lab.store.urls import open_store

    if args.store_command == "migrate":
        return _store_migrate(args)
    if args.store_command == "settings":
        return _store_settings(args)
    from dataclasses import asdict

    from fm_lab.kb.copy_chunks import copy_knowledge_bases
    from fm_lab.kb.copy_chunks import lines as kb_lines
    from fm_lab.memory.copy_vectors import copy_message_vectors
    from fm_lab.store.base import sql_store
    from fm_lab.store.copy import copy_store

    source = open_store(args.source, read_only=True)
    try:
        target = open_store(args.target)
        try:
            with _Bars(quiet=args.json) as bars:
                report = copy_store(source, target, include_running=args.include_running,
                                    dry_run=args.dry_run, progress=bars)
            src, dst = sql_store(source, "vectors"), sql_store(target, "vectors")
            vectors = copy_message_vectors(src, dst, dry_run=args.dry_run)
            bases = copy_knowledge_bases(src, dst, dry_run=args.dry_run)
        finally:
            target.close()
    finally:
        source.close()
    if args.json:
        print(json.dumps({**report.as_dict(), "vectors": asdict(vectors),
                          "knowledge_bases": [asdict(kb) for kb in bases]}))
    else:
        print("\n".join([*report.lines(), vectors.line(args.dry_run),
                         *kb_lines(bases, args.dry_run)]))
    failed = vectors.refused or any(kb.failed for kb in bases)
    return 1 if report.refused or report.chain_problems or failed else 0


def _store_settings(args: argparse.Namespace) -> int:
    """Apply ``--set``/``--unset`` (all checked first: a bad one changes nothing), then print
    the settings."""
    from fm_lab.engine.admin import set_store_setting, store_settings
    from fm_lab.engine.api import connect
    from fm_lab.store.settings import check_setting
    from fm_lab.store.urls import open_store

    wanted = [*args.set, *((key, None) for key in args.unset)]
    changes = [(key, check_setting(key, value)) for key, value in wanted]
    store = open_store(args.target) if args.target else connect()
    try:
        for key, value in changes:
            set_store_setting(key, value, store=store)
        found = store_settings(store)
    finally:
        store.close()
    if args.json:
        print(json.dumps(found))
    else:
        print("\n".join(f"{key} = {', '.join(value) if isinstance(value, list) else value}"
                        for key, value in sorted(found.items())) or "no settings")
    return 0


def _store_migrate(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from fm_lab.store.base import UnsupportedStoreError
    from fm_lab.store.migrations import MigratingStore
    from fm_lab.store.urls import open_store

    store = open_store(args.target, read_only=args.check)
    try:
        if not isinstance(store, MigratingStore):
            raise UnsupportedStoreError(f"{store.path} has no tables to migrate")
        report = store.migrate(apply=not args.check)
    finally:
        store.close()
    print(json.dumps(asdict(report)) if args.json else report.describe())
    return 1 if report.pending else 0


class _Bars:
    """One tqdm bar per table a copy reads (on a terminal only)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bars: dict[str, Any] = {}

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in self.bars.values():
            bar.close()

    def __call__(self, table: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self.bars.get(table)
        if bar is None:
            bar = self.bars[table] = tqdm(total=total, desc=table, unit="row", leave=False,
                                          disable=True if self.quiet else None,
                                          dynamic_ncols=True)
        bar.update(done - bar.n)


_COMMANDS = {
    "audit": _cmd_audit,
    "batch": _cmd_batch,
    "notebook": _cmd_batch,
    "connections": _cmd_connections,
    "eval": _cmd_eval,
    "mcp": _cmd_mcp,
    "run": _cmd_run,
    "rerun": _cmd_run_report,
    "resume": _cmd_run_report,
    "runs": _cmd_runs,
    "show": _cmd_show,
    "pending": _cmd_pending,
    "signal": _cmd_signal,
    "store": _cmd_store,
    "cancel": _cmd_cancel,
    "recover": _cmd_recover,
    "fork": _cmd_run_report,
    "diff": _cmd_diff,
    "replay": _cmd_replay,
    "traces": _cmd_traces,
    "usage": _cmd_usage,
    "validate": _cmd_validate,
    "worker": _cmd_worker,
}

if __name__ == "__main__":
    sys.exit(main())
