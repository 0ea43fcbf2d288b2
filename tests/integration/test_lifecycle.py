"""Holds, captures, voids, expiry, reversals and hot accounts (no limit: lines in lanes), through the
post step on DynamoDB Local: every figure (posted, pending, available) moves exactly once, under
races too."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from posting.adapters.ledger_table import LedgerTable
from posting.domain.model import AccountStatus
from posting.domain.outcomes import Reason, Status
from posting.domain.requests import expiry_posting_id
from posting.steps.items import Batch
from posting.steps.post import post_batch
from posting_cli.operations import reconcile_books
from tests.builders import account, leg
from tests.post_helpers import (
    FUNDING,
    item_for,
    no_sleep,
    open_accounts,
    outcome_of,
    post,
    post_concurrently,
    transfer,
)

_ids = itertools.count(1)


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def hold(posting_id: str, source: str, target: str, amount: int, **fields: Any) -> dict[str, Any]:
    return {**transfer(posting_id, source, target, amount), "kind": "hold", **fields}


def capture(posting_id: str, hold_id: str, *legs: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "capture", "posting_id": posting_id, "hold_id": hold_id}
    body["effective_at"] = "2026-11-27T10:00:00Z"
    if legs:
        body["legs"] = list(legs)
    return body


def void(posting_id: str, hold_id: str, kind: str = "void") -> dict[str, Any]:
    return {"kind": kind, "posting_id": posting_id, "hold_id": hold_id, "effective_at": "2026-11-27T10:00:00Z"}


def reversal(posting_id: str, reverses: str, *legs: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "reversal", "posting_id": posting_id, "reverses": reverses}
    body["effective_at"] = "2026-11-27T10:00:00Z"
    if legs:
        body["legs"] = list(legs)
    return body


def figures(ledger: LedgerTable, account_id: str) -> tuple[int, int, int, int]:
    state = ledger.books.get_account(account_id)
    assert state is not None
    return state.balance, state.pending_debits, state.pending_credits, state.available


def decided(ledger: LedgerTable, body: dict[str, Any]) -> tuple[Status, Reason | None]:
    outcome = outcome_of(post(ledger, body))
    return outcome.status, outcome.reason


def assert_reconciles(ledger: LedgerTable) -> None:
    report = reconcile_books(ledger.books)
    assert report.ok, report.problems


@pytest.fixture
def card(ledger_table: LedgerTable) -> LedgerTable:
    """A customer with 5,000 and no overdraft, a merchant, and a settlement account with no limit,
    opened with no special terms (8 lanes)."""
    open_accounts(
        ledger_table,
        account(FUNDING, overdraft_limit=None),
        account("acc-alice"),
        account("acc-merchant"),
        account("acc-settlement", overdraft_limit=None),
    )
    assert decided(ledger_table, transfer("fund-alice", FUNDING, "acc-alice", 5000)) == (Status.POSTED, None)
    return ledger_table


# -- holds ----------------------------------------------------------------------------------------------


def test_a_hold_moves_nothing_posted_and_lowers_available_only_on_the_paying_side(card):
    outcome = outcome_of(post(card, hold("auth-1", "acc-alice", "acc-merchant", 1200)))

    assert (outcome.status, outcome.kind) == (Status.POSTED, "hold")
    assert figures(card, "acc-alice") == (5000, 1200, 0, 3800)
    assert figures(card, "acc-merchant") == (0, 0, 1200, 0)  # incoming pending money is never spendable
    alice = next(b for b in outcome.balances if b.account_id == "acc-alice")
    assert (alice.posted, alice.pending_debits, alice.available) == (5000, 1200, 3800)
    assert_reconciles(card)


def test_holds_and_postings_are_refused_beyond_available(card):
    assert decided(card, hold("auth-1", "acc-alice", "acc-merchant", 4000))[0] == Status.POSTED

    assert decided(card, hold("auth-2", "acc-alice", "acc-merchant", 1001)) == (
        Status.REJECTED,
        Reason.INSUFFICIENT_FUNDS,
    )
    assert decided(card, transfer("pay-1", "acc-alice", "acc-merchant", 1001)) == (
        Status.REJECTED,
        Reason.INSUFFICIENT_FUNDS,
    )
    assert decided(card, transfer("pay-2", "acc-alice", "acc-merchant", 1000)) == (Status.POSTED, None)
    assert figures(card, "acc-alice") == (4000, 4000, 0, 0)
    assert_reconciles(card)


def test_a_capture_for_less_posts_it_and_releases_the_rest(card):
    post(card, hold("auth-1", "acc-alice", "acc-merchant", 1200))

    outcome = outcome_of(
        post(card, capture("cap-1", "auth-1", leg("acc-alice", "debit", 900), leg("acc-merchant", "credit", 900)))
    )

    assert (outcome.status, outcome.kind) == (Status.POSTED, "capture")
    assert figures(card, "acc-alice") == (4100, 0, 0, 4100)
    assert figures(card, "acc-merchant") == (900, 0, 0, 900)
    assert card.get_decision("auth-1").hold_state == "captured"
    assert card.get_decision("auth-1").settled_by == "cap-1"
    _, entries = card.books.statement("acc-alice")
    assert [(e.posting_id, e.kind, e.amount, e.balance_after) for e in entries][-1] == ("cap-1", "capture", 900, 4100)
    assert_reconciles(card)


def test_a_whole_capture_a_void_and_every_way_a_settled_hold_refuses_more(card):
    post(card, hold("auth-1", "acc-alice", "acc-merchant", 1000))
    post(card, hold("auth-2", "acc-alice", "acc-merchant", 500))
    assert decided(card, capture("cap-1", "auth-1")) == (Status.POSTED, None)
    assert decided(card, void("void-2", "auth-2")) == (Status.POSTED, None)

    assert decided(card, capture("cap-1b", "auth-1")) == (Status.REJECTED, Reason.HOLD_ALREADY_CAPTURED)
    assert decided(card, void("void-1", "auth-1")) == (Status.REJECTED, Reason.HOLD_ALREADY_CAPTURED)
    assert decided(card, capture("cap-2", "auth-2")) == (Status.REJECTED, Reason.HOLD_ALREADY_VOIDED)
    assert decided(card, void("void-2b", "auth-2")) == (Status.REJECTED, Reason.HOLD_ALREADY_VOIDED)
    assert decided(card, capture("cap-x", "auth-none")) == (Status.REJECTED, Reason.HOLD_NOT_FOUND)
    assert decided(card, capture("cap-y", "fund-alice")) == (Status.REJECTED, Reason.NOT_A_HOLD)
    assert figures(card, "acc-alice") == (4000, 0, 0, 4000)
    assert_reconciles(card)


def test_a_capture_beyond_the_hold_or_outside_it_is_refused(card):
    post(card, hold("auth-1", "acc-alice", "acc-merchant", 1000))

    over = capture("cap-1", "auth-1", leg("acc-alice", "debit", 1001), leg("acc-merchant", "credit", 1001))
    elsewhere = capture("cap-2", "auth-1", leg("acc-alice", "debit", 10), leg(FUNDING, "credit", 10))

    assert decided(card, over) == (Status.REJECTED, Reason.EXCEEDS_HOLD)
    assert decided(card, elsewhere) == (Status.REJECTED, Reason.EXCEEDS_HOLD)
    assert card.get_decision("auth-1").hold_state == "open"
    assert decided(card, capture("cap-3", "auth-1")) == (Status.POSTED, None)


def test_a_rejected_hold_can_never_be_captured(card):
    assert decided(card, hold("auth-big", "acc-alice", "acc-merchant", 9999))[1] == Reason.INSUFFICIENT_FUNDS

    assert decided(card, capture("cap-1", "auth-big")) == (Status.REJECTED, Reason.HOLD_NOT_FOUND)
    assert figures(card, "acc-alice") == (5000, 0, 0, 5000)


def test_an_expired_hold_cannot_be_captured_and_its_expiry_releases_it_once(card):
    assert decided(card, hold("auth-1", "acc-alice", "acc-merchant", 700, expires_at=soon(2)))[0] == Status.POSTED
    early = post(card, void("early", "auth-1", kind="expiry"))
    assert early.failure is not None and early.failure.error == "TransientPostingError"  # not yet, not a rejection
    assert card.get_decision("early") is None
    time.sleep(2.1)
    [(hold_id, _)] = card.expired_holds(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.999Z"))
    assert hold_id == "auth-1"

    assert decided(card, capture("cap-1", "auth-1")) == (Status.REJECTED, Reason.HOLD_EXPIRED)
    assert figures(card, "acc-alice") == (5000, 700, 0, 4300)  # refused at decision time, before any sweep
    expiry = outcome_of(post(card, void(expiry_posting_id("auth-1"), "auth-1", kind="expiry")))
    again = outcome_of(post(card, void(expiry_posting_id("auth-1"), "auth-1", kind="expiry")))

    assert (expiry.status, expiry.kind, again.status) == (Status.POSTED, "expiry", Status.DUPLICATE)
    assert figures(card, "acc-alice") == (5000, 0, 0, 5000)
    assert card.get_decision("auth-1").hold_state == "expired"
    assert card.expired_holds("9999-01-01T00:00:00.000Z") == []
    assert decided(card, void("void-1", "auth-1")) == (Status.REJECTED, Reason.HOLD_EXPIRED)
    assert_reconciles(card)


def test_a_hold_already_expired_when_decided_is_refused(card):
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()

    assert decided(card, hold("auth-1", "acc-alice", "acc-merchant", 100, expires_at=past)) == (
        Status.REJECTED,
        Reason.HOLD_EXPIRED,
    )


def test_a_void_is_allowed_on_a_frozen_account_but_a_capture_is_not(card):
    post(card, hold("auth-1", "acc-alice", "acc-merchant", 100))
    post(card, hold("auth-2", "acc-alice", "acc-merchant", 200))
    card.set_account_status("acc-alice", AccountStatus.FROZEN)

    assert decided(card, capture("cap-1", "auth-1")) == (Status.REJECTED, Reason.ACCOUNT_NOT_OPEN)
    assert decided(card, void("void-2", "auth-2")) == (Status.POSTED, None)
    assert figures(card, "acc-alice") == (5000, 100, 0, 4900)


# -- reversals ------------------------------------------------------------------------------------------


def test_a_reversal_mirrors_the_original_and_links_both_ways(card):
    post(card, transfer("pay-1", "acc-alice", "acc-merchant", 800))

    outcome = outcome_of(post(card, reversal("rev-1", "pay-1")))

    assert (outcome.status, outcome.kind) == (Status.POSTED, "reversal")
    assert figures(card, "acc-alice")[0] == 5000
    assert figures(card, "acc-merchant")[0] == 0
    original = card.get_decision("pay-1")
    assert original.reversed_by == ["rev-1"]
    assert card.get_decision("rev-1").reverses == "pay-1"
    assert decided(card, reversal("rev-2", "pay-1")) == (Status.REJECTED, Reason.EXCEEDS_ORIGINAL)
    assert_reconciles(card)


def test_partial_reversals_never_exceed_the_original_in_total(card):
    post(card, transfer("pay-1", "acc-alice", "acc-merchant", 800))

    def part(posting_id: str, amount: int) -> dict[str, Any]:
        return reversal(posting_id, "pay-1", leg("acc-merchant", "debit", amount), leg("acc-alice", "credit", amount))

    assert decided(card, part("rev-1", 300)) == (Status.POSTED, None)
    assert decided(card, part("rev-2", 500)) == (Status.POSTED, None)
    assert decided(card, part("rev-3", 1)) == (Status.REJECTED, Reason.EXCEEDS_ORIGINAL)
    wrong_way = reversal("rev-4", "pay-1", leg("acc-alice", "debit", 1), leg("acc-merchant", "credit", 1))
    assert decided(card, wrong_way) == (Status.REJECTED, Reason.EXCEEDS_ORIGINAL)
    assert card.get_decision("pay-1").reversed_by == ["rev-1", "rev-2"]
    assert_reconciles(card)


def test_what_cannot_be_reversed(card):
    post(card, hold("auth-1", "acc-alice", "acc-merchant", 100))

    assert decided(card, reversal("rev-1", "nothing")) == (Status.REJECTED, Reason.POSTING_NOT_FOUND)
    assert decided(card, reversal("rev-2", "auth-1")) == (Status.REJECTED, Reason.NOT_REVERSIBLE)
    assert decided(card, transfer("pay-big", "acc-alice", "acc-merchant", 99_999))[0] == Status.REJECTED
    assert decided(card, reversal("rev-3", "pay-big")) == (Status.REJECTED, Reason.NOT_REVERSIBLE)


def test_a_reversal_obeys_the_overdraft_limit(card):
    post(card, transfer("pay-1", "acc-alice", "acc-merchant", 800))
    post(card, transfer("pay-2", "acc-merchant", FUNDING, 800))  # the merchant paid it out

    assert decided(card, reversal("rev-1", "pay-1")) == (Status.REJECTED, Reason.INSUFFICIENT_FUNDS)


def test_a_capture_can_be_refunded(card):
    post(card, hold("auth-1", "acc-alice", "acc-merchant", 1000))
    post(card, capture("cap-1", "auth-1", leg("acc-alice", "debit", 600), leg("acc-merchant", "credit", 600)))

    assert decided(card, reversal("refund-1", "cap-1")) == (Status.POSTED, None)
    assert figures(card, "acc-alice") == (5000, 0, 0, 5000)
    assert_reconciles(card)


# -- races ----------------------------------------------------------------------------------------------


def race(ledger: LedgerTable, *bodies: dict[str, Any], rounds: int = 1) -> list[tuple[Status, Reason | None]]:
    items = [item_for(body) for _ in range(rounds) for body in bodies]
    return [(outcome_of(i).status, outcome_of(i).reason) for i in post_concurrently(ledger, items)]


def test_a_capture_racing_a_void_one_wins(card):
    for n in range(6):
        post(card, hold(f"auth-{n}", "acc-alice", "acc-merchant", 100))
        results = race(card, capture(f"cap-{n}", f"auth-{n}"), void(f"void-{n}", f"auth-{n}"))
        assert sorted(r[0] for r in results) == [Status.POSTED, Status.REJECTED], results
        assert {r[1] for r in results} <= {None, Reason.HOLD_ALREADY_CAPTURED, Reason.HOLD_ALREADY_VOIDED}
    assert figures(card, "acc-alice")[1] == 0
    assert_reconciles(card)


def test_two_captures_of_one_hold_one_wins(card):
    post(card, hold("auth-1", "acc-alice", "acc-merchant", 1000))

    results = race(
        card,
        *(
            capture(f"cap-{n}", "auth-1", leg("acc-alice", "debit", 100 + n), leg("acc-merchant", "credit", 100 + n))
            for n in range(6)
        ),
    )

    assert Counter(results) == {(Status.POSTED, None): 1, (Status.REJECTED, Reason.HOLD_ALREADY_CAPTURED): 5}
    assert figures(card, "acc-alice")[1:3] == (0, 0)
    assert_reconciles(card)


def test_reversals_racing_each_other_never_go_beyond_the_original(card):
    # Paid to an unlimited account, so that only the original's amount can stop a reversal.
    post(card, transfer("pay-1", "acc-alice", FUNDING, 1000))

    results = race(
        card,
        *(reversal(f"rev-{n}", "pay-1", leg(FUNDING, "debit", 300), leg("acc-alice", "credit", 300)) for n in range(8)),
    )

    assert Counter(results) == {(Status.POSTED, None): 3, (Status.REJECTED, Reason.EXCEEDS_ORIGINAL): 5}
    assert figures(card, "acc-alice")[0] == 4900
    assert_reconciles(card)


def test_concurrent_holds_never_take_available_beyond_the_limit(card):
    results = race(card, *(hold(f"auth-{n}", "acc-alice", "acc-merchant", 1000) for n in range(16)))

    assert Counter(results) == {(Status.POSTED, None): 5, (Status.REJECTED, Reason.INSUFFICIENT_FUNDS): 11}
    assert figures(card, "acc-alice") == (5000, 5000, 0, 0)
    assert_reconciles(card)


# -- hot accounts ---------------------------------------------------------------------------------------


class CountingClient:
    """The real client, counting which keys each read asks for."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.read_keys: list[str] = []
        self.written: list[list[str]] = []
        self.transactions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, **kwargs: Any) -> Any:
        for request in kwargs["RequestItems"].values():
            self.read_keys += [f"{k['PK']['S']}/{k['SK']['S']}" for k in request["Keys"]]
        return self._client.batch_get_item(**kwargs)

    def get_item(self, **kwargs: Any) -> Any:
        self.read_keys.append(f"{kwargs['Key']['PK']['S']}/{kwargs['Key']['SK']['S']}")
        return self._client.get_item(**kwargs)

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.transactions += 1
        keys = []
        for action in kwargs["TransactItems"]:
            ((_, detail),) = action.items()
            key = detail.get("Key") or {"PK": detail["Item"]["PK"], "SK": detail["Item"]["SK"]}
            keys.append(f"{key['PK']['S']}/{key['SK']['S']}")
        self.written.append(keys)
        return self._client.transact_write_items(**kwargs)


