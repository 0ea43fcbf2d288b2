"""Operators' acts and the books by value date through the local stack, as an operator runs them:
`posting accounts freeze|unfreeze|limit|close|history`, `posting period close|show`, `posting
balance --as-of/--effective`, `posting statement --by-value-date`; the sweeper announces each act."""

from __future__ import annotations

import io
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from posting.domain.model import utc_timestamp
from posting.domain.periods import Period
from posting_cli import operations
from posting_cli.results import ResultCollector
from tests.builders import account, leg, request
from tests.e2e.test_pipeline import post_all

pytestmark = pytest.mark.local_stack


@pytest.fixture
def verbs(posting_in_process):
    return posting_in_process


def announced(collector: ResultCollector, log: io.StringIO, wanted: set[tuple[str, str]], timeout: float = 30) -> list:
    """Wait until the events (detail-type, account or period id) are on the bus; returns their details."""
    deadline = time.monotonic() + timeout
    while True:
        collector.poll_events(wait_seconds=1)
        seen = [json.loads(line) for line in log.getvalue().splitlines()]
        found = {(e["detail_type"], e["detail"].get("account_id") or e["detail"].get("through")) for e in seen}
        if wanted <= found:
            return seen
        assert time.monotonic() < deadline, f"not announced: {wanted - found}"


def test_account_acts_are_revisions_announced_by_the_sweeper(local_stack, verbs, tmp_path):
    ids = uuid.uuid4().hex[:8]
    payer, payee = f"payer-{ids}", f"payee-{ids}"
    log = io.StringIO()
    with ResultCollector(local_stack.target, event_log=log) as collector:
        (tmp_path / "accounts.json").write_text(json.dumps([account(payer, overdraft_limit=None), account(payee)]))
        assert verbs("accounts", "open", "accounts.json")[0] == 0
        code, out = verbs("accounts", "freeze", payee, "--note", "KYC review")
        assert code == 0 and f"{payee}: frozen" in out and "revision 2" in out
        body = json.dumps(request(f"to-frozen-{ids}", leg(payer, "debit", 100), leg(payee, "credit", 100)))
        refused = post_all(local_stack.target, [body])[0]
        assert (refused.status, refused.reason) == ("REJECTED", "ACCOUNT_NOT_OPEN")
        assert verbs("accounts", "unfreeze", payee)[0] == 0
        code, out = verbs("accounts", "limit", payee, "500", "--note", "credit line")
        assert code == 0 and "limit 500" in out
        code, out = verbs("accounts", "close", payer)
        assert code == 1 and "freeze it first" in out
        code, out = verbs("accounts", "history", payee)
        assert code == 0 and all(act in out for act in ("open", "freeze", "unfreeze", "limit", "KYC review"))
        events = announced(
            collector,
            log,
            {
                ("Account Opened", payee),
                ("Account Frozen", payee),
                ("Account Unfrozen", payee),
                ("Account Limit Changed", payee),
            },
        )
    changed = next(e["detail"] for e in events if e["detail_type"] == "Account Limit Changed")
    assert (changed["overdraft_limit"], changed["previous_limit"], changed["revision"]) == (500, 0, 4)
    assert changed["by"].startswith("local:") and changed["note"] == "credit line"
    # The sweeper deletes what it published (right after the bus took it).
    acts = operations.ledger(local_stack.target).acts
    deadline = time.monotonic() + 10
    while acts.announcements(100):
        assert time.monotonic() < deadline, "published announcements are left in the outbox"
        time.sleep(0.2)


def test_balances_and_statements_by_value_date_and_the_period_close(local_stack, verbs, tmp_path):
    ids = uuid.uuid4().hex[:8]
    payer, payee = f"payer-{ids}", f"payee-{ids}"
    (tmp_path / "accounts.json").write_text(json.dumps([account(payer, overdraft_limit=None), account(payee)]))
    assert verbs("accounts", "open", "accounts.json")[0] == 0
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    bodies = [
        json.dumps(request(f"today-{ids}", leg(payer, "debit", 700), leg(payee, "credit", 700), effective_at=None)),
        json.dumps(
            request(
                f"late-{ids}",
                leg(payer, "debit", 300),
                leg(payee, "credit", 300),
                effective_at=utc_timestamp(yesterday),
            )
        ),
    ]
    assert [r.status for r in post_all(local_stack.target, bodies)] == ["POSTED", "POSTED"]

    noon = utc_timestamp(yesterday + timedelta(hours=1))
    code, out = verbs("balance", payee, "--effective", noon)
    assert code == 0 and json.loads(out)["posted"] == 300, out  # the late payment, back-valued
    code, out = verbs("balance", payee, "--as-of", noon)
    assert code == 0 and json.loads(out)["posted"] == 0, out  # the ledger knew nothing then
    code, out = verbs("statement", payee, "--by-value-date")
    assert code == 0 and out.index(f"late-{ids}") < out.index(f"today-{ids}"), out

    # The books close through the year 2000, long before anything this suite dates.
    code, out = verbs("period", "close", "2000-01-01", "--note", "year end")
    assert code == 0 and "closed through 2000-01-01T23:59:59.999Z" in out
    code, out = verbs("period", "close", "2000-01-02")
    assert code == 1 and "comes in force" in out
    code, out = verbs("period", "show")
    assert code == 0 and "2000-01-01T23:59:59.999Z" in out
    # A minute on, the close is in force: recorded here as the next close in force already.
    acts = operations.ledger(local_stack.target).acts
    current = acts.read_period()
    acts.record_period_close(
        Period(
            through="2000-01-02T00:00:00.000Z",
            in_force_from=utc_timestamp(now - timedelta(seconds=1)),
            previous=current.through,
            revision=current.revision + 1,
            closed_at=utc_timestamp(now),
            closed_by="test",
        )
    )
    dated_1999 = json.dumps(
        request(f"y2k-{ids}", leg(payer, "debit", 1), leg(payee, "credit", 1), effective_at="1999-12-31T12:00:00Z")
    )
    refused = post_all(local_stack.target, [dated_1999])[0]
    assert (refused.status, refused.reason) == ("REJECTED", "PERIOD_CLOSED")


def test_a_posting_is_found_by_its_external_reference(local_stack, verbs, tmp_path):
    ids = uuid.uuid4().hex[:8]
    payer, payee, ref = f"payer-{ids}", f"payee-{ids}", f"NET-{ids}-0042"
    (tmp_path / "accounts.json").write_text(json.dumps([account(payer, overdraft_limit=None), account(payee)]))
    assert verbs("accounts", "open", "accounts.json")[0] == 0
    log = io.StringIO()
    with ResultCollector(local_stack.target, event_log=log) as collector:
        body = request(f"ref-{ids}", leg(payer, "debit", 250), leg(payee, "credit", 250), external_ref=ref)
        assert [r.status for r in post_all(local_stack.target, [json.dumps(body)])] == ["POSTED"]
        collector.poll_events(wait_seconds=2)
    posted = [json.loads(line)["detail"] for line in log.getvalue().splitlines()]
    assert any(d.get("posting_id") == f"ref-{ids}" and d.get("external_ref") == ref for d in posted), posted
    code, out = verbs("find", "--ref", ref)
    assert code == 0, out
    found = json.loads(out)
    assert (found["posting_id"], found["status"], found["external_ref"]) == (f"ref-{ids}", "POSTED", ref)
    assert verbs("find", "--ref", f"none-{ids}")[0] == 1
