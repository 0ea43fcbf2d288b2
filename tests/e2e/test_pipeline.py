"""End to end through the local stack: SQS -> pipe -> Step Functions (real ASL) -> handlers -> DynamoDB
Local and EventBridge, built from template.yaml. The stack is shared by the session, so every test opens
accounts of its own."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from posting.adapters.ledger_table import LedgerTable
from posting.domain.outcomes import TransientPostingError
from posting_cli import operations
from posting_cli.results import Result, ResultCollector
from tests.builders import account, leg, request

pytestmark = pytest.mark.local_stack
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ids() -> str:
    return uuid.uuid4().hex[:8]


def open_accounts(target, *accounts: dict) -> None:
    operations.open_accounts(target, operations.parse_accounts(json.dumps(list(accounts))))


def post_all(target, bodies: list[str], timeout: float = 60) -> list[Result]:
    """Send the bodies and wait for each one's first final result (events, then the DLQ)."""
    with ResultCollector(target) as collector:
        answers = operations.submit(target, bodies)
        message_ids = [answer.message_id for answer in answers]
        deadline = time.monotonic() + timeout
        while not set(message_ids) <= collector.results.keys():
            collector.poll_events()
            collector.poll_dead_letters()
            assert time.monotonic() < deadline, f"no outcome for {set(message_ids) - collector.results.keys()}"
            time.sleep(0.2)
        return [collector.results[message_id] for message_id in message_ids]


def balances(target, *account_ids: str) -> dict[str, int]:
    states = operations.books(target).get_accounts(account_ids)
    return {account_id: states[account_id].balance for account_id in account_ids}


def test_a_mixed_batch_lands_with_the_right_outcomes(local_stack, ids):
    target = local_stack.target
    alice, bob = f"alice-{ids}", f"bob-{ids}"
    open_accounts(
        target,
        account(alice, overdraft_limit=0),
        account(bob),
        account(f"funding-{ids}", normal_balance="debit", overdraft_limit=None),
    )
    fund = json.dumps(request(f"fund-{ids}", leg(f"funding-{ids}", "debit", 5000), leg(alice, "credit", 5000)))
    assert [r.status for r in post_all(target, [fund])] == ["POSTED"]

    pay = json.dumps(request(f"pay-{ids}", leg(alice, "debit", 1250), leg(bob, "credit", 1250)))
    bodies = {
        "valid": pay,
        "duplicate": pay,
        "conflicting": json.dumps(request(f"pay-{ids}", leg(alice, "debit", 1300), leg(bob, "credit", 1300))),
        "unbalanced": json.dumps(request(f"unb-{ids}", leg(alice, "debit", 100), leg(bob, "credit", 99))),
        "malformed": '{"posting_id": "broken", "legs": [',
        "float amount": json.dumps(request(f"float-{ids}", leg(alice, "debit", 12.5), leg(bob, "credit", 12.5))),
        "overdraft": json.dumps(request(f"big-{ids}", leg(alice, "debit", 999_999), leg(bob, "credit", 999_999))),
        "unknown account": json.dumps(
            request(f"ghost-{ids}", leg(alice, "debit", 1), leg(f"ghost-{ids}", "credit", 1))
        ),
    }
    # valid and duplicate (and the conflict) race for the same posting_id: send the valid one first.
    first = post_all(target, [bodies["valid"]])
    rest = post_all(target, [body for name, body in bodies.items() if name != "valid"])
    outcome = dict(zip(bodies, [(r.status, r.reason) for r in first + rest], strict=True))

    assert outcome == {
        "valid": ("POSTED", None),
        "duplicate": ("DUPLICATE", None),
        "conflicting": ("REJECTED", "IDEMPOTENCY_CONFLICT"),
        "unbalanced": ("REJECTED", "UNBALANCED"),
        "malformed": ("REJECTED", "INVALID_REQUEST"),
        "float amount": ("REJECTED", "INVALID_REQUEST"),
        "overdraft": ("REJECTED", "INSUFFICIENT_FUNDS"),
        "unknown account": ("REJECTED", "ACCOUNT_NOT_FOUND"),
    }
    assert balances(target, alice, bob) == {alice: 3750, bob: 1250}
    assert first[0].event_id == rest[0].event_id  # a duplicate re-announces the same decision


def test_result_events_reach_the_templates_audit_log_group(local_stack, ids):
    target = local_stack.target
    open_accounts(target, account(f"a-{ids}", overdraft_limit=None), account(f"b-{ids}"))
    [result] = post_all(
        target, [json.dumps(request(f"audit-{ids}", leg(f"a-{ids}", "debit", 7), leg(f"b-{ids}", "credit", 7)))]
    )

    logged = target.client("logs").filter_log_events(logGroupName=target.results_log_group)["events"]
    details = [json.loads(event["message"])["detail"] for event in logged]
    assert {"event_id": result.event_id, "posting_id": f"audit-{ids}", "status": "POSTED"}.items() <= next(
        d for d in details if d.get("posting_id") == f"audit-{ids}"
    ).items()


