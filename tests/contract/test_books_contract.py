"""The books' contract, on the in-memory fake and on the DynamoDB adapter alike: every change of an
account's figures is a line; figures as recorded at an instant and as of a value date; operators'
acts on accounts and on the period, with the events they owe."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from posting.domain.accounts import AccountActRefused
from posting.domain.books import Figures, figures_by_value_date
from posting.domain.model import Account, utc_timestamp
from posting.domain.outcomes import PostingRejected, Reason
from posting.domain.periods import PeriodCloseRefused
from posting.domain.plan import transaction_items
from posting.domain.reconciliation import reconcile_records
from posting.steps.ledger_acts import act_on_account, close_period, event_of, open_accounts
from tests.builders import account, leg, request
from tests.contract.test_ledger_contract import T0, at, plan, post


def no_sleep(_seconds: float) -> None:
    pass


def hold(hold_id: str, source: str, target: str, amount: int) -> dict[str, Any]:
    return {**request(hold_id, leg(source, "debit", amount), leg(target, "credit", amount)), "kind": "hold"}


def lines_of(ledger: Any, account_id: str) -> list[Any]:
    return sorted(
        (r for r in ledger.books.scan() if type(r).__name__ == "Entry" and r.account_id == account_id),
        key=lambda line: (line.recorded_at, line.posting_id, line.leg),
    )


@pytest.fixture
def books(ledger: Any) -> Any:
    """alice (no overdraft) holds 5000 from 10:00:00; settlement (4 lanes) and funding are unlimited."""
    open_accounts(
        ledger.acts,
        [
            Account.model_validate(each, strict=False)
            for each in (
                account("alice"),
                account("bob", overdraft_limit=100),
                account("funding", normal_balance="debit", overdraft_limit=None),
                {**account("settlement", overdraft_limit=None), "balance_shards": 4},
            )
        ],
        T0 - timedelta(hours=1),
        by="ops@example",
    )
    post(ledger, request("fund-1", leg("funding", "debit", 5000), leg("alice", "credit", 5000)), 0)
    return ledger


# -- every change of figures is a line ---------------------------------------------------------------


def test_a_hold_on_an_account_with_a_limit_is_a_line_and_its_capture_folds_the_release(books):
    post(books, hold("auth-1", "alice", "settlement", 300), 1)
    (held,) = [line for line in lines_of(books, "alice") if line.posting_id == "auth-1"]
    assert (held.pending, held.pending_debits, held.signed_amount) == (True, 300, 0)
    # Planned from a read of alice: it carries her figures right after it.
    assert held.figures_after() == (5000, 300, 0)

    capture = plan(
        books,
        {
            "kind": "capture",
            "posting_id": "cap-1",
            "hold_id": "auth-1",
            "legs": [leg("alice", "debit", 200), leg("settlement", "credit", 200)],
        },
        at(2),
    )
    # Its decision, the hold's, alice's item and one line per posted leg: the releases ride on them.
    assert transaction_items(capture) == 5
    books.record_posting(capture, capture.request.content_hash(), "msg-cap-1")
    captured = [line for line in lines_of(books, "alice") if line.posting_id == "cap-1"]
    assert [(c.signed_amount, c.pending_debits, c.pending) for c in captured] == [(-200, -300, False)]
    assert captured[0].figures_after() == (4800, 0, 0)
    settlement = books.books.get_account("settlement")
    assert (settlement.balance, settlement.pending_credits) == (200, 0)
    report = reconcile_records(books.books.scan())
    assert report.ok, report.problems


def test_reconciliation_catches_an_item_whose_pending_figures_its_lines_do_not_give(books):
    post(books, hold("auth-1", "alice", "settlement", 300), 1)
    tampered = [
        record.model_copy(update={"pending_debits": 301})
        if type(record).__name__ == "AccountState" and record.account_id == "alice"
        else record
        for record in books.books.scan()
    ]
    problems = reconcile_records(tampered).problems
    assert any("alice: pending 301/0 (debits/credits) but its lines sum to 300/0" in p for p in problems), problems


# -- figures at an instant, as recorded and by value date --------------------------------------------


def dated(posting_id: str, source: str, target: str, amount: int, effective: float) -> dict[str, Any]:
    return request(
        posting_id,
        leg(source, "debit", amount),
        leg(target, "credit", amount),
        effective_at=utc_timestamp(at(effective)),
    )


def test_figures_as_recorded_and_by_value_date_agree_with_the_lines(books):
    # Ordinary (value date = decision), back-valued by an hour, forward-valued by a day, and a hold.
    post(books, dated("pay-1", "alice", "settlement", 700, 10), 10)
    post(books, dated("late-1", "alice", "settlement", 300, -3600), 20)
    post(books, dated("future-1", "alice", "bob", 100, 86_400), 30)
    post(books, hold("auth-1", "alice", "settlement", 250), 40)
    post(books, {**request("auth-2", leg("alice", "debit", 50), leg("settlement", "credit", 50)), "kind": "hold"}, 50)
    post(
        books, {"kind": "void", "posting_id": "void-1", "hold_id": "auth-2", "effective_at": "2026-11-27T09:00:00Z"}, 60
    )
    report = reconcile_records(books.books.scan())
    assert report.ok, report.problems
    instants = [-7200, -3600, -1, 0, 5, 10, 15, 20, 25, 39, 40, 45, 60, 3600, 86_400, 90_000]
    for account_id in ("alice", "settlement", "bob"):
        lines = lines_of(books, account_id)
        for seconds in instants:
            moment = utc_timestamp(at(seconds))
            recorded = Figures.of(line for line in lines if line.recorded_at <= moment)
            assert books.books.figures_as_of(account_id, moment) == recorded, (account_id, seconds)
            assert books.books.figures_by_value_date(account_id, moment) == figures_by_value_date(lines, moment), (
                account_id,
                seconds,
            )
    # Back-valued: an hour before it was decided, alice already had 300 less by value date.
    by_value = books.books.figures_by_value_date("alice", utc_timestamp(at(-1)))
    assert by_value.posted == -300  # funded at 10:00:00 by value date; the late payment is dated 09:00:00
    assert books.books.figures_as_of("alice", utc_timestamp(at(-1))).posted == 0


# -- operators' acts ---------------------------------------------------------------------------------


def test_freeze_unfreeze_and_close_are_revisions_with_events(books):
    ticks = iter(range(1, 100))

    def now() -> Any:
        return T0 + timedelta(minutes=5, seconds=next(ticks))

    with pytest.raises(AccountActRefused, match="still has posted 5000"):
        act_on_account(books.acts, "alice", "close", "ops@example", clock=now, sleep=no_sleep)
    frozen = act_on_account(books.acts, "alice", "freeze", "ops@example", note="KYC review", clock=now)
    assert (frozen.revision, str(frozen.status)) == (2, "frozen")
    with pytest.raises(AccountActRefused, match="frozen, not open"):
        act_on_account(books.acts, "alice", "freeze", "ops@example", clock=now)
    act_on_account(books.acts, "alice", "unfreeze", "ops@example", clock=now)
    act_on_account(books.acts, "bob", "close", "ops@example", clock=now)
    assert str(books.books.get_account("bob").account.status) == "closed"
    with pytest.raises(AccountActRefused, match="is closed"):
        act_on_account(books.acts, "bob", "unfreeze", "ops@example", clock=now)
    owed = [event_of(record) for _, record in books.acts.announcements(100)]
    types = [event.detail_type for event in owed]
    assert types.count("Account Opened") == 4
    assert types[-3:] == ["Account Frozen", "Account Unfrozen", "Account Closed"]
    frozen_event = owed[types.index("Account Frozen")].detail
    assert (frozen_event["account_id"], frozen_event["revision"], frozen_event["note"]) == ("alice", 2, "KYC review")


def test_an_account_without_a_limit_closes_from_frozen_once_postings_have_landed(books):
    now = T0 + timedelta(minutes=5)
    books.open_account(Account.model_validate(account("fees", overdraft_limit=None), strict=False), utc_timestamp(now))
    with pytest.raises(AccountActRefused, match="freeze it first"):
        act_on_account(books.acts, "fees", "close", "ops", clock=lambda: now)
    act_on_account(books.acts, "fees", "freeze", "ops", clock=lambda: now)
    with pytest.raises(AccountActRefused, match="may still land"):
        act_on_account(books.acts, "fees", "close", "ops", clock=lambda: now + timedelta(seconds=30))
    closed = act_on_account(books.acts, "fees", "close", "ops", clock=lambda: now + timedelta(seconds=61))
    assert str(closed.status) == "closed"
    # One that holds money is not closed, whatever its status: its lines are summed first.
    act_on_account(books.acts, "funding", "freeze", "ops", clock=lambda: now)
    with pytest.raises(AccountActRefused, match="still has posted 5000"):
        act_on_account(books.acts, "funding", "close", "ops", clock=lambda: now + timedelta(minutes=2))


def test_a_limit_change_counts_what_is_pending(books):
    now = T0 + timedelta(minutes=5)
    post(books, request("pay-b", leg("bob", "debit", 60), leg("settlement", "credit", 60)), 1)  # bob at -60
    post(books, hold("auth-b", "bob", "settlement", 30), 2)  # and 30 held: available -90, limit 100
    with pytest.raises(AccountActRefused, match="a limit below 90"):
        act_on_account(books.acts, "bob", "limit", "ops", limit=80, clock=lambda: now)
    changed = act_on_account(books.acts, "bob", "limit", "ops", limit=90, clock=lambda: now)
    assert (changed.overdraft_limit, changed.previous_limit) == (90, 100)
    bob = books.books.get_account("bob")
    assert (bob.account.overdraft_limit, bob.headroom, bob.recorded_headroom) == (90, 0, 0)
    # The new limit is the one every later debit and hold is checked against.
    with pytest.raises(PostingRejected) as refused:
        plan(books, request("pay-b2", leg("bob", "debit", 1), leg("settlement", "credit", 1)), at(3))
    assert refused.value.reason == Reason.INSUFFICIENT_FUNDS
    with pytest.raises(AccountActRefused, match="no limit"):
        act_on_account(books.acts, "settlement", "limit", "ops", limit=10, clock=lambda: now)
    report = reconcile_records(books.books.scan())
    assert report.ok, report.problems


def test_the_period_closes_forward_only_and_comes_in_force_a_horizon_later(books):
    now = T0 + timedelta(minutes=10)
    with pytest.raises(PeriodCloseRefused, match="not past"):
        close_period(books.acts, utc_timestamp(now + timedelta(seconds=1)), now, "controller")
    closed = close_period(books.acts, utc_timestamp(T0), now, "controller", note="day end")
    assert (closed.through, closed.revision, closed.previous) == (utc_timestamp(T0), 1, None)
    assert closed.in_force_from == utc_timestamp(now + timedelta(seconds=60))
    assert books.read_period() == closed == books.acts.read_period()
    with pytest.raises(PeriodCloseRefused, match="comes in force"):
        close_period(books.acts, utc_timestamp(T0 + timedelta(minutes=1)), now + timedelta(seconds=30), "controller")
    with pytest.raises(PeriodCloseRefused, match="already closed"):
        close_period(books.acts, utc_timestamp(T0), now + timedelta(minutes=2), "controller")
    again = close_period(books.acts, utc_timestamp(T0 + timedelta(minutes=1)), now + timedelta(minutes=2), "controller")
    assert (again.revision, again.previous) == (2, utc_timestamp(T0))
    owed = [event_of(record) for _, record in books.acts.announcements(100)]
    period_events = [e.detail for e in owed if e.detail_type == "Period Closed"]
    assert [(e["revision"], e["through"], e["note"]) for e in period_events] == [
        (1, utc_timestamp(T0), "day end"),
        (2, utc_timestamp(T0 + timedelta(minutes=1)), ""),
    ]


# -- finding a posting by its external reference --------------------------------------------------


def test_a_posting_is_found_by_its_external_reference_with_its_state(books):
    ref = "ARN-74001234567890123456789"
    post(books, {**hold("auth-1", "alice", "settlement", 300), "external_ref": ref}, 1)
    capture = {"kind": "capture", "posting_id": "cap-1", "hold_id": "auth-1", "external_ref": ref}
    post(books, capture, 2)
    post(books, {**request("other-1", leg("alice", "debit", 1), leg("settlement", "credit", 1))}, 3)
    found = books.books.find_by_ref(ref)
    assert [(d.posting_id, d.kind, d.hold_state) for d in found] == [
        ("auth-1", "hold", "captured"),
        ("cap-1", "capture", None),
    ]
    assert all(d.external_ref == ref for d in found)
    assert books.books.find_by_ref("nothing-like-it") == []
