"""The ``fm-lab`` command: run, resume, runs, show, validate.

User errors (a bad workflow, a missing file, a locked store) print one line,
``fm-lab: error: ...``, and exit 1, never a traceback. ``--json`` prints one JSON object
for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.engine.run import Run
    from fm_lab.store.duckdb_store import Store


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fm-lab", description="Run and inspect fm_lab workflows.")
    parser.add_argument("--store", help="DuckDB file (default: $FM_LAB_HOME/fm_lab.duckdb)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a workflow file")
    run.add_argument("file", help="workflow .yaml/.yml/.json")
    run.add_argument(
        "--input",
        "-i",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an input (VALUE parsed as JSON when it is JSON); repeatable",
    )
    run.add_argument("--inputs-json", metavar="JSON", help="all inputs as one JSON object")
    run.add_argument("--run-id", help="use this run id")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument("--trace", action="store_true",
                     help="also print the run's trace and its model usage")
    run.add_argument("--plot", metavar="PNG", help="write the run's waterfall to PNG")

    resume = sub.add_parser(
        "resume", help="continue a stopped or failed run, or resume a suspended path with data"
    )
    resume.add_argument("run_id")
    resume.add_argument("--label", help="the suspension's label")
    resume.add_argument("--node", help="the suspended node")
    resume.add_argument("--path", dest="path_id", help="the suspension's path id")
    resume.add_argument("--data", metavar="JSON", help="resume data (JSON)")
    resume.add_argument("--json", action="store_true")
    resume.add_argument("--force", action="store_true",
                        help="resume although the run's journal is damaged or missing")
    resume.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                        help="how long to wait for another process running the run (60)")

    pending = sub.add_parser("pending", help="list suspensions waiting for data")
    pending.add_argument("run_id", nargs="?", help="only this run (and its child runs)")
    pending.add_argument("--json", action="store_true")

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

    runs = sub.add_parser("runs", help="list recent runs")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--status", help="only runs with this status")
    runs.add_argument("--json", action="store_true")

    show = sub.add_parser("show", help="show one run and its nodes")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")

    traces = sub.add_parser("traces", help="list spans (one run's trace with --run)")
    traces.add_argument("--run", dest="run_id", help="one run's trace, in tree order")
    traces.add_argument("--kind", help="only spans of this kind (node, llm, tool, ...)")
    traces.add_argument("--limit", type=int, default=50)
    _formats(traces)

    usage = sub.add_parser("usage", help="tokens and cost of model calls")
    usage.add_argument("--by", default="model",
                       help="comma-separated: model, provider, run, workflow, node, agent, day, "
                       "resource")
    usage.add_argument("--since", help="ISO date or time")
    usage.add_argument("--price-as", help="price every call as this model")
    _formats(usage)

    check = sub.add_parser("validate", help="validate a workflow file")
    check.add_argument("file")
    check.add_argument("--json", action="store_true")

    from fm_lab.batch.cli import add_parser as add_batch_parser

    add_batch_parser(sub)
    return parser


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


def _cmd_traces(args: argparse.Namespace) -> int:
    from fm_lab.tracing.query import trace, traces

    store = _store(args)
    if args.run_id:
        frame = trace(args.run_id, store=store)
        if not (args.json or args.csv) and not frame.empty:
            frame = _trace_summary(frame)
    else:
        frame = traces(kind=args.kind, limit=args.limit, store=store)
        if not (args.json or args.csv):
            frame = frame[["started_at", "kind", "name", "status", "duration_ms", "run_id"]]
    _print_frame(args, frame, "no spans")
    return 0


def _trace_summary(frame: pd.DataFrame) -> pd.DataFrame:
    shown = frame[["depth", "kind", "name", "status", "duration_ms", "model"]].copy()
    shown["name"] = ["· " * d + str(n) for d, n in zip(shown["depth"], shown["name"],
                                                       strict=True)]
    shown["duration_ms"] = shown["duration_ms"].round(2)
    return shown.drop(columns=["depth"])


def _cmd_usage(args: argparse.Namespace) -> int:
    from fm_lab.tracing.query import usage

    frame = usage([g.strip() for g in args.by.split(",") if g.strip()], since=args.since,
                  price_as=args.price_as, store=_store(args))
    _print_frame(args, frame, "no model calls recorded")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fm-lab``; returns the exit code. A user error (a bad file or
    argument, an invalid workflow, a store problem, an unknown run) is one line on stderr,
    ``fm-lab: error: ...``, and exit code 1; output cut short by a closed pipe
    (``fm-lab runs | head``) ends quietly."""
    args = _parser().parse_args(argv)
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