def test_a_poison_message_is_dead_lettered_with_its_reason_and_blocks_nothing(local_stack, ids, monkeypatch):
    target = local_stack.target
    open_accounts(target, account(f"a-{ids}", overdraft_limit=None), account(f"b-{ids}"))
    poison_id = f"poison-{ids}"
    original = LedgerTable.record_posting

    def record_posting(self, plan, *args, **kwargs):
        if plan.request.posting_id == poison_id:
            raise TransientPostingError("DynamoDB: ThrottlingException (injected)")
        return original(self, plan, *args, **kwargs)

    monkeypatch.setattr(LedgerTable, "record_posting", record_posting)
    poison = json.dumps(request(poison_id, leg(f"a-{ids}", "debit", 1), leg(f"b-{ids}", "credit", 1)))
    healthy = [
        json.dumps(request(f"ok-{ids}-{n}", leg(f"a-{ids}", "debit", 10), leg(f"b-{ids}", "credit", 10)))
        for n in range(5)
    ]

    results = post_all(target, [poison, *healthy])

    assert [r.status for r in results] == ["DEAD_LETTERED"] + ["POSTED"] * 5
    assert results[0].reason == "TransientPostingError"
    assert "injected" in (results[0].detail or "")
    letters = {letter.source_message_id: letter for letter in operations.dead_letters(target)}
    [letter] = [letter for letter in letters.values() if json.loads(letter.body)["posting_id"] == poison_id]
    assert letter.error == "TransientPostingError"
    assert letter.body == poison  # kept byte for byte, ready for a redrive
    assert balances(target, f"b-{ids}") == {f"b-{ids}": 50}

    # Once the cause is gone, a redrive posts it, exactly once.
    monkeypatch.setattr(LedgerTable, "record_posting", original)
    assert operations.redrive(target).moved >= 1
    deadline = time.monotonic() + 30
    while operations.ledger(target).get_decision(poison_id) is None:
        assert time.monotonic() < deadline, "the redriven message was not posted"
        time.sleep(0.2)
    assert balances(target, f"b-{ids}") == {f"b-{ids}": 51}


def test_one_record_at_the_edge_of_the_calendar_never_sinks_its_batch(local_stack, ids):
    # The review's reproduction: this instant overflowed in content_hash(), the exception escaped
    # Validate for the whole batch, and all ten records were dead-lettered with no reason.
    target = local_stack.target
    open_accounts(target, account(f"a-{ids}", overdraft_limit=None), account(f"b-{ids}"))
    edge = json.dumps(
        request(f"edge-{ids}", leg(f"a-{ids}", "debit", 1), leg(f"b-{ids}", "credit", 1))
        | {"effective_at": "0001-01-01T00:00:00+01:00"}
    )
    healthy = [
        json.dumps(request(f"ok-{ids}-{n}", leg(f"a-{ids}", "debit", 10), leg(f"b-{ids}", "credit", 10)))
        for n in range(9)
    ]

    results = post_all(target, [edge, *healthy])

    assert [(r.status, r.reason) for r in results] == [("REJECTED", "INVALID_REQUEST")] + [("POSTED", None)] * 9
    assert "effective_at" in (results[0].detail or "")
    assert balances(target, f"b-{ids}") == {f"b-{ids}": 90}
    # Refused for its content: the id is free, and the corrected request posts under it.
    fixed = json.dumps(request(f"edge-{ids}", leg(f"a-{ids}", "debit", 1), leg(f"b-{ids}", "credit", 1)))
    [result] = post_all(target, [fixed])
    assert result.status == "POSTED"


def test_when_emitting_keeps_failing_the_last_delivery_is_dead_lettered_with_the_reason(local_stack, ids, monkeypatch):
    from posting.adapters.event_bus import EventBus

    target = local_stack.target
    open_accounts(target, account(f"a-{ids}", overdraft_limit=None), account(f"b-{ids}"))
    posting_id = f"mute-{ids}"
    original = EventBus.publish

    def publish(self, events):
        if any(event.detail.get("posting_id") == posting_id for event in events):
            raise RuntimeError("EventBridge is down (injected)")
        return original(self, events)

    monkeypatch.setattr(EventBus, "publish", publish)
    body = json.dumps(request(posting_id, leg(f"a-{ids}", "debit", 3), leg(f"b-{ids}", "credit", 3)))

    [result] = post_all(target, [body])

    # Emit failed as a whole, and so did its salvage: on the last delivery the workflow itself sent
    # the message to the DLQ with the error, instead of leaving it to the queue's reasonless redrive.
    assert result.status == "DEAD_LETTERED"
    assert result.reason == "RuntimeError"
    letters = [letter for letter in operations.dead_letters(target) if posting_id in letter.body]
    assert letters and all(letter.error == "RuntimeError" for letter in letters)
    # Told by its class: a message that is not one of our exceptions' may quote the request.
    assert letters[0].message == "the workflow failed for the whole batch: RuntimeError"
    # It was posted exactly once all the same: a redrive will answer it as decided.
    assert balances(target, f"b-{ids}") == {f"b-{ids}": 3}
    monkeypatch.setattr(EventBus, "publish", original)
    operations.redrive(target)


