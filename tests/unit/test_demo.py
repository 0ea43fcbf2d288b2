"""The demo's traffic and its checks, on the fake ledger: what it sends, and that its checks catch a
ledger or a pipeline that did something else.

The demo's phases go through the validate and post steps in turn, each phase in a shuffled order
(lines of one queue are decided in any order); each line's outcome is read from its result event,
as the demo's collector reads it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from posting.domain.model import AccountStatus, Side, parse_posting_request
from posting.domain.outcomes import Reason, Status
from posting.domain.reconciliation import reconcile_records
from posting.domain.requests import MAX_CHAIN_MEMBERS, parse_request
from posting.steps.emit import result_event
from posting.steps.post import post_item
from posting_cli.demo_checks import (
    Books,
    check_balancing,
    check_chains,
    check_value_dated,
    expected_balances,
    reported_by_id,
    value_date_balances,
)
from posting_cli.demo_day_end import COLLECTIONS, DayEnd
from posting_cli.demo_traffic import FIXED_EFFECTIVE_AT, Book, Traffic
from posting_cli.local.run import LineOutcome
from tests.fake_ledger import FakeLedger
from tests.post_helpers import OPENED_AT, item_for, no_sleep

BUSINESS_DAY = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


@dataclass
class DemoRun:
    ledger: FakeLedger
    traffic: Traffic
    outcomes: list[LineOutcome]
    bodies: dict[int, str]

    def books(self) -> Books:
        return Books.of(self.ledger.books.scan())


def _decide(ledger: FakeLedger, number: int, body: str) -> LineOutcome:
    item = post_item(item_for(body), ledger, sleep=no_sleep)
    assert item.outcome is not None, item.failure
    detail = result_event(item, item.outcome).detail
    return LineOutcome(
        number,
        detail.get("posting_id"),
        detail["status"],
        detail.get("reason"),
        detail.get("detail"),
        posting_status=detail.get("posting_status"),
        moved=detail.get("moved"),
    )


def run_demo_traffic(seed: int, everyday: int) -> DemoRun:
    """The demo's phases but the expiring authorisations (the fake ledger has no sweeper)."""
    rng = random.Random(seed)
    book = Book.seed(rng, customers=60, merchants=6, back_office=True)
    traffic = Traffic(book, rng, lifecycle=True, business_day=BUSINESS_DAY)
    day_end = DayEnd(traffic)
    ledger = FakeLedger()
    for account in book.accounts:
        ledger.open_account(account, OPENED_AT)
    phases = [
        traffic.funding,
        lambda: [traffic.next() for _ in range(everyday)],
        day_end.settlements,
        day_end.merchant_sweeps,
        day_end.collections_and_refunds,
    ]
    outcomes: list[LineOutcome] = []
    bodies: dict[int, str] = {}
    order = random.Random(seed + 1)
    for build in phases:
        lines = list(enumerate(build(), len(bodies) + 1))
        bodies.update(lines)
        order.shuffle(lines)
        outcomes += [_decide(ledger, number, body) for number, body in lines]
    return DemoRun(ledger, traffic, sorted(outcomes, key=lambda o: o.line), bodies)


@pytest.fixture(scope="module")
def demo() -> DemoRun:
    return run_demo_traffic(seed=7, everyday=700)


# -- the traffic ------------------------------------------------------------------------------------


def test_without_lifecycle_the_traffic_is_plain_postings_with_one_fixed_value_date():
    # The bench and the soak recompute balances from posting legs alone and price this exact mix.
    rng = random.Random(3)
    traffic = Traffic(Book.seed(rng), rng)
    bodies = traffic.funding() + [traffic.next() for _ in range(2_000)]
    parsed = [json.loads(body) for body in bodies if body.startswith("{") and body.endswith("}")]
    assert all("kind" not in body and "requests" not in body for body in parsed)
    assert all(not leg.get("balancing") for body in parsed for leg in body.get("legs", []))
    assert {body.get("effective_at") for body in parsed if "posting_id" in body} == {FIXED_EFFECTIVE_AT}
    assert not (traffic.chains or traffic.balancing or traffic.value_dated)


def test_the_demo_traffic_is_mostly_ordinary_payments_with_a_minority_of_each_new_kind(demo):
    traffic = demo.traffic
    sent = len(demo.bodies)
    assert 0 < len(traffic.chains) < sent / 10
    assert 0 < len(traffic.balancing) < sent / 20
    assert 0 < len(traffic.value_dated) < sent / 10
    assert {"purchase-chain", "settlement-chain", "refund-chain"} == set(traffic.chains.values())


