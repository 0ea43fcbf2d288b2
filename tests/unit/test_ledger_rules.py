"""The ledger's money rules, with no AWS at all."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posting.domain.content import check_balanced
from posting.domain.ledger import plan_posting
from posting.domain.model import Account, AccountState, PostingRequest
from posting.domain.outcomes import PostingRejected, Reason
from tests.builders import account, leg, request


def parse(body: dict) -> PostingRequest:
    return PostingRequest.model_validate(body, strict=False)


def state(account_id: str, balance: int = 0, version: int = 0, **terms) -> AccountState:
    return AccountState(
        account=Account.model_validate(account(account_id, **terms), strict=False), balance=balance, version=version
    )


def books(*states: AccountState) -> dict[str, AccountState]:
    return {s.account_id: s for s in states}


def after(plan, account_id: str) -> int:
    """The posted balance a plan leaves on an account it was planned from a read of."""
    return next(c.after().balance for c in plan.changes if c.account_id == account_id)


def reason_of(body: dict, accounts: dict[str, AccountState]) -> Reason:
    with pytest.raises(PostingRejected) as rejected:
        plan_posting(parse(body), accounts)
    return rejected.value.reason


def test_a_transfer_moves_money_between_customer_accounts():
    plan = plan_posting(parse(request()), books(state("acc-alice", 5000), state("acc-bob", 100)))

    assert [(c.account_id, c.posted, c.entries, c.pinned.version, c.after().balance) for c in plan.changes] == [
        ("acc-alice", -1250, 1, 0, 3750),
        ("acc-bob", 1250, 1, 0, 1350),
    ]
    assert [(e.account_id, e.sequence, e.balance_after) for e in plan.entries] == [
        ("acc-alice", 1, 3750),
        ("acc-bob", 1, 1350),
    ]


def test_normal_balance_decides_the_direction():
    # A debit raises an asset (debit-normal) account and lowers a liability (credit-normal) one.
    body = request("p", leg("cash", "debit", 700), leg("customer", "credit", 700))
    plan = plan_posting(
        parse(body), books(state("cash", normal_balance="debit", overdraft_limit=None), state("customer"))
    )
    assert {c.account_id: c.posted for c in plan.changes} == {"customer": 700}
    assert {e.account_id: e.signed_amount for e in plan.entries} == {"cash": 700, "customer": 700}


def test_no_overdraft_account_cannot_go_below_zero():
    accounts = books(state("acc-alice", 1249), state("acc-bob"))
    assert reason_of(request(), accounts) == Reason.INSUFFICIENT_FUNDS


@given(
    opening=st.integers(min_value=0, max_value=10**12),
    limit=st.integers(min_value=0, max_value=10**12),
    amount=st.integers(min_value=1, max_value=10**12),
)
def test_an_insufficient_funds_detail_names_no_balance_or_limit(opening, limit, amount):
    body = request("p", leg("acc-alice", "debit", amount), leg("acc-bob", "credit", amount))
    accounts = books(state("acc-alice", opening, overdraft_limit=limit), state("acc-bob", 7777))
    try:
        plan_posting(parse(body), accounts)
    except PostingRejected as rejected:
        assert rejected.reason == Reason.INSUFFICIENT_FUNDS
        assert not any(ch.isdigit() for ch in rejected.detail.replace("acc-alice", "")), rejected.detail


def test_spending_exactly_the_balance_is_allowed():
    plan = plan_posting(parse(request()), books(state("acc-alice", 1250), state("acc-bob")))
    assert after(plan, "acc-alice") == 0


def test_overdraft_limit_allows_going_negative_up_to_the_limit():
    assert plan_posting(parse(request()), books(state("acc-alice", 0, overdraft_limit=1250), state("acc-bob")))
    assert (
        reason_of(request(), books(state("acc-alice", 0, overdraft_limit=1249), state("acc-bob")))
        == Reason.INSUFFICIENT_FUNDS
    )


def test_unlimited_overdraft_for_funding_accounts():
    plan = plan_posting(parse(request()), books(state("acc-alice", 0, overdraft_limit=None), state("acc-bob")))
    # An unlimited account has no balance item to change: its line is all it gets, in one of its lanes.
    assert [c.account_id for c in plan.changes] == ["acc-bob"]
    alice = next(e for e in plan.entries if e.account_id == "acc-alice")
    assert (alice.signed_amount, alice.balance_after, 0 <= alice.lane < 8) == (-1250, None, True)


def test_money_coming_in_is_accepted_even_beyond_the_limit():
    # An account already below its limit (the limit was lowered) may still receive money.
    body = request("p", leg("acc-bob", "debit", 10), leg("acc-alice", "credit", 10))
    plan = plan_posting(parse(body), books(state("acc-alice", -500), state("acc-bob", 10)))
    assert after(plan, "acc-alice") == -490


def test_several_legs_on_one_account_are_booked_in_order():
    body = request(
        "p",
        leg("acc-alice", "debit", 1000),
        leg("acc-alice", "debit", 50),  # a fee
        leg("acc-bob", "credit", 1000),
        leg("fees", "credit", 50),
    )
    plan = plan_posting(parse(body), books(state("acc-alice", 2000, version=7), state("acc-bob"), state("fees")))
    alice = [(e.sequence, e.balance_after) for e in plan.entries if e.account_id == "acc-alice"]
    assert alice == [(8, 1000), (9, 950)]
    assert plan.changes[0].pinned.version == 7 and plan.changes[0].after().version == 9


@pytest.mark.parametrize(
    ("accounts", "reason"),
    [
        (books(state("acc-alice", 5000)), Reason.ACCOUNT_NOT_FOUND),
        (books(state("acc-alice", 5000), state("acc-bob", status="frozen")), Reason.ACCOUNT_NOT_OPEN),
        (books(state("acc-alice", 5000, status="closed"), state("acc-bob")), Reason.ACCOUNT_NOT_OPEN),
        (books(state("acc-alice", 5000), state("acc-bob", currency="USD")), Reason.CURRENCY_MISMATCH),
    ],
)
def test_account_checks(accounts, reason):
    assert reason_of(request(), accounts) == reason


def test_unbalanced_per_currency_even_when_totals_match():
    body = request(
        "p",
        leg("a", "debit", 100, "EUR"),
        leg("b", "credit", 100, "USD"),
    )
    with pytest.raises(PostingRejected) as rejected:
        check_balanced(parse(body))
    assert rejected.value.reason == Reason.UNBALANCED
    assert "EUR debits exceed credits by 100" in rejected.value.detail


def test_multi_currency_posting_balanced_per_currency():
    body = request(
        "fx",
        leg("alice-eur", "debit", 1000, "EUR"),
        leg("fx-eur", "credit", 1000, "EUR"),
        leg("fx-usd", "debit", 1100, "USD"),
        leg("bob-usd", "credit", 1100, "USD"),
    )
    check_balanced(parse(body))


@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=10),
    opening=st.integers(min_value=0, max_value=10**13),
)
def test_every_plan_conserves_money_and_respects_no_overdraft(amounts, opening):
    """Property: sum of changes is zero per currency, and a no-overdraft account never ends below zero."""
    total = sum(amounts)
    legs = [leg("payer", "debit", amount) for amount in amounts] + [leg("payee", "credit", total)]
    accounts = books(state("payer", opening), state("payee"))
    try:
        plan = plan_posting(parse(request("p", *legs)), accounts)
    except PostingRejected as rejected:
        assert rejected.reason == Reason.INSUFFICIENT_FUNDS
        assert total > opening
        return
    moved = {c.account_id: c.posted for c in plan.changes}
    assert moved == {"payer": -total, "payee": total}
    assert after(plan, "payer") >= 0


def test_legs_on_one_account_net_before_the_limit_is_checked():
    # On a balance of 100: "debit 150, credit 100" nets to -50, as does the other order.
    for legs in (
        [leg("acc-alice", "debit", 150), leg("acc-alice", "credit", 100), leg("acc-bob", "credit", 50)],
        [leg("acc-alice", "credit", 100), leg("acc-alice", "debit", 150), leg("acc-bob", "credit", 50)],
    ):
        plan = plan_posting(parse(request("p", *legs)), books(state("acc-alice", 100), state("acc-bob")))
        assert after(plan, "acc-alice") == 50


@given(
    opening=st.integers(min_value=0, max_value=10**6),
    limit=st.integers(min_value=0, max_value=10**6),
    moves=st.lists(st.tuples(st.sampled_from(["debit", "credit"]), st.integers(1, 10**6)), min_size=1, max_size=8),
    order=st.randoms(use_true_random=False),
)
def test_the_order_of_legs_never_changes_the_outcome(opening, limit, moves, order):
    legs = [leg("acc-alice", side, amount) for side, amount in moves]
    net = sum(amount if side == "debit" else -amount for side, amount in moves)
    if net:
        legs.append(leg("acc-bob", "debit" if net < 0 else "credit", abs(net)))
    accounts = books(state("acc-alice", opening, overdraft_limit=limit), state("acc-bob", 10**9, overdraft_limit=None))
    shuffled = list(legs)
    order.shuffle(shuffled)
    outcomes = []
    for each in (legs, shuffled):
        if len(each) < 2:
            return
        try:
            outcomes.append(after(plan_posting(parse(request("p", *each)), accounts), "acc-alice"))
        except PostingRejected as rejected:
            outcomes.append(rejected.reason)
    assert outcomes[0] == outcomes[1]
    allowed = net <= 0 or opening - net >= -limit
    assert (outcomes[0] != Reason.INSUFFICIENT_FUNDS) == allowed


def test_a_plan_without_a_read_leaves_the_limit_to_the_write():
    # Known by its terms only (a busy account): no check here, but the change carries what it needs.
    terms = state("acc-alice", 0).model_copy(update={"known": False})
    plan = plan_posting(parse(request()), books(terms, state("acc-bob")))
    alice = plan.changes[0]
    assert (alice.pinned, alice.min_headroom, alice.available) == (None, 1250, -1250)
    assert not any(e.balance_after for e in plan.entries if e.account_id == "acc-alice")
