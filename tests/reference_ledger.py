"""A reference ledger for the model tests: the contract's rules (docs/contract.md) read afresh, over
plain dicts and integers. It imports nothing from `posting`.

tests/contract/test_ledger_model.py sends the same requests to the post step and to this reference
and checks, after every step, that they agree: each answer, every account's figures, and every
decision with what it remembers (holds' states, reversed amounts, chains' members). Where the
contract leaves the order of two checks open, this follows the ledger's: a request its kind refuses
is refused for that, and its expectations are looked at only when its kind would accept it.

Requests are the JSON-ready dicts a client sends. Two requests are the same request when their
canonical JSON is equal (the model never sends a request in two spellings).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

POSTED, REJECTED, DUPLICATE = "POSTED", "REJECTED", "DUPLICATE"
OPPOSITE = {"debit": "credit", "credit": "debit"}
SETTLING = {"capture": "captured", "void": "voided"}
PENDING = {"debit": 0, "credit": 1}  # a side's place in ReferenceLedger.pending

Leg = tuple[str, str, int]  # account_id, side, amount (one currency throughout)


class Refused(Exception):
    """The ledger must refuse the request, for this reason."""

    def __init__(self, reason: str, member: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.member = member  # a chain refused for one of its members: which


@dataclass(frozen=True)
class Terms:
    normal: str  # "credit": balance = credits - debits; "debit": the reverse
    limit: int | None  # how far available may go below zero; None: no limit


@dataclass
class Decided:
    """What the ledger must hold under one posting_id."""

    content: str
    status: str
    reason: str | None = None
    kind: str = "posting"
    chain_id: str | None = None  # a chain's member: its chain
    members: list[str] | None = None  # a chain: its members' ids, in order
    posted: list[Leg] = field(default_factory=list)  # what it posted (posting, capture, reversal)
    pending: list[Leg] = field(default_factory=list)  # a hold: what it holds
    hold_state: str | None = None
    reversed: dict[tuple[str, str], int] = field(default_factory=dict)  # (account, original side) -> amount


@dataclass(frozen=True)
class Answer:
    """What the post step must answer a new message with. `moved`: what a balancing posting moved."""

    status: str
    reason: str | None = None
    moved: int | None = None
    member: int | None = None  # a chain refused for one of its members: which


def canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def legs_of(body: dict[str, Any]) -> list[Leg]:
    return [(one["account_id"], one["side"], one["amount"]) for one in body.get("legs") or []]


def referenced(body: dict[str, Any]) -> str | None:
    return body.get("hold_id") or body.get("reverses")


def refused_by_content(body: dict[str, Any]) -> str | None:
    """INVALID_REQUEST for what the model sends that no ledger may read: a request acting on its own
    id, or a chain whose members' ids are not all its own. Refused so, nothing is recorded."""
    if referenced(body) == body["posting_id"]:
        return "INVALID_REQUEST"
    if body.get("kind") == "chain":
        ids = [body["posting_id"], *(member["posting_id"] for member in body["requests"])]
        if len(set(ids)) != len(ids):
            return "INVALID_REQUEST"
        return next(filter(None, map(refused_by_content, body["requests"])), None)
    return None


