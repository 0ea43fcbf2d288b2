"""`posting`: run the pipeline locally, and operate a local or deployed one.

posting local demo|run|up|invoke|install     the pipeline on embedded engines (no AWS, no Docker)
posting submit|balance|statement|reconcile   operator verbs, against `posting local up` or --stack NAME
posting smoke                                an end-to-end check of a local or deployed stack
posting accounts open | dlq list|redrive | schema
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from posting_cli.commands import accounts, dlq, local, period, reads, reconcile, schema, smoke, submit, terminal
from posting_cli.commands.local_stack import apply_dynamodb_options
from posting_cli.commands.terminal import CliError

# Each family adds its verbs, in the order `posting --help` lists them.
FAMILIES = (local, submit, accounts, period, reads, reconcile, dlq, smoke, schema)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "command"):
        parser.print_help()
        return 2
    try:
        apply_dynamodb_options(args)
        return int(args.command(args) or 0)
    except KeyboardInterrupt:
        terminal.errors.print("interrupted")
        return 130
    except CliError as error:
        terminal.errors.print(f"[red]error:[/red] {error}")
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posting", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    verbs = parser.add_subparsers(title="commands")
    for family in FAMILIES:
        family.register(verbs)
    return parser


if __name__ == "__main__":
    sys.exit(main())
