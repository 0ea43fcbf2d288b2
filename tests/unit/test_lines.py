"""The lines a request writes (posting.domain.lines): every change of an account's figures is a line,
so the lines of any plan add up, per account, to exactly what it changes."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posting.domain import planning
from posting.domain.books import Figures
from posting.domain.ledger import plan_request
from posting.domain.model import MAX_LEGS, Account, AccountState
from posting.domain.outcomes import PostingRejected, Reason
from posting.domain.plan import decision_for, transaction_items
from posting.domain.requests import MAX_TRANSACTION_ITEMS, parse_request
from tests.builders import account, leg

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ACCOUNTS = ("a", "b", "c", "d")


def states(limited: tuple[bool, ...]) -> dict[str, AccountState]:
    found = {}
    for account_id, has_limit in zip(ACCOUNTS, limited, strict=True):
        terms = account(account_id, overdraft_limit=10**9 if has_limit else None)
        found[account_id] = AccountState(
            account=Account.model_validate(terms, strict=False), known=has_limit, balance=0, version=0
        )
    return found


legs_strategy = st.lists(
    st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS), st.integers(1, 10_000)),
    min_size=1,
    max_size=4,
)


def balanced(pairs: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    return [
        each
        for source, target, amount in pairs
        for each in (leg(source, "debit", amount), leg(target, "credit", amount))
    ]


@settings(max_examples=150, deadline=None)
@given(limited=st.tuples(*(st.booleans() for _ in ACCOUNTS)), held=legs_strategy, captured_share=st.floats(0, 1))
def test_the_lines_of_a_hold_and_its_capture_add_up_to_what_they_change(limited, held, captured_share):
    accounts = states(limited)
    hold = parse_request(json.dumps({"kind": "hold", "posting_id": "h-1", "legs": balanced(held)}))
    hold_plan = plan_request(hold, accounts, None, T0)
    _assert_lines_add_up(hold_plan, accounts)
    decision = decision_for(hold_plan, hold.content_hash(), "m-1")
    # Capture a share of each pair of the hold (at least 1 of each), releasing the rest.
    captured = [(s, t, max(1, int(amount * captured_share))) for s, t, amount in held]
    capture = parse_request(
        json.dumps({"kind": "capture", "posting_id": "c-1", "hold_id": "h-1", "legs": balanced(captured)})
    )
    after_hold = dict(accounts) | {c.account_id: c.after() for c in hold_plan.changes if c.after() is not None}
    capture_plan = plan_request(capture, after_hold, decision, T0)
    _assert_lines_add_up(capture_plan, accounts)
    # A capture's releases ride on its posted lines, where the account has one.
    assert len(capture_plan.entries) <= len(capture.legs or []) + len({a for pair in held for a in pair[:2]})


def _assert_lines_add_up(plan: Any, accounts: dict[str, AccountState]) -> None:
    by_account: dict[str, Figures] = defaultdict(Figures)
    for line in plan.entries:
        by_account[line.account_id] += Figures.of([line])
    for change in plan.changes:
        assert by_account.pop(change.account_id) == Figures(
            change.posted, change.pending_debits, change.pending_credits, change.entries
        )
        assert not accounts[change.account_id].account.is_unlimited
    # What is left are accounts without a limit: their lines are all they have.
    assert all(accounts[a].account.is_unlimited for a in by_account)
    assert transaction_items(plan) <= MAX_TRANSACTION_ITEMS


def test_a_capture_that_cannot_fit_one_transaction_is_refused_by_reason():
    # A hold over 49 accounts with a limit, captured in 49 legs on 25 of them: 24 accounts need a
    # release line of their own, beyond the 100 items of one transaction.
    payers = [f"p{n:02d}" for n in range(MAX_LEGS - 1)]
    accounts = {
        a: AccountState(account=Account.model_validate(account(a, overdraft_limit=10**9), strict=False), known=True)
        for a in [*payers, "sink"]
    }
    hold_legs = [leg(p, "debit", 100) for p in payers] + [leg("sink", "credit", 100 * len(payers))]
    hold = parse_request(json.dumps({"kind": "hold", "posting_id": "h-1", "legs": hold_legs}))
    hold_plan = plan_request(hold, accounts, None, T0)
    decision = decision_for(hold_plan, hold.content_hash(), "m-1")
    accounts |= {c.account_id: c.after() for c in hold_plan.changes if c.after() is not None}
    kept = payers[:24]
    capture_legs = [leg(p, "debit", 50) for p in kept for _ in range(2)] + [leg("sink", "credit", 50 * 2 * len(kept))]
    capture = parse_request(
        json.dumps({"kind": "capture", "posting_id": "c-1", "hold_id": "h-1", "legs": capture_legs})
    )
    with pytest.raises(PostingRejected) as refused:
        planning.plan(capture, accounts, {"h-1": decision}, T0)
    assert refused.value.reason == Reason.TRANSACTION_TOO_LARGE
    assert "one transaction holds 100" in refused.value.detail
