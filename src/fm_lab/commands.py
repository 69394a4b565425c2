"""The commands ``fm-lab`` and ``%flow`` share (run, rerun, resume, pending, runs, show, traces,
usage, audit, fork, diff, replay): each one's arguments are defined here once, with the call it
makes, so the two grammars cannot drift. The CLI prints what a command returns; the magic
returns it.

What differs between the two is passed in, not forked: a :data:`Surface` ("cli" or
"notebook") only changes help texts and metavars (a notebook also takes a workflow variable
and ``{variable}`` values), and :class:`Values` turns words into workflows and JSON values.
Options that only choose how the terminal prints (:data:`PRINT_OPTIONS`) stay in the CLI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Protocol

if TYPE_CHECKING:
    from fm_lab.spec.models import Workflow
    from fm_lab.store.base import RunStore

Surface = Literal["cli", "notebook"]
"""Who parses: the ``fm-lab`` command or the ``%flow`` magic."""

PRINT_OPTIONS = frozenset({"--json", "--csv", "--trace", "--plot"})
"""CLI options that only choose how a result is printed; the magic returns the object."""


class CommandUsageError(ValueError):
    """A command line that cannot be understood; the message says what is wrong."""


class HelpShown(Exception):
    """``--help`` printed the help; a parser that must not exit raises this instead."""


class RaisingParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that never exits the process (in a notebook that would stop the
    kernel): a bad line raises :class:`CommandUsageError` (the problem, then the usage line)
    and ``--help`` raises :class:`HelpShown` after printing the help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("exit_on_error", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        try:
            return super().parse_known_args(args, namespace)
        except argparse.ArgumentError as exc:  # exit_on_error=False lets these through
            self.error(str(exc))

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # said with the usage of the command they were given to
            self._command_parser(parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _command_parser(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(str(getattr(parsed, action.dest, None)))
                if isinstance(chosen, argparse.ArgumentParser):
                    return chosen
        return self

    def error(self, message: str) -> NoReturn:
        raise CommandUsageError(f"{message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._print_message(message, sys.stderr)
        raise HelpShown


class Values(Protocol):
    """How a front-end turns words into values."""

    def workflow(self, reference: str) -> Workflow | Path:
        """The workflow a word names (the CLI: a file; a notebook: a variable or a file)."""

    def json(self, raw: str, option: str) -> Any:
        """The value of a JSON-valued ``option`` (a notebook also takes ``{variable}``)."""


class FileValues:
    """The CLI's :class:`Values`: workflows are files, values are JSON text."""

    def workflow(self, reference: str) -> Workflow | Path:
        return Path(reference)

    def json(self, raw: str, option: str) -> Any:
        return parse_json(raw, option)


def parse_json(raw: str, option: str) -> Any:
    """``raw`` as bounded JSON (see :mod:`fm_lab.spec.limits`), or a usage error naming
    ``option``."""
    from fm_lab.spec.errors import DocumentError
    from fm_lab.spec.io import load_json

    try:
        return load_json(raw)
    except DocumentError as exc:
        raise CommandUsageError(f"{option}: {exc.problem}") from None


