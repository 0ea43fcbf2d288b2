"""The operator verbs of `posting`, against the running local stack (as after `posting local up`)."""

from __future__ import annotations

import json
import uuid

import pytest

from posting_cli import operations
from tests.builders import account, leg, request
from tests.e2e.test_pipeline import post_all

pytestmark = pytest.mark.local_stack


@pytest.fixture
def verbs(posting_in_process):
    return posting_in_process


def test_open_submit_balance_statement_and_reconcile(local_stack, verbs, tmp_path):
    ids = uuid.uuid4().hex[:8]
    payer, payee = f"payer-{ids}", f"payee-{ids}"
    (tmp_path / "accounts.json").write_text(json.dumps([account(payer, overdraft_limit=None), account(payee)]))
    assert verbs("accounts", "open", "accounts.json")[0] == 0

    bodies = [
        json.dumps(request(f"op-{ids}-{n}", leg(payer, "debit", 100 * n), leg(payee, "credit", 100 * n)))
        for n in (1, 2)
    ]
    assert [r.status for r in post_all(local_stack.target, bodies)] == ["POSTED", "POSTED"]

    code, out = verbs("balance", payee)
    assert code == 0 and json.loads(out)["balance"] == 300 and json.loads(out)["entries"] == 2
    code, out = verbs("statement", payee)
    assert code == 0 and f"op-{ids}-1" in out and "balance: 300 EUR after 2 entries" in out
    code, out = verbs("reconcile")
    assert code == 0 and "reconciliation: OK" in out
    assert verbs("balance", f"nobody-{ids}")[0] == 1


def test_submit_reports_what_the_queue_refused(local_stack, verbs, tmp_path):
    ids = uuid.uuid4().hex[:8]
    (tmp_path / "requests.jsonl").write_text(json.dumps(request(f"sub-{ids}")) + "\n" + "{" * 9000 + "\n")

    code, out = verbs("submit", "requests.jsonl")

    assert code == 1
    assert "sent 1 message(s), 1 refused" in out


def test_reconcile_finds_a_balance_that_does_not_match_its_entries(local_stack, verbs):
    ids = uuid.uuid4().hex[:8]
    operations.open_accounts(local_stack.target, operations.parse_accounts(json.dumps([account(f"tampered-{ids}")])))
    table = operations.ledger(local_stack.target)
    table.table.client.update_item(  # someone edits a balance by hand, outside any posting
        TableName=table.table_name,
        Key={"PK": {"S": f"ACCOUNT#tampered-{ids}"}, "SK": {"S": "ACCOUNT"}},
        UpdateExpression="SET balance = :b",
        ExpressionAttributeValues={":b": {"N": "999"}},
    )
    try:
        code, out = verbs("reconcile")
        assert code == 1
        assert "FAILED" in out and f"tampered-{ids}: balance 999 but its entries sum to 0" in out
    finally:
        table.table.client.update_item(
            TableName=table.table_name,
            Key={"PK": {"S": f"ACCOUNT#tampered-{ids}"}, "SK": {"S": "ACCOUNT"}},
            UpdateExpression="SET balance = :b",
            ExpressionAttributeValues={":b": {"N": "0"}},
        )


def test_submit_group_by_is_refused_on_a_standard_queue(verbs, tmp_path):
    (tmp_path / "one.jsonl").write_text(json.dumps(request(f"p-{uuid.uuid4().hex[:8]}")) + "\n")

    code, output = verbs("submit", "--group-by", "file", str(tmp_path / "one.jsonl"))

    assert code == 1
    assert "--group-by orders requests on a FIFO posting queue only" in output
