"""One grammar for ``fm-lab`` and ``%flow``: the shared commands take the same options."""

from __future__ import annotations

import pytest

from fm_lab.cli import build_parser
from fm_lab.commands import (
    COMMANDS,
    PRINT_OPTIONS,
    CommandUsageError,
    HelpShown,
    RaisingParser,
    add_commands,
    grammar,
)
from fm_lab.magics import NOTEBOOK_COMMANDS, cell_parser, line_parser


def drift(cli, magic) -> dict[str, set[str]]:
    """Options of a shared command one parser has and the other lacks (print options aside)."""
    found = {}
    for name in [*COMMANDS, ""]:
        differ = (cli[name] - PRINT_OPTIONS) ^ magic[name]
        if differ:
            found[name] = differ
    return found


def test_every_shared_command_takes_the_same_options_in_the_cli_and_the_magic():
    cli, magic = grammar(build_parser()), grammar(line_parser())
    assert set(COMMANDS) <= set(cli) and set(magic) == {*COMMANDS, *NOTEBOOK_COMMANDS, ""}
    assert drift(cli, magic) == {}
    assert {"--workflow", "run_id", "nodes", "--inputs", "--input"} <= magic["rerun"]
    assert not PRINT_OPTIONS & set().union(*magic.values())


def test_an_option_added_to_one_side_only_is_caught():
    cli_parser = build_parser()
    cli_parser._subparsers._group_actions[0].choices["resume"].add_argument("--timeout")
    assert drift(grammar(cli_parser), grammar(line_parser())) == {"resume": {"--timeout"}}


def test_the_flow_cell_takes_the_options_of_run():
    run = grammar(line_parser())["run"] - {"workflow"}
    cell = grammar(cell_parser())[""]
    assert run <= cell
    assert cell - run == {"--run", "--no-widget", "--discard-edits", "--store"}


def _parser() -> RaisingParser:
    parser = RaisingParser(prog="%flow")
    add_commands(parser.add_subparsers(dest="command", required=True,
                                          metavar="COMMAND"), "notebook")
    return parser


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["runs", "--colour", "red"],
         r"^unrecognized arguments: --colour red\nusage: %flow runs \[-h\]"),
        (["runs", "--limit", "x"], r"^argument --limit: invalid int value: 'x'\nusage: %flow runs"),
        (["show"], r"^the following arguments are required: RUN_ID\nusage: %flow show"),
        (["explode"], r"^argument COMMAND: invalid choice: 'explode'"),
    ],
)
def test_a_bad_line_raises_the_problem_and_the_usage_instead_of_exiting(words, message):
    with pytest.raises(CommandUsageError, match=message) as caught:
        _parser().parse_args(words)
    assert len(str(caught.value).splitlines()) == 2


def test_help_is_printed_and_signalled_instead_of_exiting(capsys):
    with pytest.raises(HelpShown):
        _parser().parse_args(["rerun", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: %flow rerun [-h]") and "--workflow NAME|FILE" in out
