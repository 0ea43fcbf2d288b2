"""What a failure says about itself never echoes the request: not in the Post function's warning, not
in a dead letter's attributes, not in the Dead-Lettered event.

Each test feeds a request holding a card-number-like string, a description and amounts into a path
that fails, and looks for any of them where the failure is told. Our own exceptions (whose texts we
write from ids, codes and times) keep their message; any other exception is named by its class only.
"""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from posting.adapters.dead_letters import DeadLetterQueue
from posting.domain.outcomes import ConcurrentUpdate, TransientPostingError
from posting.domain.requests import parse_request
from posting.steps.emit import DEAD_LETTERED, emit_batch, salvaged_batch
from posting.steps.items import Batch, BatchItem, Failure
from posting.steps.post import post_batch, post_item
from tests.builders import account, leg, request, sqs_record
from tests.fake_ledger import FakeLedger
from tests.post_helpers import FUNDING, fund, item_for, no_sleep, open_accounts
from tests.unit.fakes import FakeEventBus, RecordingSqs

CARD = "4111111111111111"  # Luhn-valid: what a leaked card number looks like
DESCRIPTION = "rent for flat 3B, Mrs Jones"
AMOUNT = "987654"
SECRETS = (CARD, DESCRIPTION, "flat 3B", AMOUNT)


def leaky_body(amount: object = 987654) -> str:
    return json.dumps(
        request(
            "pay-leak-1",
            leg("acc-alice", "debit", amount),  # type: ignore[arg-type]
            leg("acc-bob", "credit", amount),  # type: ignore[arg-type]
            description=f"{DESCRIPTION} {CARD}",
            metadata={"card": CARD, "note": f"amount {AMOUNT}"},
        )
    )


