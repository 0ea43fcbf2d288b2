"""Chains: several requests in one, applied in order, all or nothing, on the fake ledger.

The newcomer's case: a hold, its capture and a payout that needs the captured money, sent as one
chain, are decided in that order. A member refused refuses the chain, naming the member, and no
member's posting_id is used.
"""

from __future__ import annotations

import json

import pytest

from posting.domain.outcomes import Reason, Status
from posting.domain.reconciliation import reconcile_records
from posting.domain.requests import MAX_CHAIN_MEMBERS
from posting.steps.emit import result_event
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
        account("acc-shop"),
        account("acc-bank", overdraft_limit=None),
    )
    fund(fake, "acc-alice", 1000)
    return fake


def chain(posting_id: str, *members: dict) -> dict:
    return {"kind": "chain", "posting_id": posting_id, "requests": list(members)}


def hold(posting_id: str, source: str, target: str, amount: int) -> dict:
    return {**transfer(posting_id, source, target, amount), "kind": "hold"}


def capture(posting_id: str, hold_id: str) -> dict:
    return {"kind": "capture", "posting_id": posting_id, "hold_id": hold_id}


def test_a_hold_its_capture_and_a_payout_of_the_captured_money_are_decided_in_order(ledger):
    body = chain(
        "chain-1",
        hold("auth-1", "acc-alice", "acc-shop", 800),
        capture("cap-1", "auth-1"),
        transfer("payout-1", "acc-shop", "acc-bank", 800),  # needs the capture's money
    )

    item = post(ledger, body)

    outcome = outcome_of(item)
    assert (outcome.status, outcome.kind) == (Status.POSTED, "chain")
    assert [m["posting_id"] for m in outcome.members] == ["auth-1", "cap-1", "payout-1"]
    books = ledger.books.get_accounts(["acc-alice", "acc-shop", "acc-bank"])
    assert {a: s.balance for a, s in books.items()} == {"acc-alice": 200, "acc-shop": 0, "acc-bank": 800}
    assert ledger.get_decision("auth-1").hold_state == "captured"
    assert ledger.get_decision("cap-1").chain_id == "chain-1"
    assert [line.posting_id for line in ledger.books.statement("acc-shop")[1]] == ["cap-1", "payout-1"]
    event = result_event(item, outcome)
    assert (event.detail_type, [m["kind"] for m in event.detail["members"]]) == (
        "Chain Posted",
        ["hold", "capture", "posting"],
    )
    assert_books_balance(ledger)


def test_a_member_refused_refuses_the_chain_naming_it_and_uses_no_member_id(ledger):
    body = chain(
        "chain-1",
        transfer("pay-1", "acc-alice", "acc-shop", 600),
        transfer("pay-2", "acc-alice", "acc-shop", 600),  # only 400 left after pay-1
    )

    outcome = outcome_of(post(ledger, body))

    assert (outcome.status, outcome.reason) == (Status.REJECTED, Reason.INSUFFICIENT_FUNDS)
    assert outcome.detail.startswith("requests[1] (pay-2): ")
    assert ledger.books.get_account("acc-alice").balance == 1000
    assert ledger.get_decision("pay-1") is None and ledger.get_decision("pay-2") is None
    # The members' ids are still free: sent alone, each is decided on its own.
    assert outcome_of(post(ledger, transfer("pay-1", "acc-alice", "acc-shop", 600))).status == Status.POSTED


def test_the_last_member_failing_undoes_everything_before_it(ledger):
    body = chain(
        "chain-1",
        hold("auth-1", "acc-alice", "acc-shop", 300),
        capture("cap-1", "auth-1"),
        transfer("pay-1", "acc-shop", "acc-ghost", 300),
    )
    outcome = outcome_of(post(ledger, body))
    assert (outcome.reason, outcome.detail.split(":")[0]) == (Reason.ACCOUNT_NOT_FOUND, "requests[2] (pay-1)")
    assert ledger.get_decision("auth-1") is None
    alice = ledger.books.get_account("acc-alice")
    assert (alice.balance, alice.pending_debits) == (1000, 0)


def test_a_chain_is_one_idempotent_request(ledger):
    body = chain(
        "chain-1", transfer("pay-1", "acc-alice", "acc-shop", 100), transfer("pay-2", "acc-shop", "acc-bank", 50)
    )
    first = outcome_of(post(ledger, body))
    again = outcome_of(post(ledger, body))
    assert (first.status, again.status, again.members) == (Status.POSTED, Status.DUPLICATE, first.members)
    assert ledger.books.get_account("acc-bank").balance == 50


