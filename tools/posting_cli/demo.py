"""`posting local demo`: a realistic book, realistic traffic, and a summary you can check.

The book: a funding account per currency (where money enters), customers in EUR and USD (some with
an arranged overdraft, one frozen), merchants, a hot card-settlement account every card payment
touches, a fee account, and FX accounts. The traffic: card payments, merchant payouts with fees,
transfers between customers, multi-currency FX postings, plus what real producers also send:
client retries (duplicates), reused ids with new content (conflicts), malformed and unbalanced
requests, overdraft attempts, unknown and frozen accounts, currency mismatches.

The summary reconciles the books twice: through the ledger's own records (`posting reconcile`) and
against balances this generator recomputes from what it sent and what was reported POSTED.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from posting.domain.model import Account, AccountStatus, Side
from posting_cli import operations
from posting_cli.local.run import Line, LineOutcome, Pace, drain
from posting_cli.results import ResultCollector
from posting_cli.target import Target

# Requests sent but not yet decided. Little's law: latency = in flight / throughput; a small window
# shows the pipeline's latency rather than the queue's backlog.
IN_FLIGHT = 100
# A record that fails transiently comes back after the visibility timeout: a short one keeps the
# demo's tail short (the template's default, 180 s, suits AWS). Overridable with --parameter.
DEMO_PARAMETERS = {"VisibilityTimeoutSeconds": 20}


@dataclass
class Book:
    accounts: list[Account]
    customers: dict[str, list[str]]  # currency -> customer account ids (open ones)
    merchants: list[str]

    @classmethod
    def seed(cls, rng: random.Random, customers: int = 120, merchants: int = 12) -> Book:
        accounts = [
            Account(account_id="funding-EUR", currency="EUR", normal_balance=Side.DEBIT, overdraft_limit=None),
            Account(account_id="funding-USD", currency="USD", normal_balance=Side.DEBIT, overdraft_limit=None),
            Account(account_id="settlement-EUR", currency="EUR", normal_balance=Side.CREDIT, overdraft_limit=None),
            Account(account_id="fees-EUR", currency="EUR", normal_balance=Side.CREDIT, overdraft_limit=0),
            Account(account_id="fx-EUR", currency="EUR", normal_balance=Side.DEBIT, overdraft_limit=None),
            Account(account_id="fx-USD", currency="USD", normal_balance=Side.DEBIT, overdraft_limit=None),
            Account(
                account_id="cust-frozen",
                currency="EUR",
                normal_balance=Side.CREDIT,
                overdraft_limit=0,
                status=AccountStatus.FROZEN,
            ),
        ]
        by_currency: dict[str, list[str]] = defaultdict(list)
        for index in range(1, customers + 1):
            currency = "USD" if index % 4 == 0 else "EUR"
            overdraft = 50_000 if index % 10 == 0 else 0
            account_id = f"cust-{index:04d}"
            accounts.append(
                Account(account_id=account_id, currency=currency, normal_balance=Side.CREDIT, overdraft_limit=overdraft)
            )
            by_currency[currency].append(account_id)
        merchant_ids = [f"merchant-{index:03d}" for index in range(1, merchants + 1)]
        accounts += [
            Account(account_id=m, currency="EUR", normal_balance=Side.CREDIT, overdraft_limit=0) for m in merchant_ids
        ]
        return cls(accounts=accounts, customers=dict(by_currency), merchants=merchant_ids)


def _leg(account_id: str, side: str, amount: Any, currency: str) -> dict[str, Any]:
    return {"account_id": account_id, "side": side, "amount": amount, "currency": currency}


class Traffic:
    """Generates request bodies; remembers what it sent so duplicates and conflicts reuse real ids."""

    def __init__(self, book: Book, rng: random.Random) -> None:
        self.book = book
        self.rng = rng
        self.sent: list[str] = []  # bodies of well-formed requests, for duplicates and conflicts
        self.counter = 0
        self.kinds: list[str] = []

    def _request(self, kind: str, legs: list[dict[str, Any]], **extra: Any) -> str:
        self.counter += 1
        body = {
            "posting_id": f"demo-{kind}-{self.counter:06d}",
            "legs": legs,
            "effective_at": "2026-11-27T10:00:00Z",
            "description": kind.replace("-", " "),
            "metadata": {"channel": self.rng.choice(["card", "app", "batch"])},
        }
        body.update(extra)
        text = json.dumps(body)
        self.sent.append(text)
        return text

    def funding(self) -> list[str]:
        """Money enters: each customer is funded from its currency's funding account."""
        bodies = []
        for currency, customers in self.book.customers.items():
            for customer in customers:
                amount = self.rng.randrange(20_000, 200_000)
                bodies.append(
                    self._request(
                        "funding",
                        [
                            _leg(f"funding-{currency}", "debit", amount, currency),
                            _leg(customer, "credit", amount, currency),
                        ],
                    )
                )
        return bodies

    def next(self) -> str:
        """One request of the everyday mix, drawn by weight."""
        kinds = [
            (40, self._card_payment),
            (10, self._payout),
            (14, self._transfer),
            (6, self._fx),
            (6, self._client_retry),
            (2, self._reused_id),
            (4, self._overdraft),
            (5, self._malformed),
            (2, self._unbalanced),
            (2, self._unknown_account),
            (2, self._frozen_account),
            (2, self._currency_mismatch),
            (5, self._card_payment),
        ]
        weights, makers = zip(*kinds, strict=True)
        return self.rng.choices(makers, weights=weights)[0]()

    def _customer(self, currency: str = "EUR") -> str:
        return self.rng.choice(self.book.customers[currency])

    def _card_payment(self) -> str:
        """Into the hot settlement account: every card payment touches it."""
        amount = self.rng.randrange(100, 9_000)
        legs = [_leg(self._customer(), "debit", amount, "EUR"), _leg("settlement-EUR", "credit", amount, "EUR")]
        return self._request("card-payment", legs)

    def _payout(self) -> str:
        """Out of settlement to a merchant, minus a 1% fee: three legs."""
        amount = self.rng.randrange(1_000, 20_000)
        fee = amount // 100
        merchant = self.rng.choice(self.book.merchants)
        legs = [
            _leg("settlement-EUR", "debit", amount, "EUR"),
            _leg(merchant, "credit", amount - fee, "EUR"),
            _leg("fees-EUR", "credit", fee, "EUR"),
        ]
        return self._request("payout", legs)

    def _transfer(self) -> str:
        currency = "USD" if self.rng.random() < 0.25 else "EUR"
        payer, payee = self.rng.sample(self.book.customers[currency], 2)
        amount = self.rng.randrange(100, 30_000)
        return self._request(
            "transfer", [_leg(payer, "debit", amount, currency), _leg(payee, "credit", amount, currency)]
        )

    def _fx(self) -> str:
        """A EUR customer pays a USD customer: four legs, balanced per currency."""
        eur_amount = self.rng.randrange(1_000, 10_000)
        usd_amount = eur_amount * 108 // 100
        legs = [
            _leg(self._customer("EUR"), "debit", eur_amount, "EUR"),
            _leg("fx-EUR", "credit", eur_amount, "EUR"),
            _leg("fx-USD", "debit", usd_amount, "USD"),
            _leg(self._customer("USD"), "credit", usd_amount, "USD"),
        ]
        return self._request("fx", legs)

    def _client_retry(self) -> str:
        """The exact same body again, as a producer retrying after a timeout sends it."""
        return self.rng.choice(self.sent) if self.sent else self._card_payment()

    def _reused_id(self) -> str:
        """A posting_id used again for different content."""
        if not self.sent:
            return self._card_payment()
        body = json.loads(self.rng.choice(self.sent))
        for leg in body["legs"]:
            leg["amount"] += 1
        return json.dumps(body)

    def _overdraft(self) -> str:
        amount = self.rng.randrange(300_000, 900_000)
        payer, payee = self.rng.sample(self.book.customers["EUR"], 2)
        return self._request("overdraft", [_leg(payer, "debit", amount, "EUR"), _leg(payee, "credit", amount, "EUR")])

    def _unbalanced(self) -> str:
        legs = [_leg(self._customer(), "debit", 1_000, "EUR"), _leg(self._customer(), "credit", 999, "EUR")]
        return self._request("unbalanced", legs)

    def _unknown_account(self) -> str:
        legs = [_leg(self._customer(), "debit", 500, "EUR"), _leg("cust-9999", "credit", 500, "EUR")]
        return self._request("unknown-account", legs)

    def _frozen_account(self) -> str:
        legs = [_leg(self._customer(), "debit", 500, "EUR"), _leg("cust-frozen", "credit", 500, "EUR")]
        return self._request("frozen", legs)

    def _currency_mismatch(self) -> str:
        legs = [_leg(self._customer("EUR"), "debit", 500, "USD"), _leg(self._customer("USD"), "credit", 500, "USD")]
        return self._request("currency-mismatch", legs)

    def _malformed(self) -> str:
        self.counter += 1
        broken = [
            f'{{"posting_id": "demo-broken-{self.counter}", "legs": [',  # truncated JSON
            json.dumps(
                {
                    "posting_id": f"demo-float-{self.counter}",
                    "legs": [_leg("cust-0001", "debit", 12.5, "EUR"), _leg("cust-0002", "credit", 12.5, "EUR")],
                    "effective_at": "2026-11-27T10:00:00Z",
                }
            ),
            json.dumps(
                {
                    "posting_id": f"demo-extra-{self.counter}",
                    "legs": [],
                    "effective_at": "2026-11-27T10:00:00Z",
                    "priority": "high",
                }
            ),
            "<xml>not json</xml>",
            json.dumps({"legs": [_leg("cust-0001", "debit", 1, "EUR"), _leg("cust-0002", "credit", 1, "EUR")]}),
        ]
        return self.rng.choice(broken)


