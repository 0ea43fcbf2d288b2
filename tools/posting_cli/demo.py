"""`posting local demo`: a realistic book, realistic traffic, and a summary you can check.

The book and the day's traffic come from posting_cli.demo_traffic, what follows the day (settlements,
expiries, the end-of-day sweep, collections) from posting_cli.demo_day_end. Most requests are
ordinary payments; a minority are chains (all or nothing), postings with a balancing leg ("whatever
is there, up to X") and value-dated postings (dated the day before they are booked).

The summary reconciles the books three ways: through the ledger's own records (`posting reconcile`),
against balances this generator recomputes from what it sent and what was reported POSTED, and
kind by kind against what it asked for (posting_cli.demo_checks): chains all or nothing, balancing
legs moving exactly what their accounts could give, value-dated lines carrying their value date.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from posting.domain.reconciliation import Reconciliation, reconcile_records
from posting_cli import operations
from posting_cli.contention import ContentionCounter
from posting_cli.demo_checks import (
    BalancingTally,
    Books,
    ChainTally,
    ValueDatedTally,
    ValueDateRead,
    check_balancing,
    check_chains,
    check_value_dated,
    expected_balances,
    reported_by_id,
    value_date_balances,
)
from posting_cli.demo_day_end import EXPIRY_SECONDS, DayEnd
from posting_cli.demo_traffic import Book, Traffic
from posting_cli.local.run import Line, LineOutcome, Pace, drain
from posting_cli.results import ResultCollector
from posting_cli.target import Target

__all__ = ["DEMO_PARAMETERS", "Book", "DemoReport", "Traffic", "run_demo"]

# Requests sent but not yet decided. Little's law: latency = in flight / throughput; a small window
# shows the pipeline's latency rather than the queue's backlog.
IN_FLIGHT = 100
# A record that fails transiently comes back after the visibility timeout: a short one keeps the
# demo's tail short (the template's default, 180 s, suits AWS). Overridable with --parameter.
DEMO_PARAMETERS = {"VisibilityTimeoutSeconds": 20}


@dataclass
class DemoReport:
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies_ms: list[int] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    decided: int = 0
    problems: list[str] = field(default_factory=list)
    kinds: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, outcome) of every request
    transactions: int = 0  # ledger transactions attempted in this process (local stack)
    conflicts: int = 0  # of which cancelled by contention, then retried
    expired: int = 0
    chains: ChainTally = field(default_factory=ChainTally)
    balancing: BalancingTally = field(default_factory=BalancingTally)
    value_dated: ValueDatedTally = field(default_factory=ValueDatedTally)
    value_date_balances: int | None = None  # accounts whose balance by value date was read and checked

    @property
    def ok(self) -> bool:
        return not self.problems

    def percentile(self, fraction: float) -> int:
        latencies = sorted(self.latencies_ms)
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] if latencies else 0


def run_demo(target: Target, postings: int, seed: int, console: Console, stall_seconds: float = 120) -> DemoReport:
    rng = random.Random(seed)
    book = Book.seed(rng, back_office=True)
    traffic = Traffic(book, rng, lifecycle=True, business_day=datetime.now(UTC))
    day_end = DayEnd(traffic)
    operations.open_accounts(target, book.accounts)
    # Books survive between runs on one endpoint: check this run's movements on top of what was there.
    before = {
        account_id: state.balance
        for account_id, state in operations.books(target).get_accounts(a.account_id for a in book.accounts).items()
    }
    funding = traffic.funding()
    everyday = [traffic.next() for _ in range(max(0, postings - len(funding)))]
    console.print(
        f"book: {len(book.accounts)} accounts (customers in EUR and USD, {len(book.merchants)} merchants, a hot "
        f"settlement account, funding, fees, FX, payouts, loans, interest); traffic: {len(funding)} fundings, "
        f"then {len(everyday)} mixed requests (card payments and authorisations, payouts, transfers, FX, purchase "
        "chains, value-dated postings, ...), then settlements (captures, chains, voids, refunds), expiries, "
        "end-of-day sweeps, collections and merchant refunds"
    )
    # Each phase is decided before the next is built and sent (lines of one queue are decided in any
    # order): customers are funded before they spend, holds are placed before they settle, expiring
    # holds expire before merchants try late, merchants are paid before their balance is swept, and
    # nothing is held or released on an account after its balancing leg (the check relies on it).
    phases = [
        lambda: funding,
        lambda: everyday,
        lambda: day_end.expiring_authorisations(max(2, len(everyday) // 50)),
        day_end.settlements,
        lambda: day_end.merchant_sweeps() + _after_expiries(target, traffic, console, day_end.late_captures),
        day_end.collections_and_refunds,
    ]
    bodies: dict[int, str] = {}
    pace = Pace(stall_seconds=stall_seconds, deadline=time.monotonic() + 3600, in_flight=IN_FLIGHT, poll_seconds=0.1)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    outcomes: list[LineOutcome] = []
    report = DemoReport()
    from posting.handlers.bootstrap import aws_client

    contention = ContentionCounter().attach(aws_client("dynamodb"))  # the in-process handlers' client
    started = time.monotonic()
    with ResultCollector(target) as collector, Progress(*columns, console=console) as progress:
        task = progress.add_task("posting", total=len(funding) + len(everyday), rate="")

        def show(done: int) -> None:
            completed = len(outcomes) + done
            rate = completed / max(0.001, time.monotonic() - started)
            progress.update(task, completed=completed, rate=f"{rate:,.0f} requests/s")

        for build in phases:
            phase = [Line(n, body) for n, body in enumerate(build(), len(bodies) + 1)]
            bodies.update((line.number, line.body or "") for line in phase)
            progress.update(task, total=len(bodies))
            outcomes += drain(target, collector, phase, pace, show)
    report.elapsed_seconds = time.monotonic() - started
    report.decided = len(outcomes)
    report.transactions, report.conflicts = contention.snapshot()
    report.expired = _wait_for_expiries(target, traffic, console)
    _count(outcomes, bodies, report)
    normal = {account.account_id: account.normal_balance for account in book.accounts}
    expected = expected_balances(outcomes, bodies, normal, traffic)
    for account_id, balance in before.items():
        expected[account_id] += balance
    _print_outcomes(report, console)
    console.print(f"dead-letter queue: {len(operations.dead_letters(target))} message(s)")
    records = list(operations.books(target).scan())
    reconciliation = reconcile_records(records)
    report.problems += reconciliation.problems
    _check_balances(target, book, expected, report)
    _check_kinds(Books.of(records), traffic, outcomes, report, _value_date_read(target))
    _print_kinds(report, traffic, console)
    _print_verdict(reconciliation, report, console)
    return report


def _value_date_read(target: Target) -> ValueDateRead | None:
    """The ledger's read of an account's posted balance as of a value date, (account_id, moment) ->
    posted: the figures as recorded then, corrected by the value-dated lines (LedgerBooks)."""
    books = target.ledger().books
    return lambda account_id, moment: books.figures_by_value_date(account_id, moment).posted


def _after_expiries(target: Target, traffic: Traffic, console: Console, build: Callable[[], list[str]]) -> list[str]:
    """`build`'s requests, once the sweeper has released every authorisation that expired."""
    _wait_for_expiries(target, traffic, console)
    return build()