def test_postings_through_a_hot_account_read_its_terms_only_and_write_no_item_of_it_but_their_lines(card):
    counting = CountingClient(card.table.client)
    ledger = LedgerTable(counting, card.table_name)

    for n in range(4):
        assert decided(ledger, transfer(f"pay-{n}", "acc-alice", "acc-settlement", 10)) == (Status.POSTED, None)

    # Its terms and status (the account item) are read; none of its lines or checkpoints are.
    read = {key for key in counting.read_keys if key.startswith("ACCOUNT#acc-settlement")}
    assert read == {"ACCOUNT#acc-settlement/ACCOUNT"}
    written = [key for transaction in counting.written for key in transaction if "acc-settlement" in key]
    assert len(written) == 4 and all("#LANE#" in key for key in written)
    assert figures(card, "acc-settlement") == (40, 0, 0, 40)
    assert_reconciles(card)


def test_concurrent_postings_through_a_hot_account_sum_to_its_entries_without_conflicts(card):
    sources = [f"acc-c{n}" for n in range(8)]
    open_accounts(card, *(account(source) for source in sources))
    for source in sources:
        post(card, transfer(f"fund-{source}", FUNDING, source, 10_000))
    counting = CountingClient(card.table.client)
    ledger = LedgerTable(counting, card.table_name)
    post(ledger, transfer("warm", "acc-c0", "acc-settlement", 1))
    amounts = {f"pay-{n}": 1 + n % 17 for n in range(160)}
    items = [
        item_for(transfer(posting_id, sources[n % 8], "acc-settlement", amount))
        for n, (posting_id, amount) in enumerate(amounts.items())
    ]
    counting.transactions = 0

    # One invocation, 8 workers: the step serialises postings of one source, never the hot account.
    results = post_batch(Batch(items=items), ledger, workers=8, sleep=no_sleep).items

    assert all(outcome_of(item).status == Status.POSTED for item in results)
    hot, entries = card.books.statement("acc-settlement")
    assert hot.balance == sum(amounts.values()) + 1 == sum(e.signed_amount for e in entries)
    assert hot.version == len(entries) == len(amounts) + 1
    assert [e.balance_after for e in entries] == list(itertools.accumulate(e.signed_amount for e in entries))
    # No item of the hot account is in any posting's transaction: nothing on it is ever retried.
    assert counting.transactions == len(amounts)
    assert_reconciles(card)