@dataclass
class DemoReport:
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies_ms: list[int] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    decided: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def percentile(self, fraction: float) -> int:
        latencies = sorted(self.latencies_ms)
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] if latencies else 0


def run_demo(target: Target, postings: int, seed: int, console: Console, stall_seconds: float = 120) -> DemoReport:
    rng = random.Random(seed)
    book = Book.seed(rng)
    traffic = Traffic(book, rng)
    operations.open_accounts(target, book.accounts)
    # Books survive between runs on one endpoint: check this run's movements on top of what was there.
    before = {
        account_id: state.balance
        for account_id, state in operations.ledger(target).get_accounts(a.account_id for a in book.accounts).items()
    }
    funding = traffic.funding()
    everyday = [traffic.next() for _ in range(max(0, postings - len(funding)))]
    console.print(
        f"book: {len(book.accounts)} accounts (customers in EUR and USD, {len(book.merchants)} merchants, a hot "
        f"settlement account, funding, fees, FX); traffic: {len(funding)} fundings, then {len(everyday)} mixed requests"
    )
    phases = [
        [Line(n, body) for n, body in enumerate(funding, 1)],
        [Line(n, body) for n, body in enumerate(everyday, len(funding) + 1)],
    ]
    bodies = {line.number: line.body or "" for phase in phases for line in phase}
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
    started = time.monotonic()
    with ResultCollector(target) as collector, Progress(*columns, console=console) as progress:
        task = progress.add_task("posting", total=len(bodies), rate="")

        def show(done: int) -> None:
            completed = len(outcomes) + done
            rate = completed / max(0.001, time.monotonic() - started)
            progress.update(task, completed=completed, rate=f"{rate:,.0f} requests/s")

        for phase in phases:  # customers are funded before they spend
            outcomes += drain(target, collector, phase, pace, show)
    report.elapsed_seconds = time.monotonic() - started
    report.decided = len(outcomes)
    expected = _tally(outcomes, bodies, book, report)
    for account_id, balance in before.items():
        expected[account_id] += balance
    _print_outcomes(report, console)
    console.print(f"dead-letter queue: {len(operations.dead_letters(target))} message(s)")
    _check_books(target, book, expected, report, console)
    return report