class _NamedValue(argparse.Action):
    """Stores the value and, in ``<dest>_option``, the option string used (an error about
    the value names the option as the user typed it)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_option", option_string)


# ---- arguments -----------------------------------------------------------------------------
def _workflow_metavar(surface: Surface) -> str:
    return "FILE" if surface == "cli" else "NAME|FILE"


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """``--store FILE``: the option every command takes (before the command's name)."""
    parser.add_argument("--store", metavar="FILE",
                        help="DuckDB file (default: $FM_LAB_HOME/fm_lab.duckdb)")


def add_input_options(parser: argparse.ArgumentParser, surface: Surface) -> None:
    """``--inputs`` and ``--input KEY=VALUE`` (run, rerun and the ``%%flow`` cell)."""
    variable = "" if surface == "cli" else " or {variable}"
    parser.add_argument("--inputs", "--inputs-json", dest="inputs", action=_NamedValue,
                        metavar="JSON" if surface == "cli" else "JSON|{var}",
                        help=f"all inputs as one JSON object{variable}")
    parser.add_argument("--input", "-i", action="append", default=[], metavar="KEY=VALUE",
                        help="one input (VALUE parsed as JSON when it is JSON); repeatable, "
                        "overrides --inputs")


def add_policy_option(parser: argparse.ArgumentParser) -> None:
    """``--policy trusted|restricted``: the execution policy (see :mod:`fm_lab.security`)."""
    from fm_lab.security.policy import MODES, POLICY_HELP

    parser.add_argument("--policy", choices=MODES, help=POLICY_HELP)


def add_run_options(parser: argparse.ArgumentParser, surface: Surface) -> None:
    """The options of starting a run (``run`` and the ``%%flow`` cell's ``--run``)."""
    add_input_options(parser, surface)
    add_policy_option(parser)
    parser.add_argument("--run-id", help="use this run id")
    parser.add_argument("--cache", action="store_true",
                        help="reuse unchanged node results of earlier runs of the workflow")
    parser.add_argument("--executor", default=None, metavar="EXECUTOR",
                        help="local (default), temporal ($FM_LAB_TEMPORAL) or "
                        "temporal://HOST:PORT/NAMESPACE?task_queue=QUEUE")


def _run_arguments(parser: argparse.ArgumentParser, surface: Surface) -> None:
    help_ = ("workflow .yaml/.yml/.json" if surface == "cli"
             else "a Workflow variable (e.g. bound by a %%%%flow cell) or a .yaml/.yml/.json file")
    parser.add_argument("workflow", metavar=_workflow_metavar(surface), help=help_)
    add_run_options(parser, surface)


def _rerun_arguments(parser: argparse.ArgumentParser, surface: Surface) -> None:
    parser.add_argument("run_id", metavar="RUN_ID", help="the run to start from")
    parser.add_argument("nodes", nargs="*", metavar="NODE",
                        help="recompute these nodes and what depends on them")
    _edit_options(parser, surface, "the edited workflow ({where}; default: the run's own)")


def _edit_options(parser: argparse.ArgumentParser, surface: Surface, workflow_help: str
                  ) -> None:
    """``--workflow``, the input options and ``--policy`` (``rerun`` and ``fork``)."""
    where = "a file" if surface == "cli" else "a workflow variable or a file"
    parser.add_argument("--workflow", metavar=_workflow_metavar(surface),
                        help=workflow_help.format(where=where))
    add_input_options(parser, surface)
    add_policy_option(parser)


def _resume_arguments(parser: argparse.ArgumentParser, surface: Surface) -> None:
    parser.add_argument("run_id", metavar="RUN_ID")
    parser.add_argument("--label", help="the suspension's label")
    parser.add_argument("--node", help="the suspended node")
    parser.add_argument("--path", dest="path_id", help="the suspension's path id")
    parser.add_argument("--data", metavar="JSON" if surface == "cli" else "JSON|{var}",
                        help="resume data (JSON)")
    parser.add_argument("--force", action="store_true",
                        help="resume although the run's journal is damaged or missing")
    parser.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                        help="how long to wait for another process running the run (60)")
    add_policy_option(parser)


def _pending_arguments(parser: argparse.ArgumentParser, surface: Surface) -> None:
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID",
                        help="only this run (and its child runs)")
    parser.add_argument("--mine", action="store_true",
                        help="only what I may answer (FM_LAB_USER / FM_LAB_ROLES)")


def _audit_arguments(parser: argparse.ArgumentParser, surface: Surface) -> None:
    parser.add_argument("--run", dest="run_id", help="only this run's entries")
    parser.add_argument("--actor", help="only this user's actions")
    parser.add_argument("--action", help="only this action (run.start, run.resume, ...)")
    parser.add_argument("--since", help="only entries from this time on (ISO date or time)")
    parser.add_argument("--limit", type=int, default=50, help="the newest N entries (50)")
    parser.add_argument("--verify", action="store_true",
                        help="check the log's hash chain first (fails if it was changed)")


def _runs_arguments(parser: argparse.ArgumentParser, surface: Surface) -> None:
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--status", help="only runs with this status")


def _show_arguments(parser: argparse.ArgumentParser, surface: Surface) -> None:
    parser.add_argument("run_id", metavar="RUN_ID")


def _traces_arguments(parser: argparse.ArgumentParser, surface: Surface) -> None:
    parser.add_argument("--run", dest="run_id", help="one run's trace, in tree order")
    parser.add_argument("--kind", help="only spans of this kind (node, llm, tool, ...)")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--offset", type=int, default=0, help="skip this many spans first")
    parser.add_argument("--cursor", help="the page after the one that printed this cursor")


def _usage_arguments(parser: argparse.ArgumentParser, surface: Surface) -> None:
    parser.add_argument("--by", default="model",
                        help="comma-separated: model, provider, run, workflow, node, agent, day, "
                        "resource")
    parser.add_argument("--since", help="ISO date or time")
    parser.add_argument("--price-as", help="price every call as this model")