def assert_says_nothing_of_the_request(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into {text!r}"


@pytest.fixture
def ledger() -> FakeLedger:
    fake = FakeLedger()
    open_accounts(fake, account(FUNDING, overdraft_limit=None), account("acc-alice"), account("acc-bob"))
    fund(fake, "acc-alice", 1_000_000)  # enough that the leaky amount is not refused
    return fake


def undecidable(body: str, receive_count: int = 1) -> BatchItem:
    """An item the validate step let through (as if it had), with `body` as the record's."""
    return BatchItem.model_validate(
        {**item_for(request("pay-leak-1")).model_dump(), "body": body, "receive_count": receive_count}
    )


# -- the failure itself ---------------------------------------------------------------------------------


def test_a_body_the_post_step_cannot_read_fails_with_the_error_class_alone(ledger):
    body = leaky_body(amount=987654.5)  # not integer minor units: the parser refuses it
    with pytest.raises(ValidationError) as refused:
        parse_request(body)
    assert AMOUNT in str(refused.value)  # pydantic's own text quotes the input: the reason for this rule

    failed = post_item(undecidable(body), ledger, sleep=no_sleep)

    assert failed.outcome is None and failed.failure == Failure(error="ValidationError", message="ValidationError")
    assert_says_nothing_of_the_request(failed.failure.model_dump_json())


def test_an_error_that_quotes_the_request_is_known_by_its_class_alone(ledger, monkeypatch):
    def record_posting(plan, request_hash, message_id):
        raise RuntimeError(f"could not write {plan.request.model_dump_json()}")

    monkeypatch.setattr(ledger, "record_posting", record_posting)

    [failed] = post_batch(Batch(items=[undecidable(leaky_body())]), ledger, sleep=no_sleep).items

    assert failed.failure == Failure(error="RuntimeError", message="RuntimeError")


def test_our_own_errors_keep_their_message_and_class_name():
    assert Failure.of(TransientPostingError("DynamoDB: ThrottlingException")) == Failure(
        error="TransientPostingError", message="DynamoDB: ThrottlingException"
    )
    assert Failure.of(ConcurrentUpdate("moved since it was read: acc-alice")).message == (
        "moved since it was read: acc-alice"
    )


@given(
    text=st.text(min_size=1),
    error_class=st.sampled_from([ValueError, RuntimeError, KeyError, TypeError, OSError, AssertionError]),
)
def test_any_other_exception_says_its_class_name_and_nothing_of_its_text(text, error_class):
    failure = Failure.of(error_class(text))
    assert failure == Failure(error=error_class.__name__, message=error_class.__name__)


# -- where the failure is told --------------------------------------------------------------------------


def test_a_dead_letter_and_its_event_say_nothing_of_the_request(ledger):
    body = leaky_body(amount=987654.5)
    failed = post_item(undecidable(body, receive_count=5), ledger, sleep=no_sleep)
    sqs, bus = RecordingSqs(), FakeEventBus()

    report = emit_batch(Batch(items=[failed]), bus, DeadLetterQueue(sqs, "https://sqs/dlq"), max_receive_count=5)

    assert report.dead_lettered == 1
    [sent] = sqs.sent
    assert sent["MessageBody"] == body  # the body itself is kept byte for byte, for a redrive
    attributes = json.dumps(sent["MessageAttributes"])
    assert "ValidationError" in attributes
    assert_says_nothing_of_the_request(attributes)
    [event] = bus.published
    assert event.detail_type == DEAD_LETTERED
    assert event.detail["reason"] == "ValidationError"
    assert_says_nothing_of_the_request(json.dumps(event.detail))


def lambda_error(error_type: str, message: str) -> dict[str, str]:
    """A step's error as the workflow's Catch hands it on: Lambda's error payload is the Cause."""
    cause = {"errorType": error_type, "errorMessage": message, "stackTrace": ["  File handler.py, line 1"]}
    return {"Error": error_type, "Cause": json.dumps(cause)}


@pytest.mark.parametrize("error_type", ["ValidationError", "RuntimeError", "KeyError"])
def test_a_step_that_failed_for_the_whole_batch_is_told_by_its_error_class(error_type):
    records = [sqs_record(leaky_body(), message_id="m1", receive_count=5)]
    error = lambda_error(error_type, f"1 validation error: input_value={leaky_body()}")

    [salvaged] = salvaged_batch({"records": records, "error": error, "failed_step": "Validate"}).items

    assert salvaged.failure == Failure(error=error_type, message=f"Validate failed for the whole batch: {error_type}")


def test_a_step_that_failed_with_one_of_our_errors_keeps_its_message():
    error = lambda_error("TransientPostingError", "DynamoDB: ThrottlingException")
    items = [undecidable(leaky_body()).model_dump(mode="json")]

    [salvaged] = salvaged_batch({"items": items, "error": error, "failed_step": "Post"}).items

    assert salvaged.failure == Failure(
        error="TransientPostingError",
        message="Post failed for the whole batch: TransientPostingError: DynamoDB: ThrottlingException",
    )


@pytest.mark.parametrize(
    "cause",
    [
        f"The cause could not be determined because Lambda did not return an error type. Returned payload: {CARD}",
        None,
        "",
        json.dumps(["not", "an", "error", CARD]),
    ],
)
def test_a_cause_that_is_not_one_of_our_errors_is_never_repeated(cause):
    items = [undecidable(leaky_body()).model_dump(mode="json")]

    [salvaged] = salvaged_batch(
        {"items": items, "error": {"Error": "Lambda.Unknown", "Cause": cause}, "failed_step": "Emit"}
    ).items

    told = "Emit failed for the whole batch: Lambda.Unknown"
    assert salvaged.failure == Failure(error="Lambda.Unknown", message=told)


def test_the_post_functions_warning_says_nothing_of_the_request(ledger, monkeypatch):
    import posting.handlers.post as post_handler
    from posting.handlers.observability import logger

    log = io.StringIO()  # the function's log, as the handler writes it (its stream is bound at import)
    monkeypatch.setattr(logger.registered_handler, "stream", log)
    monkeypatch.setattr(post_handler, "ledger", lambda: ledger)
    monkeypatch.setattr(post_handler, "settings", lambda model: SimpleNamespace(post_workers=1))
    event = {"items": [undecidable(leaky_body(amount=987654.5)).model_dump(mode="json")]}
    context = SimpleNamespace(
        function_name="post",
        function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:post",
        memory_limit_in_mb=512,
        aws_request_id="req-1",
        get_remaining_time_in_millis=lambda: 10_000,
    )

    answer = post_handler.handler(event, context)

    assert answer["items"][0]["failure"] == {"error": "ValidationError", "message": "ValidationError"}
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    [warning] = [line for line in lines if line.get("message") == "posting not decided, will retry"]
    assert warning["level"] == "WARNING" and warning["error"] == "ValidationError"
    assert_says_nothing_of_the_request(json.dumps(lines))
