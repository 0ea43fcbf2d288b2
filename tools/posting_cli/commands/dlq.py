"""posting dlq list|redrive: the dead-lettered requests, and moving them back to the posting queue."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from posting_cli.commands import options, terminal


def register(verbs: Any) -> None:
    dlq = verbs.add_parser("dlq", help="dead-lettered requests").add_subparsers(title="dlq commands")
    options.operator("list", cmd_dlq_list, "list dead letters with their failure reasons", dlq)
    redrive = options.operator(
        "redrive",
        cmd_dlq_redrive,
        "move dead letters back to the posting queue: all of them, or those selected; only those whose "
        "producer is allowed (the stack's ProducerPrincipalArns, its sweeper, --allow-producer); "
        "the others stay in the DLQ, reported (exit 1)",
        dlq,
    )
    redrive.add_argument(
        "--message-id",
        action="append",
        default=[],
        metavar="ID",
        help="only this dead letter (its id in the DLQ or in the posting queue, as `dlq list` shows); repeatable",
    )
    redrive.add_argument(
        "--reason",
        action="append",
        default=[],
        metavar="CODE",
        help="only dead letters with this failure_error (e.g. TransientPostingError; MaxReceiveCountExceeded "
        "for those the queue's redrive policy moved); repeatable; with --message-id, both must match",
    )
    redrive.add_argument(
        "--allow-producer",
        action="append",
        default=[],
        metavar="ID_OR_ARN",
        help="also vouch for this producer: an IAM role or user ARN in the stack's account, or a principal id "
        "as SQS records it (AROA...[:session], AIDA..., an account id); repeatable",
    )
    redrive.add_argument(
        "--dry-run", action="store_true", help="list what would move and what would stay; move nothing"
    )


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from posting_cli import operations
    from posting_cli.results import posting_id_of

    letters = operations.dead_letters(options.target(args))
    table = Table(title=f"dead letters: {len(letters)}")
    for column in ("message", "posting_id", "error", "reason", "producer"):
        table.add_column(column)
    for letter in letters:
        table.add_row(
            letter.source_message_id, posting_id_of(letter.body) or "-", letter.error, letter.message, letter.producer
        )
    terminal.console.print(table)
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    """Move dead letters back (all, or those selected), each only if its producer can be vouched for."""
    from posting_cli import operations
    from posting_cli.results import posting_id_of

    report = operations.redrive(
        options.target(args),
        message_ids=args.message_id,
        reasons=args.reason,
        allow=args.allow_producer,
        dry_run=args.dry_run,
    )
    for unresolved in report.unresolved:
        terminal.errors.print(f"[yellow]cannot vouch for[/yellow] {unresolved}")
    rows = [
        (letter, f"would move (for {producer})" if args.dry_run else f"moved (for {producer})")
        for letter, producer in report.plan.moves
    ]
    rows += [(letter, f"stays: {why}") for letter, why in report.plan.refusals]
    if args.dry_run or report.plan.refusals:
        table = Table(title=f"dead letters selected: {len(rows)}")
        for column in ("message", "posting_id", "error", "producer", "redrive"):
            table.add_column(column)
        for letter, verdict in rows:
            table.add_row(
                letter.source_message_id, posting_id_of(letter.body) or "-", letter.error, letter.producer, verdict
            )
        terminal.console.print(table)
    refused = len(report.plan.refusals)
    stays = f"; {refused} refused, left in the DLQ" if refused else ""
    if args.dry_run:
        terminal.console.print(f"dry run: would move {report.moved} message(s) back to the posting queue{stays}")
    else:
        terminal.console.print(f"moved {report.moved} message(s) back to the posting queue{stays}")
    return 1 if refused else 0
