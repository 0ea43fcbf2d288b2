# ruff: noqa: PLR0911 - the model reads best as the rules are said, one per line
"""The lifecycle's rules without any AWS: request kinds, holds, captures, voids, expiry, reversals, hot
accounts, and a property test of random sequences of every kind against a plain in-memory model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from posting.domain.content import referenced_id
from posting.domain.ledger import plan_request
from posting.domain.model import Account, AccountState, parse_posting_request
from posting.domain.outcomes import ConcurrentUpdate, Decision, PostingRejected, Reason, Status, TransientPostingError
from posting.domain.plan import lane_of
from posting.domain.reconciliation import reconcile_records
from posting.domain.requests import (
    CaptureRequest,
    HoldRequest,
    ReversalRequest,
    VoidRequest,
    parse_request,
)
from posting.steps.post import decision_time
from tests.builders import account, leg, request
from tests.fake_ledger import FakeLedger

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


# -- the contract ---------------------------------------------------------------------------------------


def test_a_request_without_kind_is_todays_posting_with_todays_hash():
    body = json.dumps(request())
    parsed = parse_request(body)

    assert type(parsed).__name__ == "PostingRequest" and parsed.kind is None
    assert parsed.content_hash() == parse_posting_request(body).content_hash()
    # Saying the default kind changes nothing: a retry that adds it is the same request.
    assert parse_request(json.dumps({**request(), "kind": "posting"})).content_hash() == parsed.content_hash()


@pytest.mark.parametrize(
    ("body", "model"),
    [
        ({**request(), "kind": "hold", "expires_at": "2026-11-28T10:00:00+01:00"}, HoldRequest),
        (
            {"kind": "capture", "posting_id": "c-1", "hold_id": "h-1", "effective_at": "2026-11-27T10:00:00Z"},
            CaptureRequest,
        ),
        ({"kind": "void", "posting_id": "v-1", "hold_id": "h-1", "effective_at": "2026-11-27T10:00:00Z"}, VoidRequest),
        (
            {"kind": "reversal", "posting_id": "r-1", "reverses": "p-1", "effective_at": "2026-11-27T10:00:00Z"},
            ReversalRequest,
        ),
    ],
)
def test_every_kind_parses_into_its_own_model(body, model):
    assert isinstance(parse_request(json.dumps(body)), model)


@pytest.mark.parametrize(
    "body",
    [
        {**request(), "kind": "refund"},
        {**request(), "kind": 3},
        {"kind": "capture", "posting_id": "c-1", "effective_at": "2026-11-27T10:00:00Z"},  # no hold_id
        {"kind": "void", "posting_id": "v-1", "hold_id": "h-1", "effective_at": "2026-11-27T10:00:00Z", "legs": []},
        {**request(), "hold_id": "h-1"},  # a posting has no hold
        {**request(), "kind": "hold", "expires_at": "2026-11-28T10:00:00"},  # no zone
    ],
)
def test_malformed_kinds_are_invalid(body):
    with pytest.raises(ValidationError):
        parse_request(json.dumps(body))


def test_the_expiry_instant_is_hashed_in_utc():
    a = parse_request(json.dumps({**request(), "kind": "hold", "expires_at": "2026-11-28T10:00:00+01:00"}))
    b = parse_request(json.dumps({**request(), "kind": "hold", "expires_at": "2026-11-28T09:00:00Z"}))
    assert a.content_hash() == b.content_hash()


def test_lanes_are_for_unlimited_accounts_up_to_64_and_8_unless_asked():
    with pytest.raises(ValidationError, match="overdraft_limit null"):
        Account.model_validate({**account("acc-hot", overdraft_limit=0), "balance_shards": 4}, strict=False)
    with pytest.raises(ValidationError):
        Account.model_validate({**account("acc-hot", overdraft_limit=None), "balance_shards": 65}, strict=False)
    hot = Account.model_validate({**account("acc-hot", overdraft_limit=None), "balance_shards": 64}, strict=False)
    plain = Account.model_validate(account("acc-plain", overdraft_limit=None), strict=False)
    limited = Account.model_validate(account("acc-x"), strict=False)
    assert (hot.lanes, plain.lanes, limited.lanes) == (64, 8, 1)
    assert plain.is_unlimited and not limited.is_unlimited


def test_lanes_are_stable_and_spread():
    assert lane_of("pay-1", 8) == lane_of("pay-1", 8)
    assert len({lane_of(f"pay-{n}", 8) for n in range(200)}) == 8
    assert lane_of("anything", 1) == 0


def test_available_is_posted_less_outgoing_pending_on_either_normal_side():
    credit = AccountState(
        account=Account.model_validate(account("c"), strict=False), balance=100, pending_debits=30, pending_credits=50
    )
    debit = AccountState(
        account=Account.model_validate(account("d", normal_balance="debit"), strict=False),
        balance=100,
        pending_debits=30,
        pending_credits=50,
    )
    assert (credit.available, debit.available) == (70, 50)


# -- a plain model of the rules, and the domain driven through an in-memory store ------------------------

ACCOUNTS = {
    "alice": account("alice", overdraft_limit=0),
    "bob": account("bob", overdraft_limit=100),
    "asset": account("asset", normal_balance="debit", overdraft_limit=50),
    "merchant": account("merchant", overdraft_limit=0),
    "funding": account("funding", overdraft_limit=None),
    "settle": {**account("settle", overdraft_limit=None), "balance_shards": 4},
}


class Store:
    """The ledger in memory (the fake ledger), driven as the post step drives it: planned from a read
    (pinned) or from the terms alone (blind, the write checking the limit), rejections recorded."""

    def __init__(self) -> None:
        self.ledger = FakeLedger()
        for terms in ACCOUNTS.values():
            self.ledger.open_account(Account.model_validate(terms, strict=False), T0.isoformat())

    @property
    def decisions(self) -> dict[str, Decision]:
        return {d.posting_id: d for d in self.ledger.books.scan() if isinstance(d, Decision)}

    def figures(self, account_id: str) -> tuple[int, int, int]:
        state = self.ledger.books.get_account(account_id)
        assert state is not None
        return state.balance, state.pending_debits, state.pending_credits

    def state(self, account_id: str) -> AccountState:
        state = self.ledger.books.get_account(account_id)
        assert state is not None
        return state

    def submit(self, body: dict[str, Any], now: datetime, pin: bool = True) -> tuple[Status, Reason | None] | None:
        """What the post step decides (None: not decidable yet, retried later)."""
        parsed = parse_request(json.dumps(body))
        digest = parsed.content_hash()
        if (known := self.ledger.get_decision(parsed.posting_id)) is not None:
            if known.request_hash != digest:
                return Status.REJECTED, Reason.IDEMPOTENCY_CONFLICT
            return Status.DUPLICATE, known.reason
        reference_id = referenced_id(parsed)
        reference = self.ledger.get_decision(reference_id) if reference_id else None
        states = self.ledger.read_accounts(ACCOUNTS)
        if not pin:
            states = {a: s.model_copy(update={"known": False}) for a, s in states.items()}
        try:
            moment = decision_time(states, clock=now)
            try:
                plan = plan_request(parsed, states, reference, moment)
                self.ledger.record_posting(plan, digest, "m")
            except ConcurrentUpdate as refused:
                # The write refused what planning could not see: judged on what it found, it is refused.
                plan_request(parsed, states | refused.accounts, reference, moment)
                raise AssertionError(f"refused by the write, allowed on what it found: {refused}") from refused
        except TransientPostingError:
            return None
        except PostingRejected as rejection:
            if rejection.reason == Reason.UNBALANCED:
                return Status.REJECTED, rejection.reason  # decidable from content: not recorded
            self.ledger.record_rejection(
                Decision(
                    posting_id=parsed.posting_id,
                    status=Status.REJECTED,
                    reason=rejection.reason,
                    detail=rejection.detail,
                    request_hash=digest,
                    decided_at=now.isoformat(),
                )
            )
            return Status.REJECTED, rejection.reason
        return Status.POSTED, None


@dataclass
class Model:
    """The rules as a payments person states them, independently of the domain code."""

    posted: dict[str, int]
    pending: dict[str, list[int]]
    holds: dict[str, dict[str, Any]] = field(default_factory=dict)
    postings: dict[str, dict[str, Any]] = field(default_factory=dict)  # accepted postings/captures
    seen: dict[str, tuple[str, tuple[Status, Reason | None]]] = field(default_factory=dict)

    @staticmethod
    def terms(account_id: str) -> dict[str, Any]:
        return ACCOUNTS[account_id]

    def available(self, account_id: str) -> int:
        debits, credits = self.pending[account_id]
        normal = self.terms(account_id)["normal_balance"]
        return self.posted[account_id] - (debits if normal == "credit" else credits)

    def signed(self, account_id: str, side: str, amount: int) -> int:
        return amount if side == self.terms(account_id)["normal_balance"] else -amount

    def beyond_limit(self, account_id: str) -> bool:
        limit = self.terms(account_id)["overdraft_limit"]
        return limit is not None and self.available(account_id) < -limit

    def within_limits(self, before: dict[str, int]) -> bool:
        """A request is refused where it lowers an account's available balance overall and leaves it
        beyond its limit; the order of its legs does not matter."""
        return not any(self.available(a) < before[a] and self.beyond_limit(a) for a in ACCOUNTS)

    def post_legs(self, legs: list[dict[str, Any]], check: bool) -> bool:
        saved, before = dict(self.posted), {a: self.available(a) for a in ACCOUNTS}
        for one in legs:
            self.posted[one["account_id"]] += self.signed(one["account_id"], one["side"], one["amount"])
        if check and not self.within_limits(before):
            self.posted = saved
            return False
        return True

    def decide(self, body: dict[str, Any], now: datetime) -> tuple[Status, Reason | None] | None:
        key = json.dumps(body, sort_keys=True)
        if body["posting_id"] in self.seen:
            first, outcome = self.seen[body["posting_id"]]
            if first != key:
                return Status.REJECTED, Reason.IDEMPOTENCY_CONFLICT
            return Status.DUPLICATE, outcome[1]
        outcome = self._decide(body, now)
        if outcome is not None and outcome[1] != Reason.UNBALANCED:
            self.seen[body["posting_id"]] = (key, outcome)
        return outcome

    def _decide(self, body: dict[str, Any], now: datetime) -> tuple[Status, Reason | None] | None:  # noqa: PLR0912
        kind = body.get("kind", "posting")
        ok: tuple[Status, Reason | None] = (Status.POSTED, None)
        if kind == "posting":
            if not self.post_legs(body["legs"], check=True):
                return Status.REJECTED, Reason.INSUFFICIENT_FUNDS
            self.postings[body["posting_id"]] = {"legs": body["legs"], "reversed": {}}
            return ok
        if kind == "hold":
            if "expires_at" in body and datetime.fromisoformat(body["expires_at"]) <= now:
                return Status.REJECTED, Reason.HOLD_EXPIRED
            saved = {a: list(p) for a, p in self.pending.items()}
            before = {a: self.available(a) for a in ACCOUNTS}
            for one in body["legs"]:
                self.pending[one["account_id"]][0 if one["side"] == "debit" else 1] += one["amount"]
            if not self.within_limits(before):
                self.pending = saved
                return Status.REJECTED, Reason.INSUFFICIENT_FUNDS
            self.holds[body["posting_id"]] = {
                "legs": body["legs"],
                "state": "open",
                "expires_at": body.get("expires_at"),
            }
            return ok
        if kind in ("capture", "void", "expiry"):
            hold = self.holds.get(body["hold_id"])
            if hold is None:
                return Status.REJECTED, (
                    Reason.NOT_A_HOLD if body["hold_id"] in self.postings else Reason.HOLD_NOT_FOUND
                )
            if hold["state"] == "captured":
                return Status.REJECTED, Reason.HOLD_ALREADY_CAPTURED
            if hold["state"] == "voided":
                return Status.REJECTED, Reason.HOLD_ALREADY_VOIDED
            expired = hold["expires_at"] is not None and datetime.fromisoformat(hold["expires_at"]) <= now
            if hold["state"] == "expired" or (expired and kind != "expiry"):
                return Status.REJECTED, Reason.HOLD_EXPIRED
            if kind == "expiry" and not expired:
                return None
            legs = body.get("legs") or hold["legs"]
            if kind == "capture":
                for one in legs:
                    held = sum(
                        h["amount"]
                        for h in hold["legs"]
                        if (h["account_id"], h["side"]) == (one["account_id"], one["side"])
                    )
                    if one["amount"] > held:
                        return Status.REJECTED, Reason.EXCEEDS_HOLD
            for one in hold["legs"]:
                self.pending[one["account_id"]][0 if one["side"] == "debit" else 1] -= one["amount"]
            if kind == "capture":
                self.post_legs(legs, check=False)
                self.postings[body["posting_id"]] = {"legs": legs, "reversed": {}}
            hold["state"] = {"capture": "captured", "void": "voided", "expiry": "expired"}[kind]
            return ok
        original = self.postings.get(body["reverses"])
        if original is None:
            return Status.REJECTED, (
                Reason.NOT_REVERSIBLE if body["reverses"] in self.seen else Reason.POSTING_NOT_FOUND
            )
        mirror = {"debit": "credit", "credit": "debit"}
        legs = body.get("legs") or [{**one, "side": mirror[one["side"]]} for one in original["legs"]]
        totals = dict(original["reversed"])
        for one in legs:
            key = (one["account_id"], mirror[one["side"]])
            room = sum(o["amount"] for o in original["legs"] if (o["account_id"], o["side"]) == key)
            totals[key] = totals.get(key, 0) + one["amount"]
            if totals[key] > room:
                return Status.REJECTED, Reason.EXCEEDS_ORIGINAL
        if not self.post_legs(legs, check=True):
            return Status.REJECTED, Reason.INSUFFICIENT_FUNDS
        original["reversed"] = totals
        return ok


NAMES = ["alice", "bob", "asset", "merchant", "funding", "settle"]
step = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(
            ["posting", "posting", "hold", "hold", "capture", "void", "expiry", "reversal", "again"]
        ),
        "source": st.sampled_from(NAMES),
        "target": st.sampled_from(NAMES),
        "amount": st.integers(1, 400),
        "pick": st.integers(0, 50),
        "partial": st.booleans(),
        "expires_in": st.one_of(st.none(), st.integers(-1, 4)),
    }
)


def body_for(n: int, choice: dict[str, Any], bodies: list[dict[str, Any]], now: datetime) -> dict[str, Any] | None:
    kind, source, target, amount = choice["kind"], choice["source"], choice["target"], choice["amount"]
    if source == target:
        return None
    base = {"posting_id": f"p-{n}", "effective_at": "2026-11-27T10:00:00Z"}
    legs = [leg(source, "debit", amount), leg(target, "credit", amount)]
    holds = [b for b in bodies if b.get("kind") == "hold"]
    originals = [b for b in bodies if b.get("kind", "posting") in ("posting", "capture")]
    if kind == "posting":
        return {**base, "legs": legs}
    if kind == "hold":
        extra = (
            {}
            if choice["expires_in"] is None
            else {"expires_at": (now + timedelta(seconds=choice["expires_in"])).isoformat()}
        )
        return {**base, "kind": "hold", "legs": legs, **extra}
    if kind in ("capture", "void", "expiry"):
        if not holds:
            return {**base, "kind": kind, "hold_id": "ghost"}
        held = holds[choice["pick"] % len(holds)]
        body = {**base, "kind": kind, "hold_id": held["posting_id"]}
        if kind == "capture" and choice["partial"]:
            part = max(1, held["legs"][0]["amount"] * choice["pick"] // 40)
            body["legs"] = [{**one, "amount": part} for one in held["legs"]]
        return body
    if kind == "reversal":
        if not originals:
            return {**base, "kind": "reversal", "reverses": "ghost"}
        original = originals[choice["pick"] % len(originals)]
        body = {**base, "kind": "reversal", "reverses": original["posting_id"]}
        if choice["partial"] and original.get("legs"):
            mirror = {"debit": "credit", "credit": "debit"}
            body["legs"] = [{**one, "side": mirror[one["side"]], "amount": amount} for one in original["legs"]]
        return body
    return bodies[choice["pick"] % len(bodies)] if bodies else None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=40), st.lists(st.booleans(), min_size=40, max_size=40))
def test_random_sequences_of_every_kind_match_the_model(choices, pins):
    store = Store()
    model = Model(posted=dict.fromkeys(ACCOUNTS, 0), pending={a: [0, 0] for a in ACCOUNTS})
    bodies: list[dict[str, Any]] = []
    for n, choice in enumerate(choices):
        now = T0 + timedelta(seconds=n)
        body = body_for(n, choice, bodies, now)
        if body is None:
            continue
        expected = model.decide(body, now)
        actual = store.submit(body, now, pin=pins[n])
        assert actual == expected, (n, body)
        if expected is not None and expected[0] == Status.POSTED:
            bodies.append(body)
        for account_id in ACCOUNTS:
            posted, debits, credits = store.figures(account_id)
            assert (posted, debits, credits) == (model.posted[account_id], *model.pending[account_id]), account_id
            state = store.state(account_id)
            assert state.available == model.available(account_id)
            limit = ACCOUNTS[account_id]["overdraft_limit"]
            assert limit is None or state.available >= -limit
        trial = sum(model.posted[a] * (1 if ACCOUNTS[a]["normal_balance"] == "debit" else -1) for a in ACCOUNTS)
        assert trial == 0
    assert reconcile_records(store.ledger.books.scan()).ok


def test_a_settlement_names_its_state_and_side_effects():
    store = Store()
    store.submit({**request("fund", leg("funding", "debit", 500), leg("alice", "credit", 500))}, T0)
    store.submit({**request("h", leg("alice", "debit", 200), leg("settle", "credit", 200)), "kind": "hold"}, T0)
    assert store.figures("settle") == (0, 0, 200)
    assert store.submit({"kind": "capture", "posting_id": "c", "hold_id": "h", "effective_at": T0.isoformat()}, T0) == (
        Status.POSTED,
        None,
    )
    assert store.decisions["h"].hold_state == "captured"
    assert store.figures("settle") == (200, 0, 0) and store.figures("alice") == (300, 0, 0)


@pytest.mark.parametrize("name", ["posting", "hold", "capture", "void", "expiry", "reversal"])
def test_every_kind_has_a_sample_that_is_a_valid_request_of_its_kind(name):
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "events" / "kinds" / f"{name}.json"
    parsed = parse_request(sample.read_text())
    assert (parsed.kind or "posting") == name


@pytest.mark.parametrize(
    ("name", "feature"),
    [
        ("balancing", lambda r: any(leg.balancing for leg in r.legs)),
        ("preconditions", lambda r: {e.account_id for e in r.expect} == {"acc-alice"} and len(r.expect) == 2),
        ("value-dated", lambda r: r.effective_at is not None and r.external_ref),
    ],
)
def test_each_feature_of_a_posting_has_a_sample_that_carries_it(name, feature):
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "events" / "kinds" / f"{name}.json"
    assert feature(parse_request(sample.read_text()))
