"""Emit step: publish each decided item's result event, dead-letter exhausted failures, report the rest.

Returns the pipe's partial-batch answer: `{"batchItemFailures": [{"itemIdentifier": <messageId>}]}`
names exactly the records that must go back to the queue (undecided, or decided but not announced).
Before answering, it makes each of those visible again after a short, jittered, growing delay
(`return_delay`) instead of the queue's visibility timeout: a posting held up by contention or
throttling comes back in seconds, and still reaches the DLQ with its reason after MaxReceiveCount
deliveries.
A decided record that returns is decided again as the same outcome, so its event goes out again with
the same `event_id`: consumers dedupe on it.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from posting.adapters.dead_letters import DeadLetterQueue
from posting.adapters.event_bus import EventBus, ResultEvent
from posting.domain.events import (
    EVENT_ID_NAMESPACE,
    EVENT_SOURCE,  # noqa: F401 - re-exported for the handler and tools
    LIFECYCLE_EVENTS,
    PostingDeadLettered,
    PostingPosted,
    PostingRejected,
)
from posting.domain.outcomes import OWN_ERROR_NAMES, Outcome, Reason, Status
from posting.steps.items import Batch, BatchItem, Failure, item_of_record

POSTED = PostingPosted.detail_type
REJECTED = PostingRejected.detail_type
DEAD_LETTERED = PostingDeadLettered.detail_type
_EVENT_IDS = EVENT_ID_NAMESPACE
# A returned record is visible again after base * 2^(deliveries - 1) seconds, capped, with jitter
# (half to all of it): 2, 4, 8, 16, ... seconds, so contention has time to clear without making a
# posting wait the queue's visibility timeout.
RETURN_BASE_SECONDS = 2
RETURN_CAP_SECONDS = 60


class RecordReturns(Protocol):
    def return_after(self, returns: list[tuple[str, int]]) -> int: ...


def return_delay(receive_count: int, rng: random.Random | None = None) -> int:
    """Whole seconds before a record that goes back to the queue becomes visible again."""
    ceiling = min(RETURN_CAP_SECONDS, RETURN_BASE_SECONDS * 2 ** (max(1, receive_count) - 1))
    return max(1, round((rng or random).uniform(ceiling / 2, ceiling)))


@dataclass(frozen=True)
class EmitReport:
    batch_item_failures: list[str]
    published: int
    dead_lettered: int
    unannounced_dead_letters: int = 0
    returned_soon: int = 0  # of the batch item failures, how many the queue took back early

    def to_pipe_response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.batch_item_failures]}


def emit_batch(
    batch: Batch,
    bus: EventBus,
    dead_letters: DeadLetterQueue,
    max_receive_count: int,
    queue: RecordReturns | None = None,
) -> EmitReport:
    events: list[ResultEvent] = []
    owners: list[BatchItem] = []
    returned: list[str] = []
    dead_lettered = 0
    for item in batch.items:
        try:
            if item.outcome is not None:
                events.append(result_event(item, item.outcome))
                owners.append(item)
            elif item.receive_count >= max_receive_count:
                # Last delivery the queue allows: dead-letter it ourselves so the reason goes with it.
                if _dead_letter(item, dead_letters):
                    events.append(dead_letter_event(item))
                    owners.append(item)
                    dead_lettered += 1
                else:
                    returned.append(item.message_id)  # the queue's redrive policy is the backstop
            else:
                returned.append(item.message_id)
        except Exception:  # noqa: BLE001 - one item's problem is never the batch's: it goes back alone
            returned.append(item.message_id)
    delivered = bus.publish(events)
    unannounced_dead_letters = 0
    for item, ok, event in zip(owners, delivered, events, strict=True):
        if ok:
            continue
        if event.detail_type == DEAD_LETTERED:
            unannounced_dead_letters += 1  # it is in the DLQ with its reason: only the alert is lost
        else:
            returned.append(item.message_id)
    order = {item.message_id: index for index, item in enumerate(batch.items)}
    failures = sorted(set(returned), key=order.__getitem__)
    return EmitReport(
        batch_item_failures=failures,
        published=sum(delivered),
        dead_lettered=dead_lettered,
        unannounced_dead_letters=unannounced_dead_letters,
        returned_soon=_return_soon(batch, failures, queue),
    )


def _return_soon(batch: Batch, failures: list[str], queue: RecordReturns | None) -> int:
    """Hand the returned records back after `return_delay`. The records of one message group (a FIFO
    queue's) get one delay, that of the group's most delivered record: the queue keeps the group
    locked until the last of them is visible again, and then hands them over in their order."""
    if queue is None or not failures:
        return 0
    by_id = {item.message_id: item for item in batch.items}
    returned = [by_id[message_id] for message_id in failures]
    deliveries: dict[str, int] = {}
    for item in returned:
        if item.group_id is not None:
            deliveries[item.group_id] = max(deliveries.get(item.group_id, 1), item.receive_count)
    group_delays = {group: return_delay(count) for group, count in deliveries.items()}
    returns = [
        (
            item.receipt_handle,
            group_delays[item.group_id] if item.group_id is not None else return_delay(item.receive_count),
        )
        for item in returned
        if item.receipt_handle
    ]
    return queue.return_after(returns) if returns else 0


def salvaged_batch(event: dict[str, Any]) -> Batch:
    """The batch to answer when a step failed as a whole and the workflow's Catch handed it here.

    `event` is what the Catch passed: the step's input (`records` when Validate failed, else `items`),
    `error` (Step Functions' `{"Error", "Cause"}`) and `failed_step`. Items that were decided keep
    their outcome (a refusal by Validate can still be announced when Post failed); every other item
    gets the step's failure as its own, so on its last delivery it is dead-lettered with that reason.
    """
    error = event.get("error") or {}
    failure = Failure(
        error=str(error.get("Error") or "States.TaskFailed")[:256],
        message=f"{event.get('failed_step', 'a step')} failed for the whole batch: {_cause(error)}"[:1000],
    )
    if "records" in event:
        items = [item_of_record(record, position) for position, record in enumerate(event["records"])]
    else:
        items = Batch.from_event({"items": event.get("items", [])}).items
    return Batch(
        items=[
            item
            if item.outcome is not None or item.failure is not None
            else item.model_copy(update={"failure": failure})
            for item in items
        ]
    )


def _cause(error: dict[str, Any]) -> str:
    """What may be said of a step's error. A Lambda error's Cause is JSON with errorType, errorMessage
    and stackTrace: the message is kept only when the type is one of our own exceptions. Any other
    message, and any Cause Step Functions wrote itself (one quotes the function's returned payload),
    may hold the request: the error is told by its type or name alone."""
    name = str(error.get("Error") or "States.TaskFailed")[:256]
    cause = error.get("Cause")
    try:
        parsed = json.loads(cause) if isinstance(cause, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("errorType"), str):
        return name
    error_type, message = parsed["errorType"][:256], parsed.get("errorMessage")
    if error_type in OWN_ERROR_NAMES and isinstance(message, str) and message:
        return f"{error_type}: {message}"
    return error_type


def event_id(item: BatchItem, outcome: Outcome) -> str:
    """A deterministic id: the same decision always yields the same id, whoever asks and how often.

    A refusal by content (no recorded decision, no posting_status) is about the message, not the
    posting_id, so its id comes from the message: it can never collide with the id's real decision.
    """
    if item.posting_id is None:
        key = f"unidentified|{item.message_id}"
    elif outcome.posting_status is None:
        key = f"refused|{item.message_id}"
    elif outcome.reason == Reason.IDEMPOTENCY_CONFLICT:
        key = f"conflict|{item.posting_id}|{item.request_hash}"
    else:
        key = f"decision|{item.posting_id}|{outcome.posting_status or outcome.status}"
    return str(uuid.uuid5(_EVENT_IDS, key))


def result_event(item: BatchItem, outcome: Outcome) -> ResultEvent:
    decided = outcome.posting_status or outcome.status
    posted = decided == Status.POSTED and outcome.reason != Reason.IDEMPOTENCY_CONFLICT
    model = LIFECYCLE_EVENTS.get(outcome.kind or "posting", PostingPosted) if posted else PostingRejected
    fields = {
        "event_id": event_id(item, outcome),
        "posting_id": item.posting_id,
        "status": str(outcome.status),
        "reason": str(outcome.reason) if outcome.reason else None,
        "detail": outcome.detail,
        "posting_status": str(outcome.posting_status) if outcome.posting_status else None,
        "balances": [balance.model_dump() for balance in outcome.balances] if posted else [],
        "decided_at": outcome.decided_at,
        "message_id": item.message_id,
    }
    if model is not PostingPosted and posted:
        fields["kind"] = outcome.kind
    if posted and outcome.kind == "chain":
        fields["members"] = outcome.members or []
    if posted and outcome.moved is not None:
        fields["moved"] = outcome.moved
    if outcome.external_ref is not None:
        fields["external_ref"] = outcome.external_ref
    detail = model.model_validate(fields)
    # `moved` and `external_ref` appear only when there is one: every other event keeps its form.
    absent = {name for name in ("moved", "external_ref") if fields.get(name) is None}
    dumped = detail.model_dump(mode="json", exclude=absent or None)
    for member in dumped.get("members") or []:
        if member.get("moved") is None:
            member.pop("moved", None)
    return ResultEvent(detail_type=model.detail_type, detail=dumped)


def dead_letter_event(item: BatchItem) -> ResultEvent:
    assert item.failure is not None  # emit_batch dead-letters only undecided items, which carry one
    detail = PostingDeadLettered(
        event_id=str(uuid.uuid5(_EVENT_IDS, f"dead-letter|{item.message_id}")),
        posting_id=item.posting_id,
        status="DEAD_LETTERED",
        reason=item.failure.error,
        detail=item.failure.message,
        message_id=item.message_id,
        receive_count=item.receive_count,
    )
    return ResultEvent(detail_type=PostingDeadLettered.detail_type, detail=detail.model_dump(mode="json"))


def _dead_letter(item: BatchItem, dead_letters: DeadLetterQueue) -> bool:
    assert item.failure is not None
    try:
        dead_letters.send(
            body=item.body,
            message_id=item.message_id,
            receive_count=item.receive_count,
            error=item.failure.error,
            message=item.failure.message,
            producer_id=item.producer_id,
            original_producer_id=item.original_producer_id,
            group_id=item.group_id,
        )
    except (ClientError, BotoCoreError):
        return False
    return True