def _user_errors() -> tuple[type[Exception], ...]:
    from fm_lab.engine.errors import ResumeError
    from fm_lab.spec.errors import WorkflowValidationError
    from fm_lab.store.errors import StoreError
    from fm_lab.store.ids import InvalidIdError, RunIdInUseError
    from fm_lab.store.journal import RunLockedError

    return (WorkflowValidationError, StoreError, FileNotFoundError, IsADirectoryError,
            NotADirectoryError, PermissionError, _UsageError, ResumeError, RunLockedError,
            InvalidIdError, RunIdInUseError)


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


class _UsageError(ValueError):
    pass


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
    file = getattr(args, "file", None)
    if (isinstance(exc, WorkflowValidationError) and not isinstance(exc, DocumentError)
            and exc.subject.startswith("workflow") and file):
        text = f"{file}: {text}"
    return " ".join(text.split())


def _store(args: argparse.Namespace) -> Store:
    from fm_lab.engine.api import connect

    return connect(args.store) if args.store else connect()


def _json_value(raw: str, flag: str) -> Any:
    """``raw`` parsed as bounded JSON (see :mod:`fm_lab.spec.limits`), or a usage error."""
    from fm_lab.spec.errors import DocumentError
    from fm_lab.spec.io import load_json

    try:
        return load_json(raw)
    except DocumentError as exc:
        raise _UsageError(f"{flag}: {exc.problem}") from None


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    from fm_lab.spec.errors import DocumentError
    from fm_lab.spec.io import load_json

    inputs: dict[str, Any] = {}
    if args.inputs_json:
        loaded = _json_value(args.inputs_json, "--inputs-json")
        if not isinstance(loaded, dict):
            raise _UsageError("--inputs-json must be a JSON object")
        inputs.update(loaded)
    for item in args.input:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise _UsageError(f"--input takes KEY=VALUE, got {item!r}")
        try:
            inputs[key] = load_json(raw)
        except DocumentError as exc:
            if exc.issues[0].code != "json":
                raise _UsageError(f"--input {key}: {exc.problem}") from None
            inputs[key] = raw
    return inputs


def _cmd_run(args: argparse.Namespace) -> int:
    from fm_lab.engine.api import run

    store = _store(args)
    result = run(Path(args.file), _inputs(args), run_id=args.run_id, store=store)
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


def _json_arg(raw: str | None, flag: str) -> Any:
    return None if raw is None else _json_value(raw, flag)


def _cmd_resume(args: argparse.Namespace) -> int:
    from fm_lab.engine.api import resume

    data = _json_arg(args.data, "--data")
    result = resume(
        args.run_id,
        data,
        label=args.label,
        node=args.node,
        path_id=args.path_id,
        store=_store(args),
        force=args.force,
        wait_s=args.wait,
    )
    return _report(args, result)


def _cmd_pending(args: argparse.Namespace) -> int:
    from fm_lab.engine.api import pending

    frame = pending(args.run_id, store=_store(args))
    if args.json:
        print(frame.to_json(orient="records", date_format="iso"))
    elif frame.empty:
        print("nothing is waiting")
    else:
        print(_table(frame[["run_id", "node_id", "label", "path_id", "since", "payload"]]))
    return 0


def _cmd_signal(args: argparse.Namespace) -> int:
    from fm_lab.engine.api import signal

    result = signal(args.run_id, args.event, _json_arg(args.data, "--data"), store=_store(args))
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
    from fm_lab.engine.api import get_run

    result = get_run(args.run_id, store=_store(args))
    return _report(args, result, exit_on_status=False)


def _cmd_runs(args: argparse.Namespace) -> int:
    frame = _store(args).runs(limit=args.limit, status=args.status)
    if args.json:
        print(frame.to_json(orient="records", date_format="iso"))
    elif frame.empty:
        print("no runs yet")
    else:
        cols = ["run_id", "workflow_id", "status", "created_at", "duration_ms"]
        print(_table(frame[cols]))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from fm_lab.engine.api import validate

    workflow = validate(Path(args.file))
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
                }
            )
        )
        return code
    print(f"run {result.run_id} of {result.workflow.id}: {result.status}")
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

    try:
        return run_batch(args, _store(args))
    except (KeyError, ValueError, TypeError, ImportError) as exc:  # bad items, unknown batch
        if isinstance(exc, _user_errors()):
            raise
        raise _UsageError(exc.args[0] if exc.args else str(exc)) from None


_COMMANDS = {
    "batch": _cmd_batch,
    "run": _cmd_run,
    "resume": _cmd_resume,
    "runs": _cmd_runs,
    "show": _cmd_show,
    "pending": _cmd_pending,
    "signal": _cmd_signal,
    "cancel": _cmd_cancel,
    "recover": _cmd_recover,
    "traces": _cmd_traces,
    "usage": _cmd_usage,
    "validate": _cmd_validate,
}

if __name__ == "__main__":
    sys.exit(main())
