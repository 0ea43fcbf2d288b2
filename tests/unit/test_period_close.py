"""The period close through the post step, on the in-memory fake ledger: a request dated in a closed
period is refused with PERIOD_CLOSED once the close is in force; an expiry never is."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from posting.domain.model import utc_timestamp
from posting.domain.outcomes import Reason, Status
from posting.domain.periods import Period, check_period
from posting.domain.requests import parse_request
from posting.steps.ledger_acts import close_period
from tests.builders import account, leg, request
from tests.fake_ledger import FakeLedger
from tests.post_helpers import FUNDING, fund, open_accounts, outcome_of, post


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def ledger() -> FakeLedger:
    fake = FakeLedger()
    open_accounts(fake, account(FUNDING, overdraft_limit=None), account("acc-alice"), account("acc-bob"))
    fund(fake, "acc-alice", 5000)
    return fake


def dated(posting_id: str, effective_at: datetime) -> dict[str, object]:
    return request(
        posting_id,
        leg("acc-alice", "debit", 100),
        leg("acc-bob", "credit", 100),
        effective_at=utc_timestamp(effective_at),
    )


def closed_yesterday(ledger: FakeLedger, now: datetime) -> str:
    """Close the books through yesterday's end, recorded two minutes ago: in force a minute ago."""
    through = utc_timestamp(now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(milliseconds=1))
    close_period(ledger, through, now - timedelta(minutes=2), "controller")
    return through


def test_a_request_dated_in_the_closed_period_is_refused_and_consumes_its_id(ledger, now):
    through = closed_yesterday(ledger, now)
    refused = outcome_of(post(ledger, dated("late-1", now - timedelta(days=1))))
    assert (refused.status, refused.reason) == (Status.REJECTED, Reason.PERIOD_CLOSED)
    assert through in (refused.detail or "")
    assert ledger.get_decision("late-1").reason == Reason.PERIOD_CLOSED  # its id is used
    # The first instant after the close is open, and so is any request without a value date.
    at_open = outcome_of(post(ledger, dated("ok-1", now.replace(hour=0, minute=0, second=0, microsecond=0))))
    assert at_open.status == Status.POSTED
    reads = ledger.calls["read_period"]
    assert outcome_of(post(ledger, {**dated("ok-2", now), "effective_at": None})).status == Status.POSTED
    assert ledger.calls["read_period"] == reads, "a request without a value date never reads the period"


def test_a_close_not_yet_in_force_leaves_the_period_open(ledger, now):
    through = utc_timestamp(now - timedelta(hours=1))
    close_period(ledger, through, now, "controller")  # in force a minute from now
    assert outcome_of(post(ledger, dated("late-1", now - timedelta(hours=2)))).status == Status.POSTED


def test_a_chain_with_a_member_dated_in_the_closed_period_is_refused_naming_it(ledger, now):
    closed_yesterday(ledger, now)
    chain = {
        "kind": "chain",
        "posting_id": "chain-1",
        "requests": [dated("m-1", now), dated("m-2", now - timedelta(days=2))],
    }
    refused = outcome_of(post(ledger, chain))
    assert (refused.status, refused.reason) == (Status.REJECTED, Reason.PERIOD_CLOSED)
    assert (refused.detail or "").startswith("m-2: ")
    assert ledger.get_decision("m-1") is None and ledger.get_decision("m-2") is None


def test_an_expiry_in_the_closed_period_is_released_after_it(ledger, now):
    hold = {
        **request("auth-1", leg("acc-alice", "debit", 300), leg("acc-bob", "credit", 300)),
        "kind": "hold",
        "effective_at": utc_timestamp(now - timedelta(days=2)),
        "expires_at": utc_timestamp(now + timedelta(seconds=1)),
    }
    assert outcome_of(post(ledger, hold)).status == Status.POSTED
    ledger.record_period_close(
        Period(
            through=utc_timestamp(now + timedelta(seconds=2)),
            in_force_from=utc_timestamp(now - timedelta(seconds=1)),
            revision=1,
            closed_at=utc_timestamp(now),
        )
    )
    time.sleep(1.1)  # the hold expires
    expiry = {
        "kind": "expiry",
        "posting_id": "expire:auth-1",
        "hold_id": "auth-1",
        "effective_at": utc_timestamp(now + timedelta(seconds=1)),
    }
    released = outcome_of(post(ledger, expiry))
    assert released.status == Status.POSTED
    lines = [line for line in ledger.lines_of("acc-alice") if line.posting_id == "expire:auth-1"]
    assert lines and all(
        line.effective_at == utc_timestamp(now + timedelta(seconds=2, milliseconds=1)) for line in lines
    )


def test_check_period_ignores_requests_without_a_value_date_and_expiries():
    undated = parse_request('{"posting_id":"p","legs":[' + _legs() + "]}")
    check_period(undated, "9000-01-01T00:00:00.000Z")
    expiry = parse_request(
        '{"kind":"expiry","posting_id":"expire:h","hold_id":"h","effective_at":"2020-01-01T00:00:00Z"}'
    )
    check_period(expiry, "9000-01-01T00:00:00.000Z")


def _legs() -> str:
    return (
        '{"account_id":"a","side":"debit","amount":1,"currency":"EUR"},'
        '{"account_id":"b","side":"credit","amount":1,"currency":"EUR"}'
    )
