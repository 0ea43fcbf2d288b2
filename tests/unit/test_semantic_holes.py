"""Small holes in the contract's semantics, each closed by a rule decided from the request alone or by
a condition on the write: the sweeper's id namespace, a settlement that names itself, the default
kind, and figures that stay within JSON's safe integers."""

from __future__ import annotations

import json

import pytest

from posting.domain.content import check_content
from posting.domain.model import MAX_FIGURE
from posting.domain.outcomes import PostingRejected, Reason, Status
from posting.domain.requests import expiry_posting_id, parse_request
from posting.steps.expiry import expiry_request
from posting.steps.validate import validate_record
from tests.builders import account, leg, request, sqs_record
from tests.fake_ledger import FakeLedger
from tests.post_helpers import FUNDING, open_accounts, outcome_of, post, transfer


def refusal(body: dict) -> tuple[Reason | None, str | None]:
    item = validate_record(sqs_record(body))
    if item.outcome is None:
        return None, None
    return item.outcome.reason, item.outcome.detail


@pytest.mark.parametrize(
    "body",
    [
        request("expire:auth-1"),
        {**request("expire:auth-1", leg("a", "debit", 1), leg("b", "credit", 1)), "kind": "hold"},
        {"kind": "void", "posting_id": "expire:auth-1", "hold_id": "auth-1"},
        {"kind": "expiry", "posting_id": "expire:auth-2", "hold_id": "auth-1"},
        {"kind": "expiry", "posting_id": "EXPIRE:auth-1", "hold_id": "auth-1"},
    ],
    ids=["posting", "hold", "void", "expiry-of-another-hold", "other-case"],
)
def test_the_sweepers_id_namespace_is_refused_to_anything_but_that_holds_expiry(body):
    reason, detail = refusal(body)
    assert reason == Reason.INVALID_REQUEST
    assert "expire:" in detail


def test_the_expiry_the_sweeper_sends_is_accepted_and_so_is_a_producers_identical_one():
    body = json.loads(expiry_request("auth-1", "2026-11-27T10:00:00.000Z"))
    assert body["posting_id"] == expiry_posting_id("auth-1")
    assert refusal(body) == (None, None)


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "capture", "posting_id": "auth-1", "hold_id": "auth-1"},
        {"kind": "void", "posting_id": "auth-1", "hold_id": "auth-1"},
        {"kind": "reversal", "posting_id": "pay-1", "reverses": "pay-1"},
    ],
    ids=["capture", "void", "reversal"],
)
def test_a_request_that_settles_or_reverses_itself_is_refused_by_content(body):
    reason, detail = refusal(body)
    assert reason == Reason.INVALID_REQUEST
    assert "itself" in detail


def test_an_explicit_default_kind_is_the_same_request():
    plain = request("pay-1")
    explicit = {**plain, "kind": "posting"}
    assert parse_request(json.dumps(plain)).content_hash() == parse_request(json.dumps(explicit)).content_hash()


def test_a_retry_that_only_adds_the_default_kind_is_a_duplicate():
    ledger = FakeLedger()
    open_accounts(ledger, account(FUNDING, overdraft_limit=None), account("acc-bob"))
    body = transfer("pay-1", FUNDING, "acc-bob", 100)
    assert outcome_of(post(ledger, body)).status == Status.POSTED
    again = outcome_of(post(ledger, {**body, "kind": "posting"}))
    assert (again.status, again.reason) == (Status.DUPLICATE, None)


def test_a_posting_that_moves_one_account_beyond_the_safe_integers_is_refused_by_content():
    legs = [leg("acc-a", "debit", 10**15) for _ in range(10)] + [leg("acc-b", "credit", 10**15) for _ in range(10)]
    with pytest.raises(PostingRejected) as refused:
        check_content(parse_request(json.dumps(request("big", *legs))))
    assert refused.value.reason == Reason.BALANCE_OUT_OF_RANGE
    assert str(MAX_FIGURE) in refused.value.detail or "2^53" in refused.value.detail


def test_a_balance_is_never_taken_beyond_the_safe_integers():
    ledger = FakeLedger()
    open_accounts(ledger, account(FUNDING, overdraft_limit=None), account("acc-rich"))
    amounts = [10**15] * 8 + [MAX_FIGURE - 9 * 10**15 + 1]  # the account ends 10^15 - 1 short of the bound
    for n, amount in enumerate(amounts):
        assert outcome_of(post(ledger, transfer(f"fund-{n}", FUNDING, "acc-rich", amount))).status == Status.POSTED

    beyond = outcome_of(post(ledger, transfer("fund-beyond", FUNDING, "acc-rich", 10**15)))

    assert (beyond.status, beyond.reason) == (Status.REJECTED, Reason.BALANCE_OUT_OF_RANGE)
    # Planned on a read that allows it, then another posting moves the account first: the write
    # itself refuses what would pass the bound, and the refusal is decided on what it found.
    ledger.before_transaction = lambda: post(ledger, transfer("tiny", FUNDING, "acc-rich", 1))
    late = outcome_of(post(ledger, transfer("fund-late", FUNDING, "acc-rich", 10**15 - 1)))
    assert (late.status, late.reason) == (Status.REJECTED, Reason.BALANCE_OUT_OF_RANGE)
    assert ledger.books.get_account("acc-rich").balance == MAX_FIGURE - 10**15 + 2