@pytest.mark.parametrize(
    ("function", "event_file"),
    [("validate", "validate.json"), ("validate", "workflow.json"), ("post", "post.json"), ("emit", "emit.json")],
)
def test_every_sample_event_runs_through_its_handler(local_stack, function, event_file):
    target = local_stack.target
    operations.open_accounts(target, operations.parse_accounts((ROOT / "events" / "accounts.json").read_text()))
    event = json.loads((ROOT / "events" / event_file).read_text())
    [fn] = [f for f in local_stack.functions if f.logical_id.lower() == f"{function}function"]

    result = local_stack.runtime.invoke(fn.function_name, event)

    if function == "emit":
        # The last item failed transiently on its last delivery: dead-lettered, nothing returned.
        assert result == {"batchItemFailures": []}
    else:
        items = result["items"]
        assert len(items) == len(event["items"] if isinstance(event, dict) else event)
        decided = [item for item in items if "outcome" in item]
        if function == "post":
            assert [item["outcome"]["status"] for item in decided] in (
                ["POSTED", "DUPLICATE", "REJECTED"],  # first run on this stack
                ["DUPLICATE", "DUPLICATE", "DUPLICATE"],  # the decisions already exist
            )


def test_the_workflow_sample_runs_through_the_real_state_machine(local_stack):
    target = local_stack.target
    operations.open_accounts(target, operations.parse_accounts((ROOT / "events" / "accounts.json").read_text()))
    client = boto3.client(
        "stepfunctions",
        endpoint_url=target.endpoints["default"],
        region_name=target.region,
        config=Config(inject_host_prefix=False),  # StartSyncExecution's "sync-" host prefix
    )
    records = (ROOT / "events" / "workflow.json").read_text()

    response = client.start_sync_execution(stateMachineArn=target.outputs["StateMachineArn"], input=records)

    assert response["status"] == "SUCCEEDED", response
    assert json.loads(response["output"]) == {"batchItemFailures": []}


# -- order: what a standard queue does not promise (tests/e2e/test_fifo.py: what a FIFO queue does) --


def card_payment(ids: str) -> tuple[list[dict], list[str]]:
    """Accounts, and a hold, its capture and a payout the capture funds: each line needs the one before."""
    accounts = [
        account(f"funding-{ids}", normal_balance="debit", overdraft_limit=None),
        account(f"bank-{ids}", normal_balance="debit", overdraft_limit=None),
        account(f"alice-{ids}"),
        account(f"merchant-{ids}"),
    ]
    lines = [
        request(f"fund-{ids}", leg(f"funding-{ids}", "debit", 5000), leg(f"alice-{ids}", "credit", 5000)),
        request(f"hold-{ids}", leg(f"alice-{ids}", "debit", 1000), leg(f"merchant-{ids}", "credit", 1000), kind="hold"),
        {"kind": "capture", "posting_id": f"capture-{ids}", "hold_id": f"hold-{ids}"},
        request(f"payout-{ids}", leg(f"merchant-{ids}", "debit", 1000), leg(f"bank-{ids}", "credit", 1000)),
    ]
    return accounts, [json.dumps(line) for line in lines]


def fail_first_delivery_of(posting_id: str, monkeypatch) -> list[str]:
    """Every attempt of the posting's first delivery fails as a throttled transaction does."""
    original = LedgerTable.record_posting
    attempts: list[str] = []

    def record_posting(self, plan, request_hash, message_id):
        if plan.request.posting_id == posting_id:
            attempts.append(message_id)
            if len(attempts) <= 12:  # the post step's attempts in one delivery
                raise TransientPostingError("transaction cancelled: ThrottlingException (injected)")
        return original(self, plan, request_hash, message_id)

    monkeypatch.setattr(LedgerTable, "record_posting", record_posting)
    return attempts


def test_on_a_standard_queue_what_follows_a_hold_that_was_not_decided_is_decided_without_it(
    local_stack, monkeypatch, ids
):
    accounts, lines = card_payment(ids)
    open_accounts(local_stack.target, *accounts)
    fail_first_delivery_of(f"hold-{ids}", monkeypatch)

    results = post_all(local_stack.target, lines)

    assert [(r.status, r.reason) for r in results] == [
        ("POSTED", None),
        ("POSTED", None),  # on its second delivery: too late for what needed it
        ("REJECTED", "HOLD_NOT_FOUND"),
        ("REJECTED", "INSUFFICIENT_FUNDS"),
    ]
