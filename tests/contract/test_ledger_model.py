"""The post step against a reference ledger, on the fake ledger and on DynamoDB Local alike.

A hypothesis RuleBasedStateMachine sends requests of every kind through the validate and post
steps: postings, balancing legs, holds, captures, voids and reversals, each now and then with an
expectation (`expect`: a version pin that holds or misses, `available_at_least` one below, at and
one above the account's available balance); chains of them, including chains whose last member
overdraws, chains naming a member id that is already decided, and chains that capture a hold they
place; resends and reused ids; and requests racing each other from threads (two balancing debits
on one account with a limit among them). tests/reference_ledger.py decides each request from the
contract alone, and after every step the ledger must agree with it:

- every answer: status and reason, what a balancing leg moved, the member a refused chain names;
- every account's posted and pending figures, the version of each account with a limit, and no
  account beyond its limit;
- every decision: the same ids decided (a refused chain uses none of its members' ids), each with
  its status, reason and kind, a posted chain's members each with a decision naming the chain,
  holds' states, what each request posted and what each original has reversed;
- no id decided twice: a decision, once recorded, never changes its status, reason or content;
- a refused request moves nothing: the books change by its own rejection alone, if that;
- every invariant of posting.domain.reconciliation.reconcile_records, over the whole table;
- every figure an integer.

Racing requests must each get the answer they would have had in some order of them one at a time.

`make test` runs a quick profile. A deeper one runs many more and longer sequences:

    HYPOTHESIS_PROFILE=deep .venv/bin/pytest tests/contract/test_ledger_model.py
"""

from __future__ import annotations

import copy
import itertools
import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from posting.domain.books import Checkpoint
from posting.domain.model import AccountState
from posting.domain.outcomes import Decision, Outcome
from posting.domain.plan import Entry
from posting.domain.reconciliation import reconcile_records
from tests.builders import account, leg
from tests.fake_ledger import FakeLedger
from tests.post_helpers import item_for, open_accounts, outcome_of, post, post_concurrently, transfer
from tests.reference_ledger import (
    OPPOSITE,
    POSTED,
    REJECTED,
    Answer,
    Decided,
    ReferenceLedger,
    Refused,
    Terms,
    legs_of,
)

# (examples, steps per example) for each ledger, per profile.
PROFILES = {
    "default": {"fake": (60, 25), "dynamodb": (12, 15)},
    "deep": {"fake": (2000, 60), "dynamodb": (200, 40)},
}

ACCOUNTS = {
    "funding": account("funding", normal_balance="debit", overdraft_limit=None),
    "alice": account("alice"),
    "bob": account("bob", overdraft_limit=100),
    "shop": account("shop"),
    "asset": account("asset", normal_balance="debit", overdraft_limit=50),  # a credit lowers it
    "settle": {**account("settle", overdraft_limit=None), "balance_shards": 4},
}
NAMES = list(ACCOUNTS)
LIMITED = [name for name, terms in ACCOUNTS.items() if terms["overdraft_limit"] is not None]
OPENING = (("funding", "alice", 1000), ("funding", "bob", 300), ("asset", "settle", 400))
PAST, FUTURE = "2020-01-01T00:00:00+00:00", "2999-01-01T00:00:00+00:00"
EXPECTATIONS = ("version", "stale version", "at least -1", "at least 0", "at least +1", "untouched", "unlimited")

SPEC = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(
            ("posting", "posting", "balancing", "balancing", "hold", "hold", "capture", "capture", "void", "reversal")
        ),
        "source": st.sampled_from(NAMES),
        "target": st.sampled_from(NAMES),
        "amount": st.integers(1, 1200),
        "pick": st.integers(0, 30),
        "partial": st.booleans(),
        "balancing_leg": st.sampled_from((0, 1)),
        "expires": st.sampled_from((None, None, None, PAST, FUTURE)),
        "expect": st.sampled_from((None,) * 6 + EXPECTATIONS),
    }
)
EXPECT = st.sampled_from((None,) * 3 + EXPECTATIONS)


