"""The emit step: events for decided items, DLQ for exhausted failures, batchItemFailures for the rest."""

from __future__ import annotations

from posting.domain.outcomes import BalanceAfter, Outcome, Reason, Status
from posting.steps.emit import DEAD_LETTERED, POSTED, REJECTED, emit_batch, event_id, result_event, salvaged_batch
from posting.steps.items import Batch, BatchItem, Failure
from tests.unit.fakes import FakeDeadLetterQueue, FakeEventBus

BALANCES = (BalanceAfter(account_id="acc-bob", currency="EUR", balance=1250, version=1),)


def item(message_id: str, outcome: Outcome | None = None, failure: Failure | None = None, receive_count: int = 1):
    return BatchItem(
        message_id=message_id,
        receive_count=receive_count,
        body='{"posting_id": "p"}',
        posting_id="p-" + message_id,
        request_hash="h",
        outcome=outcome,
        failure=failure,
    )


posted = Outcome(status=Status.POSTED, posting_status=Status.POSTED, balances=BALANCES, decided_at="t")
rejected = Outcome(status=Status.REJECTED, reason=Reason.INSUFFICIENT_FUNDS, posting_status=Status.REJECTED)
timeout = Failure(error="TransientPostingError", message="DynamoDB: ThrottlingException")


def test_decided_items_become_events_and_nothing_returns():
    bus = FakeEventBus()
    report = emit_batch(Batch(items=[item("m1", posted), item("m2", rejected)]), bus, FakeDeadLetterQueue(), 5)
    assert report.to_pipe_response() == {"batchItemFailures": []}
    assert [e.detail_type for e in bus.published] == [POSTED, REJECTED]
    assert bus.published[0].detail["balances"] == [
        {
            "account_id": "acc-bob",
            "currency": "EUR",
            "balance": 1250,
            "version": 1,
            "posted": 1250,
            "pending_debits": 0,
            "pending_credits": 0,
            "available": 1250,
        }
    ]
    assert bus.published[1].detail["reason"] == "INSUFFICIENT_FUNDS"
    assert bus.published[1].detail["balances"] == []


def test_undecided_items_go_back_to_the_queue_until_the_last_delivery():
    dlq = FakeDeadLetterQueue()
    bus = FakeEventBus()
    batch = Batch(items=[item("m1", failure=timeout, receive_count=4), item("m2", failure=timeout, receive_count=5)])
    report = emit_batch(batch, bus, dlq, max_receive_count=5)
    assert report.batch_item_failures == ["m1"]
    assert [m["message_id"] for m in dlq.messages] == ["m2"]
    assert dlq.messages[0]["error"] == "TransientPostingError"
    assert dlq.messages[0]["body"] == '{"posting_id": "p"}'
    assert [e.detail_type for e in bus.published] == [DEAD_LETTERED]


def test_when_the_dlq_is_unreachable_the_queue_redrive_is_the_backstop():
    report = emit_batch(
        Batch(items=[item("m1", failure=timeout, receive_count=5)]), FakeEventBus(), FakeDeadLetterQueue(broken=True), 5
    )
    assert report.batch_item_failures == ["m1"]


def test_an_event_the_bus_refused_returns_its_record():
    report = emit_batch(
        Batch(items=[item("m1", posted), item("m2", posted)]), FakeEventBus(refuse={"m2"}), FakeDeadLetterQueue(), 5
    )
    assert report.batch_item_failures == ["m2"]


def test_event_ids_are_deterministic_and_shared_by_duplicates():
    original = item("m1", posted)
    duplicate = BatchItem(
        **{
            **original.model_dump(),
            "message_id": "m9",
            "outcome": Outcome(status=Status.DUPLICATE, posting_status=Status.POSTED),
        }
    )
    duplicate = duplicate.model_copy(update={"posting_id": original.posting_id})
    assert event_id(original, original.outcome) == event_id(original, original.outcome)
    assert event_id(original, original.outcome) == event_id(duplicate, duplicate.outcome)
    conflict = Outcome(status=Status.REJECTED, reason=Reason.IDEMPOTENCY_CONFLICT, posting_status=Status.POSTED)
    assert event_id(original, conflict) != event_id(original, original.outcome)


