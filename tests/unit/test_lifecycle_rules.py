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

from posting.domain.ledger import PostingPlan, decision_for, plan_request, referenced_id, shard_of
from posting.domain.model import Account, AccountState, parse_posting_request
from posting.domain.outcomes import Decision, PostingRejected, Reason, Status, TransientPostingError
from posting.domain.requests import (
    CaptureRequest,
    HoldRequest,
    ReversalRequest,
    VoidRequest,
    parse_request,
)
from tests.builders import account, leg, request

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


# -- the contract ---------------------------------------------------------------------------------------


def test_a_request_without_kind_is_todays_posting_with_todays_hash():
    body = json.dumps(request())
    parsed = parse_request(body)

    assert type(parsed).__name__ == "PostingRequest" and parsed.kind is None
    assert parsed.content_hash() == parse_posting_request(body).content_hash()
    assert parse_request(json.dumps({**request(), "kind": "posting"})).content_hash() != parsed.content_hash()


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


def test_a_hot_account_needs_no_limit_and_at_most_64_shards():
    with pytest.raises(ValidationError, match="overdraft_limit null"):
        Account.model_validate({**account("acc-hot", overdraft_limit=0), "balance_shards": 4}, strict=False)
    with pytest.raises(ValidationError):
        Account.model_validate({**account("acc-hot", overdraft_limit=None), "balance_shards": 65}, strict=False)
    hot = Account.model_validate({**account("acc-hot", overdraft_limit=None), "balance_shards": 64}, strict=False)
    assert hot.is_hot and not Account.model_validate(account("acc-x"), strict=False).is_hot


def test_shards_are_stable_and_spread():
    assert shard_of("pay-1", 8) == shard_of("pay-1", 8)
    assert len({shard_of(f"pay-{n}", 8) for n in range(200)}) == 8
    assert shard_of("anything", 1) == 0


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


