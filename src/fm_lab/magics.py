"""IPython magics: ``%%flow`` defines a workflow from the YAML in a cell; ``%flow ...`` runs
the commands the ``fm-lab`` CLI has (run, rerun, resume, pending, runs, show, traces, usage),
parsed by the same definitions (:mod:`fm_lab.commands`), and returns Run objects or DataFrames.

>>> %load_ext fm_lab                                                    # doctest: +SKIP
"""

from __future__ import annotations

import shlex
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.display import display

from fm_lab.commands import (
    CommandUsageError,
    HelpShown,
    RaisingParser,
    add_commands,
    add_run_options,
    add_store_option,
    execute,
    parse_json,
    start_run,
)
from fm_lab.expansion import Bound, ExpansionError, expand_words
from fm_lab.spec.errors import WorkflowValidationError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping
    from types import FrameType

    from IPython.core.interactiveshell import InteractiveShell

    from fm_lab.spec.models import Workflow
    from fm_lab.store.base import RunStore

_VALUES = """Values: $name, $name.attr and {expression} are expanded as in IPython's other magics
($$ is a literal $, {{ }} literal braces), word by word after the line is split (quote a
value with spaces; an expanded value stays one word). A word that is a JSON object or array
('{"approved": true}') is taken literally. An option taking JSON (--inputs, --data) given
exactly as {expression} or $name gets the object itself (a dict), not its text:
--inputs {params}. A workflow (run NAME, rerun --workflow NAME) is a variable bound by
%%flow, else a file."""


class FlowUsageError(UsageError, CommandUsageError):
    """A ``%flow``/``%%flow`` line that cannot be understood (the message says what is wrong
    and how to write it); IPython shows it without a traceback."""


NOTEBOOK_COMMANDS = {
    "save": "write a %%flow canvas's graph back into its cell as YAML, or to a file (--to)",
}
"""``%flow`` commands a terminal has no use for (there is no canvas there)."""