def terms_of(name: str) -> Terms:
    terms = ACCOUNTS[name]
    return Terms(terms["normal_balance"], terms["overdraft_limit"])


def build(spec: dict[str, Any], reference: ReferenceLedger, posting_id: str) -> dict[str, Any]:
    """A request from a spec, naming holds and originals the reference knows (`pick` chooses)."""
    kind, source, target, amount, pick = spec["kind"], spec["source"], spec["target"], spec["amount"], spec["pick"]
    if source == target:
        target = NAMES[(NAMES.index(source) + 1) % len(NAMES)]
    legs = [leg(source, "debit", amount), leg(target, "credit", amount)]
    body: dict[str, Any] = {"posting_id": posting_id}
    decided = reference.decisions
    if kind in ("posting", "balancing"):
        if kind == "balancing":
            legs[spec["balancing_leg"]]["balancing"] = True
        body["legs"] = legs
    elif kind == "hold":
        body |= {"kind": "hold", "legs": legs} | ({"expires_at": spec["expires"]} if spec["expires"] else {})
    elif kind in ("capture", "void"):
        holds = [i for i, d in decided.items() if d.kind == "hold" and d.status == POSTED]
        still_open = [i for i in holds if decided[i].hold_state == "open"]
        candidates = still_open if pick % 4 else holds  # now and then one already settled
        hold_id = candidates[pick % len(candidates)] if candidates else "no-such-hold"
        body |= {"kind": kind, "hold_id": hold_id}
        if kind == "capture" and spec["partial"] and hold_id in decided:
            body["legs"] = [leg(a, side, amount) for a, side, _ in decided[hold_id].pending]
    else:
        originals = [i for i, d in decided.items() if d.status == POSTED and d.kind in ("posting", "capture")]
        candidates = originals if pick % 5 else list(decided)  # now and then anything decided
        original = candidates[pick % len(candidates)] if candidates else "no-such-posting"
        body |= {"kind": "reversal", "reverses": original}
        if spec["partial"] and original in decided and decided[original].posted:
            body["legs"] = [leg(a, OPPOSITE[side], amount) for a, side, _ in decided[original].posted]
    if spec["expect"]:
        body["expect"] = [expectation(spec["expect"], reference.accounts_of(body), reference, pick)]
    return body


def expectation(option: str, involved: list[str], reference: ReferenceLedger, pick: int) -> dict[str, Any]:
    """An expectation of one of the accounts a request changes, as the reference has them now."""
    untouched = [a for a in LIMITED if a not in involved]
    if option == "untouched" and untouched:
        return {"account_id": untouched[pick % len(untouched)], "version": 0}
    if option in ("untouched", "unlimited"):
        unlimited = [a for a in involved if a not in LIMITED] or ["settle"]
        return {"account_id": unlimited[pick % len(unlimited)], "version": 0}
    limited = [a for a in involved if a in LIMITED] or ["alice"]
    account_id = limited[pick % len(limited)]
    version, available = reference.versions[account_id], reference.available(account_id)
    if option == "version":
        return {"account_id": account_id, "version": version}
    if option == "stale version":
        return {"account_id": account_id, "version": version + 1}
    return {"account_id": account_id, "available_at_least": available + int(option.removeprefix("at least "))}


def chain_of(posting_id: str, members: list[dict[str, Any]], expect: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"kind": "chain", "posting_id": posting_id, "requests": members} | ({"expect": [expect]} if expect else {})


def balancing_from(posting_id: str, source: str, target: str, amount: int) -> dict[str, Any]:
    """Up to `amount` out of `source`, on the side that lowers it, into `target`."""
    lowering = "debit" if ACCOUNTS[source]["normal_balance"] == "credit" else "credit"
    legs = {lowering: {**leg(source, lowering, amount), "balancing": True}, OPPOSITE[lowering]: None}
    legs[OPPOSITE[lowering]] = leg(target, OPPOSITE[lowering], amount)
    return {"posting_id": posting_id, "legs": [legs["debit"], legs["credit"]]}


