"""The validate step turns each SQS record into an item: a request to post, or a decided rejection."""

from __future__ import annotations

import json

from posting.domain.outcomes import Reason, Status
from posting.steps.validate import validate_batch
from tests.builders import leg, request, sqs_record


def test_one_item_per_record_in_order():
    records = [sqs_record(request("a")), sqs_record("not json"), sqs_record(request("b"))]
    items = validate_batch(records).items
    assert [item.message_id for item in items] == [r["messageId"] for r in records]


def test_valid_request_is_passed_on_undecided_with_its_hash():
    item = validate_batch([sqs_record(request("pay-7"), receive_count=3)]).items[0]
    assert item.outcome is None
    assert item.posting_id == "pay-7"
    assert len(item.request_hash) == 64
    assert item.receive_count == 3


def test_garbage_is_rejected_as_invalid_request_without_a_posting_id():
    for body in ["", "not json", "[1, 2]", "null", '{"legs": []}', "\u0000\u00ff"]:
        item = validate_batch([sqs_record(body)]).items[0]
        assert item.outcome.status == Status.REJECTED
        assert item.outcome.reason == Reason.INVALID_REQUEST
        assert item.posting_id is None and item.request_hash is None


def test_invalid_request_with_a_usable_posting_id_keeps_it_so_the_id_stays_failed():
    body = json.dumps(request("pay-9", leg("a", "debit", 12.5), leg("b", "credit", 12.5)))
    item = validate_batch([sqs_record(body)]).items[0]
    assert item.outcome.reason == Reason.INVALID_REQUEST
    assert item.posting_id == "pay-9"
    assert item.request_hash is not None
    assert "legs.0.amount" in item.outcome.detail


def test_unbalanced_is_its_own_reason():
    body = request("pay-u", leg("a", "debit", 100), leg("b", "credit", 99))
    item = validate_batch([sqs_record(body)]).items[0]
    assert item.outcome.reason == Reason.UNBALANCED
    assert item.posting_id == "pay-u"


def test_error_detail_never_echoes_the_input():
    body = request("pay-s", leg("a", "debit", "4111111111111111"), leg("b", "credit", 1))
    item = validate_batch([sqs_record(body)]).items[0]
    assert "4111111111111111" not in item.outcome.detail


def test_the_body_is_kept_byte_for_byte():
    raw = '{"posting_id":  "x",   "weird": true}'
    assert validate_batch([sqs_record(raw)]).items[0].body == raw