def test_a_hot_account_takes_each_posting_exactly_once_through_duplicates_and_redeliveries(card):
    bodies = [transfer(f"pay-{n}", FUNDING, "acc-settlement", 100 + n) for n in range(40)]
    items = []
    for n, body in enumerate(bodies):
        first = item_for(body, message_id=f"m-{n}")
        items += [first, item_for(body), first.model_copy(update={"receive_count": 2})]

    results = post_concurrently(card, items)

    statuses = Counter(outcome_of(item).status for item in results)
    assert statuses[Status.POSTED] >= 40 and statuses[Status.REJECTED] == 0
    assert figures(card, "acc-settlement")[0] == sum(100 + n for n in range(40))
    _, entries = card.books.statement("acc-settlement")
    assert sorted(e.posting_id for e in entries) == sorted(b["posting_id"] for b in bodies)
    assert_reconciles(card)


def test_holds_captures_voids_and_reversals_on_a_hot_account(card):
    open_accounts(card, {**account("acc-fees", overdraft_limit=None), "balance_shards": 4})  # a tuned one
    post(card, hold("auth-1", "acc-alice", "acc-settlement", 1000))
    post(card, hold("auth-2", "acc-alice", "acc-settlement", 300))
    assert figures(card, "acc-settlement") == (0, 0, 1300, 0)
    post(card, capture("cap-1", "auth-1", leg("acc-alice", "debit", 700), leg("acc-settlement", "credit", 700)))
    post(card, void("void-2", "auth-2"))
    refund = reversal("ref-1", "cap-1", leg("acc-settlement", "debit", 200), leg("acc-alice", "credit", 200))
    assert decided(card, refund) == (Status.POSTED, None)

    assert figures(card, "acc-settlement") == (500, 0, 0, 500)
    assert figures(card, "acc-alice") == (4500, 0, 0, 4500)
    assert_reconciles(card)