@dataclass
class Store:
    """The table, in memory: applies plans exactly as the adapter's transaction does."""

    accounts: dict[str, AccountState]
    shards: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)

    def planning_accounts(self) -> dict[str, AccountState]:
        return {a: (AccountState(account=s.account) if s.account.is_hot else s) for a, s in self.accounts.items()}

    def figures(self, account_id: str) -> tuple[int, int, int]:
        state = self.accounts[account_id]
        if not state.account.is_hot:
            return state.balance, state.pending_debits, state.pending_credits
        rows = [v for (a, _), v in self.shards.items() if a == account_id]
        return sum(r[0] for r in rows), sum(r[1] for r in rows), sum(r[2] for r in rows)

    def apply(self, plan: PostingPlan, decision: Decision) -> None:
        for change in plan.changes:
            state = self.accounts[change.account_id]
            assert (state.version, state.pending_debits, state.pending_credits) == (
                change.expected_version,
                change.expected_pending_debits,
                change.expected_pending_credits,
            )
            self.accounts[change.account_id] = state.model_copy(
                update={
                    "balance": change.balance,
                    "version": change.version,
                    "pending_debits": change.pending_debits,
                    "pending_credits": change.pending_credits,
                }
            )
        for shard in plan.shard_changes:
            row = self.shards.setdefault((shard.account_id, shard.shard), [0, 0, 0, 0])
            for index, delta in enumerate((shard.posted, shard.pending_debits, shard.pending_credits, shard.entries)):
                row[index] += delta
        if plan.settlement is not None:
            hold = self.decisions[plan.settlement.hold_id]
            assert hold.hold_state == "open"
            self.decisions[hold.posting_id] = hold.model_copy(
                update={"hold_state": plan.settlement.state, "settled_by": decision.posting_id}
            )
        if plan.reversal is not None:
            original = self.decisions[plan.reversal.original_id]
            assert (original.version or 0) == plan.reversal.expected_version
            self.decisions[original.posting_id] = original.model_copy(
                update={
                    "reversed": plan.reversal.reversed,
                    "version": plan.reversal.expected_version + 1,
                    "reversed_by": [*(original.reversed_by or []), decision.posting_id],
                }
            )
        self.decisions[decision.posting_id] = decision

    def submit(self, body: dict[str, Any], now: datetime) -> tuple[Status, Reason | None] | None:
        """What the post step decides (None: not decidable yet, retried later)."""
        parsed = parse_request(json.dumps(body))
        digest = parsed.content_hash()
        if (known := self.decisions.get(parsed.posting_id)) is not None:
            if known.request_hash != digest:
                return Status.REJECTED, Reason.IDEMPOTENCY_CONFLICT
            return Status.DUPLICATE, known.reason
        reference_id = referenced_id(parsed)
        reference = self.decisions.get(reference_id) if reference_id else None
        try:
            plan = plan_request(parsed, self.planning_accounts(), reference, now)
        except TransientPostingError:
            return None
        except PostingRejected as rejection:
            if rejection.reason == Reason.UNBALANCED:
                return Status.REJECTED, rejection.reason  # decidable from content: not recorded
            self.decisions[parsed.posting_id] = Decision(
                posting_id=parsed.posting_id,
                status=Status.REJECTED,
                reason=rejection.reason,
                detail=rejection.detail,
                request_hash=digest,
                decided_at=now.isoformat(),
            )
            return Status.REJECTED, rejection.reason
        self.apply(plan, decision_for(plan, digest, "m", now.isoformat()))
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

    def post_legs(self, legs: list[dict[str, Any]], check: bool) -> bool:
        saved = dict(self.posted)
        for one in legs:
            change = self.signed(one["account_id"], one["side"], one["amount"])
            self.posted[one["account_id"]] += change
            if check and change < 0 and self.beyond_limit(one["account_id"]):
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
            for one in body["legs"]:
                self.pending[one["account_id"]][0 if one["side"] == "debit" else 1] += one["amount"]
                if one["side"] != self.terms(one["account_id"])["normal_balance"] and self.beyond_limit(
                    one["account_id"]
                ):
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
@given(st.lists(step, min_size=1, max_size=40))
def test_random_sequences_of_every_kind_match_the_model(choices):
    accounts = {a: AccountState(account=Account.model_validate(t, strict=False)) for a, t in ACCOUNTS.items()}
    store = Store(accounts=accounts)
    model = Model(posted=dict.fromkeys(ACCOUNTS, 0), pending={a: [0, 0] for a in ACCOUNTS})
    bodies: list[dict[str, Any]] = []
    for n, choice in enumerate(choices):
        now = T0 + timedelta(seconds=n)
        body = body_for(n, choice, bodies, now)
        if body is None:
            continue
        expected = model.decide(body, now)
        actual = store.submit(body, now)
        assert actual == expected, (n, body)
        if expected is not None and expected[0] == Status.POSTED:
            bodies.append(body)
        for account_id in ACCOUNTS:
            posted, debits, credits = store.figures(account_id)
            assert (posted, debits, credits) == (model.posted[account_id], *model.pending[account_id]), account_id
            state = replace_figures(store.accounts[account_id], posted, debits, credits)
            assert state.available == model.available(account_id)
            limit = ACCOUNTS[account_id]["overdraft_limit"]
            assert limit is None or state.available >= -limit
        trial = sum(model.posted[a] * (1 if ACCOUNTS[a]["normal_balance"] == "debit" else -1) for a in ACCOUNTS)
        assert trial == 0


def replace_figures(state: AccountState, posted: int, debits: int, credits: int) -> AccountState:
    return state.model_copy(update={"balance": posted, "pending_debits": debits, "pending_credits": credits})


def test_a_settlement_names_its_state_and_side_effects():
    accounts = {a: AccountState(account=Account.model_validate(t, strict=False)) for a, t in ACCOUNTS.items()}
    store = Store(accounts=accounts)
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
