"""A posting held up by contention comes back from the queue in seconds, not after the visibility
timeout, and one that keeps failing still ends in the DLQ with its reason after MaxReceiveCount
deliveries. Through a local stack whose queue keeps a delivered message invisible for 120 s."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from posting.adapters.ledger_table import LedgerTable
from posting.domain.outcomes import TransientPostingError
from posting_cli.local.stack import LocalStack
from posting_cli.local.template import Template
from tests.builders import account, leg, request
from tests.e2e.test_pipeline import open_accounts, post_all

pytestmark = pytest.mark.local_stack
ROOT = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT = 120


@pytest.fixture(scope="module")
def slow_queue_stack(tmp_path_factory, dynamodb_local):
    template = Template.load(
        ROOT / "template.yaml",
        stack_name="posting-fast-return",
        overrides={"VisibilityTimeoutSeconds": VISIBILITY_TIMEOUT, "MaxReceiveCount": 3, "LogLevel": "WARNING"},
    )
    with LocalStack(template, state_dir=tmp_path_factory.mktemp("fast-return"), dynamodb=dynamodb_local) as stack:
        yield stack


def test_a_contended_posting_is_decided_seconds_after_its_failed_delivery(slow_queue_stack, monkeypatch):
    target = slow_queue_stack.target
    open_accounts(target, account("fr-funding", overdraft_limit=None), account("fr-alice"))
    delivered = []
    original = LedgerTable.record_posting

    def record_posting(self, plan, request_hash, message_id):
        if plan.request.posting_id == "fr-1":
            delivered.append(time.monotonic())
            if len(delivered) <= 12:  # every attempt of the first delivery
                raise TransientPostingError("transaction cancelled: TransactionConflict (injected)")
        return original(self, plan, request_hash, message_id)

    monkeypatch.setattr(LedgerTable, "record_posting", record_posting)
    started = time.monotonic()

    [result] = post_all(
        target, [json.dumps(request("fr-1", leg("fr-funding", "debit", 10), leg("fr-alice", "credit", 10)))]
    )

    assert result.status == "POSTED"
    assert len(delivered) == 13  # twelve attempts in its first delivery, one in its second
    # The first delivery gave up within seconds; the queue handed it back in seconds too.
    assert time.monotonic() - started < VISIBILITY_TIMEOUT / 4


def test_a_posting_that_keeps_failing_is_dead_lettered_with_its_reason_after_its_deliveries(
    slow_queue_stack, monkeypatch
):
    target = slow_queue_stack.target
    open_accounts(target, account("fr-fund-2", overdraft_limit=None), account("fr-bob"))
    original = LedgerTable.record_posting

    def record_posting(self, plan, request_hash, message_id):
        if plan.request.posting_id == "fr-2":
            raise TransientPostingError("transaction cancelled: TransactionConflict (injected)")
        return original(self, plan, request_hash, message_id)

    monkeypatch.setattr(LedgerTable, "record_posting", record_posting)
    started = time.monotonic()

    [result] = post_all(
        target,
        [json.dumps(request("fr-2", leg("fr-fund-2", "debit", 10), leg("fr-bob", "credit", 10)))],
        timeout=VISIBILITY_TIMEOUT,
    )

    assert (result.status, result.reason) == ("DEAD_LETTERED", "TransientPostingError")
    assert "TransactionConflict" in (result.detail or "")
    # Three deliveries, two hand-backs of a few seconds each: far less than one visibility timeout.
    assert time.monotonic() - started < VISIBILITY_TIMEOUT / 2
