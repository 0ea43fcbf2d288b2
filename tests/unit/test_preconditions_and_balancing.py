"""Client preconditions (`expect`) and balancing legs, through the post step on the fake ledger.

A request may say what it expects of an account it changes (its version, or at least so much
available); if that does not hold when the request is decided it is refused with
PRECONDITION_FAILED, naming the expectation, and the id is consumed like any refusal decided on the
ledger's state. A leg may be `balancing`: it then moves what the account can give, up to its
amount, and the result and the books carry the amount actually moved.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posting.domain.outcomes import Reason, Status
from posting.domain.requests import parse_request
from posting.steps.validate import validate_record
from tests.builders import account, leg, request, sqs_record
from tests.fake_ledger import FakeLedger
from tests.post_helpers import FUNDING, assert_books_balance, fund, open_accounts, outcome_of, post, transfer


@pytest.fixture
def ledger() -> FakeLedger:
    fake = FakeLedger()
    open_accounts(
        fake,
        account(FUNDING, overdraft_limit=None),
        account("acc-alice"),
        account("acc-bob"),
        account("acc-settlement", overdraft_limit=None),
    )
    fund(fake, "acc-alice", 5000)  # alice: version 1, 5000 available
    return fake


def expecting(body: dict, *expectations: dict) -> dict:
    return {**body, "expect": list(expectations)}


# -- preconditions ------------------------------------------------------------------------------------------


def test_a_request_whose_expectations_hold_posts(ledger):
    body = expecting(
        transfer("pay-1", "acc-alice", "acc-bob", 100),
        {"account_id": "acc-alice", "version": 1},
        {"account_id": "acc-alice", "available_at_least": 5000},
    )
    assert outcome_of(post(ledger, body)).status == Status.POSTED


@pytest.mark.parametrize(
    ("expectation", "named"),
    [
        ({"account_id": "acc-alice", "version": 7}, "version 7"),
        ({"account_id": "acc-alice", "available_at_least": 5001}, "at least 5001 available"),
    ],
)
def test_an_expectation_that_does_not_hold_refuses_the_request_naming_it(ledger, expectation, named):
    outcome = outcome_of(post(ledger, expecting(transfer("pay-1", "acc-alice", "acc-bob", 100), expectation)))
    assert (outcome.status, outcome.reason) == (Status.REJECTED, Reason.PRECONDITION_FAILED)
    assert "acc-alice" in outcome.detail and named in outcome.detail
    assert ledger.books.get_account("acc-alice").balance == 5000
    # A refusal decided on the ledger's state consumes the id: the same request again is a duplicate.
    again = outcome_of(post(ledger, expecting(transfer("pay-1", "acc-alice", "acc-bob", 100), expectation)))
    assert (again.status, again.reason) == (Status.DUPLICATE, Reason.PRECONDITION_FAILED)


def test_an_expectation_is_checked_at_the_write_not_only_at_the_read(ledger):
    # Another posting moves alice between the read and the write: the expected version no longer
    # holds, and the request is refused rather than added without its check.
    ledger.before_transaction = lambda: post(ledger, transfer("pay-other", "acc-alice", "acc-bob", 1))
    body = expecting(transfer("pay-1", "acc-alice", "acc-bob", 100), {"account_id": "acc-alice", "version": 1})
    outcome = outcome_of(post(ledger, body))
    assert (outcome.status, outcome.reason) == (Status.REJECTED, Reason.PRECONDITION_FAILED)
    assert ledger.books.get_account("acc-alice").balance == 4999
    assert_books_balance(ledger)


@pytest.mark.parametrize(
    ("expectation", "why"),
    [
        ({"account_id": "acc-settlement", "version": 0}, "no limit"),
        ({"account_id": "acc-carol", "version": 0}, "does not change"),
    ],
)
def test_expectations_name_accounts_with_a_limit_that_the_request_changes(ledger, expectation, why):
    open_accounts(ledger, account("acc-carol"))
    body = expecting(transfer("pay-1", "acc-alice", "acc-settlement", 100), expectation)
    outcome = outcome_of(post(ledger, body))
    assert (outcome.reason, why in outcome.detail) == (Reason.PRECONDITION_FAILED, True)


@pytest.mark.parametrize(
    "expectation",
    [{"account_id": "acc-alice"}, {"account_id": "acc-alice", "version": -1}, {"account_id": "acc-alice", "x": 1}],
)
def test_a_malformed_expectation_is_refused_by_content(expectation):
    item = validate_record(sqs_record(expecting(request("pay-1"), expectation)))
    assert item.outcome is not None and item.outcome.reason == Reason.INVALID_REQUEST


def test_expectations_are_part_of_the_request_and_absent_ones_change_no_hash():
    plain = request("pay-1")
    assert "expect" not in parse_request(json.dumps(plain)).canonical_content()
    with_one = parse_request(json.dumps(expecting(plain, {"account_id": "acc-alice", "version": 1})))
    assert with_one.content_hash() != parse_request(json.dumps(plain)).content_hash()


# -- balancing legs -----------------------------------------------------------------------------------------


def sweep(posting_id: str, amount: int) -> dict:
    """Move up to `amount` out of alice (whatever she can give) into bob."""
    return request(
        posting_id, {**leg("acc-alice", "debit", amount), "balancing": True}, leg("acc-bob", "credit", amount)
    )


def test_a_balancing_leg_moves_all_it_can_and_says_how_much(ledger):
    outcome = outcome_of(post(ledger, sweep("sweep-1", 8000)))
    assert outcome.status == Status.POSTED
    assert [(m["account_id"], m["side"], m["amount"]) for m in outcome.moved] == [
        ("acc-alice", "debit", 5000),
        ("acc-bob", "credit", 5000),
    ]
    assert ledger.books.get_account("acc-alice").balance == 0
    assert [line.amount for line in ledger.books.statement("acc-bob")[1]] == [5000]
    assert_books_balance(ledger)


def test_a_balancing_leg_within_what_is_available_moves_its_amount(ledger):
    outcome = outcome_of(post(ledger, sweep("sweep-1", 1200)))
    assert outcome.status == Status.POSTED and outcome.moved is None  # moved what was asked
    assert ledger.books.get_account("acc-bob").balance == 1200


def test_a_balancing_leg_with_nothing_to_move_is_refused(ledger):
    post(ledger, transfer("pay-all", "acc-alice", "acc-bob", 5000))
    outcome = outcome_of(post(ledger, sweep("sweep-1", 100)))
    assert (outcome.status, outcome.reason) == (Status.REJECTED, Reason.INSUFFICIENT_FUNDS)


def test_a_balancing_leg_respects_holds_and_the_overdraft_limit(ledger):
    open_accounts(ledger, account("acc-credit", overdraft_limit=300))
    fund(ledger, "acc-credit", 200)
    post(ledger, {**transfer("auth-1", "acc-credit", "acc-bob", 150), "kind": "hold"})
    body = request(
        "sweep-1", {**leg("acc-credit", "debit", 10_000), "balancing": True}, leg("acc-bob", "credit", 10_000)
    )
    outcome = outcome_of(post(ledger, body))
    assert outcome.moved[0]["amount"] == 200 - 150 + 300
    assert ledger.books.get_account("acc-credit").available == -300


@pytest.mark.parametrize(
    "body",
    [
        request("b", {**leg("a", "debit", 10), "balancing": True}, {**leg("b", "credit", 10), "balancing": True}),
        request("b", {**leg("a", "debit", 10), "balancing": True}, leg("b", "credit", 5), leg("c", "credit", 5)),
        {**request("b", {**leg("a", "debit", 10), "balancing": True}, leg("b", "credit", 10)), "kind": "hold"},
        request("b", {**leg("a", "debit", 10), "balancing": False}, leg("b", "credit", 10)),
    ],
    ids=["two-balancing", "three-legs", "hold", "false"],
)
def test_balancing_is_one_leg_of_a_two_leg_posting(body):
    item = validate_record(sqs_record(body))
    assert item.outcome is not None and item.outcome.reason == Reason.INVALID_REQUEST


@settings(max_examples=40, deadline=None)
@given(
    balance=st.integers(0, 10_000),
    amounts=st.lists(st.integers(1, 4_000), min_size=1, max_size=6),
)
def test_concurrent_balancing_sweeps_never_overdraw_and_move_exactly_what_they_report(balance, amounts):
    from tests.post_helpers import item_for, post_concurrently

    ledger = FakeLedger()
    open_accounts(ledger, account(FUNDING, overdraft_limit=None), account("acc-alice"), account("acc-bob"))
    if balance:
        fund(ledger, "acc-alice", balance)
    items = [item_for(sweep(f"sweep-{n}", amount)) for n, amount in enumerate(amounts)]
    decided = post_concurrently(ledger, items, threads=4)
    moved = 0
    for item, amount in zip(decided, amounts, strict=True):
        outcome = outcome_of(item)
        if outcome.status == Status.POSTED:
            moved += outcome.moved[0]["amount"] if outcome.moved else amount
        else:
            assert outcome.reason == Reason.INSUFFICIENT_FUNDS
    assert ledger.books.get_account("acc-bob").balance == moved
    assert ledger.books.get_account("acc-alice").balance == balance - moved >= 0
    assert_books_balance(ledger)


def test_the_result_event_of_a_balancing_leg_that_moved_less_carries_what_it_moved(ledger):
    from posting.steps.emit import result_event

    item = post(ledger, sweep("sweep-1", 8000))
    event = result_event(item, outcome_of(item))
    assert [(m["account_id"], m["amount"]) for m in event.detail["moved"]] == [("acc-alice", 5000), ("acc-bob", 5000)]
    plain = post(ledger, transfer("pay-1", FUNDING, "acc-bob", 10))
    assert "moved" not in result_event(plain, outcome_of(plain)).detail