def test_a_member_whose_id_is_already_decided_refuses_the_chain(ledger):
    post(ledger, transfer("pay-1", "acc-alice", "acc-shop", 10))
    outcome = outcome_of(post(ledger, chain("chain-1", transfer("pay-1", "acc-alice", "acc-shop", 10))))
    assert (outcome.reason, "pay-1" in outcome.detail) == (Reason.CHAIN_MEMBER_DECIDED, True)
    assert ledger.books.get_account("acc-shop").balance == 10


def test_members_may_settle_holds_and_reverse_postings_made_before_the_chain(ledger):
    post(ledger, hold("auth-1", "acc-alice", "acc-shop", 300))
    post(ledger, transfer("pay-0", "acc-alice", "acc-shop", 100))
    body = chain(
        "chain-1",
        capture("cap-1", "auth-1"),
        {
            "kind": "reversal",
            "posting_id": "ref-1",
            "reverses": "pay-0",
            "legs": [leg("acc-shop", "debit", 40), leg("acc-alice", "credit", 40)],
        },
        {
            "kind": "reversal",
            "posting_id": "ref-2",
            "reverses": "pay-0",
            "legs": [leg("acc-shop", "debit", 60), leg("acc-alice", "credit", 60)],
        },
    )
    assert outcome_of(post(ledger, body)).status == Status.POSTED
    original = ledger.get_decision("pay-0")
    assert (original.reversed_by, original.reversed) == (
        ["ref-1", "ref-2"],
        {"acc-shop|credit|EUR": 100, "acc-alice|debit|EUR": 100},
    )
    assert ledger.get_decision("auth-1").settled_by == "cap-1"
    assert_books_balance(ledger)


def test_an_account_may_dip_within_a_chain_only_within_its_limit(ledger):
    # alice has 1000: paying 1500 then receiving 600 goes below zero in between: refused.
    dips = chain(
        "chain-1",
        transfer("pay-1", "acc-alice", "acc-shop", 1500),
        transfer("pay-2", "acc-shop", "acc-alice", 600),
    )
    assert outcome_of(post(ledger, dips)).reason == Reason.INSUFFICIENT_FUNDS
    # Receiving first, then paying, never goes below zero: posted.
    order = chain(
        "chain-2",
        transfer("pay-3", FUNDING, "acc-alice", 600),
        transfer("pay-4", "acc-alice", "acc-shop", 1500),
    )
    assert outcome_of(post(ledger, order)).status == Status.POSTED
    assert ledger.books.get_account("acc-alice").balance == 100


def test_a_blind_chain_is_checked_by_the_write_at_its_deepest_point(ledger):
    # Another posting moves alice between the read and the write: the chain goes again without a
    # pin, and DynamoDB refuses what would dip below zero in the middle.
    ledger.before_transaction = lambda: post(ledger, transfer("pay-other", "acc-alice", "acc-shop", 500))
    body = chain(
        "chain-1",
        transfer("pay-1", "acc-alice", "acc-shop", 900),
        transfer("pay-2", "acc-shop", "acc-alice", 900),
    )
    outcome = outcome_of(post(ledger, body))
    assert (outcome.status, outcome.reason) == (Status.REJECTED, Reason.INSUFFICIENT_FUNDS)
    assert ledger.books.get_account("acc-alice").balance == 500
    assert_books_balance(ledger)


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (chain("c", transfer("c", "a", "b", 1)), "the chain's"),
        (chain("c", transfer("m", "a", "b", 1), transfer("m", "a", "b", 1)), "another member's"),
        (chain("c", request("m", leg("a", "debit", 1), leg("b", "credit", 2))), "requests[0] (m)"),
        (chain("c", {"kind": "expiry", "posting_id": "expire:h", "hold_id": "h"}), "requests"),
        (chain("c", chain("d", transfer("m", "a", "b", 1))), "requests"),
        (chain("c"), "requests"),
        (chain("c", *(transfer(f"m{n}", "a", "b", 1) for n in range(MAX_CHAIN_MEMBERS + 1))), "requests"),
    ],
    ids=["own-id", "repeated-id", "unbalanced-member", "expiry", "nested", "empty", "too-many"],
)
def test_a_malformed_chain_is_refused_by_content(body, what):
    item = validate_record(sqs_record(body))
    assert item.outcome is not None and item.outcome.reason in (Reason.INVALID_REQUEST, Reason.UNBALANCED)
    assert what in item.outcome.detail


def test_a_chain_too_large_for_one_transaction_is_refused(ledger):
    payees = [f"acc-p{n:02d}" for n in range(40)]
    open_accounts(ledger, *(account(p, overdraft_limit=None) for p in payees))
    members = [request(f"m{n}", leg(FUNDING, "debit", 40), *(leg(p, "credit", 1) for p in payees)) for n in range(3)]
    outcome = outcome_of(post(ledger, chain("big", *members)))
    assert (outcome.reason, "100" in outcome.detail) == (Reason.CHAIN_TOO_LARGE, True)


