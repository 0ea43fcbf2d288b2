"""The read verbs: a posting found by its external reference, an account's balance (now, as recorded by
an instant, or by value date) and its statement (whole or in pages).

posting find --ref REF
posting balance ACCOUNT [--as-of INSTANT | --effective INSTANT]
posting statement ACCOUNT [--last N] [--from INSTANT] [--to INSTANT] [--limit N] [--cursor C] [--by-value-date]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from posting_cli.commands import options, terminal
from posting_cli.commands.terminal import CliError


def register(verbs: Any) -> None:
    find = options.operator(
        "find", cmd_find, "the postings a reference from outside the ledger names, with their state", verbs
    )
    find.add_argument("--ref", required=True, help="the request's external_ref (one Query of the ByExternalRef index)")
    balance = options.operator(
        "balance", cmd_balance, "an account's posted, pending and available balance (one read)", verbs
    )
    balance.add_argument("account")
    balance.add_argument(
        "--as-of", dest="as_of", help="the figures as the ledger recorded them by then (its lines recorded by then)"
    )
    balance.add_argument(
        "--effective",
        help="the figures as of this value date: every line dated at or before it, back-valued ones included",
    )
    statement = options.operator(
        "statement", cmd_statement, "an account's entries with the balance after each (one query)", verbs
    )
    statement.add_argument("account")
    statement.add_argument("--last", type=int, default=0, help="only the last N entries")
    statement.add_argument("--from", dest="since", help="entries recorded at or after this instant (ISO 8601)")
    statement.add_argument("--to", dest="until", help="entries recorded at or before this instant (ISO 8601)")
    statement.add_argument("--limit", type=int, default=0, help="a page of at most N entries (see --cursor)")
    statement.add_argument("--cursor", help="the next page, as printed after the previous one")
    statement.add_argument(
        "--by-value-date",
        action="store_true",
        help="order by value date (effective_at): --from/--to select value dates, balances are by value date",
    )


def cmd_find(args: argparse.Namespace) -> int:
    from posting_cli import ledger_operations

    found = ledger_operations.find_by_ref(options.target(args), args.ref)
    for decision in found:
        terminal.console.print_json(json.dumps(ledger_operations.posting_state(decision)))
    if not found:
        terminal.console.print(f"no posting carries external_ref {args.ref}")
        return 1
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    from posting_cli import operations

    state = operations.balance(options.target(args), args.account)
    if state is None:
        raise CliError(f"no such account: {args.account}")
    account = state.account
    figures: dict[str, Any] = {
        "account_id": account.account_id,
        "currency": account.currency,
        "balance": state.balance,
        "posted": state.balance,
        "pending_debits": state.pending_debits,
        "pending_credits": state.pending_credits,
        "available": state.available,
        "normal_balance": str(account.normal_balance),
        "overdraft_limit": account.overdraft_limit,
        "status": str(account.status),
        "entries": state.version,
        "balance_shards": account.balance_shards,
    }
    if args.as_of and args.effective:
        raise CliError("--as-of and --effective ask different questions: give one")
    if args.as_of or args.effective:
        from posting.domain.model import available_balance
        from posting_cli import ledger_operations

        moment = options.instant(args.as_of or args.effective)
        if args.as_of:
            found = ledger_operations.figures_as_of(options.target(args), args.account, moment)
        else:
            found = ledger_operations.figures_by_value_date(options.target(args), args.account, moment)
        figures = {
            "account_id": account.account_id,
            "currency": account.currency,
            **({"as_of": moment} if args.as_of else {"effective": moment}),
            "posted": found.posted,
            "pending_debits": found.pending_debits,
            "pending_credits": found.pending_credits,
            "available": available_balance(
                account.normal_balance, found.posted, found.pending_debits, found.pending_credits
            ),
            "entries": found.entries,
        }
    terminal.console.print_json(json.dumps(figures))
    return 0


def cmd_statement(args: argparse.Namespace) -> int:
    from posting_cli import operations

    paged = args.since or args.until or args.limit or args.cursor or args.by_value_date
    state, entries = operations.statement(options.target(args), args.account)
    if state is None:
        raise CliError(f"no such account: {args.account}")
    cursor = None
    if paged:
        entries, cursor = operations.statement_page(
            options.target(args),
            args.account,
            since=options.instant(args.since) if args.since else None,
            until=options.instant(args.until) if args.until else None,
            limit=args.limit or (10**9 if args.by_value_date and not args.cursor else 100),
            cursor=args.cursor,
            by_value_date=args.by_value_date,
        )
    table = Table(title=f"{args.account} ({state.account.currency}, {state.account.normal_balance}-normal)")
    columns = ["#", "effective_at" if args.by_value_date else "recorded_at", "kind", "posting_id", "side", "amount"]
    for column in [*columns, "balance after"]:
        table.add_column(column, justify="right" if column in {"#", "amount", "balance after"} else "left")
    for entry in entries[-args.last :] if args.last else entries:
        table.add_row(
            str(entry.sequence or "-"),
            entry.effective_at if args.by_value_date else entry.recorded_at,
            entry.kind,
            entry.posting_id,
            str(entry.side),
            str(entry.amount),
            str(entry.balance_after),
        )
    terminal.console.print(table)
    terminal.console.print(
        f"balance: {state.balance} {state.account.currency} after {state.version} entries "
        f"(pending debits {state.pending_debits}, pending credits {state.pending_credits}, "
        f"available {state.available})"
    )
    if cursor:
        terminal.console.print(f"more: --cursor {cursor}")
    return 0