@cache
def line_parser() -> RaisingParser:
    """The parser of ``%flow`` lines: the CLI's shared commands (:mod:`fm_lab.commands`)."""
    parser = RaisingParser(prog="%flow", description="Run and inspect fm_lab workflows.",
                           epilog=_VALUES)
    add_store_option(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in add_commands(sub, "notebook").values():
        command.epilog = _VALUES
    save = sub.add_parser("save", help=NOTEBOOK_COMMANDS["save"],
                          description=NOTEBOOK_COMMANDS["save"])
    save.add_argument("name", help="the %%flow name (or any Workflow variable with --to)")
    save.add_argument("--to", metavar="FILE", help="write YAML (JSON for .json) to FILE instead")
    return parser


@cache
def cell_parser() -> RaisingParser:
    """The parser of a ``%%flow`` cell's first line: ``run``'s options and the cell's own."""
    parser = RaisingParser(prog="%%flow", epilog=_VALUES,
                           description="Define a workflow from the YAML (or JSON) in this cell.")
    parser.add_argument("name", nargs="?", help="variable to bind the workflow to (default: "
                        "its id)")
    parser.add_argument("--run", action="store_true", help="run it after defining it")
    add_run_options(parser, "notebook")
    parser.add_argument("--no-widget", action="store_true", help="do not show the graph editor")
    parser.add_argument("--discard-edits", action="store_true",
                        help="start from the cell's text even if its canvas holds unsaved edits")
    add_store_option(parser)
    return parser


class NotebookValues:
    """The notebook's :class:`fm_lab.commands.Values`: workflows and JSON values may also be
    variables."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self.namespace = namespace

    def workflow(self, reference: str) -> Workflow | Path:
        from fm_lab.spec.models import Workflow

        value = reference.value if isinstance(reference, Bound) else self.namespace.get(
            reference)
        if isinstance(value, Workflow):
            return value
        if isinstance(value, dict):
            return Workflow.from_dict(value)
        if reference.isidentifier() and not Path(reference).exists():
            raise CommandUsageError(
                f"no workflow {reference!r}: not a Workflow variable in the notebook, not a file")
        return Path(reference)

    def json(self, raw: str, option: str) -> Any:
        if isinstance(raw, Bound):
            return raw.value
        try:
            return parse_json(raw, option)
        except CommandUsageError as exc:
            raise CommandUsageError(f"{exc} (not JSON and not {{variable}}: {raw[:80]!r})"
                                    ) from None


@magics_class
class FlowMagics(Magics):
    """``%%flow`` and ``%flow``; widgets shown by ``%%flow`` are replaced when the cell re-runs."""

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self.widgets: dict[str, Any] = {}

    # ---- %%flow ---------------------------------------------------------------------------
    @cell_magic
    @no_var_expand  # expanded word by word here (see _VALUES)
    def flow(self, line: str, cell: str) -> Any:
        """``%%flow [NAME] [--run] [--inputs JSON|{var}] [--input K=V] [--cache] [--run-id ID]
        [--no-widget] [--store FILE]``: define a workflow from the YAML (or JSON) in this cell
        and bind it to ``NAME`` (default: its id); ``--run`` runs it too (the run is bound to
        ``NAME_run``). ``%%flow --help`` lists the options; see ``%flow?`` for values.

        The canvas edits the bound workflow in place; ``%flow save NAME`` writes it back into
        this cell. Re-running the cell while the canvas holds unsaved edits keeps them when
        the cell's text is unchanged, and says so; ``--discard-edits`` starts from the text."""
        from fm_lab.nodes.registry import default_registry
        from fm_lab.spec.models import Workflow

        namespace = self._namespace()
        try:
            args = _parse(cell_parser(), line, namespace)
        except HelpShown:
            return None
        try:
            workflow = Workflow.from_yaml(cell)
        except WorkflowValidationError as exc:
            display(exc)  # every problem at once, as a table
            return None
        name = args.name or _identifier(workflow.id)
        assert self.shell is not None
        written = workflow
        workflow = self._unsaved_edits(name, workflow, cell, args.discard_edits)
        self.shell.user_ns[name] = workflow
        issues = workflow.issues(default_registry())
        if not args.no_widget:
            self._show(name, workflow, written, cell, _cell_line(line))
        if issues:
            display(WorkflowValidationError(issues))
            return None
        if args.run:
            run = _usage_errors(start_run, workflow, args, NotebookValues(namespace),
                                _store(args))
            self.shell.user_ns[f"{name}_run"] = run
            return run
        return None if not args.no_widget else workflow

    def _unsaved_edits(self, name: str, workflow: Workflow, cell: str, discard: bool
                       ) -> Workflow:
        """The workflow the cell binds: the canvas's unsaved edits when the cell's text did
        not change since the canvas was made (said, never silent), else the text's."""
        old = self.widgets.get(name)
        if old is None or not old.has_unsaved_edits:
            return workflow
        assert self.shell is not None
        if discard:
            print(f"{name}: discarded the canvas's unsaved edits; the cell's text is used")
            return workflow
        if old.source_text == cell:
            print(f"{name}: kept the canvas's unsaved edits (the cell's text is older). "
                  f"`%flow save {name}` writes them into this cell; "
                  f"`%%flow {name} --discard-edits` starts from the text.")
            return old.workflow  # type: ignore[no-any-return]
        self.shell.user_ns[f"{name}_unsaved"] = old.workflow
        print(f"{name}: the cell's new text replaced the canvas's unsaved edits; they are "
              f"kept in `{name}_unsaved` (`%flow save {name}_unsaved --to FILE` keeps them)")
        return workflow

    def _show(self, name: str, workflow: Workflow, written: Workflow, cell: str,
              line: str) -> None:
        """Show the graph editor (replacing the one an earlier run of the cell showed)."""
        old = self.widgets.pop(name, None)
        if old is not None:
            old.close()
        from fm_lab.widget import BundleMissingError, GraphWidget

        try:
            widget = GraphWidget(workflow, cell_line=line)
        except BundleMissingError:  # a source checkout whose JS was never built
            display(workflow)
            return
        widget.source_text = cell
        widget.mark_saved(written)
        self.widgets[name] = widget
        display(widget)

    def _save(self, name: str, to: str | None, namespace: Mapping[str, Any]) -> None:
        """``%flow save NAME [--to FILE]``."""
        if to is not None:
            from fm_lab.spec.models import Workflow

            workflow = namespace.get(name)
            if not isinstance(workflow, Workflow):
                raise FlowUsageError(f"no workflow {name!r} in the notebook")
            path = Path(to).expanduser()
            text = workflow.to_json() if path.suffix == ".json" else workflow.to_yaml()
            path.write_text(text, encoding="utf-8")
            print(f"{name}: wrote {len(workflow.nodes)} nodes to {path}")
            return
        widget = self.widgets.get(name)
        if widget is None:
            raise FlowUsageError(f"no %%flow canvas named {name!r}; write it to a file with "
                                 f"`%flow save {name} --to FILE`")
        widget.write_cell()
        print(f"{name}: writing the canvas's graph ({len(widget.workflow.nodes)} nodes) "
              "into its %%flow cell")

    # ---- %flow ----------------------------------------------------------------------------
    @line_magic("flow")  # type: ignore[arg-type]
    @no_var_expand  # expanded word by word here (see _VALUES)
    def flow_line(self, line: str) -> Any:
        """``%flow COMMAND ...``: the ``fm-lab`` commands in the notebook, returning objects.

        ``%flow run NAME|FILE [--inputs JSON|{var}] [--input K=V] [--cache] [--run-id ID]``,
        ``%flow rerun RUN_ID [NODE ...] [--workflow NAME|FILE] [--inputs ...]``,
        ``%flow resume RUN_ID [--data JSON|{var}] [--label L|--node N|--path P]``,
        ``%flow pending [RUN_ID]``, ``%flow runs``, ``%flow show RUN_ID``, ``%flow traces``,
        ``%flow usage``, ``%flow save NAME [--to FILE]``,
        ``%flow fork RUN_ID --at NODE [--output-json JSON|{var}] [--state-json ...]``,
        ``%flow diff RUN_A RUN_B [--changed]``, ``%flow replay RUN_ID``; ``%flow --help`` and
        ``%flow COMMAND --help`` list every option.

        Bad lines raise :class:`FlowUsageError` (the problem, then the usage).
        """
        namespace = self._namespace()
        try:
            args = _parse(line_parser(), line, namespace)
        except HelpShown:
            return None
        if args.command == "save":
            return self._save(args.name, args.to, namespace)
        return _usage_errors(execute, args, NotebookValues(namespace), _store(args))

    def _namespace(self) -> dict[str, Any]:
        """The user's namespace and, like IPython's expansion, the locals of the code that
        called the magic (``get_ipython().run_line_magic`` inside a function)."""
        assert self.shell is not None
        namespace = dict(self.shell.user_ns)
        frame: FrameType | None = sys._getframe(1)
        while frame is not None and frame.f_code.co_name not in ("run_line_magic",
                                                                  "run_cell_magic"):
            frame = frame.f_back
        if frame is not None and frame.f_back is not None:
            namespace.update(frame.f_back.f_locals)
        return namespace


for _magic in (FlowMagics.flow_line, FlowMagics.flow):  # %flow? says what --help says
    cast(Any, _magic).__doc__ = f"{_magic.__doc__}\n{_VALUES}"


def _parse(parser: RaisingParser, line: str, namespace: Mapping[str, Any]
           ) -> argparse.Namespace:
    """``line`` expanded and parsed; :class:`HelpShown` after ``--help``."""
    try:
        return parser.parse_args(expand_words(line, namespace))
    except (CommandUsageError, ExpansionError) as exc:
        raise FlowUsageError(str(exc)) from None


def _usage_errors(call: Any, *args: Any) -> Any:
    """``call(*args)``, with a usage error (a bad value) raised as :class:`FlowUsageError`."""
    try:
        return call(*args)
    except CommandUsageError as exc:
        if isinstance(exc, FlowUsageError):
            raise
        raise FlowUsageError(str(exc)) from None


def _store(args: argparse.Namespace) -> RunStore | None:
    """``--store FILE`` (without making it the notebook's default store), else None."""
    if not args.store:
        return None
    from fm_lab.store.urls import open_store

    return open_store(args.store)


def _cell_line(line: str) -> str:
    """The ``%%flow`` line a saved cell starts with (one-off options left out)."""
    words = [w for w in shlex.split(line) if w != "--discard-edits"]
    return " ".join(["%%flow", *map(shlex.quote, words)])


def _identifier(text: str) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in text)
    return name if name.isidentifier() else f"wf_{name}"


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext fm_lab``."""
    from fm_lab.llm.client import preload

    ipython.register_magics(FlowMagics)
    preload()