def test_a_conflict_is_announced_as_a_rejection_even_though_the_posting_stands():
    conflict = Outcome(
        status=Status.REJECTED, reason=Reason.IDEMPOTENCY_CONFLICT, posting_status=Status.POSTED, balances=BALANCES
    )
    bus = FakeEventBus()
    emit_batch(Batch(items=[item("m1", conflict)]), bus, FakeDeadLetterQueue(), 5)
    assert bus.published[0].detail_type == REJECTED
    assert bus.published[0].detail["posting_status"] == "POSTED"
    assert bus.published[0].detail["balances"] == []


# -- a step failed as a whole: the workflow's Catch hands the batch and the error to Emit ----------

STEP_ERROR = {"Error": "Lambda.Unknown", "Cause": '{"errorType": "RuntimeError", "errorMessage": "out of memory"}'}


def test_a_refusal_by_content_gets_an_event_id_of_its_own_message():
    refused = Outcome(status=Status.REJECTED, reason=Reason.UNBALANCED, detail="EUR debits exceed credits by 1")
    decided = Outcome(status=Status.REJECTED, reason=Reason.UNBALANCED, posting_status=Status.REJECTED)
    # Not recorded, so it can never share an id with the decision the posting_id gets later.
    assert event_id(item("m1", refused), refused) != event_id(item("m1", decided), decided)
    assert event_id(item("m1", refused), refused) == event_id(item("m1", refused), refused)
    assert event_id(item("m1", refused), refused) != event_id(item("m2", refused), refused)


def test_validate_failing_dead_letters_last_deliveries_with_the_step_error_and_returns_the_rest():
    records = [
        {"messageId": "m1", "body": "{}", "attributes": {"ApproximateReceiveCount": "1"}},
        {"messageId": "m2", "body": '{"posting_id": "p2"}', "attributes": {"ApproximateReceiveCount": "5"}},
    ]
    batch = salvaged_batch({"records": records, "error": STEP_ERROR, "failed_step": "Validate"})
    dlq, bus = FakeDeadLetterQueue(), FakeEventBus()

    report = emit_batch(batch, bus, dlq, max_receive_count=5)

    assert report.batch_item_failures == ["m1"]
    (letter,) = dlq.messages
    assert (letter["message_id"], letter["body"], letter["error"]) == ("m2", '{"posting_id": "p2"}', "Lambda.Unknown")
    # Not one of our exceptions: its type is told, its message (which may quote input) is not.
    assert letter["message"] == "Validate failed for the whole batch: RuntimeError"
    assert [event.detail_type for event in bus.published] == [DEAD_LETTERED]


def test_post_failing_still_announces_what_validate_refused_and_fails_only_the_others():
    refused = Outcome(status=Status.REJECTED, reason=Reason.INVALID_REQUEST, detail="legs: Field required")
    items = [item("m1", refused).model_dump(mode="json"), item("m2").model_dump(mode="json")]
    batch = salvaged_batch({"items": items, "error": STEP_ERROR, "failed_step": "Post"})
    bus = FakeEventBus()

    report = emit_batch(batch, bus, FakeDeadLetterQueue(), max_receive_count=5)

    assert report.batch_item_failures == ["m2"]
    assert [(event.detail_type, event.detail["message_id"]) for event in bus.published] == [(REJECTED, "m1")]
    assert batch.items[1].failure.error == "Lambda.Unknown"


def test_a_salvaged_item_keeps_the_failure_it_already_had():
    items = [item("m1", failure=timeout).model_dump(mode="json")]
    batch = salvaged_batch({"items": items, "error": STEP_ERROR, "failed_step": "Emit"})
    assert batch.items[0].failure == timeout


