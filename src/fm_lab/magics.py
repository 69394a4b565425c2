"""IPython magics: ``%%flow`` defines a workflow from the YAML in a cell; ``%flow ...`` mirrors
the CLI (run, rerun, resume, pending, runs, show, traces, usage) and returns DataFrames or
Run objects.

>>> %load_ext fm_lab                                                    # doctest: +SKIP
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from fm_lab.spec.errors import WorkflowValidationError

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from fm_lab.engine.run import Run
    from fm_lab.spec.models import Workflow

_USAGE = """%flow save NAME [--to FILE]
%flow run NAME|FILE [--inputs JSON|{var}] [--cache]
%flow rerun RUN_ID [NODE ...] [--inputs JSON|{var}]
%flow resume RUN_ID [--data JSON|{var}] [--label L] [--node N] [--path P]
%flow pending [RUN_ID]
%flow runs [--limit N] [--status S]
%flow show RUN_ID
%flow traces [--run RUN_ID] [--kind K] [--limit N]
%flow usage [--by model,...] [--price-as MODEL]"""


class FlowUsageError(ValueError):
    """A ``%flow`` line that cannot be understood (the message says how to write it)."""


@magics_class
class FlowMagics(Magics):
    """``%%flow`` and ``%flow``; widgets shown by ``%%flow`` are replaced when the cell re-runs."""

    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self.widgets: dict[str, Any] = {}

    # ---- %%flow ---------------------------------------------------------------------------
    @magic_arguments()
    @argument("name", nargs="?", help="Variable to bind the workflow to (default: its id).")
    @argument("--run", action="store_true", help="Run it after defining it.")
    @argument("--inputs", default=None, help="Run inputs: JSON or {variable}.")
    @argument("--cache", action="store_true", help="Reuse unchanged node results.")
    @argument("--no-widget", action="store_true", help="Do not show the graph editor.")
    @argument("--discard-edits", action="store_true",
              help="Start from the cell's text even if the canvas holds unsaved edits.")
    @cell_magic
    @no_var_expand  # {variable} means a notebook variable here, not IPython's text expansion
    def flow(self, line: str, cell: str) -> Any:
        """Define a workflow from the YAML (or JSON) in this cell and bind it to ``name``.

        The canvas edits that workflow in place. Re-running the cell while the canvas holds
        edits not yet written back (``%flow save NAME``) keeps them when the cell's text is
        unchanged, and says so; ``--discard-edits`` starts from the text instead."""
        from fm_lab.nodes.registry import default_registry
        from fm_lab.spec.models import Workflow

        args = parse_argstring(self.flow, line)
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
            inputs = self._value(args.inputs) if args.inputs else {}
            run = _run(workflow, inputs, cache=args.cache)
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

    # ---- %flow ----------------------------------------------------------------------------
    @line_magic("flow")  # type: ignore[arg-type]
    @no_var_expand
    def flow_line(self, line: str) -> Any:
        """``%flow run|rerun|resume|pending|runs|show|traces|usage ...`` (see ``%flow?``)."""
        words = shlex.split(line)
        if not words or words[0] not in _COMMANDS:
            raise FlowUsageError(f"usage:\n{_USAGE}")
        command, rest = words[0], words[1:]
        return _COMMANDS[command](self, rest)

    def _value(self, text: str) -> Any:
        """``{variable}`` from the notebook's namespace, else JSON."""
        assert self.shell is not None
        if text.startswith("{") and text.endswith("}") and text[1:-1].isidentifier():
            name = text[1:-1]
            if name not in self.shell.user_ns:
                raise FlowUsageError(f"no variable {name!r} in the notebook")
            return self.shell.user_ns[name]
        from fm_lab.spec.errors import DocumentError
        from fm_lab.spec.io import load_json

        try:
            return load_json(text)  # bounded in size and depth
        except DocumentError as exc:
            raise FlowUsageError(
                f"not JSON and not {{variable}}: {text[:80]!r} ({exc.problem})") from None

    def _workflow(self, reference: str) -> Workflow | str:
        """A workflow bound in the notebook by ``%%flow`` (or assigned), else a file path."""
        from fm_lab.spec.models import Workflow

        assert self.shell is not None
        value = self.shell.user_ns.get(reference)
        return value if isinstance(value, Workflow) else reference


def _options(words: list[str], flags: dict[str, bool]) -> tuple[list[str], dict[str, Any]]:
    """Split ``--name value`` options (``flags`` take no value) from positional words."""
    positional: list[str] = []
    options: dict[str, Any] = {}
    it = iter(words)
    for word in it:
        if not word.startswith("--"):
            positional.append(word)
            continue
        key = word[2:].replace("-", "_")
        if key not in flags:
            raise FlowUsageError(f"unknown option {word}; usage:\n{_USAGE}")
        if flags[key]:
            options[key] = True
            continue
        value = next(it, None)
        if value is None:
            raise FlowUsageError(f"{word} needs a value")
        options[key] = value
    return positional, options