def takes(payee: str, source: str) -> bool:
    """Whether `payee` always takes the other leg of a movement out of `source` (it cannot refuse it)."""
    same_side = ACCOUNTS[payee]["normal_balance"] == ACCOUNTS[source]["normal_balance"]
    return payee != source and (same_side or ACCOUNTS[payee]["overdraft_limit"] is None)


def describe(body: dict[str, Any], answer: Answer) -> str:
    """What a request was and how it was answered, for hypothesis's statistics (--hypothesis-show-statistics)."""
    kind = body.get("kind", "posting")
    if any(one.get("balancing") for one in body.get("legs", [])):
        kind += " with a balancing leg" + (
            " that moved less" if answer.moved not in (None, body["legs"][0]["amount"]) else ""
        )
    if body.get("expect"):
        kind += " with an expectation"
    if answer.member is not None:
        kind += f" refused at member {answer.member + 1} of {len(body['requests'])}"
    return f"{kind}: {answer.status} {answer.reason or ''}".strip()


def moved_by(outcome: Outcome, body: dict[str, Any]) -> int:
    return outcome.moved[0]["amount"] if outcome.moved else body["legs"][0]["amount"]


def agrees(outcome: Outcome, expected: Answer, body: dict[str, Any]) -> bool:
    if (outcome.status, outcome.reason) != (expected.status, expected.reason):
        return False
    if expected.moved is not None and moved_by(outcome, body) != expected.moved:
        return False
    if expected.member is not None:
        member = body["requests"][expected.member]["posting_id"]
        return (outcome.detail or "").startswith(f"requests[{expected.member}] ({member}): ")
    return True


