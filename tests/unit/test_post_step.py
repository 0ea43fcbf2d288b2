"""The post step on the in-memory fake ledger: each posting_id moves money at most once, whatever
arrives twice, races or fails on the way. (tests/contract proves the fake behaves as the DynamoDB
adapter does; tests/integration/test_post_step.py runs what needs the real engine.)"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from posting.domain.model import AccountStatus
from posting.domain.outcomes import Reason, Status
from posting.steps.post import post_batch, post_item
from posting.steps.validate import validate_batch
from tests.builders import account, leg, request, sqs_record
from tests.fake_ledger import FakeLedger
from tests.post_helpers import (
    FUNDING,
    assert_books_balance,
    balances,
    books,
    fund,
    item_for,
    no_sleep,
    open_accounts,
    outcome_of,
    post,
    post_concurrently,
    transfer,
)


@pytest.fixture
def ledger() -> FakeLedger:
    """A funding account, alice with 5000 EUR and bob with nothing; neither may overdraw."""
    fake = FakeLedger()
    open_accounts(fake, account(FUNDING, overdraft_limit=None), account("acc-alice"), account("acc-bob"))
    fund(fake, "acc-alice", 5000)
    return fake


# -- posting once ---------------------------------------------------------------------------------


def test_a_posting_moves_each_balance_once_and_reports_the_balances_it_left(ledger):
    outcome = outcome_of(post(ledger, request("pay-1")))  # 1250 from alice to bob

    assert (outcome.status, outcome.reason, outcome.posting_status) == (Status.POSTED, None, Status.POSTED)
    assert [(b.account_id, b.currency, b.balance, b.version) for b in outcome.balances] == [
        ("acc-alice", "EUR", 3750, 2),
        ("acc-bob", "EUR", 1250, 1),
    ]
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 3750, "acc-bob": 1250}
    assert_books_balance(ledger)


def test_each_leg_is_one_statement_entry_with_its_sequence_and_balance_after(ledger):
    post(ledger, request("pay-1"))

    alice, alice_entries = ledger.books.statement("acc-alice")
    bob, bob_entries = ledger.books.statement("acc-bob")

    assert (alice.balance, alice.version, bob.balance, bob.version) == (3750, 2, 1250, 1)
    assert [(e.sequence, e.side, e.amount, e.balance_after) for e in alice_entries] == [
        (1, "credit", 5000, 5000),
        (2, "debit", 1250, 3750),
    ]
    assert alice_entries[1].posting_id == "pay-1"
    assert [(e.sequence, e.posting_id, e.side, e.amount, e.currency, e.balance_after) for e in bob_entries] == [
        (1, "pay-1", "credit", 1250, "EUR", 1250)
    ]


def test_several_legs_on_one_account_book_one_entry_each_in_request_order(ledger):
    open_accounts(ledger, account("acc-carol"))
    body = request(
        "pay-split",
        leg("acc-alice", "debit", 300),
        leg("acc-bob", "credit", 1000),
        leg("acc-alice", "debit", 700),
        leg("acc-carol", "credit", 500),
        leg("acc-bob", "debit", 500),
    )

    outcome = outcome_of(post(ledger, body))

    assert outcome.status == Status.POSTED
    assert {(b.account_id, b.balance, b.version) for b in outcome.balances} == {
        ("acc-alice", 4000, 3),
        ("acc-bob", 500, 2),
        ("acc-carol", 500, 1),
    }
    _, alice_entries = ledger.books.statement("acc-alice")
    _, bob_entries = ledger.books.statement("acc-bob")
    assert [(e.sequence, e.amount, e.balance_after) for e in alice_entries[1:]] == [(2, 300, 4700), (3, 700, 4000)]
    assert [(e.sequence, e.side, e.balance_after) for e in bob_entries] == [(1, "credit", 1000), (2, "debit", 500)]
    assert_books_balance(ledger)


def test_the_decision_is_stored_with_the_request_and_the_message_that_made_it(ledger):
    item = post(ledger, request("pay-1"))

    decision = ledger.get_decision("pay-1")
    assert decision.status == Status.POSTED
    assert decision.message_id == item.message_id
    assert decision.request_hash == item.request_hash
    assert decision.request["legs"] == request("pay-1")["legs"]
    assert decision.request["metadata"] == {"merchant": "m-42"}
    assert decision.balances == outcome_of(item).balances
    assert decision.decided_at == outcome_of(item).decided_at


def test_a_batch_comes_back_in_order_with_every_item_decided(ledger):
    records = [
        sqs_record(transfer("pay-a", "acc-alice", "acc-bob", 1000)),
        sqs_record("not json"),
        sqs_record(transfer("pay-b", "acc-alice", "acc-bob", 4000)),
        sqs_record(transfer("pay-c", "acc-bob", "acc-alice", 10)),
        sqs_record(transfer("pay-d", "acc-alice", "acc-ghost", 1)),
    ]

    items = post_batch(validate_batch(records), ledger).items

    assert [item.message_id for item in items] == [record["messageId"] for record in records]
    assert all(item.failure is None for item in items)
    assert [item.outcome.status for item in items[:3]] == [Status.POSTED, Status.REJECTED, Status.POSTED]
    assert items[1].outcome.reason == Reason.INVALID_REQUEST
    # pay-c may run before or after bob is paid: either outcome is right, as long as it is decided.
    assert items[3].outcome.reason in {None, Reason.INSUFFICIENT_FUNDS}
    assert items[4].outcome.reason == Reason.ACCOUNT_NOT_FOUND
    assert_books_balance(ledger)
    assert balances(ledger, "acc-alice")["acc-alice"] >= 0


# -- the same request twice -----------------------------------------------------------------------


def test_the_same_request_from_another_message_is_a_duplicate_with_the_original_balances(ledger):
    first = outcome_of(post(ledger, request("pay-1")))
    post(ledger, transfer("pay-2", "acc-alice", "acc-bob", 50))  # balances move on after pay-1
    before = books(ledger)

    again = outcome_of(post(ledger, request("pay-1")))

    assert (again.status, again.reason, again.posting_status) == (Status.DUPLICATE, None, Status.POSTED)
    assert again.balances == first.balances
    assert again.decided_at == first.decided_at
    assert books(ledger) == before


def test_a_request_redelivered_in_the_same_message_gets_its_own_decision_again_and_changes_nothing(ledger):
    first = post(ledger, request("pay-1"), message_id="msg-once")
    before = books(ledger)

    again = outcome_of(post(ledger, request("pay-1"), message_id="msg-once"))

    assert again.status == Status.POSTED
    assert again.balances == outcome_of(first).balances
    assert books(ledger) == before


def test_a_duplicate_stays_a_duplicate_even_when_the_request_would_no_longer_fit(ledger):
    post(ledger, transfer("pay-all", "acc-alice", "acc-bob", 5000))
    ledger.set_account_status("acc-bob", AccountStatus.FROZEN)
    before = books(ledger)

    again = outcome_of(post(ledger, transfer("pay-all", "acc-alice", "acc-bob", 5000)))

    assert (again.status, again.posting_status, again.reason) == (Status.DUPLICATE, Status.POSTED, None)
    assert books(ledger) == before


def test_the_same_posting_id_with_another_amount_is_an_idempotency_conflict_and_changes_nothing(ledger):
    post(ledger, request("pay-1"))
    before = books(ledger)

    conflict = outcome_of(post(ledger, transfer("pay-1", "acc-alice", "acc-bob", 1251)))

    assert (conflict.status, conflict.reason) == (Status.REJECTED, Reason.IDEMPOTENCY_CONFLICT)
    assert conflict.posting_status == Status.POSTED
    assert conflict.balances == ()
    assert books(ledger) == before
    assert ledger.get_decision("pay-1").request["legs"][0]["amount"] == 1250


def test_a_conflict_with_a_rejected_posting_id_reports_the_standing_rejection(ledger):
    post(ledger, transfer("pay-big", "acc-alice", "acc-bob", 9999))
    before = books(ledger)

    conflict = outcome_of(post(ledger, transfer("pay-big", "acc-alice", "acc-bob", 1)))

    assert (conflict.status, conflict.reason) == (Status.REJECTED, Reason.IDEMPOTENCY_CONFLICT)
    assert conflict.posting_status == Status.REJECTED
    assert books(ledger) == before


def test_one_request_raced_from_many_messages_posts_once(ledger):
    # The whole balance: a message that reads after the winner plans INSUFFICIENT_FUNDS, and must
    # still answer with the recorded POSTED, not record a rejection.
    items = [item_for(transfer("pay-1", "acc-alice", "acc-bob", 5000)) for _ in range(12)]

    decided = post_concurrently(ledger, items)

    statuses = Counter(outcome_of(item).status for item in decided)
    assert statuses == {Status.POSTED: 1, Status.DUPLICATE: 11}
    winner = next(item for item in decided if item.outcome.status == Status.POSTED)
    assert ledger.get_decision("pay-1").message_id == winner.message_id
    assert all(item.outcome.balances == winner.outcome.balances for item in decided)
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 0, "acc-bob": 5000}
    assert_books_balance(ledger)


def test_one_posting_id_raced_with_two_different_amounts_applies_exactly_one_of_them(ledger):
    bodies = [transfer("pay-1", "acc-alice", "acc-bob", 1000), transfer("pay-1", "acc-alice", "acc-bob", 3000)]
    items = [item_for(bodies[n % 2]) for n in range(12)]

    decided = post_concurrently(ledger, items)

    winner = next(item for item in decided if item.outcome.status == Status.POSTED)
    won_amount = json.loads(winner.body)["legs"][0]["amount"]
    for item in decided:
        if item is winner:
            continue
        same = item.request_hash == winner.request_hash
        expected = (Status.DUPLICATE, None) if same else (Status.REJECTED, Reason.IDEMPOTENCY_CONFLICT)
        assert (item.outcome.status, item.outcome.reason) == expected
        assert item.outcome.posting_status == Status.POSTED
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 5000 - won_amount, "acc-bob": won_amount}
    assert_books_balance(ledger)


# -- overdraft rules ------------------------------------------------------------------------------


def test_a_no_overdraft_account_cannot_be_debited_beyond_its_balance_and_the_rejection_is_recorded(ledger):
    before = balances(ledger, "acc-alice", "acc-bob")

    item = post(ledger, transfer("pay-big", "acc-alice", "acc-bob", 5001))

    outcome = outcome_of(item)
    assert (outcome.status, outcome.reason, outcome.posting_status) == (
        Status.REJECTED,
        Reason.INSUFFICIENT_FUNDS,
        Status.REJECTED,
    )
    assert balances(ledger, "acc-alice", "acc-bob") == before
    decision = ledger.get_decision("pay-big")
    assert (decision.status, decision.reason, decision.message_id) == (
        Status.REJECTED,
        Reason.INSUFFICIENT_FUNDS,
        item.message_id,
    )
    assert decision.request["legs"][0]["amount"] == 5001
    assert_books_balance(ledger)


def test_an_insufficient_funds_posting_id_stays_failed_after_the_account_is_funded(ledger):
    post(ledger, transfer("pay-big", "acc-alice", "acc-bob", 6000))
    fund(ledger, "acc-alice", 10_000)
    before = books(ledger)

    retry = outcome_of(post(ledger, transfer("pay-big", "acc-alice", "acc-bob", 6000)))

    assert (retry.status, retry.posting_status, retry.reason) == (
        Status.DUPLICATE,
        Status.REJECTED,
        Reason.INSUFFICIENT_FUNDS,
    )
    assert books(ledger) == before


def test_exactly_the_whole_balance_can_be_spent(ledger):
    assert outcome_of(post(ledger, transfer("pay-all", "acc-alice", "acc-bob", 5000))).status == Status.POSTED
    assert balances(ledger, "acc-alice")["acc-alice"] == 0


def test_an_overdraft_limit_of_n_allows_a_balance_down_to_minus_n_and_no_further(ledger):
    open_accounts(ledger, account("acc-credit-line", overdraft_limit=500))

    to_limit = outcome_of(post(ledger, transfer("pay-1", "acc-credit-line", "acc-bob", 500)))
    beyond = outcome_of(post(ledger, transfer("pay-2", "acc-credit-line", "acc-bob", 1)))

    assert to_limit.status == Status.POSTED
    assert (beyond.status, beyond.reason) == (Status.REJECTED, Reason.INSUFFICIENT_FUNDS)
    assert balances(ledger, "acc-credit-line")["acc-credit-line"] == -500
    # Money coming in is always welcome; it reopens room under the limit.
    assert outcome_of(post(ledger, transfer("pay-3", "acc-alice", "acc-credit-line", 200))).status == Status.POSTED
    assert outcome_of(post(ledger, transfer("pay-4", "acc-credit-line", "acc-bob", 200))).status == Status.POSTED
    assert balances(ledger, "acc-credit-line")["acc-credit-line"] == -500
    assert_books_balance(ledger)


def test_an_account_without_an_overdraft_limit_can_go_down_without_bound(ledger):
    open_accounts(ledger, account("acc-settlement", overdraft_limit=None))

    outcome = outcome_of(post(ledger, transfer("pay-1", "acc-settlement", "acc-bob", 10**15)))

    assert outcome.status == Status.POSTED
    assert balances(ledger, "acc-settlement")["acc-settlement"] == -(10**15)
    assert_books_balance(ledger)


# -- other business rejections --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (transfer("pay-x", "acc-alice", "acc-ghost", 100), Reason.ACCOUNT_NOT_FOUND),
        (transfer("pay-x", "acc-alice", "acc-frozen", 100), Reason.ACCOUNT_NOT_OPEN),
        (transfer("pay-x", "acc-frozen", "acc-alice", 100), Reason.ACCOUNT_NOT_OPEN),
        (transfer("pay-x", "acc-alice", "acc-bob", 100, currency="USD"), Reason.CURRENCY_MISMATCH),
        (transfer("pay-x", "acc-alice", "acc-dollars", 100), Reason.CURRENCY_MISMATCH),
    ],
    ids=["account-not-found", "credit-to-frozen", "debit-from-frozen", "leg-currency", "account-currency"],
)
def test_a_business_rejection_is_recorded_changes_no_balance_and_the_id_stays_failed(ledger, body, reason):
    open_accounts(ledger, account("acc-frozen"), account("acc-dollars", currency="USD"))
    fund(ledger, "acc-frozen", 1000)
    ledger.set_account_status("acc-frozen", AccountStatus.FROZEN)
    before = balances(ledger, "acc-alice", "acc-bob", "acc-frozen", "acc-dollars")

    outcome = outcome_of(post(ledger, body))

    assert (outcome.status, outcome.reason, outcome.posting_status) == (Status.REJECTED, reason, Status.REJECTED)
    assert balances(ledger, "acc-alice", "acc-bob", "acc-frozen", "acc-dollars") == before
    assert (ledger.get_decision("pay-x").status, ledger.get_decision("pay-x").reason) == (Status.REJECTED, reason)
    # Whatever is fixed since (the account opened, unfrozen), the id keeps its decision.
    open_accounts(ledger, account("acc-ghost"))
    ledger.set_account_status("acc-frozen", AccountStatus.OPEN)
    retry = outcome_of(post(ledger, body))
    assert (retry.status, retry.posting_status, retry.reason) == (Status.DUPLICATE, Status.REJECTED, reason)
    assert balances(ledger, "acc-alice", "acc-bob", "acc-frozen", "acc-dollars") == before
    assert_books_balance(ledger)


@pytest.mark.parametrize(
    ("refused", "reason"),
    [
        (request("pay-r", leg("acc-alice", "debit", 100), leg("acc-bob", "credit", 99)), Reason.UNBALANCED),
        (request("pay-r", leg("acc-alice", "debit", 12.5), leg("acc-bob", "credit", 12.5)), Reason.INVALID_REQUEST),
        ('{"posting_id": "pay-r", "legs": [], "legs": []}', Reason.INVALID_REQUEST),
        (request("pay-r", description="card 4111 1111 1111 1111"), Reason.SENSITIVE_DATA),
        (request("pay-r", description="bell\u0007"), Reason.INVALID_REQUEST),
    ],
    ids=["unbalanced", "fractional", "duplicate-keys", "card-number", "control-character"],
)
def test_a_request_refused_for_its_content_does_not_consume_its_posting_id(ledger, refused, reason):
    # Stripe's and TigerBeetle's rule: a refusal decidable from the content alone records nothing,
    # so the client can fix the request and send it again under the same id.
    before = books(ledger)

    first = outcome_of(post(ledger, refused))
    again = outcome_of(post(ledger, refused))

    assert (first.status, first.reason, first.posting_status) == (Status.REJECTED, reason, None)
    assert (again.status, again.reason) == (Status.REJECTED, reason)  # decided on its own again, not DUPLICATE
    assert books(ledger) == before
    fixed = outcome_of(post(ledger, transfer("pay-r", "acc-alice", "acc-bob", 100)))
    assert (fixed.status, fixed.posting_status) == (Status.POSTED, Status.POSTED)
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 4900, "acc-bob": 100}


def test_a_refusal_by_content_never_touches_the_ledger_even_when_it_is_down(ledger):
    ledger.fail_reads = ledger.fail_rejections = ledger.fail_transactions = 10**6
    body = request("pay-unb", leg("acc-alice", "debit", 100), leg("acc-bob", "credit", 99))
    before = dict(ledger.calls)

    item = post(ledger, body)

    assert (item.outcome.status, item.outcome.reason) == (Status.REJECTED, Reason.UNBALANCED)
    assert item.failure is None
    assert dict(ledger.calls) == before


def test_a_state_dependent_rejection_consumes_the_id_even_after_the_state_changes(ledger):
    # A failed id stays failed: INSUFFICIENT_FUNDS now is INSUFFICIENT_FUNDS for every retry.
    overdraft = transfer("pay-big", "acc-alice", "acc-bob", 9000)
    rejected = outcome_of(post(ledger, overdraft))
    fund(ledger, "acc-alice", 10000)
    retry = outcome_of(post(ledger, overdraft))

    assert (rejected.status, rejected.reason) == (Status.REJECTED, Reason.INSUFFICIENT_FUNDS)
    assert (retry.status, retry.reason, retry.posting_status) == (
        Status.DUPLICATE,
        Reason.INSUFFICIENT_FUNDS,
        Status.REJECTED,
    )
    assert balances(ledger, "acc-bob") == {"acc-bob": 0}


def test_a_conflict_names_the_fields_that_differ_never_their_values(ledger):
    outcome_of(post(ledger, transfer("pay-c", "acc-alice", "acc-bob", 1250)))
    changed = transfer("pay-c", "acc-alice", "acc-bob", 1251) | {"effective_at": "2026-11-28T10:00:00Z"}

    conflict = outcome_of(post(ledger, changed))

    assert conflict.reason == Reason.IDEMPOTENCY_CONFLICT
    assert "legs[0].amount" in conflict.detail and "legs[1].amount" in conflict.detail
    assert "effective_at" in conflict.detail
    assert "1251" not in conflict.detail and "2026-11-28" not in conflict.detail


def test_a_posting_without_effective_at_takes_effect_when_decided_and_its_retry_is_a_duplicate(ledger):
    body = transfer("pay-now", "acc-alice", "acc-bob", 10)
    del body["effective_at"]

    first = outcome_of(post(ledger, body))
    retry = outcome_of(post(ledger, body))

    assert first.status == Status.POSTED
    assert (retry.status, retry.posting_status) == (Status.DUPLICATE, Status.POSTED)
    _, entries = ledger.books.statement("acc-bob")
    assert [entry.posting_id for entry in entries] == ["pay-now"]


@pytest.mark.parametrize("body", ["not json", "", '{"legs": []}', '{"posting_id": "has spaces!", "legs": []}'])
def test_garbage_without_a_usable_posting_id_is_rejected_and_not_recorded(ledger, body):
    before = books(ledger)

    item = post(ledger, body)

    outcome = outcome_of(item)
    assert (outcome.status, outcome.reason, outcome.posting_status) == (
        Status.REJECTED,
        Reason.INVALID_REQUEST,
        None,
    )
    assert item.posting_id is None
    assert books(ledger) == before


# -- another writer in between, and the write's own answer -----------------------------------------


def test_a_posting_beaten_to_the_balance_is_decided_on_what_the_write_found(ledger):
    def drain_alice() -> None:
        assert outcome_of(post(ledger, transfer("pay-first", "acc-alice", "acc-bob", 4000))).status == Status.POSTED

    ledger.before_transaction = drain_alice

    outcome = outcome_of(post(ledger, transfer("pay-second", "acc-alice", "acc-bob", 2000)))

    assert (outcome.status, outcome.reason) == (Status.REJECTED, Reason.INSUFFICIENT_FUNDS)
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 1000, "acc-bob": 4000}
    assert ledger.calls["read_accounts"] == 3  # its own read and pay-first's; the refusal said the rest
    assert_books_balance(ledger)


def test_a_posting_whose_pin_missed_goes_again_at_once_without_one(ledger):
    # Another writer moves alice (but leaves enough): the pinned write is refused, and the posting is
    # added to alice as she is, with no new read and no backoff; its event then lists only bob.
    ledger.before_transaction = lambda: post(ledger, transfer("pay-other", "acc-alice", "acc-bob", 100))
    slept: list[float] = []

    item = post_item(item_for(request("pay-1")), ledger, sleep=slept.append)

    assert outcome_of(item).status == Status.POSTED
    assert slept == []
    assert [b.account_id for b in outcome_of(item).balances] == []
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 3650, "acc-bob": 1350}
    assert_books_balance(ledger)


def test_a_posting_to_an_account_frozen_after_it_was_read_is_rejected_not_applied(ledger):
    ledger.before_transaction = lambda: ledger.set_account_status("acc-bob", AccountStatus.FROZEN)

    outcome = outcome_of(post(ledger, request("pay-1")))

    assert (outcome.status, outcome.reason) == (Status.REJECTED, Reason.ACCOUNT_NOT_OPEN)
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 5000, "acc-bob": 0}


def test_an_unfrozen_account_takes_postings_again_at_once(ledger):
    open_accounts(ledger, account("acc-settlement", overdraft_limit=None))
    ledger.set_account_status("acc-settlement", AccountStatus.FROZEN)
    frozen = outcome_of(post(ledger, transfer("pay-1", "acc-alice", "acc-settlement", 10)))
    ledger.set_account_status("acc-settlement", AccountStatus.OPEN)

    thawed = outcome_of(post(ledger, transfer("pay-2", "acc-alice", "acc-settlement", 10)))

    assert (frozen.reason, thawed.status) == (Reason.ACCOUNT_NOT_OPEN, Status.POSTED)
    assert balances(ledger, "acc-settlement") == {"acc-settlement": 10}


# -- transient errors are never business rejections -----------------------------------------------


def test_a_posting_that_meets_transient_errors_is_retried_until_it_posts(ledger):
    ledger.fail_transactions = 3

    outcome = outcome_of(post(ledger, request("pay-1")))

    assert outcome.status == Status.POSTED
    assert ledger.calls["record_posting"] == 1 + 4  # the funding, then three failures and the commit
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 3750, "acc-bob": 1250}
    assert_books_balance(ledger)


def test_throttled_balance_reads_are_retried_too(ledger):
    ledger.fail_reads = 2

    assert outcome_of(post(ledger, request("pay-1"))).status == Status.POSTED
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 3750, "acc-bob": 1250}


def test_a_posting_that_never_gets_through_comes_back_undecided_and_writes_nothing(ledger):
    ledger.fail_transactions = 10**6
    before = books(ledger)

    item = post(ledger, request("pay-1"))

    assert item.outcome is None
    assert item.failure.error == "TransientPostingError"
    assert books(ledger) == before
    # Once DynamoDB is back, the redelivered message posts normally.
    ledger.fail_transactions = 0
    assert (
        outcome_of(post_item(item.model_copy(update={"failure": None}), ledger, sleep=no_sleep)).status == Status.POSTED
    )


def test_a_rejection_that_cannot_be_recorded_comes_back_undecided_not_rejected(ledger):
    ledger.fail_rejections = 10**6
    before = books(ledger)

    item = post(ledger, transfer("pay-big", "acc-alice", "acc-bob", 9999))

    assert item.outcome is None
    assert item.failure.error == "TransientPostingError"
    assert books(ledger) == before


def test_a_posting_committed_before_a_lost_answer_is_reported_posted_and_applied_once(ledger):
    ledger.fail_after_commit = 1

    outcome = outcome_of(post(ledger, request("pay-1")))

    assert outcome.status == Status.POSTED
    assert [(b.account_id, b.balance) for b in outcome.balances] == [("acc-alice", 3750), ("acc-bob", 1250)]
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 3750, "acc-bob": 1250}
    assert_books_balance(ledger)


def test_a_committed_posting_is_reported_posted_even_when_its_retry_would_no_longer_fit(ledger):
    # The retry is planned on the balance the lost commit left behind: zero, too little for the same
    # posting again. It must find its own decision, not record a rejection.
    ledger.fail_after_commit = 1

    outcome = outcome_of(post(ledger, transfer("pay-all", "acc-alice", "acc-bob", 5000)))

    assert (outcome.status, outcome.reason) == (Status.POSTED, None)
    assert ledger.get_decision("pay-all").status == Status.POSTED
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 0, "acc-bob": 5000}
    assert_books_balance(ledger)


def test_a_redelivery_of_a_decided_posting_is_answered_from_the_record_without_a_transaction(ledger):
    first = post(ledger, request("pay-1"))
    ledger.fail_transactions = 10**6  # every transaction now conflicts: the redelivery must not need one
    transactions = ledger.calls["record_posting"]
    redelivered = first.model_copy(update={"outcome": None, "receive_count": 2})

    again = post_item(redelivered, ledger, sleep=no_sleep)

    assert outcome_of(again).status == Status.POSTED  # the message that made the decision
    assert ledger.calls["record_posting"] == transactions
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 3750, "acc-bob": 1250}


def test_a_posting_that_runs_out_of_attempts_reads_the_record_before_giving_up(ledger):
    # Another delivery posted it; this one only ever meets conflicts. It must answer DUPLICATE from
    # the record, not go back to the queue (and, on its last delivery, to the DLQ).
    post(ledger, request("pay-1"))
    ledger.fail_transactions = 10**6

    outcome = outcome_of(post(ledger, request("pay-1")))

    assert outcome.status in {Status.DUPLICATE, Status.POSTED}
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 3750, "acc-bob": 1250}


def test_a_batch_past_its_deadline_returns_undecided_items_and_writes_nothing(ledger):
    batch = validate_batch([sqs_record(request(f"pay-{n}")) for n in range(3)])
    before = books(ledger)

    result = post_batch(batch, ledger, sleep=no_sleep, deadline=time.monotonic() - 1)

    assert [item.outcome for item in result.items] == [None, None, None]
    assert {item.failure.error for item in result.items} == {"TransientPostingError"}
    assert books(ledger) == before


# -- one read for the whole batch -----------------------------------------------------------------


def test_a_batch_reads_all_its_accounts_in_one_call_then_writes_one_transaction_per_posting():
    ledger = FakeLedger()
    payers = [f"acc-payer-{n}" for n in range(10)]
    payees = [f"acc-payee-{n}" for n in range(10)]
    open_accounts(ledger, *(account(a, overdraft_limit=None) for a in payers), *(account(a) for a in payees))
    records = [sqs_record(transfer(f"pay-{n}", payers[n], payees[n], 100 + n)) for n in range(10)]

    items = post_batch(validate_batch(records), ledger, sleep=no_sleep).items

    assert [outcome_of(item).status for item in items] == [Status.POSTED] * 10
    assert (ledger.calls["read_accounts"], ledger.calls["record_posting"]) == (1, 10)
    assert balances(ledger, *payees) == {payee: 100 + n for n, payee in enumerate(payees)}
    assert_books_balance(ledger)


def test_postings_that_share_an_account_each_plan_on_the_balance_the_one_before_left(ledger):
    # alice (5000) pays bob five times: only the first can use the batch's read; the others read again.
    reads = ledger.calls["read_accounts"]
    records = [sqs_record(transfer(f"pay-{n}", "acc-alice", "acc-bob", 1200)) for n in range(5)]

    items = post_batch(validate_batch(records), ledger, sleep=no_sleep).items

    statuses = Counter(outcome_of(item).status for item in items)
    assert statuses == {Status.POSTED: 4, Status.REJECTED: 1}
    assert ledger.calls["read_accounts"] - reads == 1 + 4  # the batch's read, then one for each later posting
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 200, "acc-bob": 4800}
    assert_books_balance(ledger)


def test_a_batch_read_made_stale_by_another_writer_is_judged_on_what_the_write_found(ledger):
    # Between the batch's read and its first transaction another writer takes 4000 of alice's 5000.
    def drain_alice() -> None:
        assert outcome_of(post(ledger, transfer("pay-other", "acc-alice", "acc-bob", 4000))).status == Status.POSTED

    open_accounts(ledger, account("acc-carol"))
    records = [
        sqs_record(transfer("pay-late", "acc-alice", "acc-bob", 2000)),
        sqs_record(transfer("pay-fund", FUNDING, "acc-carol", 1)),  # two items, so the batch is read at once
    ]
    ledger.before_transaction = drain_alice
    reads = ledger.calls["read_accounts"]

    late, _ = post_batch(validate_batch(records), ledger, sleep=no_sleep, workers=1).items

    assert (outcome_of(late).status, outcome_of(late).reason) == (Status.REJECTED, Reason.INSUFFICIENT_FUNDS)
    assert ledger.calls["read_accounts"] - reads == 2  # the batch's read and pay-other's: no read again
    assert balances(ledger, "acc-alice")["acc-alice"] == 1000
    assert_books_balance(ledger)


def test_a_failed_batch_read_leaves_each_posting_to_read_its_own(ledger):
    ledger.fail_reads = 1
    records = [
        sqs_record(transfer("pay-1", "acc-alice", "acc-bob", 10)),
        sqs_record(request("pay-2", leg(FUNDING, "debit", 5), leg("acc-bob", "credit", 5))),
    ]

    items = post_batch(validate_batch(records), ledger, sleep=no_sleep).items

    assert [outcome_of(item).status for item in items] == [Status.POSTED, Status.POSTED]
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 4990, "acc-bob": 15}


def test_postings_that_share_only_an_unlimited_account_all_plan_on_the_batch_read():
    # An unlimited account's planning state is its terms and status: every posting may use the read.
    ledger = FakeLedger()
    payers = [f"acc-payer-{n}" for n in range(10)]
    open_accounts(ledger, account("acc-settlement", overdraft_limit=None))
    open_accounts(ledger, *(account(a, overdraft_limit=None) for a in payers))
    records = [sqs_record(transfer(f"pay-{n}", payers[n], "acc-settlement", 100)) for n in range(10)]

    items = post_batch(validate_batch(records), ledger, sleep=no_sleep).items

    assert [outcome_of(item).status for item in items] == [Status.POSTED] * 10
    assert (ledger.calls["read_accounts"], ledger.calls["record_posting"]) == (1, 10)
    assert ledger.books.get_account("acc-settlement").balance == 1_000


def test_one_request_raced_from_many_threads_posts_once(ledger):
    items = [item_for(transfer("pay-1", "acc-alice", "acc-bob", 5000)) for _ in range(12)]

    decided = post_concurrently(ledger, items)

    statuses = Counter(outcome_of(item).status for item in decided)
    assert statuses == {Status.POSTED: 1, Status.DUPLICATE: 11}
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 0, "acc-bob": 5000}
    assert_books_balance(ledger)


def test_a_capture_that_read_its_hold_before_a_rival_capture_and_the_account_after_is_read_again(ledger):
    # The hold is read open, then a rival capture settles it, then the account is read: the plan
    # would release pending money that is no longer pending. It must be read again, not recorded.
    assert outcome_of(post(ledger, {**transfer("auth-1", "acc-alice", "acc-bob", 1000), "kind": "hold"})).status == (
        Status.POSTED
    )
    rival = {"kind": "capture", "posting_id": "cap-rival", "hold_id": "auth-1"}
    reads = ledger.read_accounts

    def read_after_the_rival(account_ids):
        ledger.read_accounts = reads  # once
        assert outcome_of(post(ledger, rival)).status == Status.POSTED
        return reads(account_ids)

    ledger.read_accounts = read_after_the_rival

    late = outcome_of(post(ledger, {"kind": "capture", "posting_id": "cap-late", "hold_id": "auth-1"}))

    assert (late.status, late.reason) == (Status.REJECTED, Reason.HOLD_ALREADY_CAPTURED)
    assert_books_balance(ledger)
