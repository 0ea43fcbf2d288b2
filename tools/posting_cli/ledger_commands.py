"""The `posting` verbs of operators' acts on the ledger (an account's lifecycle, the period close) and
of finding a posting by its external reference.

posting accounts freeze|unfreeze|close ACCOUNT [--note TEXT]
posting accounts limit ACCOUNT AMOUNT [--note TEXT]
posting accounts history ACCOUNT
posting period close THROUGH [--note TEXT]
posting period show
posting find --ref REF
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.table import Table

ACT_HELP = {
    "freeze": "freeze an account: nothing more is held or posted on it (holds may still be released)",
    "unfreeze": "open a frozen account again",
    "close": "close an account for good: it must hold nothing posted and nothing pending",
}


def add_verbs(verbs: Any, accounts: Any, operator: Callable[..., argparse.ArgumentParser]) -> None:
    """Register the verbs: `operator(name, handler, help, into)` adds one with --stack/--region."""
    for act, help_text in ACT_HELP.items():
        command = operator(act, cmd_account_act, help_text, accounts)
        command.add_argument("account")
        command.add_argument("--note", default="", help="why, as recorded with the act and in its event")
        command.set_defaults(act=act)
    limit = operator("limit", cmd_account_act, "change an account's overdraft limit (what is pending counts)", accounts)
    limit.add_argument("account")
    limit.add_argument("amount", type=int, help="the new limit, in minor units (0: never below zero)")
    limit.add_argument("--note", default="", help="why, as recorded with the act and in its event")
    limit.set_defaults(act="limit")
    operator("history", cmd_account_history, "every act on an account: who, when, why", accounts).add_argument(
        "account"
    )

    period = verbs.add_parser("period", help="close the books through an instant").add_subparsers(
        title="period commands"
    )
    close = operator(
        "close",
        cmd_period_close,
        "close the books through an instant: later requests dated at or before it are PERIOD_CLOSED",
        period,
    )
    close.add_argument("through", help="ISO 8601 instant (inclusive); a date alone means the end of that day, UTC")
    close.add_argument("--note", default="", help="why, as recorded with the close and in its event")
    operator("show", cmd_period_show, "the close in force and every close recorded", period)

    find = operator("find", cmd_find, "the postings a reference from outside the ledger names, with their state")
    find.add_argument("--ref", required=True, help="the request's external_ref (one Query of the ByExternalRef index)")


def cmd_account_act(args: argparse.Namespace) -> int:
    from posting.domain.accounts import AccountActRefused
    from posting_cli import ledger_operations
    from posting_cli.cli import CliError, _target, console

    try:
        done = ledger_operations.act_on_account(
            _target(args), args.account, args.act, note=args.note, limit=getattr(args, "amount", None)
        )
    except AccountActRefused as refused:
        raise CliError(str(refused)) from refused
    limit = "unlimited" if done.overdraft_limit is None else str(done.overdraft_limit)
    console.print(
        f"{done.account_id}: {done.status}, limit {limit} (revision {done.revision}, by {done.by}); "
        "its event is published within a minute"
    )
    return 0


def cmd_account_history(args: argparse.Namespace) -> int:
    from posting_cli import ledger_operations
    from posting_cli.cli import _target, console

    table = Table(title=f"{args.account}: acts")
    for column in ("revision", "recorded_at", "act", "status", "limit", "by", "note"):
        table.add_column(column)
    for act in ledger_operations.account_history(_target(args), args.account):
        limit = act.overdraft_limit
        table.add_row(
            str(act.revision),
            act.recorded_at,
            act.act,
            str(act.status),
            "unlimited" if limit is None else str(limit),
            act.by,
            act.note,
        )
    console.print(table)
    return 0


def cmd_period_close(args: argparse.Namespace) -> int:
    from posting.domain.periods import PeriodCloseRefused
    from posting_cli import ledger_operations
    from posting_cli.cli import CliError, _target, console

    try:
        closed = ledger_operations.close_period(_target(args), through_instant(args.through), note=args.note)
    except PeriodCloseRefused as refused:
        raise CliError(str(refused)) from refused
    console.print(
        f"closed through {closed.through} (revision {closed.revision}, by {closed.closed_by}); in force from "
        f"{closed.in_force_from}: from then on a request dated at or before it is PERIOD_CLOSED"
    )
    return 0


def cmd_period_show(args: argparse.Namespace) -> int:
    from posting_cli import ledger_operations
    from posting_cli.cli import _target, console

    current, closes = ledger_operations.period(_target(args))
    if current.through is None:
        console.print("the books are open: no period was ever closed")
        return 0
    table = Table(title="period closes")
    for column in ("revision", "through", "recorded_at", "in force from", "by"):
        table.add_column(column)
    for close in closes:
        table.add_row(str(close.revision), close.through, close.closed_at, close.in_force_from, close.closed_by)
    console.print(table)
    return 0


def cmd_find(args: argparse.Namespace) -> int:
    import json

    from posting_cli import ledger_operations
    from posting_cli.cli import _target, console

    found = ledger_operations.find_by_ref(_target(args), args.ref)
    for decision in found:
        console.print_json(json.dumps(ledger_operations.posting_state(decision)))
    if not found:
        console.print(f"no posting carries external_ref {args.ref}")
        return 1
    return 0


def through_instant(text: str) -> str:
    """An instant the user typed; a date alone is the last millisecond of that day, UTC."""
    from posting_cli.cli import _instant

    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        return _instant(f"{text}T23:59:59.999Z")
    return _instant(text)
