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
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from posting.domain.model import Account, AccountStatus, Side
from posting_cli import operations
from posting_cli.contention import ContentionCounter
from posting_cli.local.run import Line, LineOutcome, Pace, drain
from posting_cli.results import ResultCollector
from posting_cli.target import Target

# Requests sent but not yet decided. Little's law: latency = in flight / throughput; a small window
# shows the pipeline's latency rather than the queue's backlog.
IN_FLIGHT = 100
# A record that fails transiently comes back after the visibility timeout: a short one keeps the
# demo's tail short (the template's default, 180 s, suits AWS). Overridable with --parameter.
DEMO_PARAMETERS = {"VisibilityTimeoutSeconds": 20}
# Card authorisations that nobody captures expire this long after they are sent; the local stack's
# sweeper releases them within seconds.
EXPIRY_SECONDS = 8


@dataclass
class Book:
    accounts: list[Account]
    customers: dict[str, list[str]]  # currency -> customer account ids (open ones)
    merchants: list[str]

    @classmethod
    def seed(cls, rng: random.Random, customers: int = 120, merchants: int = 12) -> Book:
        accounts = [
            # Funding, fee, settlement and FX accounts have no limit: they take postings as lines in lanes,
            # with no shared item, opened as a new user would (no special terms).
            Account(
                account_id="funding-EUR",
                currency="EUR",
                normal_balance=Side.DEBIT,
                overdraft_limit=None,
            ),
            Account(
                account_id="funding-USD",
                currency="USD",
                normal_balance=Side.DEBIT,
                overdraft_limit=None,
            ),
            # Hot: most card traffic goes through it.
            Account(
                account_id="settlement-EUR",
                currency="EUR",
                normal_balance=Side.CREDIT,
                overdraft_limit=None,
            ),
            Account(
                account_id="fees-EUR",
                currency="EUR",
                normal_balance=Side.CREDIT,
                overdraft_limit=None,
            ),
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

    def __init__(self, book: Book, rng: random.Random, *, lifecycle: bool = False) -> None:
        """`lifecycle` adds card authorisations (holds) to the everyday mix; the soak and the bench,
        whose checks recompute balances from posting legs alone, leave it off."""
        self.book = book
        self.rng = rng
        self.lifecycle = lifecycle
        self.sent: list[str] = []  # bodies of well-formed requests, for duplicates and conflicts
        self.counter = 0
        self.kinds: list[str] = []
        self.holds: list[dict[str, Any]] = []  # card authorisations, to settle later
        self.by_id: dict[str, dict[str, Any]] = {}  # every well-formed body by posting_id

    def _request(self, label: str, legs: list[dict[str, Any]], **extra: Any) -> str:
        self.counter += 1
        body: dict[str, Any] = {
            "posting_id": f"demo-{label}-{self.counter:06d}",
            "legs": legs,
            "effective_at": "2026-11-27T10:00:00Z",
            "description": label.replace("-", " "),
            "metadata": {"channel": self.rng.choice(["card", "app", "batch"])},
        }
        body.update(extra)
        text = json.dumps(body)
        self.sent.append(text)
        self.by_id[body["posting_id"]] = body
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
            (12 if self.lifecycle else 0, self._authorisation),
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

    def _authorisation(self) -> str:
        """A card authorisation: a hold on the customer towards the settlement account. Some expire."""
        amount = self.rng.randrange(500, 12_000)
        legs = [_leg(self._customer(), "debit", amount, "EUR"), _leg("settlement-EUR", "credit", amount, "EUR")]
        text = self._request("authorisation", legs, kind="hold")
        self.holds.append(json.loads(text))
        return text

    def expiring_authorisations(self, count: int) -> list[str]:
        """Authorisations nobody will capture in time: they expire EXPIRY_SECONDS from now."""
        expires_at = (datetime.now(UTC) + timedelta(seconds=EXPIRY_SECONDS)).isoformat()
        bodies = []
        for _ in range(count):
            amount = self.rng.randrange(500, 12_000)
            legs = [_leg(self._customer(), "debit", amount, "EUR"), _leg("settlement-EUR", "credit", amount, "EUR")]
            text = self._request("authorisation", legs, kind="hold", expires_at=expires_at)
            self.holds.append(json.loads(text))
            bodies.append(text)
        return bodies

    def late_captures(self) -> list[str]:
        """Merchants capturing authorisations that have expired meanwhile: HOLD_EXPIRED."""
        expired = [hold["posting_id"] for hold in self.holds if "expires_at" in hold]
        return [self._settle("capture", hold_id) for hold_id in self.rng.sample(expired, len(expired) // 3)]

    def settlements(self) -> list[str]:
        """After the day's traffic: captures (most for less, a few twice or for more), voids, refunds
        of card payments and captures, and late captures of holds that have expired meanwhile."""
        bodies = []
        for hold in self.holds:
            hold_id = hold["posting_id"]
            legs = hold["legs"]
            if "expires_at" in hold:
                continue  # left to expire
            roll = self.rng.random()
            if roll < 0.15:
                bodies.append(self._settle("void", hold_id))
                continue
            if roll < 0.2:  # more than authorised
                bodies.append(self._settle("capture", hold_id, amount=legs[0]["amount"] + 100))
                continue
            amount = legs[0]["amount"] * self.rng.randrange(70, 101) // 100  # tips removed, partial shipments
            bodies.append(self._settle("capture", hold_id, amount=amount))
            if self.rng.random() < 0.05:
                bodies.append(self._settle("capture", hold_id))  # a double capture
        payments = [b for b in self.by_id.values() if b["posting_id"].startswith("demo-card-payment-")]
        for payment in self.rng.sample(payments, min(len(payments), max(1, len(payments) // 20))):
            amount = payment["legs"][0]["amount"]
            part = amount if self.rng.random() < 0.5 else max(1, amount // 3)
            bodies.append(self._refund(payment, part))
            if self.rng.random() < 0.2:
                bodies.append(self._refund(payment, amount))  # beyond the original with the first one
        return bodies

    def _settle(self, kind: str, hold_id: str, amount: int | None = None) -> str:
        hold = self.by_id[hold_id]
        extra: dict[str, Any] = {"kind": kind, "hold_id": hold_id}
        if amount is not None:
            extra["legs"] = [{**leg, "amount": amount} for leg in hold["legs"]]
        self.counter += 1
        body = {"posting_id": f"demo-{kind}-{self.counter:06d}", "description": f"{kind} of {hold_id}", **extra}
        text = json.dumps(body)
        self.by_id[body["posting_id"]] = body
        return text

    def _refund(self, payment: dict[str, Any], amount: int) -> str:
        customer, settlement = payment["legs"][0]["account_id"], payment["legs"][1]["account_id"]
        self.counter += 1
        body = {
            "kind": "reversal",
            "posting_id": f"demo-refund-{self.counter:06d}",
            "reverses": payment["posting_id"],
            "legs": [_leg(settlement, "debit", amount, "EUR"), _leg(customer, "credit", amount, "EUR")],
            "description": "refund",
        }
        text = json.dumps(body)
        self.by_id[body["posting_id"]] = body
        return text

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
    kinds: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, outcome) of every request
    transactions: int = 0  # ledger transactions attempted in this process (local stack)
    conflicts: int = 0  # of which cancelled by contention, then retried
    expired: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def percentile(self, fraction: float) -> int:
        latencies = sorted(self.latencies_ms)
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] if latencies else 0


def run_demo(target: Target, postings: int, seed: int, console: Console, stall_seconds: float = 120) -> DemoReport:
    rng = random.Random(seed)
    book = Book.seed(rng)
    traffic = Traffic(book, rng, lifecycle=True)
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
        f"settlement account, funding, fees, FX); traffic: {len(funding)} fundings, "
        f"then {len(everyday)} mixed requests (card payments and authorisations, payouts, transfers, FX, ...), "
        "then captures, voids, refunds, expiries and late captures"
    )
    # Each phase is decided before the next is built and sent: customers are funded before they
    # spend, holds are placed before they settle, expiring holds expire before merchants try late.
    phases = [
        lambda: funding,
        lambda: everyday,
        lambda: traffic.expiring_authorisations(max(2, len(everyday) // 50)),
        traffic.settlements,
        lambda: [] if _wait_for_expiries(target, traffic, console) < 0 else traffic.late_captures(),
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
    expected = _tally(outcomes, bodies, book, report, traffic)
    for account_id, balance in before.items():
        expected[account_id] += balance
    _print_outcomes(report, console)
    console.print(f"dead-letter queue: {len(operations.dead_letters(target))} message(s)")
    _check_books(target, book, expected, report, console)
    return report


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


def _tally(
    outcomes: list[LineOutcome], bodies: dict[int, str], book: Book, report: DemoReport, traffic: Traffic
) -> dict[str, int]:
    """Count outcomes and latencies; recompute every balance from the requests reported POSTED."""
    normal = {account.account_id: account.normal_balance for account in book.accounts}
    expected: dict[str, int] = defaultdict(int)
    mirror = {"debit": "credit", "credit": "debit"}
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
        if outcome.status != "POSTED":
            continue
        if kind == "capture":
            legs = body.get("legs") or traffic.by_id[body["hold_id"]]["legs"]
        elif kind == "reversal":
            legs = body.get("legs") or [
                {**leg, "side": mirror[leg["side"]]} for leg in traffic.by_id[body["reverses"]]["legs"]
            ]
        elif kind == "posting":
            legs = body["legs"]
        else:
            legs = []  # holds, voids and expiries move nothing posted
        for leg in legs:
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


def _check_books(target: Target, book: Book, expected: dict[str, int], report: DemoReport, console: Console) -> None:
    """The ledger's own reconciliation, then balances against this generator's recomputation."""
    reconciliation = operations.reconcile(target)
    report.problems += reconciliation.problems
    ids = [account.account_id for account in book.accounts]
    actual = operations.books(target).get_accounts(ids)
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
        f"{reconciliation.postings_posted} accepted postings (ledger) and from the POSTED results (this generator); "
        f"pending = open holds ({', '.join(f'{n} {state}' for state, n in reconciliation.holds.items())}), "
        f"each hold in exactly one state; {reconciliation.reversals} "
        f"reversals within their originals; {reconciliation.checkpoints} lane checkpoints"
    )
    if report.ok:
        console.print("verdict: [bold green]OK[/bold green]")
    else:
        console.print("verdict: [bold red]FAILED[/bold red]")
        for problem in report.problems[:20]:
            console.print(f"  - {problem}")