def _fork_arguments(parser: argparse.ArgumentParser, surface: Surface) -> None:
    value = "JSON" if surface == "cli" else "JSON|{var}"
    parser.add_argument("run_id", metavar="RUN_ID", help="the run to fork")
    parser.add_argument("--at", required=True, metavar="NODE",
                        help="the node path to fork at: a node id, loop[3], loop[3]/node")
    parser.add_argument("--output-json", dest="output", metavar=value,
                        help="the fork node's output instead of running it (JSON)")
    parser.add_argument("--state-json", dest="state", metavar=value,
                        help="state values the fork node sees (a JSON object)")
    _edit_options(parser, surface, "an edited workflow ({where}); changed nodes re-run too")


def _diff_arguments(parser: argparse.ArgumentParser, surface: Surface) -> None:
    parser.add_argument("run_a", metavar="RUN_A")
    parser.add_argument("run_b", metavar="RUN_B")
    parser.add_argument("--changed", action="store_true", help="only the nodes that differ")


def _replay_arguments(parser: argparse.ArgumentParser, surface: Surface) -> None:
    parser.add_argument("run_id", metavar="RUN_ID", help="the run to replay")
    parser.add_argument("--cassette", metavar="FILE",
                        help="answer model calls from this cassette (default: the run's own "
                        "recorded responses)")


