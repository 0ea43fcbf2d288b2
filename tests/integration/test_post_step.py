"""The post step against DynamoDB Local: what needs the real engine. Real concurrency, the largest
transaction DynamoDB takes, and DynamoDB's own errors on the way. (Every other rule of the post step
runs on the fake ledger in tests/unit/test_post_step.py.)"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from posting.adapters.ledger_table import LedgerTable
from posting.domain.model import MAX_LEGS
from posting.domain.outcomes import Reason, Status
from posting.steps.items import BatchItem
from posting.steps.post import post_batch, post_item
from posting.steps.validate import validate_batch
from tests.builders import account, leg, request, sqs_record
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


class FlakyClient:
    """The real DynamoDB client, except that the first `times` calls of `operation` fail.

    With `after_call` the call is made first and then fails, as a timeout after the commit would:
    the write happened but the caller never heard of it.
    """

    def __init__(
        self, client: Any, operation: str, error: Callable[[], Exception], times: float, after_call: bool = False
    ) -> None:
        self._client = client
        self._operation = operation
        self._error = error
        self._times = times
        self._after_call = after_call
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if name != self._operation:
            return call

        def flaky(**kwargs: Any) -> Any:
            self.calls += 1
            fails = self.calls <= self._times
            if fails and not self._after_call:
                raise self._error()
            response = call(**kwargs)
            if fails:
                raise self._error()
            return response

        return flaky


def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "TransactWriteItems")


def conflicted() -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
        },
        "TransactWriteItems",
    )


def timed_out() -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url="http://dynamodb.local")


def flaky(ledger: LedgerTable, operation: str, error: Callable[[], Exception], times: float, **options: Any):
    client = FlakyClient(ledger.table.client, operation, error, times, **options)
    return LedgerTable(client, ledger.table_name), client


@pytest.fixture
def ledger(ledger_table: LedgerTable) -> LedgerTable:
    """A funding account, alice with 5000 EUR and bob with nothing; neither may overdraw."""
    open_accounts(ledger_table, account(FUNDING, overdraft_limit=None), account("acc-alice"), account("acc-bob"))
    fund(ledger_table, "acc-alice", 5000)
    return ledger_table


def test_the_largest_request_posts_in_one_transaction(ledger_table):
    # 49 legs on 49 accounts: the decision, 49 balances and 49 entries, 99 items in one transaction.
    payees = [f"acc-payee-{n:02d}" for n in range(MAX_LEGS - 1)]
    open_accounts(ledger_table, account(FUNDING, overdraft_limit=None), *(account(payee) for payee in payees))
    body = request(
        "pay-payroll",
        leg(FUNDING, "debit", sum(range(1, MAX_LEGS))),
        *(leg(payee, "credit", n) for n, payee in enumerate(payees, start=1)),
    )

    outcome = outcome_of(post(ledger_table, body))

    assert outcome.status == Status.POSTED
    assert len(outcome.balances) == MAX_LEGS - 1  # the funding account has no limit: not listed
    assert balances(ledger_table, *payees) == {payee: n for n, payee in enumerate(payees, start=1)}
    assert_books_balance(ledger_table)


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


# -- concurrency ----------------------------------------------------------------------------------


def test_concurrent_debits_never_take_a_no_overdraft_account_below_zero(ledger_table):
    sinks = [f"acc-sink-{n}" for n in range(42)]
    open_accounts(ledger_table, account(FUNDING, overdraft_limit=None), account("acc-payer"))
    open_accounts(ledger_table, *(account(sink) for sink in sinks))
    fund(ledger_table, "acc-payer", 10_000)
    items = [item_for(transfer(f"pay-{n}", "acc-payer", sink, 1_000)) for n, sink in enumerate(sinks)]

    decided = post_concurrently(ledger_table, items)

    statuses = Counter((outcome_of(item).status, outcome_of(item).reason) for item in decided)
    assert statuses == {(Status.POSTED, None): 10, (Status.REJECTED, Reason.INSUFFICIENT_FUNDS): 32}
    payer, entries = ledger_table.books.statement("acc-payer")
    assert payer.balance == 0
    assert payer.version == len(entries) == 11
    assert min(entry.balance_after for entry in entries) == 0
    posted = {item.posting_id for item in decided if item.outcome.status == Status.POSTED}
    assert {entry.posting_id for entry in entries[1:]} == posted
    assert sum(balances(ledger_table, *sinks).values()) == 10_000
    assert_books_balance(ledger_table)


def test_concurrent_credits_to_a_hot_account_all_land_with_a_gapless_running_statement(ledger_table):
    sources = [f"acc-source-{n}" for n in range(24)]
    open_accounts(ledger_table, account(FUNDING, overdraft_limit=None), account("acc-hot"))
    open_accounts(ledger_table, *(account(source) for source in sources))
    for source in sources:
        fund(ledger_table, source, 1_000)
    amounts = {f"pay-{n}": 100 + n for n in range(len(sources))}
    items = [
        item_for(transfer(posting_id, source, "acc-hot", amount))
        for (posting_id, amount), source in zip(amounts.items(), sources, strict=True)
    ]

    decided = post_concurrently(ledger_table, items)

    assert all(outcome_of(item).status == Status.POSTED for item in decided)
    hot, entries = ledger_table.books.statement("acc-hot")
    assert (hot.balance, hot.version) == (sum(amounts.values()), len(sources))
    # Lines recorded in the order the balance moved: the running balance is their running sum.
    assert [entry.balance_after for entry in entries] == list(
        itertools.accumulate(amounts[entry.posting_id] for entry in entries)
    )
    assert sorted(entry.posting_id for entry in entries) == sorted(amounts)
    assert_books_balance(ledger_table)


# -- transient errors are never business rejections -----------------------------------------------


@pytest.mark.parametrize("error", [throttled, conflicted], ids=["throttled", "transaction-conflict"])
def test_a_posting_that_meets_transient_errors_is_retried_until_it_posts(ledger, error):
    flaky_ledger, client = flaky(ledger, "transact_write_items", error, times=3)

    outcome = outcome_of(post(flaky_ledger, request("pay-1")))

    assert outcome.status == Status.POSTED
    assert client.calls == 4
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 3750, "acc-bob": 1250}
    assert_books_balance(ledger)


def test_throttled_balance_reads_are_retried_too(ledger):
    flaky_ledger, _ = flaky(ledger, "batch_get_item", throttled, times=2)

    assert outcome_of(post(flaky_ledger, request("pay-1"))).status == Status.POSTED
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 3750, "acc-bob": 1250}


@pytest.mark.parametrize("error", [throttled, conflicted, timed_out], ids=["throttled", "conflict", "timeout"])
def test_a_posting_that_never_gets_through_comes_back_undecided_and_writes_nothing(ledger, error):
    flaky_ledger, _ = flaky(ledger, "transact_write_items", error, times=float("inf"))
    before = books(ledger)

    item = post(flaky_ledger, request("pay-1"))

    assert item.outcome is None
    assert item.failure.error == "TransientPostingError"
    assert books(ledger) == before
    # Once DynamoDB is back, the redelivered message posts normally.
    assert (
        outcome_of(post_item(item.model_copy(update={"failure": None}), ledger, sleep=no_sleep)).status == Status.POSTED
    )


def test_a_posting_committed_before_a_timeout_is_reported_posted_and_applied_once(ledger):
    flaky_ledger, _ = flaky(ledger, "transact_write_items", timed_out, times=1, after_call=True)

    outcome = outcome_of(post(flaky_ledger, request("pay-1")))

    assert outcome.status == Status.POSTED
    assert [(b.account_id, b.balance) for b in outcome.balances] == [("acc-alice", 3750), ("acc-bob", 1250)]
    assert balances(ledger, "acc-alice", "acc-bob") == {"acc-alice": 3750, "acc-bob": 1250}
    assert_books_balance(ledger)


class CallCounting:
    """The real DynamoDB client, counting calls by operation; `before_first_transaction` runs once."""

    def __init__(self, client: Any, before_first_transaction: Callable[[], object] | None = None) -> None:
        self._client = client
        self._before = before_first_transaction
        self.calls: Counter[str] = Counter()
        self._guard = __import__("threading").Lock()

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)

        def counted(**kwargs: Any) -> Any:
            with self._guard:
                self.calls[name] += 1
                before, self._before = (self._before, None) if name == "transact_write_items" else (None, self._before)
            if before is not None:
                before()
            return call(**kwargs)

        return counted


def test_a_batch_reads_all_its_accounts_in_one_call_then_writes_one_transaction_per_posting(ledger_table):
    payers = [f"acc-payer-{n}" for n in range(10)]
    payees = [f"acc-payee-{n}" for n in range(10)]
    open_accounts(ledger_table, *(account(a, overdraft_limit=None) for a in payers), *(account(a) for a in payees))
    counting = CallCounting(ledger_table.table.client)
    ledger = LedgerTable(counting, ledger_table.table_name)
    records = [sqs_record(transfer(f"pay-{n}", payers[n], payees[n], 100 + n)) for n in range(10)]

    items = post_batch(validate_batch(records), ledger, sleep=no_sleep).items

    assert [outcome_of(item).status for item in items] == [Status.POSTED] * 10
    # The requests name a value date (the builder's): the period close is read once, for the batch.
    assert counting.calls == {"batch_get_item": 1, "get_item": 1, "transact_write_items": 10}
    assert balances(ledger_table, *payees) == {payee: 100 + n for n, payee in enumerate(payees)}
    assert_books_balance(ledger_table)


def test_concurrent_batches_on_shared_accounts_never_overdraw_and_post_each_id_once(ledger_table):
    # Four pollers' batches at once, each read in one call, all paying from the same two accounts.
    payers, sinks = ["acc-payer-a", "acc-payer-b"], [f"acc-sink-{n}" for n in range(8)]
    open_accounts(ledger_table, account(FUNDING, overdraft_limit=None), *(account(a) for a in payers + sinks))
    for payer in payers:
        fund(ledger_table, payer, 3_000)
    bodies = [transfer(f"pay-{n}", payers[n % 2], sinks[n % 8], 250) for n in range(40)]
    batches = [[sqs_record(body) for body in bodies[start : start + 10]] for start in range(0, 40, 10)]

    def run(records: list[dict[str, Any]]) -> list[BatchItem]:
        return post_batch(validate_batch(records), ledger_table, sleep=no_sleep).items

    with ThreadPoolExecutor(max_workers=4) as pool:
        decided = [item for items in pool.map(run, batches) for item in items]

    undecided = [item for item in decided if item.failure is not None]
    assert all(item.failure.error == "TransientPostingError" for item in undecided)
    posted = [item for item in decided if item.outcome and item.outcome.status == Status.POSTED]
    assert len(posted) <= 24  # 2 x 3,000 / 250
    assert all(state.balance >= 0 for state in ledger_table.books.get_accounts(payers).values())
    assert sum(balances(ledger_table, *sinks).values()) == 250 * len(posted)
    assert_books_balance(ledger_table)


def test_chains_racing_on_shared_accounts_apply_all_or_nothing_and_never_overdraw(ledger):
    # alice has 5000; each chain moves 700 from alice to bob and 700 on to carol.
    open_accounts(ledger, account("acc-carol"))
    bodies = [
        {
            "kind": "chain",
            "posting_id": f"chain-{n}",
            "requests": [
                transfer(f"a-{n}", "acc-alice", "acc-bob", 700),
                transfer(f"b-{n}", "acc-bob", "acc-carol", 700),
            ],
        }
        for n in range(10)
    ]

    decided = post_concurrently(ledger, [item_for(body) for body in bodies])

    statuses = Counter((outcome_of(item).status, outcome_of(item).reason) for item in decided)
    assert statuses == {(Status.POSTED, None): 7, (Status.REJECTED, Reason.INSUFFICIENT_FUNDS): 3}
    assert balances(ledger, "acc-alice", "acc-bob", "acc-carol") == {"acc-alice": 100, "acc-bob": 0, "acc-carol": 4900}
    posted_members = {
        m["posting_id"] for item in decided if item.outcome.status == Status.POSTED for m in item.outcome.members
    }
    assert len(posted_members) == 14
    assert_books_balance(ledger)


def test_balancing_legs_racing_on_one_account_move_exactly_what_it_had(ledger_table):
    # Twelve sweeps at once, each "up to 1000" from a payer holding 5,000 with a limit of 300: between
    # them they move exactly 5,300, each what was left when it was decided, and never more.
    sinks = [f"acc-sweep-{n}" for n in range(12)]
    open_accounts(ledger_table, account(FUNDING, overdraft_limit=None), account("acc-payer", overdraft_limit=300))
    open_accounts(ledger_table, *(account(sink) for sink in sinks))
    fund(ledger_table, "acc-payer", 5_000)
    bodies = []
    for n, sink in enumerate(sinks):
        body = transfer(f"sweep-{n}", "acc-payer", sink, 1_000)
        body["legs"][0]["balancing"] = True
        bodies.append(body)

    decided = post_concurrently(ledger_table, [item_for(body) for body in bodies])

    received = balances(ledger_table, *sinks)
    moved = {item.posting_id: received[sinks[int(item.posting_id.split("-")[1])]] for item in decided}
    posted = [item for item in decided if outcome_of(item).status == Status.POSTED]
    refused = [item for item in decided if outcome_of(item).status == Status.REJECTED]
    assert all(outcome_of(item).reason == Reason.INSUFFICIENT_FUNDS for item in refused)
    assert sum(moved.values()) == 5_300
    assert all(0 < moved[item.posting_id] <= 1_000 for item in posted)
    assert len(posted) == 6 and len(refused) == 6  # five whole sweeps and one of 300
    payer = ledger_table.books.get_account("acc-payer")
    assert (payer.balance, payer.available, payer.headroom) == (-300, -300, 0)
    for item in posted:  # each posted leg says what it moved, as the event will
        outcome = outcome_of(item)
        if moved[item.posting_id] < 1_000:
            assert [leg["amount"] for leg in outcome.moved] == [moved[item.posting_id]] * 2
    assert_books_balance(ledger_table)