class LedgerModel(RuleBasedStateMachine):
    """The ledger (through the post step) and the reference, side by side."""

    open_ledger: Callable[[], tuple[Any, Callable[[], None]]]  # a fresh ledger and how to drop it

    def __init__(self) -> None:
        super().__init__()
        self.ledger, self._drop = self.open_ledger()
        open_accounts(self.ledger, *ACCOUNTS.values())
        self.reference = ReferenceLedger({name: terms_of(name) for name in NAMES})
        self.counter = itertools.count()
        self.sent: list[dict[str, Any]] = []
        self.first_seen: dict[str, tuple[Any, ...]] = {}
        for source, target, amount in OPENING:
            self._send(transfer(self._new_id("open"), source, target, amount))

    def teardown(self) -> None:
        self._drop()

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}"

    # -- sending --------------------------------------------------------------------------------

    def _send(self, body: dict[str, Any]) -> Outcome:
        """Send one request in a new message; the answer must be the reference's, and a request not
        posted must leave the books as they were but for its own rejection."""
        fresh = body["posting_id"] not in self.reference.decisions
        expected = self.reference.submit(body)
        before = self._books() if expected.status != POSTED else None
        outcome = outcome_of(post(self.ledger, body))
        self.sent.append(body)
        assert agrees(outcome, expected, body), (body, outcome, expected)
        event(describe(body, expected))
        if before is not None:
            own = body["posting_id"] if fresh and body["posting_id"] in self.reference.decisions else None
            after = self._books()
            changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
            assert changed == ({f"decision {own}"} if own else set()), changed
        return outcome

    def _books(self) -> dict[str, str]:
        """Every record of the ledger as text, a decision under its posting_id."""
        books = {}
        for record in self.ledger.books.scan():
            if isinstance(record, Decision):
                books[f"decision {record.posting_id}"] = repr(record)
            else:
                books[repr(record)] = ""
        return books

    def _members(self, specs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ReferenceLedger, list[str]]:
        """Members built one after another on what the ones before them leave (a refused member
        leaves nothing); with the reference after them and the accounts they change."""
        trial = copy.deepcopy(self.reference)
        members, involved = [], []
        for spec in specs:
            member = build(spec, trial, self._new_id("m"))
            members.append(member)
            involved += trial.accounts_of(member)
            attempt = copy.deepcopy(trial)
            try:
                attempt.apply(member, chain_id="being built")
            except Refused:
                continue
            trial = attempt
        return members, trial, involved

    def _chain(self, specs: list[dict[str, Any]], expect: str | None, pick: int = 0) -> dict[str, Any]:
        members, _, involved = self._members(specs)
        return chain_of(
            self._new_id("c"), members, expectation(expect, involved, self.reference, pick) if expect else None
        )

    def _race(self, bodies: list[dict[str, Any]]) -> list[Outcome]:
        """Post the requests at once from threads. Their answers, and what they posted, must be
        those of some order of them one at a time (the answers alone may fit several orders: a
        chain's answer does not say what a balancing member moved)."""
        decided = post_concurrently(self.ledger, [item_for(body) for body in bodies], threads=len(bodies))
        outcomes = [outcome_of(item) for item in decided]
        self.sent += bodies
        figures = self._figures()
        tried = []
        for order in itertools.permutations(range(len(bodies))):
            trial = copy.deepcopy(self.reference)
            expected: list[Answer] = [Answer("")] * len(bodies)
            for index in order:
                expected[index] = trial.submit(bodies[index])
            if all(agrees(o, e, b) for o, e, b in zip(outcomes, expected, bodies, strict=True)):
                tried.append((order, expected))
                if figures == {name: (trial.posted[name], *trial.pending[name]) for name in NAMES}:
                    self.reference = trial
                    for body, answer in zip(bodies, expected, strict=True):
                        event(f"raced {describe(body, answer)}")
                    return outcomes
        raise AssertionError(
            f"no order of {bodies} answers {outcomes} and leaves {figures}; orders that answer so: {tried}"
        )

    def _figures(self) -> dict[str, tuple[int, int, int]]:
        states = self.ledger.books.get_accounts(NAMES)
        return {name: (s.balance, s.pending_debits, s.pending_credits) for name, s in states.items()}

    # -- rules ----------------------------------------------------------------------------------

    @rule(spec=SPEC)
    def send(self, spec):
        self._send(build(spec, self.reference, self._new_id("s")))

    @rule(specs=st.lists(SPEC, min_size=1, max_size=10), expect=EXPECT, pick=st.integers(0, 30))
    def send_a_chain(self, specs, expect, pick):
        self._send(self._chain(specs, expect, pick))

    @rule(
        specs=st.lists(SPEC, max_size=9),
        source=st.sampled_from([name for name in LIMITED if ACCOUNTS[name]["normal_balance"] == "credit"]),
        payee=st.sampled_from(("shop", "settle")),
        beyond=st.integers(1, 50),
    )
    def send_a_chain_whose_last_member_overdraws(self, specs, source, payee, beyond):
        members, trial, _ = self._members(specs)
        payee = "settle" if payee == source else payee
        amount = (trial.headroom(source) or 0) + beyond  # more than the members before it leave
        members.append(transfer(self._new_id("m"), source, payee, amount))
        outcome = self._send(chain_of(self._new_id("c"), members))
        assert outcome.status == REJECTED

    @rule(specs=st.lists(SPEC, min_size=1, max_size=5), pick=st.integers(0, 1000), position=st.integers(0, 4))
    def send_a_chain_naming_a_decided_id(self, specs, pick, position):
        members, _, _ = self._members(specs)
        decided = list(self.reference.decisions)
        index = position % len(members)
        members[index] = {**members[index], "posting_id": decided[pick % len(decided)]}
        self._send(chain_of(self._new_id("c"), members))

    @rule(
        source=st.sampled_from(("alice", "bob")),
        payee=st.sampled_from(("shop", "asset", "bob")),
        amount=st.integers(1, 900),
        captured=st.one_of(st.none(), st.integers(1, 900)),
        payout=st.booleans(),
        expect=EXPECT,
    )
    def send_a_chain_capturing_its_own_hold(self, *, source, payee, amount, captured, payout, expect):
        """A hold, its capture (whole or less) and a payout of the captured money, in one chain."""
        payee = "shop" if payee == source else payee
        hold_id = self._new_id("m")
        capture = {"kind": "capture", "posting_id": self._new_id("m"), "hold_id": hold_id}
        if captured is not None:
            capture["legs"] = [leg(source, "debit", captured), leg(payee, "credit", captured)]
        members = [{"kind": "hold", **transfer(hold_id, source, payee, amount)}, capture]
        if payout:
            members.append(transfer(self._new_id("m"), payee, "settle", captured or amount))
        involved = list(dict.fromkeys([source, payee]))
        chain = chain_of(
            self._new_id("c"), members, expectation(expect, involved, self.reference, 0) if expect else None
        )
        self._send(chain)

    @rule(pick=st.integers(0, 10_000))
    def resend(self, pick):
        """A request sent before (a chain's member alone, now and then), in a new message."""
        sent = self.sent[pick % len(self.sent)]
        if sent.get("kind") == "chain" and pick % 3 == 0:
            sent = sent["requests"][pick % len(sent["requests"])]
        self._send(sent)

    @rule(pick=st.integers(0, 10_000))
    def reuse_a_decided_id(self, pick):
        decided = list(self.reference.decisions)
        body = {**transfer(decided[pick % len(decided)], "funding", "shop", 1), "description": "another request"}
        assert self._send(body).reason == "IDEMPOTENCY_CONFLICT"

    @rule(
        source=st.sampled_from(LIMITED),
        payees=st.tuples(st.sampled_from(("shop", "settle", "funding")), st.sampled_from(("alice", "settle"))),
        amounts=st.tuples(st.integers(1, 1500), st.integers(1, 1500)),
    )
    def race_two_balancing_legs_on_one_account(self, source, payees, amounts):
        headroom = self.reference.headroom(source)
        assert headroom is not None
        bodies = [
            balancing_from(self._new_id("r"), source, payee if takes(payee, source) else "settle", amount)
            for payee, amount in zip(payees, amounts, strict=True)
        ]
        outcomes = self._race(bodies)
        moved = sum(moved_by(o, b) for o, b in zip(outcomes, bodies, strict=True) if o.status == POSTED)
        assert moved == min(sum(amounts), headroom)  # never more than it had to give, whatever the order
        state = self.ledger.books.get_account(source)
        assert state.available >= -ACCOUNTS[source]["overdraft_limit"]

    @rule(
        requests=st.lists(
            st.one_of(SPEC.map(lambda spec: [spec]), st.lists(SPEC, min_size=2, max_size=4)), min_size=2, max_size=3
        )
    )
    def race(self, requests):
        """Two or three requests (each a request or a chain) at once."""
        bodies = [
            build(specs[0], self.reference, self._new_id("r")) if len(specs) == 1 else self._chain(specs, None)
            for specs in requests
        ]
        self._race(bodies)

    # -- after every step -----------------------------------------------------------------------

    @invariant()
    def the_ledger_agrees_with_the_reference(self):
        records = list(self.ledger.books.scan())
        report = reconcile_records(records)
        assert report.ok, report.problems
        states = self.ledger.books.get_accounts(NAMES)
        assert sorted(states) == sorted(NAMES)
        for record in [*records, *states.values()]:
            assert all(type(figure) is int for figure in figures_of(record)), record
        for name, state in states.items():
            reference = self.reference
            assert (state.balance, state.pending_debits, state.pending_credits) == (
                reference.posted[name],
                *reference.pending[name],
            ), name
            limit = ACCOUNTS[name]["overdraft_limit"]
            if limit is not None:
                assert state.version == reference.versions[name], name
                assert state.available >= -limit, name
        decisions = {record.posting_id: record for record in records if isinstance(record, Decision)}
        assert sorted(decisions) == sorted(self.reference.decisions)
        for posting_id, decided in self.reference.decisions.items():
            decision = decisions[posting_id]
            assert (decision.status, decision.reason) == (decided.status, decided.reason), posting_id
            first = (decision.status, decision.reason, decision.request_hash, decision.decided_at, decision.chain_id)
            assert self.first_seen.setdefault(posting_id, first) == first, posting_id  # never decided twice
            if decided.status == POSTED:
                assert_remembers(decision, decided)


