"""posting submit FILE: send posting requests (one JSON per line) to the posting queue."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from posting_cli.commands import options, terminal


def register(verbs: Any) -> None:
    submit = options.operator(
        "submit", cmd_submit, "send posting requests (one JSON per line) to the posting queue", verbs
    )
    submit.add_argument("file", help="JSONL file, or - for stdin")
    options.add_group_by(submit)


def cmd_submit(args: argparse.Namespace) -> int:
    from posting_cli import operations
    from posting_cli.groups import group_ids

    stream = sys.stdin if args.file == "-" else open(args.file)  # noqa: SIM115 - closed below
    with stream:
        bodies = [line.rstrip("\n") for line in stream if line.strip()]
    target = options.target(args)
    grouping = options.group_by(args, target)
    answers = operations.submit(target, bodies, group_ids(bodies, grouping) if target.is_fifo else None)
    refused = [a for a in answers if a.error]
    terminal.console.print(
        f"sent {len(answers) - len(refused)} message(s)" + (f", {len(refused)} refused" if refused else "")
    )
    for answer in refused:
        terminal.errors.print(f"refused: {answer.error}")
    return 1 if refused else 0
