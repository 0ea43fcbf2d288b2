"""The options that verbs of more than one family take, beside what they resolve to: the stack an
operator verb acts on (--stack, --region), the message groups of a FIFO queue (--group-by), and the
instants a user types."""

from __future__ import annotations

import argparse
from typing import Any

from posting_cli.commands.terminal import CliError


def operator(name: str, handler: Any, help_text: str, into: Any) -> argparse.ArgumentParser:
    """Add the verb `name` to `into`, with the options of every operator verb (see `target`)."""
    command = into.add_parser(name, help=help_text, description=help_text)
    command.add_argument("--stack", help="a deployed stack's name (default: the running `posting local up`)")
    command.add_argument("--region", help="AWS region of --stack")
    command.set_defaults(command=handler)
    return command


def target(args: argparse.Namespace) -> Any:
    from posting_cli.target import Target, TargetError

    try:
        return Target.from_stack(args.stack, args.region) if args.stack else Target.from_file()
    except TargetError as error:
        raise CliError(str(error)) from error


def add_group_by(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--group-by",
        metavar="HOW",
        help="on a FIFO posting queue, the message group of each line, decided in order within a group: linked "
        "(the default: lines that share an account or name each other's posting_id), file (one group), "
        "account (the first account a line names), or field:PATH (a field of the request, e.g. "
        "field:metadata.customer)",
    )


def group_by(args: argparse.Namespace, target: Any) -> str:
    """The grouping --group-by asks for (posting_cli.groups); only a FIFO queue orders by group."""
    from posting_cli.groups import GroupingError, check_grouping

    if args.group_by is not None and not target.is_fifo:
        raise CliError(
            "--group-by orders requests on a FIFO posting queue only, and this one is standard: deploy with "
            "PostingQueueType=fifo (locally: --fifo)"
        )
    try:
        return check_grouping(args.group_by or "linked")
    except GroupingError as error:
        raise CliError(str(error)) from error


def instant(text: str) -> str:
    """An instant the user typed (ISO 8601, a zone or UTC assumed) as the ledger's sortable UTC text."""
    from datetime import UTC, datetime

    from posting.domain.model import utc_timestamp

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise CliError(f"not an ISO 8601 instant: {text}") from error
    return utc_timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