# ---- calls ---------------------------------------------------------------------------------
def collect_inputs(args: argparse.Namespace, values: Values,
                   base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run inputs ``--inputs`` (else ``base``) and ``--input KEY=VALUE`` give."""
    from fm_lab.spec.errors import DocumentError
    from fm_lab.spec.io import load_json

    inputs: dict[str, Any] = dict(base or {})
    if args.inputs is not None:
        option = getattr(args, "inputs_option", None) or "--inputs"
        loaded = values.json(args.inputs, option)
        if not isinstance(loaded, dict):
            raise CommandUsageError(
                f"{option} must be a JSON object (or a dict variable), got "
                f"{type(loaded).__name__}")
        inputs = dict(loaded)
    for item in args.input:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CommandUsageError(f"--input takes KEY=VALUE, got {item!r}")
        try:
            inputs[key] = load_json(raw)
        except DocumentError as exc:
            if exc.issues[0].code != "json":
                raise CommandUsageError(f"--input {key}: {exc.problem}") from None
            inputs[key] = raw
    return inputs


def start_run(workflow: Workflow | Path, args: argparse.Namespace, values: Values,
              store: RunStore | None) -> Any:
    """Run ``workflow`` with what :func:`add_run_options` parsed."""
    from fm_lab.engine.api import run

    return run(workflow, collect_inputs(args, values), run_id=args.run_id, cache=args.cache,
               store=store, policy=args.policy, executor=getattr(args, "executor", None))


def _run(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    found = values.workflow(args.workflow)
    if isinstance(found, Path) and not found.exists() and found.suffix not in (
            ".yaml", ".yml", ".json"):
        return _run_stored(args, values, store)
    return start_run(found, args, values, store)


def _run_stored(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    """Run a stored workflow: ``triage`` (its newest version) or ``triage@3``; one another
    user saved runs ``restricted`` unless ``--policy`` says otherwise (as a subflow would)."""
    from fm_lab.engine.bodies import resolve_workflow, stored_policy
    from fm_lab.store.default import default_store

    chosen = store or default_store()
    try:
        workflow = resolve_workflow(args.workflow, chosen)
    except FileNotFoundError as exc:
        raise CommandUsageError(
            f"{args.workflow!r} is neither a workflow file nor a stored workflow: {exc}"
        ) from None
    if args.policy is None:
        args.policy = stored_policy(args.workflow, chosen)
    return start_run(workflow, args, values, chosen)


def _edited_inputs(args: argparse.Namespace, values: Values, store: RunStore | None
                   ) -> dict[str, Any] | None:
    """The inputs ``--inputs``/``--input`` give a run made from ``args.run_id`` (None: its
    own); ``--input`` alone changes some of that run's inputs."""
    from fm_lab.store.default import default_store

    if args.inputs is None and not args.input:
        return None
    base = None
    if args.inputs is None:
        base = (store or default_store()).load_run(args.run_id).inputs
    return collect_inputs(args, values, base)


def _rerun(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    from fm_lab.engine.api import rerun

    inputs = _edited_inputs(args, values, store)
    workflow = values.workflow(args.workflow) if args.workflow else None
    try:
        return rerun(args.run_id, *args.nodes, workflow=workflow, inputs=inputs, store=store,
                     policy=args.policy)
    except KeyError as exc:  # a node the workflow does not have
        raise CommandUsageError(str(exc.args[0])) from None


def _resume(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    from fm_lab.engine.api import resume

    data = None if args.data is None else values.json(args.data, "--data")
    return resume(args.run_id, data, label=args.label, node=args.node, path_id=args.path_id,
                  store=store, force=args.force, wait_s=args.wait, policy=args.policy)


def _pending(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    from fm_lab.engine.api import pending

    return pending(args.run_id, store=store, mine=args.mine)


def _audit(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    from fm_lab.engine.admin import audit

    return audit(args.run_id, actor=args.actor, action=args.action, since=args.since,
                 limit=args.limit, verify=args.verify, store=store)


def _runs(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    from fm_lab.engine.api import runs

    return runs(limit=args.limit, status=args.status, store=store)


def _show(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    from fm_lab.engine.api import get_run

    return get_run(args.run_id, store=store)


def _traces(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    from fm_lab.tracing.query import trace, traces

    if args.run_id and not args.kind:
        return trace(args.run_id, store=store)  # the run's tree, with ``depth``
    return traces(run_id=args.run_id, kind=args.kind, limit=args.limit, offset=args.offset,
                  cursor=args.cursor, store=store)


def _usage(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    from fm_lab.tracing.query import usage

    by = [g.strip() for g in args.by.split(",") if g.strip()]
    return usage(by, since=args.since, price_as=args.price_as, store=store)


def _fork(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    from fm_lab.engine.fork import fork

    edits: dict[str, Any] = {}
    if args.output is not None:
        edits["output"] = values.json(args.output, "--output-json")
    if args.state is not None:
        edits["state"] = values.json(args.state, "--state-json")
        if not isinstance(edits["state"], dict):
            raise CommandUsageError("--state-json must be a JSON object")
    if (inputs := _edited_inputs(args, values, store)) is not None:
        edits["inputs"] = inputs
    workflow = values.workflow(args.workflow) if args.workflow else None
    return fork(args.run_id, args.at, workflow=workflow, store=store, policy=args.policy,
                **edits)


def _diff(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    from fm_lab.engine.diff import diff

    return diff(args.run_a, args.run_b, store=store, changed_only=args.changed)


def _replay(args: argparse.Namespace, values: Values, store: RunStore | None) -> Any:
    from fm_lab.engine.replay import replay

    return replay(args.run_id, store=store, cassette_path=args.cassette)


@dataclass(frozen=True)
class Command:
    """One shared command: its help, its arguments and the call it makes."""

    help: str
    arguments: Callable[[argparse.ArgumentParser, Surface], None]
    call: Callable[[argparse.Namespace, Values, RunStore | None], Any]


COMMANDS: dict[str, Command] = {
    "run": Command("run a workflow", _run_arguments, _run),
    "rerun": Command("run again like a notebook cell: recompute NODEs (and what depends on "
                     "them, or on what --workflow/--inputs change), reuse every other result",
                     _rerun_arguments, _rerun),
    "resume": Command("continue a stopped or failed run, or resume a suspended path with data",
                      _resume_arguments, _resume),
    "pending": Command("list suspensions waiting for data", _pending_arguments, _pending),
    "runs": Command("list recent runs", _runs_arguments, _runs),
    "show": Command("show one run and its nodes", _show_arguments, _show),
    "traces": Command("list spans (one run's trace with --run)", _traces_arguments, _traces),
    "usage": Command("tokens and cost of model calls", _usage_arguments, _usage),
    "audit": Command("who did what: the audit log, oldest first", _audit_arguments, _audit),
    "fork": Command("a new run from node --at of RUN_ID with an edited output, state, inputs "
                    "or workflow, reusing every result the edit cannot reach",
                    _fork_arguments, _fork),
    "diff": Command("two runs side by side, node by node: status, output diff, duration, "
                    "tokens, cost, reused or re-run", _diff_arguments, _diff),
    "replay": Command("run a stored run again offline, model calls answered from its "
                      "recorded responses; report every node that differs",
                      _replay_arguments, _replay),
}


def add_commands(sub: argparse._SubParsersAction[Any], surface: Surface
                 ) -> dict[str, argparse.ArgumentParser]:
    """Add every shared command to ``sub``; returns their parsers (to add CLI options to)."""
    parsers = {}
    for name, command in COMMANDS.items():
        parser = sub.add_parser(name, help=command.help, description=command.help)
        command.arguments(parser, surface)
        parsers[name] = parser
    return parsers


def execute(args: argparse.Namespace, values: Values, store: RunStore | None = None) -> Any:
    """Make the call of the shared command ``args.command``: a Run or a DataFrame."""
    return COMMANDS[args.command].call(args, values, store)


def grammar(parser: argparse.ArgumentParser) -> dict[str, set[str]]:
    """Each subcommand's options and positional names, e.g. ``{"show": {"run_id", "-h"}}``
    (what tests compare between the CLI and the magic)."""
    found: dict[str, set[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = {s for a in sub._actions for s in (a.option_strings or [a.dest])}
    found[""] = {s for a in parser._actions for s in a.option_strings}
    return found