def test_chains_racing_on_one_account_never_overdraw_it(ledger):
    from tests.post_helpers import item_for, post_concurrently

    items = [
        item_for(
            chain(
                f"chain-{n}",
                transfer(f"a-{n}", "acc-alice", "acc-shop", 150),
                transfer(f"b-{n}", "acc-shop", "acc-bank", 150),
            )
        )
        for n in range(10)
    ]
    decided = post_concurrently(ledger, items, threads=4)
    posted = sum(outcome_of(item).status == Status.POSTED for item in decided)
    assert posted == 6  # 1000 // 150
    assert ledger.books.get_account("acc-alice").balance == 1000 - 150 * posted
    assert ledger.books.get_account("acc-bank").balance == 150 * posted
    assert reconcile_records(ledger.books.scan()).ok


def test_a_chain_sample_is_a_valid_request():
    from pathlib import Path

    from posting.domain.requests import parse_request

    sample = Path(__file__).resolve().parents[2] / "events" / "kinds" / "chain.json"
    parsed = parse_request(sample.read_text())
    assert parsed.kind == "chain" and len(parsed.requests) >= 3
    assert json.loads(sample.read_text())["requests"][1]["kind"] == "capture"


def test_a_members_balancing_leg_says_what_it_moved_in_the_chains_event(ledger):
    sweep = {
        **request("sweep-1", leg("acc-alice", "debit", 5000), leg("acc-bank", "credit", 5000), external_ref="EOD-1"),
    }
    sweep["legs"][0]["balancing"] = True
    body = chain("chain-sweep", transfer("pay-1", "acc-alice", "acc-shop", 300), sweep)

    item = post(ledger, body)

    event = result_event(item, outcome_of(item))
    members = event.detail["members"]
    assert members[0] == {"posting_id": "pay-1", "kind": "posting"}  # moved all it asked: nothing more said
    assert members[1]["posting_id"] == "sweep-1"
    assert [(m["account_id"], m["amount"]) for m in members[1]["moved"]] == [("acc-alice", 700), ("acc-bank", 700)]
    assert "external_ref" not in event.detail  # the chain carried none; its member's decision has its own
    assert ledger.get_decision("sweep-1").external_ref == "EOD-1"


@pytest.mark.parametrize(
    ("expectation", "posts"),
    [
        ({"account_id": "acc-alice", "version": 1}, True),
        ({"account_id": "acc-alice", "available_at_least": 1000}, True),
        ({"account_id": "acc-alice", "version": 2}, False),
        ({"account_id": "acc-alice", "available_at_least": 1001}, False),
        ({"account_id": "acc-bank", "version": 0}, False),  # no limit: its figures are not read
    ],
)
def test_a_chains_own_expectations_are_checked_on_the_figures_before_it(ledger, expectation, posts):
    # alice has 1000 after one entry; the chain's members take 300 of it.
    body = {
        **chain(
            "chain-1", transfer("pay-1", "acc-alice", "acc-shop", 200), transfer("pay-2", "acc-alice", "acc-bank", 100)
        ),
        "expect": [expectation],
    }
    outcome = outcome_of(post(ledger, body))
    if posts:
        assert outcome.status == Status.POSTED
        assert ledger.books.get_account("acc-alice").balance == 700
    else:
        assert (outcome.status, outcome.reason) == (Status.REJECTED, Reason.PRECONDITION_FAILED)
        assert expectation["account_id"] in outcome.detail
        assert ledger.books.get_account("acc-alice").balance == 1000
        assert ledger.get_decision("pay-1") is None and ledger.get_decision("pay-2") is None
    assert_books_balance(ledger)


def test_a_chains_own_expectation_is_checked_at_the_write_not_only_at_the_read(ledger):
    # Another posting moves alice between the read and the write: the chain's pin no longer holds.
    ledger.before_transaction = lambda: post(ledger, transfer("pay-other", "acc-alice", "acc-shop", 1))
    body = {
        **chain("chain-1", transfer("pay-1", "acc-alice", "acc-shop", 100)),
        "expect": [{"account_id": "acc-alice", "version": 1}],
    }
    outcome = outcome_of(post(ledger, body))
    assert (outcome.status, outcome.reason) == (Status.REJECTED, Reason.PRECONDITION_FAILED)
    assert ledger.books.get_account("acc-alice").balance == 999
    assert_books_balance(ledger)
