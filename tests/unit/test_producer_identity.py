"""A dead letter names who sent the request: the record's SenderId (which SQS sets, and no sender can
choose), and the producer the request is attributed to (a redrive's `original_producer_id` message
attribute, else that same sender). `posting dlq redrive` checks them before it re-sends anything."""

from __future__ import annotations

import pytest

from posting.adapters.dead_letters import (
    FAILURE_ERROR,
    ORIGINAL_PRODUCER_ID,
    PRODUCER_ID,
    DeadLetterQueue,
)
from posting.steps.emit import emit_batch, salvaged_batch
from posting.steps.items import Batch, Failure, item_of_record
from posting.steps.validate import validate_batch
from tests.builders import request, sqs_record
from tests.unit.fakes import FakeEventBus, RecordingSqs

ROLE_SESSION = "AROAEXAMPLEPRODUCER1:payments-gateway"
OPERATOR_SESSION = "AROAEXAMPLEOPERATOR1:alice@example.com"


def record(sender: str | None = ROLE_SESSION, claimed: str | None = None, receive_count: int = 1) -> dict:
    fields = sqs_record(request("pay-1"), message_id="m1", receive_count=receive_count)
    if sender is None:
        del fields["attributes"]["SenderId"]
    else:
        fields["attributes"]["SenderId"] = sender
    if claimed is not None:
        fields["messageAttributes"] = {ORIGINAL_PRODUCER_ID: {"stringValue": claimed, "dataType": "String"}}
    return fields


def dead_letter_attributes(batch: Batch) -> dict[str, str]:
    sqs = RecordingSqs()
    emit_batch(batch, FakeEventBus(), DeadLetterQueue(sqs, "https://sqs/dlq"), max_receive_count=5)
    [sent] = sqs.sent
    return {name: value["StringValue"] for name, value in sent["MessageAttributes"].items()}


def failed(batch: Batch) -> Batch:
    failure = Failure(error="TransientPostingError", message="DynamoDB: ThrottlingException")
    return Batch(items=[item.model_copy(update={"failure": failure}) for item in batch.items])


def test_a_record_is_attributed_to_its_sender():
    item = item_of_record(record(), 0)
    assert (item.producer_id, item.original_producer_id) == (ROLE_SESSION, ROLE_SESSION)


def test_a_redriven_record_is_attributed_to_the_producer_its_redrive_named():
    item = item_of_record(record(sender=OPERATOR_SESSION, claimed=ROLE_SESSION), 0)
    assert (item.producer_id, item.original_producer_id) == (OPERATOR_SESSION, ROLE_SESSION)


@pytest.mark.parametrize("claimed", ["", "x" * 300, "AROA\nEXAMPLE", "acc 1", 7])
def test_an_attribution_that_is_no_principal_id_is_ignored(claimed):
    fields = record(claimed="placeholder")
    fields["messageAttributes"][ORIGINAL_PRODUCER_ID]["stringValue"] = claimed
    item = item_of_record(fields, 0)
    assert item.original_producer_id == ROLE_SESSION


@pytest.mark.parametrize("attributes", [{}, {"SenderId": ""}, {"SenderId": 12}, "junk"])
def test_a_record_without_a_sender_has_no_producer(attributes):
    fields = record()
    fields["attributes"] = attributes
    item = item_of_record(fields, 0)
    assert (item.producer_id, item.original_producer_id) == (None, None)


def test_a_record_without_a_sender_keeps_no_attribution_it_claims():
    # Only a sender the queue vouches for can stand behind a claim.
    item = item_of_record(record(sender=None, claimed=ROLE_SESSION), 0)
    assert (item.producer_id, item.original_producer_id) == (None, None)


def test_the_validate_step_passes_the_producer_on():
    [item] = validate_batch([record(sender=OPERATOR_SESSION, claimed=ROLE_SESSION)]).items
    assert (item.producer_id, item.original_producer_id) == (OPERATOR_SESSION, ROLE_SESSION)
    assert Batch.from_event(Batch(items=[item]).to_event()).items[0] == item  # and through the workflow's JSON


def test_the_emit_steps_dead_letter_names_the_sender_and_the_attributed_producer():
    batch = failed(validate_batch([record(sender=OPERATOR_SESSION, claimed=ROLE_SESSION, receive_count=5)]))
    attributes = dead_letter_attributes(batch)
    assert attributes[PRODUCER_ID] == OPERATOR_SESSION
    assert attributes[ORIGINAL_PRODUCER_ID] == ROLE_SESSION
    assert attributes[FAILURE_ERROR] == "TransientPostingError"


def test_a_dead_letter_without_a_sender_names_no_producer():
    batch = failed(validate_batch([record(sender=None, receive_count=5)]))
    attributes = dead_letter_attributes(batch)
    assert PRODUCER_ID not in attributes and ORIGINAL_PRODUCER_ID not in attributes


def test_a_salvaged_batch_keeps_its_producers():
    error = {"Error": "RuntimeError", "Cause": "{}"}
    from_records = salvaged_batch({"records": [record(receive_count=5)], "error": error, "failed_step": "Validate"})
    validated = validate_batch([record(sender=OPERATOR_SESSION, claimed=ROLE_SESSION, receive_count=5)])
    from_items = salvaged_batch({"items": validated.to_event()["items"], "error": error, "failed_step": "Post"})
    assert dead_letter_attributes(from_records)[PRODUCER_ID] == ROLE_SESSION
    assert dead_letter_attributes(from_items)[ORIGINAL_PRODUCER_ID] == ROLE_SESSION
