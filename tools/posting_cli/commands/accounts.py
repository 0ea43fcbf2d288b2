"""posting accounts: open accounts, and the operators' acts on them (an account's lifecycle and limit).

posting accounts open FILE
posting accounts freeze|unfreeze|close ACCOUNT [--note TEXT]
posting accounts limit ACCOUNT AMOUNT [--note TEXT]
posting accounts history ACCOUNT
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from posting_cli.commands import options, terminal
from posting_cli.commands.terminal import CliError

ACT_HELP = {
    "freeze": "freeze an account: nothing more is held or posted on it (holds may still be released)",
    "unfreeze": "open a frozen account again",
    "close": "close an account for good: it must hold nothing posted and nothing pending",
}


def register(verbs: Any) -> None:
    accounts = verbs.add_parser("accounts", help="open accounts and act on them").add_subparsers(
        title="accounts commands"
    )
    options.operator("open", cmd_accounts_open, "open the accounts in a JSON array file", accounts).add_argument("file")
    for act, help_text in ACT_HELP.items():
        command = options.operator(act, cmd_account_act, help_text, accounts)
        command.add_argument("account")
        command.add_argument("--note", default="", help="why, as recorded with the act and in its event")
        command.set_defaults(act=act)
    limit = options.operator(
        "limit", cmd_account_act, "change an account's overdraft limit (what is pending counts)", accounts
    )
    limit.add_argument("account")
    limit.add_argument("amount", type=int, help="the new limit, in minor units (0: never below zero)")
    limit.add_argument("--note", default="", help="why, as recorded with the act and in its event")
    limit.set_defaults(act="limit")
    options.operator("history", cmd_account_history, "every act on an account: who, when, why", accounts).add_argument(
        "account"
    )


def cmd_accounts_open(args: argparse.Namespace) -> int:
    from posting_cli import operations

    try:
        opened, existing = operations.open_accounts(
            options.target(args), operations.parse_accounts(Path(args.file).read_text())
        )
    except operations.AccountTermsDiffer as error:
        raise CliError(str(error)) from error
    terminal.console.print(
        f"opened {opened} account(s)" + (f"; already open: {', '.join(existing)}" if existing else "")
    )
    return 0


def cmd_account_act(args: argparse.Namespace) -> int:
    from posting.domain.accounts import AccountActRefused
    from posting_cli import ledger_operations

    try:
        done = ledger_operations.act_on_account(
            options.target(args), args.account, args.act, note=args.note, limit=getattr(args, "amount", None)
        )
    except AccountActRefused as refused:
        raise CliError(str(refused)) from refused
    limit = "unlimited" if done.overdraft_limit is None else str(done.overdraft_limit)
    terminal.console.print(
        f"{done.account_id}: {done.status}, limit {limit} (revision {done.revision}, by {done.by}); "
        "its event is published within a minute"
    )
    return 0


def cmd_account_history(args: argparse.Namespace) -> int:
    from posting_cli import ledger_operations

    table = Table(title=f"{args.account}: acts")
    for column in ("revision", "recorded_at", "act", "status", "limit", "by", "note"):
        table.add_column(column)
    for act in ledger_operations.account_history(options.target(args), args.account):
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
    terminal.console.print(table)
    return 0