def _wait_for_expiries(target: Target, traffic: Traffic, console: Console, timeout: float = 60) -> int:
    """Wait until the sweeper has released every authorisation that expired; returns how many did."""
    ledger = operations.ledger(target)
    expiring = [hold["posting_id"] for hold in traffic.holds if "expires_at" in hold]
    deadline = time.monotonic() + max(timeout, EXPIRY_SECONDS * 2)
    while True:
        states = {hold_id: (ledger.get_decision(hold_id) or None) for hold_id in expiring}
        waiting = [h for h, d in states.items() if d is not None and d.status == "POSTED" and d.hold_state == "open"]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(1)
    if waiting:
        console.print(f"[yellow]{len(waiting)} expiring hold(s) still open after {timeout:.0f} s[/yellow]")
    return sum(1 for d in states.values() if d is not None and d.hold_state == "expired")


def _count(outcomes: list[LineOutcome], bodies: dict[int, str], report: DemoReport) -> None:
    """Outcomes by status and reason, and by kind; latencies."""
    for outcome in outcomes:
        report.statuses[(outcome.status, outcome.reason or "")] += 1
        if outcome.observed_ms and outcome.sent_ms:
            report.latencies_ms.append(max(0, outcome.observed_ms - outcome.sent_ms))
        try:
            body = json.loads(bodies[outcome.line])
        except ValueError:
            body = {}
        kind = body.get("kind", "posting") if isinstance(body, dict) else "posting"
        report.kinds[(kind, outcome.status)] += 1


def _check_balances(target: Target, book: Book, expected: dict[str, int], report: DemoReport) -> None:
    """Balances against this generator's recomputation from the POSTED results."""
    ids = [account.account_id for account in book.accounts]
    actual = operations.books(target).get_accounts(ids)
    for account_id in ids:
        balance = actual[account_id].balance if account_id in actual else None
        if balance != expected.get(account_id, 0):
            report.problems.append(
                f"{account_id}: balance {balance}, but the POSTED results recompute to {expected.get(account_id, 0)}"
            )


