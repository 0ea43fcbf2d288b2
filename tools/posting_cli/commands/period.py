"""posting period close|show: close the books through an instant, and the closes recorded.

posting period close THROUGH [--note TEXT]
posting period show
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from posting_cli.commands import options, terminal
from posting_cli.commands.terminal import CliError


def register(verbs: Any) -> None:
    period = verbs.add_parser("period", help="close the books through an instant").add_subparsers(
        title="period commands"
    )
    close = options.operator(
        "close",
        cmd_period_close,
        "close the books through an instant: later requests dated at or before it are PERIOD_CLOSED",
        period,
    )
    close.add_argument("through", help="ISO 8601 instant (inclusive); a date alone means the end of that day, UTC")
    close.add_argument("--note", default="", help="why, as recorded with the close and in its event")
    options.operator("show", cmd_period_show, "the close in force and every close recorded", period)


def cmd_period_close(args: argparse.Namespace) -> int:
    from posting.domain.periods import PeriodCloseRefused
    from posting_cli import ledger_operations

    try:
        closed = ledger_operations.close_period(options.target(args), through_instant(args.through), note=args.note)
    except PeriodCloseRefused as refused:
        raise CliError(str(refused)) from refused
    terminal.console.print(
        f"closed through {closed.through} (revision {closed.revision}, by {closed.closed_by}); in force from "
        f"{closed.in_force_from}: from then on a request dated at or before it is PERIOD_CLOSED"
    )
    return 0


def cmd_period_show(args: argparse.Namespace) -> int:
    from posting_cli import ledger_operations

    current, closes = ledger_operations.period(options.target(args))
    if current.through is None:
        terminal.console.print("the books are open: no period was ever closed")
        return 0
    table = Table(title="period closes")
    for column in ("revision", "through", "recorded_at", "in force from", "by"):
        table.add_column(column)
    for close in closes:
        table.add_row(str(close.revision), close.through, close.closed_at, close.in_force_from, close.closed_by)
    terminal.console.print(table)
    return 0


def through_instant(text: str) -> str:
    """An instant the user typed; a date alone is the last millisecond of that day, UTC."""
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        return options.instant(f"{text}T23:59:59.999Z")
    return options.instant(text)