def test_a_hot_account_frozen_then_unfrozen_is_seen_at_once_by_every_warm_ledger(card):
    warm = [LedgerTable(card.table.client, card.table_name) for _ in range(3)]
    for n, ledger in enumerate(warm):
        assert decided(ledger, transfer(f"pay-{n}", "acc-alice", "acc-settlement", 10)) == (Status.POSTED, None)
    card.set_account_status("acc-settlement", AccountStatus.FROZEN)
    for n, ledger in enumerate(warm):
        assert decided(ledger, transfer(f"frozen-{n}", "acc-alice", "acc-settlement", 10)) == (
            Status.REJECTED,
            Reason.ACCOUNT_NOT_OPEN,
        )
    card.set_account_status("acc-settlement", AccountStatus.OPEN)
    for n, ledger in enumerate(warm):
        assert decided(ledger, transfer(f"thawed-{n}", "acc-alice", "acc-settlement", 10)) == (Status.POSTED, None)
    assert figures(card, "acc-settlement")[0] == 60
    assert_reconciles(card)


# -- point in time and statements -----------------------------------------------------------------------


@pytest.mark.parametrize("account_id", ["acc-merchant", "acc-settlement"])
def test_point_in_time_balances_and_paged_statements(card, account_id):
    moments = []
    for n in range(7):
        post(card, transfer(f"pay-{n}", "acc-alice", account_id, 10 * (n + 1)))
        moments.append(card.books.statement(account_id)[1][-1].recorded_at)

    for n, moment in enumerate(moments):
        assert card.books.balance_as_of(account_id, moment) == sum(10 * (k + 1) for k in range(n + 1))
    assert card.books.balance_as_of(account_id, "2000-01-01T00:00:00.000Z") == 0

    pages, cursor = [], None
    while True:
        page, cursor = card.books.statement_page(account_id, since=moments[1], limit=2, cursor=cursor)
        pages.append(page)
        if cursor is None:
            break
    lines = [entry for page in pages for entry in page]
    assert [len(page) for page in pages] == [2, 2, 2]
    assert [e.posting_id for e in lines] == [f"pay-{n}" for n in range(1, 7)]
    assert [e.balance_after for e in lines] == list(itertools.accumulate(10 * (n + 1) for n in range(7)))[1:]
    until, _ = card.books.statement_page(account_id, since=moments[2], until=moments[3])
    assert [e.posting_id for e in until] == ["pay-2", "pay-3"]
