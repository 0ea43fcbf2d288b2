"""posting reconcile: check trial balance, entries and postings against every balance."""

from __future__ import annotations

import argparse
from typing import Any

from posting_cli.commands import options, terminal


def register(verbs: Any) -> None:
    options.operator(
        "reconcile", cmd_reconcile, "check trial balance, entries and postings against every balance", verbs
    )


def cmd_reconcile(args: argparse.Namespace) -> int:
    from posting_cli import operations

    report = operations.reconcile(options.target(args))
    print_reconciliation(report)
    return 0 if report.ok else 1


def print_reconciliation(report: Any) -> None:
    terminal.console.print(
        f"accounts {report.accounts}, entries {report.entries}, postings posted {report.postings_posted}, "
        f"rejected {report.postings_rejected}"
    )
    terminal.console.print(
        "trial balance (debits - credits): " + ", ".join(f"{c} {n}" for c, n in report.trial_balance.items())
    )
    if report.ok:
        terminal.console.print("reconciliation: [bold green]OK[/bold green]")
    else:
        terminal.console.print("reconciliation: [bold red]FAILED[/bold red]")
        for problem in report.problems:
            terminal.console.print(f"  - {problem}")