def _one(positional: list[str], what: str) -> str:
    if len(positional) != 1:
        raise FlowUsageError(f"give one {what}; usage:\n{_USAGE}")
    return positional[0]


def _run(workflow: Any, inputs: dict[str, Any], cache: bool = False) -> Run:
    import fm_lab

    return fm_lab.run(workflow, inputs, cache=cache)


def _cmd_run(magics: FlowMagics, words: list[str]) -> Run:
    positional, opts = _options(words, {"inputs": False, "cache": True})
    inputs = magics._value(opts["inputs"]) if "inputs" in opts else {}
    return _run(magics._workflow(_one(positional, "workflow")), inputs, opts.get("cache", False))


def _cmd_rerun(magics: FlowMagics, words: list[str]) -> Run:
    import fm_lab

    positional, opts = _options(words, {"inputs": False})
    if not positional:
        raise FlowUsageError(f"give a run id; usage:\n{_USAGE}")
    inputs = magics._value(opts["inputs"]) if "inputs" in opts else None
    return fm_lab.rerun(positional[0], *positional[1:], inputs=inputs)


def _cmd_resume(magics: FlowMagics, words: list[str]) -> Run:
    import fm_lab

    positional, opts = _options(words, {"data": False, "label": False, "node": False,
                                        "path": False})
    data = magics._value(opts["data"]) if "data" in opts else None
    return fm_lab.resume(_one(positional, "run id"), data, label=opts.get("label"),
                         node=opts.get("node"), path_id=opts.get("path"))


def _cmd_pending(magics: FlowMagics, words: list[str]) -> Any:
    import fm_lab

    positional, _ = _options(words, {})
    return fm_lab.pending(positional[0] if positional else None)


def _cmd_runs(magics: FlowMagics, words: list[str]) -> Any:
    import fm_lab

    _, opts = _options(words, {"limit": False, "status": False})
    return fm_lab.runs(limit=int(opts.get("limit", 100)), status=opts.get("status"))


def _cmd_show(magics: FlowMagics, words: list[str]) -> Run:
    import fm_lab

    positional, _ = _options(words, {})
    return fm_lab.get_run(_one(positional, "run id"))


def _cmd_traces(magics: FlowMagics, words: list[str]) -> Any:
    import fm_lab

    _, opts = _options(words, {"run": False, "kind": False, "limit": False})
    if "run" in opts and "kind" not in opts:
        return fm_lab.trace(opts["run"])
    return fm_lab.traces(run_id=opts.get("run"), kind=opts.get("kind"),
                         limit=int(opts.get("limit", 1000)))


def _cmd_usage(magics: FlowMagics, words: list[str]) -> Any:
    import fm_lab

    _, opts = _options(words, {"by": False, "price_as": False})
    by = opts.get("by", "model").split(",")
    return fm_lab.usage(by=by, price_as=opts.get("price_as"))


def _cmd_save(magics: FlowMagics, words: list[str]) -> None:
    positional, opts = _options(words, {"to": False})
    name = _one(positional, "workflow name")
    widget = magics.widgets.get(name)
    if "to" in opts:
        workflow = magics._workflow(name)
        if isinstance(workflow, str):
            raise FlowUsageError(f"no workflow {name!r} in the notebook")
        path = Path(opts["to"]).expanduser()
        text = workflow.to_json() if path.suffix == ".json" else workflow.to_yaml()
        path.write_text(text, encoding="utf-8")
        print(f"{name}: wrote {len(workflow.nodes)} nodes to {path}")
        return
    if widget is None:
        raise FlowUsageError(f"no %%flow canvas named {name!r}; write it to a file with "
                             f"`%flow save {name} --to FILE`")
    widget.write_cell()
    print(f"{name}: writing the canvas's graph ({len(widget.workflow.nodes)} nodes) "
          "into its %%flow cell")


_COMMANDS = {
    "save": _cmd_save,
    "run": _cmd_run,
    "rerun": _cmd_rerun,
    "resume": _cmd_resume,
    "pending": _cmd_pending,
    "runs": _cmd_runs,
    "show": _cmd_show,
    "traces": _cmd_traces,
    "usage": _cmd_usage,
}


def _cell_line(line: str) -> str:
    """The ``%%flow`` line a saved cell starts with (one-off options left out)."""
    words = [w for w in shlex.split(line) if w != "--discard-edits"]
    return " ".join(["%%flow", *map(shlex.quote, words)])


def _identifier(text: str) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in text)
    return name if name.isidentifier() else f"wf_{name}"


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext fm_lab``."""
    ipython.register_magics(FlowMagics)