def test_every_chain_is_a_valid_request_with_members_of_their_own():
    rng = random.Random(11)
    traffic = Traffic(Book.seed(rng, back_office=True), rng, lifecycle=True, business_day=BUSINESS_DAY)
    day_end = DayEnd(traffic)
    for _ in range(600):
        traffic.next()
    day_end.settlements()
    day_end.merchant_sweeps()
    day_end.collections_and_refunds()
    ids: list[str] = []
    for chain_id in traffic.chains:
        body = traffic.by_id[chain_id]
        chain = parse_request(json.dumps(body))
        assert chain.kind == "chain" and 2 <= len(chain.requests) <= MAX_CHAIN_MEMBERS
        ids += [chain_id, *(member.posting_id for member in chain.requests)]
    assert len(ids) == len(set(ids))


def test_an_unfundable_chain_asks_more_than_all_the_money_customers_could_ever_have():
    # EUR reaches customers only by funding and interest (transfers, payments and refunds move what
    # was funded); overdrafts add what the bank lends. More than all of it cannot be funded.
    rng = random.Random(5)
    book = Book.seed(rng, back_office=True)
    traffic = Traffic(book, rng, lifecycle=True, business_day=BUSINESS_DAY)
    funding = sum(
        body["legs"][0]["amount"] for body in map(json.loads, traffic.funding()) if body["legs"][0]["currency"] == "EUR"
    )
    overdrafts = sum(account.overdraft_limit or 0 for account in book.accounts if account.account_id.startswith("cust"))
    requests = 5_000
    most_interest = 800 * requests
    for _ in range(requests):
        traffic.next()
    assert traffic.unfundable
    for chain_id, index in traffic.unfundable.items():
        hold = traffic.by_id[chain_id]["requests"][index]
        assert hold["kind"] == "hold" and hold["legs"][0]["amount"] > funding + overdrafts + most_interest


def test_value_dated_postings_are_dated_the_day_before_and_the_rest_when_decided():
    rng = random.Random(2)
    traffic = Traffic(Book.seed(rng, back_office=True), rng, lifecycle=True, business_day=BUSINESS_DAY)
    for _ in range(1_000):
        traffic.next()
    assert traffic.value_dated
    for posting_id in traffic.value_dated:
        dated = parse_posting_request(json.dumps(traffic.by_id[posting_id])).effective_at
        assert dated is not None and dated.date() == (BUSINESS_DAY - timedelta(days=1)).date()
    others = [body for posting_id, body in traffic.by_id.items() if posting_id not in traffic.value_dated]
    assert others and all("effective_at" not in body for body in others)


def test_balancing_legs_are_one_leg_of_a_two_leg_posting_on_an_account_with_a_limit(demo):
    limits = {account.account_id: account.overdraft_limit for account in demo.traffic.book.accounts}
    collected = set()
    for posting_id in demo.traffic.balancing:
        legs = demo.traffic.by_id[posting_id]["legs"]
        balancing = [leg for leg in legs if leg.get("balancing")]
        assert len(legs) == 2 and len(balancing) == 1 and limits[balancing[0]["account_id"]] is not None
        if posting_id.startswith("demo-collection-"):
            collected.add(balancing[0]["account_id"])
    assert len(collected) == COLLECTIONS
    # No refund in the collections' phase credits a customer whose collection is being decided.
    refunded = {
        member["legs"][1]["account_id"]
        for chain_id, shape in demo.traffic.chains.items()
        if shape == "refund-chain"
        for member in demo.traffic.by_id[chain_id]["requests"][:1]
    }
    assert refunded and not refunded & collected


# -- the checks, on what the ledger did -------------------------------------------------------------


def test_the_demo_traffic_reconciles_and_passes_every_check(demo):
    records = list(demo.ledger.books.scan())
    assert reconcile_records(records).problems == []
    books = Books.of(records)
    normal = {account.account_id: account.normal_balance for account in demo.traffic.book.accounts}
    expected = expected_balances(demo.outcomes, demo.bodies, normal, demo.traffic)
    actual = demo.ledger.books.get_accounts(normal)
    assert {a: actual[a].balance for a in normal} == {a: expected.get(a, 0) for a in normal}
    chains, problems = check_chains(demo.traffic, books)
    assert problems == []
    assert all(chains.posted[shape] > 0 for shape in ("purchase-chain", "settlement-chain", "refund-chain"))
    assert chains.refused[(0, Reason.INSUFFICIENT_FUNDS)] >= len(demo.traffic.unfundable) > 0
    assert chains.refused[(1, Reason.INSUFFICIENT_FUNDS)] > 0  # a merchant that cannot fund a refund
    balancing, problems = check_balancing(demo.traffic, books, reported_by_id(demo.outcomes))
    assert problems == []
    assert balancing.in_full > 0 and balancing.less > 0 and balancing.moved < balancing.asked
    dated, problems = check_value_dated(demo.traffic, books)
    assert problems == [] and dated.posted > 0 and dated.days == {"2026-12-05"}


