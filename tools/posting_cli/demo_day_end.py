"""What follows the demo's day of traffic: settlements, expiries, the end-of-day sweep, collections.

Each batch is built once the one before it is decided: lines of one file (one SQS queue) are decided
in any order, so a request that depends on another is sent after it, or with it in one chain.

- Authorisations that nobody captures in time expire; merchants capturing them late are refused.
- The card scheme settles the other authorisations: captures (most for less, a few twice or for
  more), voids, refunds of card payments, and settlement chains (capture the hold, pay the merchant
  its share out of settlement, take the fee: three members, all or nothing).
- End of day: each merchant's balance is swept to its bank up to a daily cap, with a balancing leg
  (whatever is there, up to the cap).
- Then loan instalments are collected from customers with a balancing leg (what each can pay, up to
  the instalment), and merchants refund card payments out of their own balance in a chain (the
  payment reversed, the merchant paying settlement back); one whose balance went to its bank at the
  sweep cannot fund it, and the whole refund is refused.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from posting_cli.demo_traffic import Traffic, _leg

# Card authorisations that nobody captures expire this long after they are sent; the local stack's
# sweeper releases them within seconds.
EXPIRY_SECONDS = 8
COLLECTIONS = 12  # customers with a loan instalment due


class DayEnd:
    """Builds the requests that follow a day of `traffic`, remembering them in it."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self.rng = traffic.rng
        self.book = traffic.book

    def expiring_authorisations(self, count: int) -> list[str]:
        """Authorisations nobody will capture in time: they expire EXPIRY_SECONDS from now."""
        expires_at = (datetime.now(UTC) + timedelta(seconds=EXPIRY_SECONDS)).isoformat()
        bodies = []
        for _ in range(count):
            amount = self.rng.randrange(500, 12_000)
            customer = self.traffic.customer()
            legs = [_leg(customer, "debit", amount, "EUR"), _leg("settlement-EUR", "credit", amount, "EUR")]
            text = self.traffic.request("authorisation", legs, kind="hold", expires_at=expires_at)
            self.traffic.holds.append(json.loads(text))
            bodies.append(text)
        return bodies

    def late_captures(self) -> list[str]:
        """Merchants capturing authorisations that have expired meanwhile: HOLD_EXPIRED."""
        expired = [hold["posting_id"] for hold in self.traffic.holds if "expires_at" in hold]
        return [self._settle("capture", hold_id) for hold_id in self.rng.sample(expired, len(expired) // 3)]

    def settlements(self) -> list[str]:
        """After the day's traffic: captures (most for less, a few twice or for more), settlement
        chains, voids, refunds of card payments, and late captures of holds that have expired."""
        bodies = []
        for hold in self.traffic.holds:
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
            if self.rng.random() < 0.35:
                bodies.append(self._settlement_chain(hold, amount))
                continue
            bodies.append(self._settle("capture", hold_id, amount=amount))
            if self.rng.random() < 0.05:
                bodies.append(self._settle("capture", hold_id))  # a double capture
        payments = self._card_payments()
        for payment in self.rng.sample(payments, min(len(payments), max(1, len(payments) // 20))):
            amount = payment["legs"][0]["amount"]
            part = amount if self.rng.random() < 0.5 else max(1, amount // 3)
            bodies.append(self._refund(payment, part))
            if self.rng.random() < 0.2:
                bodies.append(self._refund(payment, amount))  # beyond the original with the first one
        return bodies

    def merchant_sweeps(self) -> list[str]:
        """End of day: each merchant's balance goes to its bank, up to its daily cap. The balancing
        leg moves whatever the merchant has, up to the cap; one with nothing is INSUFFICIENT_FUNDS."""
        bodies = []
        for merchant in self.book.merchants:
            cap = self.rng.randrange(60_000, 320_000)
            legs = [
                {**_leg(merchant, "debit", cap, "EUR"), "balancing": True},
                _leg("payouts-EUR", "credit", cap, "EUR"),
            ]
            bodies.append(self.traffic.request("sweep", legs, description=f"end-of-day sweep of {merchant}"))
            self.traffic.balancing.append(json.loads(bodies[-1])["posting_id"])
        return bodies

    def collections_and_refunds(self) -> list[str]:
        """Loan instalments, each collected as far as the customer can pay (a balancing leg), and
        refunds merchants fund out of their balance (chains), on other customers than the collections'."""
        due = self.rng.sample(self.book.customers["EUR"], min(COLLECTIONS, len(self.book.customers["EUR"])))
        bodies = []
        for customer in due:
            instalment = self.rng.randrange(5_000, 200_000)
            legs = [
                {**_leg(customer, "debit", instalment, "EUR"), "balancing": True},
                _leg("loans-EUR", "credit", instalment, "EUR"),
            ]
            bodies.append(self.traffic.request("collection", legs, description=f"loan instalment of {customer}"))
            self.traffic.balancing.append(json.loads(bodies[-1])["posting_id"])
        payments = [p for p in self._card_payments() if p["legs"][0]["account_id"] not in due]
        for payment in self.rng.sample(payments, min(len(payments), max(2, len(payments) // 40))):
            bodies.append(self._merchant_refund_chain(payment))
        return bodies

    def _card_payments(self) -> list[dict[str, Any]]:
        return [
            body
            for posting_id, body in self.traffic.by_id.items()
            if posting_id.startswith("demo-card-payment-") and posting_id not in self.traffic.refunded
        ]

    def _settle(self, kind: str, hold_id: str, amount: int | None = None) -> str:
        hold = self.traffic.by_id[hold_id]
        extra: dict[str, Any] = {"kind": kind, "hold_id": hold_id}
        if amount is not None:
            extra["legs"] = [{**leg, "amount": amount} for leg in hold["legs"]]
        body = {"posting_id": self.traffic.new_id(kind), "description": f"{kind} of {hold_id}", **extra}
        return self.traffic.remember(body)

    def _settlement_chain(self, hold: dict[str, Any], amount: int) -> str:
        """The card scheme settles an authorisation: capture it, pay the merchant its share out of
        settlement, take a 1% fee. Refused as a whole when the hold cannot be captured (it was refused)."""
        fee = max(1, amount // 100)
        merchant = self.rng.choice(self.book.merchants)
        capture = {
            "kind": "capture",
            "posting_id": self.traffic.new_id("capture"),
            "hold_id": hold["posting_id"],
            "legs": [{**leg, "amount": amount} for leg in hold["legs"]],
        }
        share_legs = [
            _leg("settlement-EUR", "debit", amount - fee, "EUR"),
            _leg(merchant, "credit", amount - fee, "EUR"),
        ]
        share = {"posting_id": self.traffic.new_id("merchant-share"), "legs": share_legs}
        take_fee = {
            "posting_id": self.traffic.new_id("fee"),
            "legs": [_leg("settlement-EUR", "debit", fee, "EUR"), _leg("fees-EUR", "credit", fee, "EUR")],
        }
        return self.traffic.chain("settlement-chain", [capture, share, take_fee])

    def _refund(self, payment: dict[str, Any], amount: int) -> str:
        customer, settlement = payment["legs"][0]["account_id"], payment["legs"][1]["account_id"]
        self.traffic.refunded.add(payment["posting_id"])
        body = {
            "kind": "reversal",
            "posting_id": self.traffic.new_id("refund"),
            "reverses": payment["posting_id"],
            "legs": [_leg(settlement, "debit", amount, "EUR"), _leg(customer, "credit", amount, "EUR")],
            "description": "refund",
        }
        return self.traffic.remember(body)

    def _merchant_refund_chain(self, payment: dict[str, Any]) -> str:
        """A merchant refunds a card payment out of its own balance: the payment is reversed and the
        merchant pays settlement back, in one chain; a merchant that cannot fund it refuses it all."""
        customer = payment["legs"][0]["account_id"]
        amount = payment["legs"][0]["amount"]
        refund = amount if self.rng.random() < 0.5 else max(1, amount // 2)
        merchant = self.rng.choice(self.book.merchants)
        self.traffic.refunded.add(payment["posting_id"])
        reversal = {
            "kind": "reversal",
            "posting_id": self.traffic.new_id("refund"),
            "reverses": payment["posting_id"],
            "legs": [_leg("settlement-EUR", "debit", refund, "EUR"), _leg(customer, "credit", refund, "EUR")],
        }
        funded = {
            "posting_id": self.traffic.new_id("merchant-refund"),
            "legs": [_leg(merchant, "debit", refund, "EUR"), _leg("settlement-EUR", "credit", refund, "EUR")],
        }
        return self.traffic.chain("refund-chain", [reversal, funded])
