"""The demo's book and its day of traffic: who has accounts, and what producers send them.

The book: a funding account per currency (where money enters), customers in EUR and USD (some with
an arranged overdraft, one frozen), merchants, a hot card-settlement account every card payment
touches, a fee account, FX accounts and, for the demo's back office, merchant payouts, loans and
interest. The day: card payments, merchant payouts with fees, transfers between customers,
multi-currency FX postings, plus what real producers also send: client retries (duplicates), reused
ids with new content (conflicts), malformed and unbalanced requests, overdraft attempts, unknown and
frozen accounts, currency mismatches. With `lifecycle` on (the demo), also card authorisations,
purchases authorised and captured at once (a chain), and value-dated postings: interest for the day
before and card payments from the day before that settle late. What follows the day is built by
posting_cli.demo_day_end.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from posting.domain.model import Account, AccountStatus, Side

# Every request carries this value date unless the traffic is given a business day (the demo's):
# the bench and the soak send bodies that do not depend on when they run.
FIXED_EFFECTIVE_AT = "2026-11-27T10:00:00Z"


@dataclass
class Book:
    accounts: list[Account]
    customers: dict[str, list[str]]  # currency -> customer account ids (open ones)
    merchants: list[str]

    @classmethod
    def seed(cls, rng: random.Random, customers: int = 120, merchants: int = 12, back_office: bool = False) -> Book:
        """`back_office` adds the accounts the demo's end of day and value-dated postings use."""
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
        if back_office:
            accounts += [
                # Merchants' money on its way to their banks (the end-of-day sweep credits it).
                Account(account_id="payouts-EUR", currency="EUR", normal_balance=Side.CREDIT, overdraft_limit=None),
                # What customers owe on their loans (an asset: a repayment credits it).
                Account(account_id="loans-EUR", currency="EUR", normal_balance=Side.DEBIT, overdraft_limit=None),
                # Interest paid to customers (an expense).
                Account(account_id="interest-EUR", currency="EUR", normal_balance=Side.DEBIT, overdraft_limit=None),
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


def value_date(moment: datetime) -> str:
    """An effective_at as producers write it: UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Traffic:
    """Generates request bodies; remembers what it sent so duplicates and conflicts reuse real ids,
    and so the demo can check what became of its chains, balancing legs and value-dated postings."""

    def __init__(
        self, book: Book, rng: random.Random, *, lifecycle: bool = False, business_day: datetime | None = None
    ) -> None:
        """`lifecycle` adds card authorisations (holds), chains and value-dated postings to the everyday
        mix; the soak and the bench, whose checks recompute balances from posting legs alone, leave it
        off. `business_day` (the demo's: now) is when the traffic happens: requests then carry no
        effective_at (booked when decided) but value-dated ones, dated the day before."""
        self.book = book
        self.rng = rng
        self.lifecycle = lifecycle
        self.business_day = business_day
        self.sent: list[str] = []  # bodies of well-formed requests, for duplicates and conflicts
        self.counter = 0
        self.holds: list[dict[str, Any]] = []  # card authorisations, to settle later
        self.by_id: dict[str, dict[str, Any]] = {}  # every well-formed body by posting_id, chain members too
        self.chains: dict[str, str] = {}  # chain posting_id -> its shape (its label)
        self.unfundable: dict[str, int] = {}  # chains built to be refused -> the member that cannot be funded
        self.balancing: list[str] = []  # postings with a balancing leg
        self.value_dated: list[str] = []  # postings dated before the business day
        self.refunded: set[str] = set()  # card payments refunded (reversed) already

    def new_id(self, label: str) -> str:
        self.counter += 1
        return f"demo-{label}-{self.counter:06d}"

    def remember(self, body: dict[str, Any]) -> str:
        """Keep a body by its posting_id (a chain's members too); returns it as sent."""
        self.by_id[body["posting_id"]] = body
        for member in body.get("requests", []):
            self.by_id[member["posting_id"]] = member
        return json.dumps(body)

    def request(self, label: str, legs: list[dict[str, Any]], **extra: Any) -> str:
        body: dict[str, Any] = {
            "posting_id": self.new_id(label),
            "legs": legs,
            "effective_at": FIXED_EFFECTIVE_AT,
            "description": label.replace("-", " "),
            "metadata": {"channel": self.rng.choice(["card", "app", "batch"])},
        }
        if self.business_day is not None:
            del body["effective_at"]
        body.update(extra)
        text = self.remember(body)
        self.sent.append(text)
        return text

    def chain(self, label: str, members: list[dict[str, Any]], refused_at: int | None = None) -> str:
        """A chain of `members`, all or nothing; `refused_at`: the member built so that it cannot be funded."""
        chain_id = self.new_id(label)
        body: dict[str, Any] = {"kind": "chain", "posting_id": chain_id, "requests": members, "description": label}
        self.chains[chain_id] = label
        if refused_at is not None:
            self.unfundable[chain_id] = refused_at
        text = self.remember(body)
        self.sent.append(text)
        return text

    def funding(self) -> list[str]:
        """Money enters: each customer is funded from its currency's funding account."""
        bodies = []
        for currency, customers in self.book.customers.items():
            for customer in customers:
                amount = self.rng.randrange(20_000, 200_000)
                bodies.append(
                    self.request(
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
        if self.lifecycle:
            kinds += [(12, self._authorisation), (3, self._purchase_chain)]
            if self.business_day is not None:
                kinds += [(2, self._interest_adjustment), (2, self._late_card_payment)]
        weights, makers = zip(*kinds, strict=True)
        return self.rng.choices(makers, weights=weights)[0]()

    def customer(self, currency: str = "EUR") -> str:
        return self.rng.choice(self.book.customers[currency])

    def _card_payment(self) -> str:
        """Into the hot settlement account: every card payment touches it."""
        amount = self.rng.randrange(100, 9_000)
        legs = [_leg(self.customer(), "debit", amount, "EUR"), _leg("settlement-EUR", "credit", amount, "EUR")]
        return self.request("card-payment", legs)

    def _authorisation(self) -> str:
        """A card authorisation: a hold on the customer towards the settlement account."""
        amount = self.rng.randrange(500, 12_000)
        legs = [_leg(self.customer(), "debit", amount, "EUR"), _leg("settlement-EUR", "credit", amount, "EUR")]
        text = self.request("authorisation", legs, kind="hold")
        self.holds.append(json.loads(text))
        return text

    def _purchase_chain(self) -> str:
        """A purchase authorised and captured at once (a fuel pump: authorise, then capture what was
        pumped): a hold and its capture in one chain. One in five is a stolen card tried for more than
        all the customers' money together: its hold cannot be funded, so the whole chain is refused."""
        unfundable = self.rng.random() < 0.2
        amount = self.rng.randrange(100_000_000, 200_000_000) if unfundable else self.rng.randrange(2_000, 15_000)
        hold_legs = [_leg(self.customer(), "debit", amount, "EUR"), _leg("settlement-EUR", "credit", amount, "EUR")]
        hold = {"kind": "hold", "posting_id": self.new_id("authorisation"), "legs": hold_legs}
        captured = amount * self.rng.randrange(60, 101) // 100
        capture = {
            "kind": "capture",
            "posting_id": self.new_id("capture"),
            "hold_id": hold["posting_id"],
            "legs": [{**leg, "amount": captured} for leg in hold_legs],
        }
        return self.chain("purchase-chain", [hold, capture], refused_at=0 if unfundable else None)

    def _yesterday(self, hour: int, minute: int, second: int) -> str:
        day = (self.business_day or datetime.now(UTC)).astimezone(UTC) - timedelta(days=1)
        return value_date(day.replace(hour=hour, minute=minute, second=second, microsecond=0))

    def _value_dated(self, label: str, legs: list[dict[str, Any]], effective_at: str) -> str:
        text = self.request(label, legs, effective_at=effective_at)
        self.value_dated.append(json.loads(text)["posting_id"])
        return text

    def _interest_adjustment(self) -> str:
        """Interest for the day before, booked today and value-dated to that day's end (back-valued)."""
        amount = self.rng.randrange(1, 800)
        legs = [_leg("interest-EUR", "debit", amount, "EUR"), _leg(self.customer(), "credit", amount, "EUR")]
        return self._value_dated("interest-adjustment", legs, self._yesterday(23, 59, 59))

    def _late_card_payment(self) -> str:
        """A card payment made the day before whose settlement arrives today: dated when it was made."""
        amount = self.rng.randrange(100, 9_000)
        legs = [_leg(self.customer(), "debit", amount, "EUR"), _leg("settlement-EUR", "credit", amount, "EUR")]
        when = self._yesterday(self.rng.randrange(8, 22), self.rng.randrange(60), self.rng.randrange(60))
        return self._value_dated("late-card-payment", legs, when)

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
        return self.request("payout", legs)

    def _transfer(self) -> str:
        currency = "USD" if self.rng.random() < 0.25 else "EUR"
        payer, payee = self.rng.sample(self.book.customers[currency], 2)
        amount = self.rng.randrange(100, 30_000)
        return self.request(
            "transfer", [_leg(payer, "debit", amount, currency), _leg(payee, "credit", amount, currency)]
        )

    def _fx(self) -> str:
        """A EUR customer pays a USD customer: four legs, balanced per currency."""
        eur_amount = self.rng.randrange(1_000, 10_000)
        usd_amount = eur_amount * 108 // 100
        legs = [
            _leg(self.customer("EUR"), "debit", eur_amount, "EUR"),
            _leg("fx-EUR", "credit", eur_amount, "EUR"),
            _leg("fx-USD", "debit", usd_amount, "USD"),
            _leg(self.customer("USD"), "credit", usd_amount, "USD"),
        ]
        return self.request("fx", legs)

    def _client_retry(self) -> str:
        """The exact same body again, as a producer retrying after a timeout sends it."""
        return self.rng.choice(self.sent) if self.sent else self._card_payment()

    def _reused_id(self) -> str:
        """A posting_id used again for different content."""
        if not self.sent:
            return self._card_payment()
        body = json.loads(self.rng.choice(self.sent))
        for leg in body.get("legs") or body["requests"][0]["legs"]:  # a chain: its first member's
            leg["amount"] += 1
        return json.dumps(body)

    def _overdraft(self) -> str:
        amount = self.rng.randrange(300_000, 900_000)
        payer, payee = self.rng.sample(self.book.customers["EUR"], 2)
        return self.request("overdraft", [_leg(payer, "debit", amount, "EUR"), _leg(payee, "credit", amount, "EUR")])

    def _unbalanced(self) -> str:
        legs = [_leg(self.customer(), "debit", 1_000, "EUR"), _leg(self.customer(), "credit", 999, "EUR")]
        return self.request("unbalanced", legs)

    def _unknown_account(self) -> str:
        legs = [_leg(self.customer(), "debit", 500, "EUR"), _leg("cust-9999", "credit", 500, "EUR")]
        return self.request("unknown-account", legs)

    def _frozen_account(self) -> str:
        legs = [_leg(self.customer(), "debit", 500, "EUR"), _leg("cust-frozen", "credit", 500, "EUR")]
        return self.request("frozen", legs)

    def _currency_mismatch(self) -> str:
        legs = [_leg(self.customer("EUR"), "debit", 500, "USD"), _leg(self.customer("USD"), "credit", 500, "USD")]
        return self.request("currency-mismatch", legs)

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