def test_a_posted_chain_with_a_member_missing_or_outside_the_chain_fails(demo):
    books = demo.books()
    chain_id = next(c for c, d in books.decisions.items() if c in demo.traffic.chains and d.status == Status.POSTED)
    member = books.decisions[chain_id].members[1]["posting_id"]  # type: ignore[index]
    without = replace(books, decisions={k: v for k, v in books.decisions.items() if k != member})
    assert any(member in problem for problem in check_chains(demo.traffic, without)[1])
    alone = books.decisions[member].model_copy(update={"chain_id": None})
    assert any(member in problem for problem in check_chains(demo.traffic, _with_decision(books, alone))[1])


def test_a_posted_chain_whose_member_moved_other_amounts_fails(demo):
    books = demo.books()
    chain_id = next(
        c for c, s in demo.traffic.chains.items() if s == "settlement-chain" and books.decisions[c].status == "POSTED"
    )
    share = demo.traffic.by_id[chain_id]["requests"][1]["posting_id"]
    lines = [replace(line, amount=line.amount + 1) for line in books.lines[share]]
    tampered = replace(books, lines={**books.lines, share: lines})
    assert any(f"member {share} moved" in problem for problem in check_chains(demo.traffic, tampered)[1])


def test_a_refused_chain_that_moved_money_or_used_a_member_id_fails(demo):
    books = demo.books()
    chain_id = next(c for c in demo.traffic.unfundable if books.decisions[c].status == Status.REJECTED)
    members = demo.traffic.by_id[chain_id]["requests"]
    capture = members[1]["posting_id"]
    stray = replace(next(iter(books.lines.values()))[0], posting_id=capture)
    moved = replace(books, lines={**books.lines, capture: [stray]})
    assert any("have lines" in problem for problem in check_chains(demo.traffic, moved)[1])
    used = books.decisions[chain_id].model_copy(update={"posting_id": members[0]["posting_id"]})
    assert any("used member id" in problem for problem in check_chains(demo.traffic, _with_decision(books, used))[1])


def test_an_unfundable_chain_that_was_posted_or_refused_for_another_member_fails(demo):
    books = demo.books()
    chain_id = next(c for c in demo.traffic.unfundable if books.decisions[c].status == Status.REJECTED)
    decision = books.decisions[chain_id]
    elsewhere = decision.model_copy(update={"reason": Reason.HOLD_NOT_FOUND})
    assert any(chain_id in problem for problem in check_chains(demo.traffic, _with_decision(books, elsewhere))[1])
    unnamed = decision.model_copy(update={"detail": "refused"})
    assert any("without naming" in p for p in check_chains(demo.traffic, _with_decision(books, unnamed))[1])


def test_a_balancing_leg_that_moved_more_than_the_account_could_give_fails(demo):
    books = demo.books()
    posting_id, account_id, position = _balancing_line(demo, books, moved_less=True)
    statement = list(books.statements[account_id])
    line = statement[position]
    statement[position] = replace(line, amount=line.amount + 1, signed_amount=line.signed_amount - 1)
    tampered = replace(books, statements={**books.statements, account_id: statement})
    problems = check_balancing(demo.traffic, tampered, reported_by_id(demo.outcomes))[1]
    assert any(f"balancing posting {posting_id} moved {line.amount + 1}" in problem for problem in problems)


def test_a_balancing_leg_that_moved_less_than_it_could_fails(demo):
    books = demo.books()
    posting_id, account_id, position = _balancing_line(demo, books, moved_less=False)
    statement = list(books.statements[account_id])
    line = statement[position]
    statement[position] = replace(line, amount=line.amount - 1, signed_amount=line.signed_amount + 1)
    tampered = replace(books, statements={**books.statements, account_id: statement})
    problems = check_balancing(demo.traffic, tampered, reported_by_id(demo.outcomes))[1]
    assert any(f"balancing posting {posting_id} moved" in problem for problem in problems)


