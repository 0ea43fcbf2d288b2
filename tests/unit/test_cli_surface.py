"""The `posting` CLI's public surface: every verb and subverb, every option string, default, dest, choice
and help text, and the help each verb prints, as snapshots checked in under tests/unit/snapshots. Scripts call
these verbs and flags, so a change to them is a change to a contract: it shows here first.

An intended change (a new verb or flag) rewrites the snapshots, and the diff shows what changed:

    .venv/bin/python -m tests.unit.test_cli_surface
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posting_cli import cli

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
SURFACE = SNAPSHOTS / "cli_surface.json"
HELP = SNAPSHOTS / "cli_help.txt"
# Help is laid out for the terminal's width: the snapshot fixes one.
COLUMNS = "100"
# argparse lays help out a little differently from one Python minor version to the next.
HELP_PYTHON = "3.13"


def value(default: Any) -> Any:
    """A default as JSON can hold it: a handler by its name."""
    if callable(default):
        return f"<{default.__name__}>"
    return default


def known(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields that are set (a field left out is None)."""
    return {name: field for name, field in fields.items() if field is not None}


def action_surface(action: argparse.Action) -> dict[str, Any]:
    surface = known(
        {
            "option_strings": action.option_strings,
            "dest": action.dest,
            "action": type(action).__name__,
            "default": value(action.default),
            "const": value(action.const),
            "type": getattr(action.type, "__name__", action.type),
            "choices": None if isinstance(action, argparse._SubParsersAction) else action.choices,
            "nargs": action.nargs,
            "required": action.required,
            "metavar": action.metavar,
            "help": action.help,
        }
    )
    if isinstance(action, argparse._SubParsersAction):
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        surface["commands"] = {
            name: {"help": helps.get(name), **parser_surface(parser)} for name, parser in action.choices.items()
        }
    return surface


def parser_surface(parser: argparse.ArgumentParser) -> dict[str, Any]:
    return known(
        {
            "prog": parser.prog,
            "usage": parser.usage,
            "description": parser.description,
            "epilog": parser.epilog,
            "formatter_class": parser.formatter_class.__name__,
            "defaults": {name: value(default) for name, default in parser._defaults.items()},
            "groups": [
                known(
                    {
                        "title": group.title,
                        "description": group.description,
                        "actions": [action_surface(action) for action in group._group_actions],
                    }
                )
                for group in parser._action_groups
            ],
        }
    )


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every sub-parser under it, depth first, in the order help lists them."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def help_texts(parser: argparse.ArgumentParser) -> str:
    """What `posting [VERB [SUBVERB]] --help` prints, for every verb and subverb."""
    return "".join(f"$ {each.prog} --help\n{each.format_help()}\n" for each in parsers(parser))


def current_surface() -> str:
    return json.dumps(parser_surface(cli._parser()), indent=1) + "\n"


def test_every_verb_flag_default_and_choice_is_as_the_snapshot_records():
    assert json.loads(current_surface()) == json.loads(SURFACE.read_text())


@pytest.mark.skipif(
    f"{sys.version_info.major}.{sys.version_info.minor}" != HELP_PYTHON,
    reason=f"the help snapshot is laid out by Python {HELP_PYTHON}'s argparse",
)
def test_every_verb_prints_the_help_the_snapshot_records(monkeypatch):
    monkeypatch.setenv("COLUMNS", COLUMNS)

    assert help_texts(cli._parser()) == HELP.read_text()


def test_the_snapshot_walks_every_verb_and_subverb():
    progs = [each.prog for each in parsers(cli._parser())]

    assert progs == [
        line.removeprefix("$ ").removesuffix(" --help")
        for line in HELP.read_text().splitlines()
        if line.startswith("$ posting")
    ]
    assert {"posting local run", "posting accounts freeze", "posting period close", "posting dlq redrive"} <= set(progs)


def test_no_verb_prints_the_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert capsys.readouterr().out.startswith("usage: posting")


def test_a_group_without_its_subverb_prints_the_help_and_exits_2(capsys):
    assert cli.main(["accounts"]) == 2
    assert capsys.readouterr().out.startswith("usage: posting")


def test_an_unknown_flag_exits_2():
    with pytest.raises(SystemExit) as exit_:
        cli.main(["balance", "acc-1", "--no-such-flag"])

    assert exit_.value.code == 2


if __name__ == "__main__":
    SNAPSHOTS.mkdir(exist_ok=True)
    SURFACE.write_text(current_surface())
    os.environ["COLUMNS"] = COLUMNS
    HELP.write_text(help_texts(cli._parser()))
    print(f"wrote {SURFACE} and {HELP}")