def test_one_item_that_cannot_be_built_into_an_event_goes_back_alone(monkeypatch):
    import posting.steps.emit as emit_step

    original = emit_step.result_event

    def result_event(batch_item, outcome):
        if batch_item.message_id == "m2":
            raise ValueError("cannot build this one")
        return original(batch_item, outcome)

    monkeypatch.setattr(emit_step, "result_event", result_event)
    bus = FakeEventBus()
    report = emit_batch(
        Batch(items=[item("m1", posted), item("m2", posted), item("m3", posted)]), bus, FakeDeadLetterQueue(), 5
    )
    assert report.batch_item_failures == ["m2"]
    assert [event.detail["message_id"] for event in bus.published] == ["m1", "m3"]


def test_each_accepted_kind_announces_its_own_detail_type():
    from posting.domain.events import LIFECYCLE_EVENTS

    expected = {
        "hold": "Hold Placed",
        "capture": "Hold Captured",
        "void": "Hold Voided",
        "expiry": "Posting Hold Expired",
        "reversal": "Posting Reversed",
    }
    for kind, detail_type in expected.items():
        outcome = posted.model_copy(update={"kind": kind})
        event = result_event(item("m1", outcome), outcome)
        assert (event.detail_type, event.detail["kind"]) == (detail_type, kind)
        assert LIFECYCLE_EVENTS[kind].detail_type == detail_type
    rejected_hold = rejected.model_copy(update={"kind": "hold"})
    assert result_event(item("m2", rejected_hold), rejected_hold).detail_type == REJECTED


class FakeReturns:
    def __init__(self) -> None:
        self.returned: list[tuple[str, int]] = []

    def return_after(self, returns):
        self.returned += returns
        return len(returns)


def test_undecided_records_are_handed_back_in_seconds_not_after_the_visibility_timeout():
    returns = FakeReturns()
    batch = Batch(
        items=[
            item("m1", posted).model_copy(update={"receipt_handle": "r1"}),
            item("m2", failure=timeout, receive_count=1).model_copy(update={"receipt_handle": "r2"}),
            item("m3", failure=timeout, receive_count=3).model_copy(update={"receipt_handle": "r3"}),
            item("m4", failure=timeout, receive_count=5).model_copy(update={"receipt_handle": "r4"}),
        ]
    )

    report = emit_batch(batch, FakeEventBus(), FakeDeadLetterQueue(), 5, returns)

    assert report.batch_item_failures == ["m2", "m3"]  # m4 is on its last delivery: dead-lettered
    assert [receipt for receipt, _ in returns.returned] == ["r2", "r3"]
    (_, first), (_, third) = returns.returned
    assert 1 <= first <= 2 and 4 <= third <= 8
    assert report.returned_soon == 2


def test_the_return_delay_grows_with_each_delivery_with_jitter_and_a_cap():
    import random

    from posting.steps.emit import RETURN_CAP_SECONDS, return_delay

    rng = random.Random(7)
    for receive_count in range(1, 12):
        ceiling = min(RETURN_CAP_SECONDS, 2 * 2 ** (receive_count - 1))
        delays = {return_delay(receive_count, rng) for _ in range(200)}
        assert min(delays) >= max(1, round(ceiling / 2)) and max(delays) <= ceiling
        assert len(delays) > 1 or ceiling <= 2  # jittered: records that failed together spread out


def test_a_record_without_a_receipt_or_with_a_broken_queue_still_goes_back():
    class BrokenReturns:
        def return_after(self, returns):
            return 0

    batch = Batch(items=[item("m1", failure=timeout)])
    report = emit_batch(batch, FakeEventBus(), FakeDeadLetterQueue(), 5, BrokenReturns())
    assert (report.batch_item_failures, report.returned_soon) == (["m1"], 0)