def assert_remembers(decision: Decision, decided: Decided) -> None:
    """A posted decision holds what the reference says it must: its kind, chain, legs and state."""
    posting_id = decision.posting_id
    assert ((decision.kind or "posting"), decision.chain_id) == (decided.kind, decided.chain_id), posting_id
    if decided.kind == "chain":
        assert [member["posting_id"] for member in decision.members or []] == decided.members, posting_id
    if decided.kind in ("posting", "capture", "reversal"):
        posted = decision.posted_legs if decision.posted_legs is not None else (decision.request or {})["legs"]
        assert legs_of({"legs": posted}) == decided.posted, posting_id
    if decided.kind == "hold":
        assert (legs_of({"legs": decision.pending_legs}), decision.hold_state) == (
            decided.pending,
            decided.hold_state,
        ), posting_id
    reversed_now = {f"{a}|{side}|EUR": amount for (a, side), amount in decided.reversed.items()}
    assert (decision.reversed or {}) == reversed_now, posting_id


def figures_of(record: AccountState | Entry | Checkpoint | Decision) -> list[Any]:
    """Every money figure or count a record carries."""
    if isinstance(record, AccountState):
        figures = [record.balance, record.version, record.pending_debits, record.pending_credits]
        return figures + ([record.recorded_headroom] if record.recorded_headroom is not None else [])
    if isinstance(record, Entry):
        figures = [record.amount, record.signed_amount, record.pending_debits, record.pending_credits, record.sequence]
        return figures + ([record.balance_after] if record.balance_after is not None else [])
    if isinstance(record, Checkpoint):
        totals = record.figures
        return [totals.posted, totals.pending_debits, totals.pending_credits, totals.entries]
    legs = [*(record.posted_legs or []), *(record.pending_legs or []), *((record.request or {}).get("legs") or [])]
    figures = [one["amount"] for one in legs] + list((record.reversed or {}).values())
    for balance in record.balances:
        figures += [balance.balance, balance.version, balance.pending_debits, balance.pending_credits]
    return figures + ([record.version] if record.version is not None else [])