@dataclass
class ReferenceLedger:
    terms: dict[str, Terms]
    posted: dict[str, int] = field(default_factory=dict)
    pending: dict[str, list[int]] = field(default_factory=dict)  # [debits, credits]
    versions: dict[str, int] = field(default_factory=dict)  # posted lines so far
    decisions: dict[str, Decided] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for account_id in self.terms:
            self.posted.setdefault(account_id, 0)
            self.pending.setdefault(account_id, [0, 0])
            self.versions.setdefault(account_id, 0)

    # -- figures --------------------------------------------------------------------------------

    def available(self, account_id: str) -> int:
        """Posted less what holds may still take out (pending money coming in is not spendable)."""
        debits, credits = self.pending[account_id]
        return self.posted[account_id] - (debits if self.terms[account_id].normal == "credit" else credits)

    def headroom(self, account_id: str) -> int | None:
        limit = self.terms[account_id].limit
        return None if limit is None else self.available(account_id) + limit

    def signed(self, account_id: str, side: str, amount: int) -> int:
        return amount if side == self.terms[account_id].normal else -amount

    def accounts_of(self, body: dict[str, Any]) -> list[str]:
        """The accounts a request changes: its legs', its hold's, or its original's when it has none."""
        legs = legs_of(body)
        reference = self.decisions.get(referenced(body) or "")
        if reference is not None and body.get("kind") in ("capture", "void"):
            legs += reference.pending
        if reference is not None and body.get("kind") == "reversal" and not legs:
            legs += reference.posted
        return list(dict.fromkeys(account_id for account_id, _, _ in legs))

    # -- deciding -------------------------------------------------------------------------------

    def submit(self, body: dict[str, Any]) -> Answer:
        """Decide a request sent in a new message, as the validate and post steps together must."""
        if reason := refused_by_content(body):
            return Answer(REJECTED, reason)
        posting_id, content = body["posting_id"], canonical(body)
        if (recorded := self.decisions.get(posting_id)) is not None:
            if recorded.content != content:
                return Answer(REJECTED, "IDEMPOTENCY_CONFLICT")
            return Answer(DUPLICATE, recorded.reason)
        kind = body.get("kind", "posting")
        trial = copy.deepcopy(self)
        try:
            if kind == "chain" and any(member["posting_id"] in self.decisions for member in body["requests"]):
                raise Refused("CHAIN_MEMBER_DECIDED")
            trial.apply(body)
        except Refused as refused:
            self.decisions[posting_id] = Decided(content, REJECTED, refused.reason, kind)
            return Answer(REJECTED, refused.reason, member=refused.member)
        self.__dict__.update(trial.__dict__)
        if any(one.get("balancing") for one in body.get("legs", [])):
            return Answer(POSTED, moved=self.decisions[posting_id].posted[0][2])
        return Answer(POSTED)

    def apply(self, body: dict[str, Any], chain_id: str | None = None) -> list[str]:
        """Apply an accepted request to these figures and decisions and return the accounts it
        changed; raises Refused, leaving them half-changed (callers apply to a copy).

        A chain's members are applied in order, each on what the ones before it left; the chain's
        own expectations are of the accounts its members change, as they were before the chain."""
        kind = body.get("kind", "posting")
        before = {a: (self.available(a), self.versions[a]) for a in self.terms}
        if kind == "chain":
            involved: list[str] = []
            for index, member in enumerate(body["requests"]):
                try:
                    involved += self.apply(member, chain_id=body["posting_id"])
                except Refused as refused:
                    raise Refused(refused.reason, member=index) from None
            self._check_expectations(body, before, involved)
            members = [member["posting_id"] for member in body["requests"]]
            self.decisions[body["posting_id"]] = Decided(canonical(body), POSTED, kind="chain", members=members)
            return involved
        involved = self.accounts_of(body)
        if kind == "posting":
            decided = self._posting(body)
        elif kind == "hold":
            decided = self._hold(body)
        elif kind in SETTLING:
            decided = self._settle(body, kind)
        else:
            decided = self._reversal(body)
        self._check_expectations(body, before, involved)
        decided.content, decided.chain_id = canonical(body), chain_id
        self.decisions[body["posting_id"]] = decided
        return involved

    def _posting(self, body: dict[str, Any]) -> Decided:
        legs = legs_of(body)
        balancing = next((one for one in body["legs"] if one.get("balancing")), None)
        if balancing is not None:
            account_id, side, amount = balancing["account_id"], balancing["side"], balancing["amount"]
            headroom = self.headroom(account_id)
            if headroom is not None and self.signed(account_id, side, amount) < 0:
                moved = min(amount, headroom)
                if moved <= 0:
                    raise Refused("INSUFFICIENT_FUNDS")
                legs = [(a, s, moved) for a, s, _ in legs]
        self._move(posts=legs)
        return Decided("", POSTED, posted=legs)

    def _hold(self, body: dict[str, Any]) -> Decided:
        expires_at = body.get("expires_at")
        if expires_at is not None and datetime.fromisoformat(expires_at) <= datetime.now(UTC):
            raise Refused("HOLD_EXPIRED")
        legs = legs_of(body)
        self._move(holds=legs)
        return Decided("", POSTED, kind="hold", pending=legs, hold_state="open")

    def _settle(self, body: dict[str, Any], kind: str) -> Decided:
        hold = self.decisions.get(body["hold_id"])
        if hold is None or hold.status != POSTED:
            raise Refused("HOLD_NOT_FOUND")
        if hold.kind != "hold":
            raise Refused("NOT_A_HOLD")
        if hold.hold_state == "captured":
            raise Refused("HOLD_ALREADY_CAPTURED")
        if hold.hold_state == "voided":
            raise Refused("HOLD_ALREADY_VOIDED")
        posts: list[Leg] = []
        if kind == "capture":
            posts = legs_of(body) or list(hold.pending)
            held = _totals(hold.pending)
            if any(amount > held.get(key, 0) for key, amount in _totals(posts).items()):
                raise Refused("EXCEEDS_HOLD")
        self._move(releases=hold.pending, posts=posts)
        hold.hold_state = SETTLING[kind]
        return Decided("", POSTED, kind=kind, posted=posts)

    def _reversal(self, body: dict[str, Any]) -> Decided:
        original = self.decisions.get(body["reverses"])
        if original is None:
            raise Refused("POSTING_NOT_FOUND")
        if original.status != POSTED or original.kind not in ("posting", "capture"):
            raise Refused("NOT_REVERSIBLE")
        legs = legs_of(body) or [(a, OPPOSITE[s], amount) for a, s, amount in original.posted]
        room = _totals(original.posted)
        totals = dict(original.reversed)
        for (account_id, side), amount in _totals(legs).items():
            key = (account_id, OPPOSITE[side])
            totals[key] = totals.get(key, 0) + amount
            if totals[key] > room.get(key, 0):
                raise Refused("EXCEEDS_ORIGINAL")
        self._move(posts=legs)
        original.reversed = totals
        return Decided("", POSTED, kind="reversal", posted=legs)

    def _move(self, releases: Sequence[Leg] = (), holds: Sequence[Leg] = (), posts: Sequence[Leg] = ()) -> None:
        """Release, hold and post, then refuse if an account with a limit went down beyond it."""
        involved = list(dict.fromkeys(a for a, _, _ in [*releases, *holds, *posts]))
        before = {a: self.available(a) for a in involved}
        for account_id, side, amount in releases:
            self.pending[account_id][PENDING[side]] -= amount
            assert self.pending[account_id][PENDING[side]] >= 0, "a hold released more than it held"
        for account_id, side, amount in holds:
            self.pending[account_id][PENDING[side]] += amount
        for account_id, side, amount in posts:
            self.posted[account_id] += self.signed(account_id, side, amount)
            self.versions[account_id] += 1
        for account_id in involved:
            limit = self.terms[account_id].limit
            after = self.available(account_id)
            if limit is not None and after < before[account_id] and after < -limit:
                raise Refused("INSUFFICIENT_FUNDS")

    def _check_expectations(
        self, body: dict[str, Any], before: dict[str, tuple[int, int]], involved: list[str]
    ) -> None:
        """Each expectation names an account with a limit the request changes, and holds on its
        figures as they were just before the request."""
        for expectation in body.get("expect") or ():
            account_id = expectation["account_id"]
            if account_id not in involved or self.terms[account_id].limit is None:
                raise Refused("PRECONDITION_FAILED")
            available, version = before[account_id]
            if expectation.get("version", version) != version:
                raise Refused("PRECONDITION_FAILED")
            if available < expectation.get("available_at_least", available):
                raise Refused("PRECONDITION_FAILED")


def _totals(legs: list[Leg]) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = {}
    for account_id, side, amount in legs:
        totals[(account_id, side)] = totals.get((account_id, side), 0) + amount
    return totals
