"""The ledger's contract, on the in-memory fake and on the DynamoDB adapter alike.

What the steps rely on (posting.steps.ports.Ledger) and what operators read (`books`): a plan
applies all or nothing; each condition DynamoDB checks refuses exactly when it should, saying how
it found the accounts; checkpoints and reads add up.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from posting.domain.books import Checkpoint, Figures
from posting.domain.ledger import plan_request
from posting.domain.model import Account, AccountStatus
from posting.domain.outcomes import (
    AccountAlreadyExists,
    ConcurrentUpdate,
    Decision,
    PostingAlreadyDecided,
    Reason,
    Status,
)
from posting.domain.plan import PostingPlan
from posting.domain.reconciliation import reconcile_records
from posting.domain.requests import parse_request
from tests.builders import account, leg, request

OPENED_AT = "2026-11-27T09:00:00.000Z"
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def open_accounts(ledger: Any, *terms: dict[str, Any]) -> None:
    for each in terms:
        ledger.open_account(Account.model_validate(each, strict=False), OPENED_AT)


def plan(ledger: Any, body: dict[str, Any], moment: datetime, *, pin: bool = True) -> PostingPlan:
    parsed = parse_request(json.dumps(body))
    reference_id = body.get("hold_id") or body.get("reverses")
    reference = ledger.get_decision(reference_id) if reference_id else None
    from posting.domain.ledger import accounts_touched

    states = ledger.read_accounts(accounts_touched(parsed, reference))
    if not pin:
        states = {a: s.model_copy(update={"known": False}) for a, s in states.items()}
    return plan_request(parsed, states, reference, moment)


def record(ledger: Any, posting_plan: PostingPlan, message_id: str = "msg-1") -> Decision:
    return ledger.record_posting(posting_plan, posting_plan.request.content_hash(), message_id)


def post(ledger: Any, body: dict[str, Any], seconds: float, *, pin: bool = True) -> Decision:
    return record(ledger, plan(ledger, body, at(seconds), pin=pin), f"msg-{body['posting_id']}")


def everything(ledger: Any) -> list[str]:
    """The whole ledger as comparable text: equal means nothing was written."""
    return sorted(repr(record) for record in ledger.books.scan())


@pytest.fixture
def funded(ledger: Any) -> Any:
    """alice (no overdraft) holds 5000, bob (limit 100) nothing; funding and settlement are unlimited."""
    open_accounts(
        ledger,
        account("alice"),
        account("bob", overdraft_limit=100),
        account("funding", normal_balance="debit", overdraft_limit=None),
        {**account("settlement", overdraft_limit=None), "balance_shards": 4},
    )
    post(ledger, request("fund-1", leg("funding", "debit", 5000), leg("alice", "credit", 5000)), 0)
    return ledger


def test_an_account_opens_once_with_zero_figures(ledger):
    open_accounts(ledger, account("alice"), account("funding", overdraft_limit=None))
    with pytest.raises(AccountAlreadyExists):
        open_accounts(ledger, account("alice"))
    read = ledger.read_accounts(["alice", "funding", "ghost"])
    assert set(read) == {"alice", "funding"}
    assert (read["alice"].known, read["alice"].balance, read["alice"].version) == (True, 0, 0)
    assert read["funding"].known is False  # an account without a limit is read for its terms only
    assert ledger.books.get_account("funding").balance == 0
    assert ledger.books.get_account("ghost") is None


def test_a_pinned_posting_applies_once_and_knows_the_balances_it_leaves(funded):
    decision = post(funded, request("pay-1", leg("alice", "debit", 1250), leg("settlement", "credit", 1250)), 1)
    # Only the account with a limit it was planned from is listed: the settlement account has no item.
    assert [(b.account_id, b.balance, b.version, b.available) for b in decision.balances] == [("alice", 3750, 2, 3750)]
    assert funded.get_decision("pay-1") == decision
    books = funded.books.get_accounts(["alice", "settlement", "funding"])
    assert {a: (s.balance, s.version) for a, s in books.items()} == {
        "alice": (3750, 2),
        "settlement": (1250, 1),
        "funding": (5000, 1),
    }
    _, lines = funded.books.statement("alice")
    assert [(line.posting_id, line.signed_amount, line.balance_after, line.sequence) for line in lines] == [
        ("fund-1", 5000, 5000, 1),
        ("pay-1", -1250, 3750, 2),
    ]
    assert reconcile_records(funded.books.scan()).ok


def test_recording_a_decided_posting_id_again_writes_nothing_and_returns_the_decision(funded):
    body = request("pay-1", leg("alice", "debit", 100), leg("settlement", "credit", 100))
    first = post(funded, body, 1)
    before = everything(funded)
    with pytest.raises(PostingAlreadyDecided) as already:
        record(funded, plan(funded, body, at(2)), "msg-other")
    assert already.value.decision == first
    assert everything(funded) == before


def test_a_pin_that_missed_is_refused_with_the_account_as_found_and_writes_nothing(funded):
    stale = plan(funded, request("pay-1", leg("alice", "debit", 100), leg("settlement", "credit", 100)), at(2))
    post(funded, request("pay-2", leg("alice", "debit", 10), leg("settlement", "credit", 10)), 1)
    before = everything(funded)
    with pytest.raises(ConcurrentUpdate) as moved:
        record(funded, stale)
    assert moved.value.accounts["alice"].version == 2
    assert moved.value.accounts["alice"].balance == 4990
    assert everything(funded) == before
    # The same plan without its pin goes through: DynamoDB adds it to what is there.
    decision = record(funded, stale.blind())
    assert decision.balances == ()
    assert funded.books.get_account("alice").balance == 4890


def test_without_a_pin_the_limit_is_checked_by_the_write_itself(funded):
    before = everything(funded)
    too_much = request("pay-1", leg("alice", "debit", 5001), leg("settlement", "credit", 5001))
    with pytest.raises(ConcurrentUpdate) as refused:
        post(funded, too_much, 1, pin=False)
    assert refused.value.accounts["alice"].balance == 5000
    assert everything(funded) == before
    post(funded, request("pay-2", leg("alice", "debit", 5000), leg("settlement", "credit", 5000)), 2, pin=False)
    assert funded.books.get_account("alice").balance == 0
    assert reconcile_records(funded.books.scan()).ok


def test_legs_net_per_account_so_their_order_never_decides(funded):
    open_accounts(funded, account("carol"))
    post(funded, request("fund-2", leg("funding", "debit", 100), leg("carol", "credit", 100)), 1)
    # On a balance of 100, a debit of 150 and a credit of 100 net to -50: allowed in either order.
    body = request("swap", leg("carol", "debit", 150), leg("carol", "credit", 100), leg("settlement", "credit", 50))
    post(funded, body, 2, pin=False)
    assert funded.books.get_account("carol").balance == 50


def test_a_frozen_account_with_a_limit_refuses_at_the_write_but_takes_a_release(funded):
    hold = {**request("auth-1", leg("alice", "debit", 300), leg("settlement", "credit", 300)), "kind": "hold"}
    post(funded, hold, 1)
    stale = plan(funded, request("pay-1", leg("alice", "debit", 100), leg("settlement", "credit", 100)), at(3))
    funded.set_account_status("alice", AccountStatus.FROZEN)
    with pytest.raises(ConcurrentUpdate) as refused:
        record(funded, stale.blind())
    assert refused.value.accounts["alice"].account.status == AccountStatus.FROZEN
    post(funded, {"kind": "void", "posting_id": "void-1", "hold_id": "auth-1"}, 4, pin=False)
    assert funded.books.get_account("alice").available == 5000


def test_an_account_with_a_limit_takes_lines_in_the_order_its_balance_moves(funded):
    post(funded, request("pay-1", leg("alice", "debit", 10), leg("settlement", "credit", 10)), 5)
    with pytest.raises(ConcurrentUpdate) as refused:
        post(funded, request("pay-2", leg("alice", "debit", 10), leg("settlement", "credit", 10)), 5, pin=False)
    assert refused.value.accounts["alice"].last_recorded_at == "2026-11-27T10:00:05.000Z"


def test_a_settlement_of_a_hold_that_is_no_longer_open_is_refused_without_accounts(funded):
    hold = {**request("auth-1", leg("alice", "debit", 300), leg("settlement", "credit", 300)), "kind": "hold"}
    post(funded, hold, 1)
    capture = plan(funded, {"kind": "capture", "posting_id": "cap-1", "hold_id": "auth-1"}, at(3), pin=False)
    post(funded, {"kind": "void", "posting_id": "void-1", "hold_id": "auth-1"}, 2, pin=False)
    with pytest.raises(ConcurrentUpdate) as refused:
        record(funded, capture)
    assert refused.value.accounts == {}
    assert funded.get_decision("auth-1").hold_state == "voided"


def test_holds_on_an_unlimited_account_are_lines_and_pending_adds_up(funded):
    hold = {**request("auth-1", leg("alice", "debit", 300), leg("settlement", "credit", 300)), "kind": "hold"}
    post(funded, hold, 1)
    settlement = funded.books.get_account("settlement")
    assert (settlement.balance, settlement.pending_credits) == (0, 300)
    post(
        funded,
        {
            "kind": "capture",
            "posting_id": "cap-1",
            "hold_id": "auth-1",
            "legs": [leg("alice", "debit", 200), leg("settlement", "credit", 200)],
        },
        2,
    )
    settlement = funded.books.get_account("settlement")
    alice = funded.books.get_account("alice")
    assert (settlement.balance, settlement.pending_credits, alice.balance, alice.available) == (200, 0, 4800, 4800)
    assert [line.posting_id for line in funded.books.statement("settlement")[1]] == ["cap-1"]
    assert reconcile_records(funded.books.scan()).ok


def test_a_reversal_racing_another_is_refused_on_the_originals_version(funded):
    post(funded, request("pay-1", leg("alice", "debit", 1000), leg("settlement", "credit", 1000)), 1)
    refund = {
        "kind": "reversal",
        "posting_id": "ref-1",
        "reverses": "pay-1",
        "legs": [leg("settlement", "debit", 600), leg("alice", "credit", 600)],
    }
    racing = plan(funded, {**refund, "posting_id": "ref-2"}, at(3), pin=False)
    post(funded, refund, 2, pin=False)
    with pytest.raises(ConcurrentUpdate):
        record(funded, racing)
    assert funded.get_decision("pay-1").reversed == {"settlement|credit|EUR": 600, "alice|debit|EUR": 600}


def test_a_rejection_is_recorded_once(ledger):
    rejection = Decision(
        posting_id="pay-1",
        status=Status.REJECTED,
        reason=Reason.INSUFFICIENT_FUNDS,
        detail="not enough",
        request_hash="a" * 64,
        decided_at="2026-11-27T10:00:00.000Z",
        message_id="msg-1",
    )
    assert ledger.record_rejection(rejection) == rejection
    with pytest.raises(PostingAlreadyDecided) as already:
        ledger.record_rejection(rejection.model_copy(update={"message_id": "msg-2"}))
    assert already.value.decision.message_id == "msg-1"
    assert ledger.get_decision("ghost") is None


def test_expired_holds_are_found_by_their_expiry(funded):
    for n, seconds in enumerate((30, 90)):
        expires = (T0 + timedelta(seconds=seconds)).isoformat()
        body = {**request(f"auth-{n}", leg("alice", "debit", 10), leg("settlement", "credit", 10)), "kind": "hold"}
        post(funded, {**body, "expires_at": expires}, n + 1)
    assert [hold for hold, _ in funded.expired_holds("2026-11-27T10:01:00.000Z")] == ["auth-0"]


def test_checkpoints_sum_a_lane_and_reads_add_what_came_after(funded):
    for n in range(12):
        post(funded, request(f"pay-{n}", leg("alice", "debit", 10 + n), leg("settlement", "credit", 10 + n)), 1 + n)
    assert ("settlement", 4) in funded.unlimited_accounts()
    through = "2026-11-27T10:00:06.000Z"
    written = 0
    for lane in range(4):
        latest, since, lines = funded.lane_since_checkpoint("settlement", lane, through)
        assert latest is None
        if lines:
            checkpoint = Checkpoint("settlement", lane, through, since)
            assert funded.write_checkpoint(checkpoint)
            assert not funded.write_checkpoint(checkpoint)  # immutable: written once
            written += 1
    assert written
    latest, since, lines = funded.lane_since_checkpoint("settlement", 0, "2026-11-27T10:00:59.000Z")
    assert latest is not None and latest.through == through
    total = sum(range(10, 22))
    assert funded.books.get_account("settlement").balance == total
    assert funded.books.balance_as_of("settlement", through) == sum(range(10, 16))
    assert reconcile_records(funded.books.scan()).ok
    assert Figures.of([]) == Figures()


def test_reconciliation_catches_a_checkpoint_that_misses_a_line(funded):
    post(funded, request("pay-1", leg("alice", "debit", 10), leg("settlement", "credit", 10)), 1)
    lane = next(line.lane for line in funded.books.statement("settlement")[1])
    funded.write_checkpoint(Checkpoint("settlement", lane, "2026-11-27T10:00:02.000Z", Figures()))
    problems = reconcile_records(funded.books.scan()).problems
    assert any("checkpoint" in problem for problem in problems)


def test_a_write_that_would_take_a_balance_beyond_the_safe_integers_is_refused(ledger):
    from posting.domain.model import MAX_FIGURE

    open_accounts(ledger, account("funding", overdraft_limit=None), account("rich"))
    amounts = [10**15] * 9 + [MAX_FIGURE - 9 * 10**15 - 10]  # 10 short of the bound
    for n, amount in enumerate(amounts):
        post(ledger, request(f"fund-{n}", leg("funding", "debit", amount), leg("rich", "credit", amount)), n)
    before = everything(ledger)
    with pytest.raises(ConcurrentUpdate) as refused:
        post(ledger, request("over", leg("funding", "debit", 11), leg("rich", "credit", 11)), 20, pin=False)
    assert refused.value.accounts["rich"].balance == MAX_FIGURE - 10
    assert everything(ledger) == before
    post(ledger, request("exactly", leg("funding", "debit", 10), leg("rich", "credit", 10)), 21, pin=False)
    assert ledger.books.get_account("rich").balance == MAX_FIGURE


def test_a_chain_writes_its_members_decisions_and_settles_within_it(funded):
    from posting.domain.planning import plan as plan_any

    body = {
        "kind": "chain",
        "posting_id": "chain-1",
        "requests": [
            {**request("auth-1", leg("alice", "debit", 300), leg("settlement", "credit", 300)), "kind": "hold"},
            {"kind": "capture", "posting_id": "cap-1", "hold_id": "auth-1"},
            request("pay-1", leg("alice", "debit", 100), leg("bob", "credit", 100)),
        ],
    }
    parsed = parse_request(json.dumps(body))
    states = funded.read_accounts(["alice", "bob", "settlement"])
    chain_plan = plan_any(parsed, states, {}, at(5))
    decision = record(funded, chain_plan, "msg-chain")
    assert (decision.kind, [m["posting_id"] for m in decision.members]) == ("chain", ["auth-1", "cap-1", "pay-1"])
    hold = funded.get_decision("auth-1")
    assert (hold.hold_state, hold.settled_by, hold.chain_id) == ("captured", "cap-1", "chain-1")
    assert funded.get_decisions(["auth-1", "cap-1", "pay-1", "ghost"]).keys() == {"auth-1", "cap-1", "pay-1"}
    books = funded.books.get_accounts(["alice", "bob", "settlement"])
    assert {a: (s.balance, s.pending_debits) for a, s in books.items()} == {
        "alice": (4600, 0),
        "bob": (100, 0),
        "settlement": (300, 0),
    }
    assert [line.posting_id for line in funded.books.statement("alice")[1]] == ["fund-1", "cap-1", "pay-1"]
    assert reconcile_records(funded.books.scan()).ok
    # A member id that exists refuses the write (the post step then reads it and refuses the chain).
    again = plan_any(
        parse_request(json.dumps({**body, "posting_id": "chain-2"})),
        funded.read_accounts(["alice", "bob", "settlement"]),
        {},
        at(6),
    )
    before = everything(funded)
    with pytest.raises(ConcurrentUpdate):
        record(funded, again, "msg-chain-2")
    assert everything(funded) == before
