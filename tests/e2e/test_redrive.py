"""Dead letters end to end through the local stack: what they say, and how `posting dlq redrive` takes
them back (selected by message id or reason, tried first with --dry-run, and only for a producer it
can vouch for).

Locally there is one principal: every client signs with the same local credentials and moto records
the same SenderId on every message, so the pipeline's own dead letters always name an allowed
producer. A dead letter that names none, or names a stranger, is written here by hand, as anyone
allowed to send to the DLQ could write one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from moto.sqs.models import DEFAULT_SENDER_ID

from posting.adapters.dead_letters import (
    FAILURE_ERROR,
    FAILURE_MESSAGE,
    ORIGINAL_PRODUCER_ID,
    PRODUCER_ID,
    SOURCE_MESSAGE_ID,
)
from posting.adapters.ledger_table import LedgerTable
from posting.domain.outcomes import TransientPostingError
from posting_cli import operations
from tests.builders import account, leg, request
from tests.e2e.test_pipeline import balances, open_accounts, post_all

pytestmark = pytest.mark.local_stack

STRANGER_ROLE = "AROASTRANGER00000001"
STRANGER = f"{STRANGER_ROLE}:mallory"
PRODUCER_ROLE = "AROAPRODUCERFORTEST1"  # a producer other than the local principal
PRODUCER = f"{PRODUCER_ROLE}:gateway"


@pytest.fixture
def ids() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def failing(monkeypatch) -> Iterator[set[str]]:
    """Posting ids whose ledger write keeps failing (as throttling would) while they are in the set."""
    failing_ids: set[str] = set()
    original = LedgerTable.record_posting

    def record_posting(self, plan, *args, **kwargs):
        if plan.request.posting_id in failing_ids:
            raise TransientPostingError("DynamoDB: ThrottlingException (injected)")
        return original(self, plan, *args, **kwargs)

    monkeypatch.setattr(LedgerTable, "record_posting", record_posting)
    return failing_ids


def payment(posting_id: str, ids: str, amount: int = 1) -> str:
    return json.dumps(request(posting_id, leg(f"a-{ids}", "debit", amount), leg(f"b-{ids}", "credit", amount)))


def hand_written(target, body: str, **attributes: str) -> str:
    """A message put straight into the DLQ with these attributes; returns its id."""
    return target.client("sqs").send_message(
        QueueUrl=target.dead_letter_queue_url,
        MessageBody=body,
        MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()},
    )["MessageId"]


def letters_by_id(target) -> dict[str, operations.DeadLetter]:
    return {letter.message_id: letter for letter in operations.dead_letters(target)}


def remove(target, *message_ids: str) -> None:
    sqs = target.client("sqs")
    for letter in operations.dead_letters(target, visibility_seconds=30):
        if letter.message_id in message_ids:
            sqs.delete_message(QueueUrl=target.dead_letter_queue_url, ReceiptHandle=letter.receipt_handle)


def wait_for(condition, what: str, timeout: float = 45):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.3)
    return found


def test_a_redrive_takes_only_what_is_selected_and_what_it_can_vouch_for(local_stack, ids, failing, posting_in_process):
    target = local_stack.target
    open_accounts(target, account(f"a-{ids}", overdraft_limit=None), account(f"b-{ids}"))
    failing.add(f"poison-{ids}")
    [result] = post_all(target, [payment(f"poison-{ids}", ids)])
    assert result.status == "DEAD_LETTERED"
    [poison] = [letter for letter in letters_by_id(target).values() if letter.source_message_id == result.message_id]
    assert (poison.producer_id, poison.original_producer_id) == (DEFAULT_SENDER_ID, DEFAULT_SENDER_ID)
    unattributed = hand_written(
        target,
        payment(f"unattributed-{ids}", ids),
        **{FAILURE_ERROR: "TransientPostingError", FAILURE_MESSAGE: "DynamoDB: ThrottlingException"},
        **{SOURCE_MESSAGE_ID: f"src-unattributed-{ids}"},
    )
    stranger = hand_written(
        target,
        payment(f"stranger-{ids}", ids),
        **{FAILURE_ERROR: "RuntimeError", FAILURE_MESSAGE: "RuntimeError", PRODUCER_ID: STRANGER},
    )
    ours = ["--message-id", poison.source_message_id, "--message-id", unattributed, "--message-id", stranger]
    try:
        code, output = posting_in_process("dlq", "list")
        assert code == 0 and STRANGER in output and DEFAULT_SENDER_ID in output  # the producer column

        # A dry run says what would move and what would stay, and moves nothing.
        code, output = posting_in_process("dlq", "redrive", *ours, "--dry-run")
        assert code == 1  # something would be refused
        assert "dry run: would move 1 message(s) back to the posting queue; 2 refused, left in the DLQ" in output
        assert f"would move (for {DEFAULT_SENDER_ID})" in output
        assert "stays: no producer recorded" in output
        assert f"stays: {STRANGER} is not an allowed producer" in output
        assert {poison.message_id, unattributed, stranger} <= letters_by_id(target).keys()

        # --reason narrows the selection to the failures of that class.
        code, output = posting_in_process("dlq", "redrive", *ours, "--reason", "RuntimeError", "--dry-run")
        assert "dead letters selected: 1" in output and STRANGER in output and "would move (for" not in output

        # The poison's cause is gone: redriving it alone posts it, exactly once.
        failing.clear()
        code, output = posting_in_process("dlq", "redrive", "--message-id", poison.source_message_id)
        assert (code, output.strip()) == (0, "moved 1 message(s) back to the posting queue")
        wait_for(lambda: operations.ledger(target).get_decision(f"poison-{ids}"), "the redriven request was not posted")
        assert balances(target, f"b-{ids}") == {f"b-{ids}": 1}
        remaining = letters_by_id(target)
        assert poison.message_id not in remaining and {unattributed, stranger} <= remaining.keys()

        # What it cannot vouch for stays, however it is asked for.
        code, output = posting_in_process("dlq", "redrive", "--message-id", unattributed, "--message-id", stranger)
        assert code == 1 and "moved 0 message(s) back to the posting queue; 2 refused, left in the DLQ" in output
        assert {unattributed, stranger} <= letters_by_id(target).keys()
        # ... unless the operator names the producer.
        code, output = posting_in_process(
            "dlq", "redrive", "--message-id", stranger, "--allow-producer", STRANGER_ROLE, "--dry-run"
        )
        assert code == 0 and f"would move (for {STRANGER})" in output
        for posting_id in (f"unattributed-{ids}", f"stranger-{ids}"):
            assert operations.ledger(target).get_decision(posting_id) is None
    finally:
        remove(target, unattributed, stranger)


def test_a_redriven_request_keeps_its_producer_when_it_is_dead_lettered_again(local_stack, ids, failing):
    target = local_stack.target
    open_accounts(target, account(f"a-{ids}", overdraft_limit=None), account(f"b-{ids}"))
    failing.add(f"again-{ids}")
    # Dead-lettered before, with a producer (not the local principal) the redrive can be told about.
    first = hand_written(
        target,
        payment(f"again-{ids}", ids),
        **{FAILURE_ERROR: "TransientPostingError", FAILURE_MESSAGE: "DynamoDB: ThrottlingException"},
        **{PRODUCER_ID: DEFAULT_SENDER_ID, ORIGINAL_PRODUCER_ID: PRODUCER},
    )

    report = operations.redrive(target, message_ids=[first], allow=[PRODUCER_ROLE])
    assert [found for _, found in report.plan.moves] == [PRODUCER]

    # Still failing: after its deliveries it is dead-lettered again, still attributed to the producer.
    again = wait_for(
        lambda: [
            letter
            for letter in operations.dead_letters(target)
            if f"again-{ids}" in letter.body and letter.message_id != first
        ],
        "the redriven request was not dead-lettered again",
    )
    assert [(letter.producer_id, letter.original_producer_id) for letter in again] == [(DEFAULT_SENDER_ID, PRODUCER)]
    failing.clear()
    report = operations.redrive(target, message_ids=[again[0].message_id], allow=[PRODUCER_ROLE])
    assert report.moved == 1
    wait_for(lambda: operations.ledger(target).get_decision(f"again-{ids}"), "the request was not posted")
    assert balances(target, f"b-{ids}") == {f"b-{ids}": 1}


def test_a_failure_that_quotes_the_request_reaches_no_log_dead_letter_or_event(local_stack, ids, monkeypatch):
    target = local_stack.target
    card_like = "4111 1111 1111 1112"  # shaped like a card number, but not one (no Luhn): validation lets it in
    description = f"rent for flat {ids}, Mrs Jones"
    amount = 900_000 + int(ids[:4], 16) % 99_999
    secrets = (card_like, description, str(amount))
    open_accounts(target, account(f"a-{ids}", overdraft_limit=None), account(f"b-{ids}"))
    body = json.dumps(
        request(
            f"leak-{ids}",
            leg(f"a-{ids}", "debit", amount),
            leg(f"b-{ids}", "credit", amount),
            description=description,
            metadata={"card": card_like},
        )
    )
    original = LedgerTable.record_posting

    def record_posting(self, plan, *args, **kwargs):
        if plan.request.posting_id == f"leak-{ids}":
            raise RuntimeError(f"could not write {plan.request.model_dump_json()}")  # an error that quotes input
        return original(self, plan, *args, **kwargs)

    monkeypatch.setattr(LedgerTable, "record_posting", record_posting)

    [result] = post_all(target, [body])

    assert (result.status, result.reason, result.detail) == ("DEAD_LETTERED", "RuntimeError", "RuntimeError")
    [letter] = [letter for letter in operations.dead_letters(target) if letter.source_message_id == result.message_id]
    assert letter.body == body  # the request itself is kept, for a redrive
    told = [
        json.dumps([letter.error, letter.message, letter.producer]),
        *(
            event["message"]
            for event in target.client("logs").filter_log_events(logGroupName=target.results_log_group)["events"]
            if result.message_id in event["message"]
        ),
        *(
            line  # the functions' own logs (warnings and errors, at the stack's LogLevel)
            for line in (local_stack.state_dir / "logs" / "lambda.log").read_text().splitlines()
            if f"leak-{ids}" in line or result.message_id in line
        ),
    ]
    assert any("Posting Dead-Lettered" in text for text in told)
    assert any("posting not decided, will retry" in text for text in told)
    for text in told:
        for secret in secrets:
            assert secret not in text
    remove(target, letter.message_id)