def _tally(outcomes: list[LineOutcome], bodies: dict[int, str], book: Book, report: DemoReport) -> dict[str, int]:
    """Count outcomes and latencies; recompute every balance from the requests reported POSTED."""
    normal = {account.account_id: account.normal_balance for account in book.accounts}
    expected: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        report.statuses[(outcome.status, outcome.reason or "")] += 1
        if outcome.observed_ms and outcome.sent_ms:
            report.latencies_ms.append(max(0, outcome.observed_ms - outcome.sent_ms))
        if outcome.status == "POSTED":
            for leg in json.loads(bodies[outcome.line])["legs"]:
                signed = leg["amount"] if leg["side"] == normal[leg["account_id"]] else -leg["amount"]
                expected[leg["account_id"]] += signed
    return expected


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


def _check_books(target: Target, book: Book, expected: dict[str, int], report: DemoReport, console: Console) -> None:
    """The ledger's own reconciliation, then balances against this generator's recomputation."""
    reconciliation = operations.reconcile(target)
    report.problems += reconciliation.problems
    ids = [account.account_id for account in book.accounts]
    actual = operations.ledger(target).get_accounts(ids)
    for account_id in ids:
        balance = actual[account_id].balance if account_id in actual else None
        if balance != expected.get(account_id, 0):
            report.problems.append(
                f"{account_id}: balance {balance}, but the POSTED results recompute to {expected.get(account_id, 0)}"
            )
    trial = ", ".join(f"{currency} {net}" for currency, net in reconciliation.trial_balance.items())
    console.print(
        f"reconciliation: trial balance per currency is zero ({trial}); {reconciliation.accounts} balances = sum "
        f"of their {reconciliation.entries} entries; balances = recomputation from the "
        f"{reconciliation.postings_posted} accepted postings (ledger) and from the POSTED results (this generator)"
    )
    if report.ok:
        console.print("verdict: [bold green]OK[/bold green]")
    else:
        console.print("verdict: [bold red]FAILED[/bold red]")
        for problem in report.problems[:20]:
            console.print(f"  - {problem}")
