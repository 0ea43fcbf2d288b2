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


def test_invalid_request_reports_its_posting_id_but_records_nothing_under_it():
    body = json.dumps(request("pay-9", leg("a", "debit", 12.5), leg("b", "credit", 12.5)))
    item = validate_batch([sqs_record(body)]).items[0]
    assert item.outcome.reason == Reason.INVALID_REQUEST
    assert item.posting_id == "pay-9"
    # No hash and no posting_status: a refusal by content is not a decision about the posting_id.
    assert item.request_hash is None and item.outcome.posting_status is None
    assert "legs.0.amount" in item.outcome.detail


def test_unbalanced_is_its_own_reason():
    body = request("pay-u", leg("a", "debit", 100), leg("b", "credit", 99))
    item = validate_batch([sqs_record(body)]).items[0]
    assert item.outcome.reason == Reason.UNBALANCED
    assert item.posting_id == "pay-u"
    assert item.request_hash is None


def test_error_detail_never_echoes_the_input():
    body = request("pay-s", leg("a", "debit", "4111111111111111"), leg("b", "credit", 1))
    item = validate_batch([sqs_record(body)]).items[0]
    assert "4111111111111111" not in item.outcome.detail


def test_the_body_is_kept_byte_for_byte():
    raw = '{"posting_id":  "x",   "weird": true}'
    assert validate_batch([sqs_record(raw)]).items[0].body == raw


def test_duplicate_keys_are_refused_rather_than_last_wins():
    body = '{"posting_id": "pay-d", "legs": [{"account_id": "a", "side": "debit", "amount": -5, "amount": 5,'
    body += ' "currency": "EUR"}, {"account_id": "b", "side": "credit", "amount": 5, "currency": "EUR"}]}'
    item = validate_batch([sqs_record(body)]).items[0]
    assert item.outcome.reason == Reason.INVALID_REQUEST
    assert "amount" in item.outcome.detail and "more than once" in item.outcome.detail


def test_an_instant_at_the_edge_of_the_calendar_is_refused_not_a_crash():
    # 0001-01-01T00:00+01:00 is year 0 in UTC: converting it raised OverflowError and sank the batch.
    records = [sqs_record(request("edge", effective_at="0001-01-01T00:00:00+01:00"))]
    records += [sqs_record(request(f"ok-{n}")) for n in range(9)]
    items = validate_batch(records).items
    assert items[0].outcome.reason == Reason.INVALID_REQUEST
    assert "effective_at" in items[0].outcome.detail and "1900" in items[0].outcome.detail
    assert all(item.outcome is None for item in items[1:])


def test_a_record_that_is_not_a_record_still_gets_exactly_one_refusal():
    items = validate_batch([None, 42, {"body": None}, {"messageId": "m", "attributes": "x"}]).items  # type: ignore[list-item]
    assert [item.outcome.reason for item in items] == [Reason.INVALID_REQUEST] * 4
    assert len({item.message_id for item in items}) == 4


PAN = "4111 1111 1111 1111"  # a published test card number
PAN_DIGITS = PAN.replace(" ", "")


def test_a_card_number_anywhere_is_refused_as_sensitive_data_and_never_echoed():
    from posting.steps.emit import result_event

    cases = {
        "description": request("pay-c1", description=f"card {PAN}"),
        "metadata": request("pay-c2", metadata={"pan": PAN}),
        "legs": request("pay-c3", leg(f"acc-{PAN_DIGITS}", "debit", 5), leg("acc-bob", "credit", 5)),
    }
    for field, body in cases.items():
        item = validate_batch([sqs_record(body)]).items[0]
        assert (item.outcome.status, item.outcome.reason) == (Status.REJECTED, Reason.SENSITIVE_DATA), field
        assert item.outcome.detail.startswith(f"{field}:")
        assert item.posting_id == body["posting_id"]  # a clean id still correlates the answer
        assert item.request_hash is None and item.outcome.posting_status is None  # consumes nothing
        event = json.dumps(result_event(item, item.outcome).detail)
        assert PAN_DIGITS not in event.replace(" ", "").replace("-", "")


def test_a_card_number_in_the_posting_id_drops_the_id_from_the_answer():
    item = validate_batch([sqs_record(request("4111-1111-1111-1111"))]).items[0]
    assert item.outcome.reason == Reason.SENSITIVE_DATA
    assert item.posting_id is None
    assert item.outcome.detail.startswith("posting_id:")


def test_a_card_number_wins_over_an_invalid_request():
    body = request("pay-c4", leg("acc-alice", "debit", 12.5), leg("acc-bob", "credit", 12.5), description=PAN)
    assert validate_batch([sqs_record(body)]).items[0].outcome.reason == Reason.SENSITIVE_DATA


def test_luhn_invalid_and_short_numbers_are_ordinary_text():
    for text in ("4111 1111 1111 1112", "order 123456789012", "2026-11-27 10:00"):
        assert validate_batch([sqs_record(request("pay-ok", description=text))]).items[0].outcome is None


def test_control_characters_in_free_text_are_invalid_requests():
    for body in (request("pay-t1", description="line\nbreak"), request("pay-t2", metadata={"note": "bell\u0007"})):
        item = validate_batch([sqs_record(body)]).items[0]
        assert item.outcome.reason == Reason.INVALID_REQUEST
        assert "control characters" in item.outcome.detail
        assert item.posting_id == body["posting_id"] and item.request_hash is None


def test_the_validate_handler_logs_no_card_number(monkeypatch):
    import io
    import logging

    from posting.handlers.observability import logger
    from posting.handlers.validate import handler
    from posting_cli.local.lambdas import LambdaContext, LocalFunction

    # Read what the handler logs through a handler of our own (the logger's stream may be another
    # test's), formatted as Lambda would see it.
    buffer = io.StringIO()
    capture = logging.StreamHandler(buffer)
    capture.setFormatter(logger.registered_formatter)
    stdlib_logger = logging.getLogger(logger.name)
    level = logger.log_level
    stdlib_logger.addHandler(capture)
    logger.setLevel("INFO")  # the refusals are logged at INFO
    # The handlers' own level filter reads this at each line; a local stack running in this process
    # (the end-to-end suites' one, LogLevel WARNING) has set it in os.environ.
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
    context = LambdaContext(
        LocalFunction("ValidateFunction", "validate", "posting.handlers.validate.handler", 10, 512, {})
    )
    records = [sqs_record(request("pay-c5", description=PAN)), sqs_record(request(f"{PAN_DIGITS}"))]
    try:
        answer = handler(records, context)
    finally:
        logger.setLevel(level)
        stdlib_logger.removeHandler(capture)
    assert all(item["outcome"]["reason"] == "SENSITIVE_DATA" for item in answer["items"])
    logged = buffer.getvalue()
    assert "pay-c5" in logged  # the handler did log the refusals
    assert PAN_DIGITS not in logged.replace(" ", "").replace("-", "")