def _check_kinds(
    books: Books, traffic: Traffic, outcomes: list[LineOutcome], report: DemoReport, read: ValueDateRead | None
) -> None:
    """Chains, balancing legs and value-dated postings against what this generator asked for."""
    report.chains, problems = check_chains(traffic, books)
    report.problems += problems
    report.balancing, problems = check_balancing(traffic, books, reported_by_id(outcomes))
    report.problems += problems
    report.value_dated, problems = check_value_dated(traffic, books)
    report.problems += problems
    dated = report.value_dated
    found = value_date_balances(books, dated.accounts, dated.latest[:10] + "T23:59:59.999Z", read)
    if found is not None:
        report.value_date_balances = len(dated.accounts)
        report.problems += found


def _print_outcomes(report: DemoReport, console: Console) -> None:
    table = Table(title="outcomes")
    for column in ("status", "reason", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for (status, reason), count in sorted(report.statuses.items()):
        table.add_row(status, reason or "-", str(count))
    console.print(table)
    console.print(
        f"throughput: {report.decided / report.elapsed_seconds:,.1f} requests/s decided "
        f"({report.decided} in {report.elapsed_seconds:,.1f} s wall clock, on this machine, local engines)"
    )
    console.print(
        f"latency enqueue -> result event: p50 {report.percentile(0.50)} ms, p95 {report.percentile(0.95)} ms, "
        f"p99 {report.percentile(0.99)} ms, max {report.percentile(1.0)} ms"
    )
    lifecycle = ", ".join(
        f"{kind} {report.kinds[(kind, 'POSTED')]}/{sum(n for (k, _), n in report.kinds.items() if k == kind)}"
        for kind in ("hold", "capture", "void", "reversal")
    )
    console.print(f"lifecycle (accepted/sent): {lifecycle}; holds expired by the sweeper: {report.expired}")
    rate = report.conflicts / report.transactions if report.transactions else 0.0
    console.print(
        f"contention: {report.conflicts} of {report.transactions} ledger transactions cancelled and retried "
        f"({rate:.3f} per transaction; settlement-EUR is hot)"
    )


def _print_kinds(report: DemoReport, traffic: Traffic, console: Console) -> None:
    chains = report.chains
    shapes = ", ".join(
        f"{shape.removesuffix('-chain')} {chains.posted[shape]}/{count}" for shape, count in sorted(chains.sent.items())
    )
    refused = ", ".join(f"requests[{index}] {reason} {n}" for (index, reason), n in sorted(chains.refused.items()))
    console.print(f"chains (posted/sent): {shapes or 'none'}; refused whole, naming the member: {refused or 'none'}")
    balancing = report.balancing
    console.print(
        f"balancing legs (sweeps, collections): {balancing.sent} sent; {balancing.in_full + balancing.less} moved "
        f"{balancing.moved:,} of the {balancing.asked:,} they asked ({balancing.in_full} all of it, {balancing.less} "
        f"what the account could give); {balancing.nothing} found nothing to give"
    )
    dated = report.value_dated
    console.print(
        f"value-dated (interest, late card payments): {dated.posted} posted in {dated.lines} lines, dated "
        f"{', '.join(sorted(dated.days)) or '-'} and booked {traffic.business_day:%Y-%m-%d}; {dated.refused} refused"
    )


def _print_verdict(reconciliation: Reconciliation, report: DemoReport, console: Console) -> None:
    trial = ", ".join(f"{currency} {net}" for currency, net in reconciliation.trial_balance.items())
    console.print(
        f"reconciliation: trial balance per currency is zero ({trial}); {reconciliation.accounts} balances = sum "
        f"of their {reconciliation.entries} entries; balances = recomputation from the "
        f"{reconciliation.postings_posted} accepted postings (ledger) and from the POSTED results (this generator); "
        f"pending = open holds ({', '.join(f'{n} {state}' for state, n in reconciliation.holds.items())}), "
        f"each hold in exactly one state; {reconciliation.reversals} "
        f"reversals within their originals; {reconciliation.checkpoints} lane checkpoints"
    )
    value_dates = (
        f"balances by value date match on {report.value_date_balances} accounts"
        if report.value_date_balances is not None
        else "balances by value date: no ledger read"
    )
    console.print(
        "checked by kind: chains all or nothing (members with their chain_id; refused ones moved nothing, used no "
        "member id); balancing legs moved min(asked, available + limit) as their events say; value-dated lines "
        f"carry their effective_at ({value_dates})"
    )
    if report.ok:
        console.print("verdict: [bold green]OK[/bold green]")
    else:
        console.print("verdict: [bold red]FAILED[/bold red]")
        for problem in report.problems[:20]:
            console.print(f"  - {problem}")
