"""posting smoke: an end-to-end check of a local or deployed stack."""

from __future__ import annotations

import argparse
from typing import Any

from posting_cli.commands import options, terminal


def register(verbs: Any) -> None:
    smoke = options.operator(
        "smoke",
        cmd_smoke,
        "end-to-end check of a stack: two new accounts, a posting, its duplicate and a malformed request; "
        "waits for their result events in the results log group, checks outcomes and balances, closes the accounts",
        verbs,
    )
    smoke.add_argument("--timeout", type=float, default=120, help="seconds to wait for the result events")


def cmd_smoke(args: argparse.Namespace) -> int:
    from posting_cli.smoke import run_smoke

    target = options.target(args)
    report = run_smoke(target, timeout_seconds=args.timeout, say=terminal.console.print)
    for name, latency in report.latencies_ms.items():
        terminal.console.print(f"  {name}: enqueue -> result event in the log group {latency} ms")
    closed = ", ".join(report.accounts)
    if report.ok:
        terminal.console.print(f"smoke test [bold green]OK[/bold green] (accounts closed: {closed})")
        return 0
    terminal.errors.print(f"[bold red]smoke test FAILED[/bold red] (run {report.run_id}; accounts closed: {closed}):")
    for problem in report.problems:
        terminal.errors.print(f"  - {problem}")
    return 1