def test_a_result_event_that_misreports_what_a_balancing_leg_moved_fails(demo):
    books = demo.books()
    posting_id, account_id, _ = _balancing_line(demo, books, moved_less=True)
    reported = reported_by_id(demo.outcomes)
    outcome = reported[posting_id]
    assert outcome.moved is not None
    wrong = [{**leg, "amount": leg["amount"] + 5} for leg in outcome.moved]
    tampered = {**reported, posting_id: replace(outcome, moved=wrong)}
    problems = check_balancing(demo.traffic, books, tampered)[1]
    assert any("its result event says" in problem for problem in problems)
    # And the balances this generator recomputes from the results then differ from the ledger's.
    normal = {account.account_id: account.normal_balance for account in demo.traffic.book.accounts}
    honest = expected_balances(demo.outcomes, demo.bodies, normal, demo.traffic)
    misreported = [replace(o, moved=wrong) if o is outcome else o for o in demo.outcomes]
    lying = expected_balances(misreported, demo.bodies, normal, demo.traffic)
    assert honest[account_id] != lying[account_id]


def test_a_balancing_leg_refused_while_its_account_had_money_fails(demo):
    books = demo.books()
    posting_id, _, _ = _balancing_line(demo, books, moved_less=False)
    refused = books.decisions[posting_id].model_copy(
        update={"status": Status.REJECTED, "reason": Reason.INSUFFICIENT_FUNDS}
    )
    problems = check_balancing(demo.traffic, _with_decision(books, refused), reported_by_id(demo.outcomes))[1]
    assert any(f"balancing posting {posting_id} was refused" in problem for problem in problems)


def test_a_value_dated_line_without_its_value_date_fails(demo):
    books = demo.books()
    posting_id = next(p for p in demo.traffic.value_dated if books.decisions[p].status == Status.POSTED)
    lines = [replace(line, effective_at=line.recorded_at) for line in books.lines[posting_id]]
    tampered = replace(books, lines={**books.lines, posting_id: lines})
    assert any(posting_id in problem for problem in check_value_dated(demo.traffic, tampered)[1])


def test_balances_by_value_date_are_checked_against_the_lines_dated_by_then(demo):
    books = demo.books()
    dated, _ = check_value_dated(demo.traffic, books)
    end_of_day = dated.latest[:10] + "T23:59:59.999Z"

    def by_value_date(account_id: str, moment: str) -> int:
        lines = demo.ledger.lines_of(account_id)
        return sum(line.signed_amount for line in lines if not line.pending and line.effective_at <= moment)

    assert value_date_balances(books, dated.accounts, end_of_day, None) is None
    assert value_date_balances(books, dated.accounts, end_of_day, by_value_date) == []

    def by_recording_time(account_id: str, moment: str) -> int:  # what `--as-of` reads: not the same
        return demo.ledger.books.balance_as_of(account_id, moment)

    wrong = value_date_balances(books, dated.accounts, end_of_day, by_recording_time)
    assert wrong and all("balance as of value date" in problem for problem in wrong)


def _with_decision(books: Books, decision: Any) -> Books:
    return replace(books, decisions={**books.decisions, decision.posting_id: decision})


def _balancing_line(demo: DemoRun, books: Books, *, moved_less: bool) -> tuple[str, str, int]:
    """A posted balancing posting that moved less than it asked (or all of it): id, account, line index."""
    for posting_id in demo.traffic.balancing:
        leg = next(leg for leg in demo.traffic.by_id[posting_id]["legs"] if leg.get("balancing"))
        statement = books.statements.get(leg["account_id"], [])
        position = next((n for n, line in enumerate(statement) if line.posting_id == posting_id), None)
        if position is not None and (statement[position].amount < leg["amount"]) == moved_less:
            return posting_id, leg["account_id"], position
    raise AssertionError("no such balancing posting in the traffic")


def test_the_frozen_customer_and_the_back_office_accounts_are_in_the_book():
    book = Book.seed(random.Random(1), back_office=True)
    terms = {account.account_id: account for account in book.accounts}
    assert terms["cust-frozen"].status == AccountStatus.FROZEN
    assert {"payouts-EUR", "loans-EUR", "interest-EUR"} <= set(terms)
    assert terms["loans-EUR"].normal_balance == Side.DEBIT and terms["loans-EUR"].overdraft_limit is None
    assert "payouts-EUR" not in {account.account_id for account in Book.seed(random.Random(1)).accounts}