# -- the test, on each ledger ---------------------------------------------------------------------


@pytest.fixture(params=["fake", pytest.param("dynamodb", marks=pytest.mark.local_stack)])
def ledger_kind(request: pytest.FixtureRequest) -> tuple[str, Callable[[], tuple[Any, Callable[[], None]]]]:
    """Which ledger, and how to open a fresh one for each example (a new table on DynamoDB Local)."""
    if request.param == "fake":
        return "fake", lambda: (FakeLedger(), lambda: None)
    from posting.adapters.ledger_table import LedgerTable
    from posting_cli.local.tables import create_table

    client = request.getfixturevalue("dynamodb_client")
    properties = request.getfixturevalue("template").table_definition("LedgerTable")

    def open_table() -> tuple[Any, Callable[[], None]]:
        name = f"model-{uuid.uuid4().hex[:12]}"
        create_table(client, name, properties)
        return LedgerTable(client, name), lambda: client.delete_table(TableName=name)

    return "dynamodb", open_table


def test_the_ledger_agrees_with_a_reference_of_its_rules(ledger_kind):
    kind, open_ledger = ledger_kind
    examples, steps = PROFILES[os.environ.get("HYPOTHESIS_PROFILE", "default")][kind]
    model = type(f"LedgerModelOn{kind.title()}", (LedgerModel,), {"open_ledger": staticmethod(open_ledger)})
    run_state_machine_as_test(
        model,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.function_scoped_fixture,
                HealthCheck.large_base_example,  # long runs of many steps are the point
                HealthCheck.data_too_large,
            ],
        ),
    )
