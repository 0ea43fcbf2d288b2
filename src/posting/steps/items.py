"""The batch item: the one shape that flows between the workflow's steps (and through the ASL)."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from posting.adapters.dead_letters import ORIGINAL_PRODUCER_ID  # a redrive sets it on the posting queue too
from posting.adapters.fifo import is_fifo
from posting.domain.outcomes import Outcome, error_text


class Failure(BaseModel):
    """Why an item could not be decided this time: the error class name and a message that never
    echoes the request (it is logged, dead-lettered and published)."""

    model_config = ConfigDict(frozen=True)

    error: str
    message: str

    @classmethod
    def of(cls, error: BaseException) -> Failure:
        """The failure an exception stands for: its class name, and its text only if it is one of our
        own exceptions (posting.domain.outcomes.OWN_ERRORS); any other is named by its class alone."""
        return cls(error=type(error).__name__, message=error_text(error)[:1000])


class BatchItem(BaseModel):
    """One SQS record on its way through the workflow.

    The validate step sets `posting_id` and `request_hash` when they can be read, and an outcome for
    requests it rejects. After the post step exactly one of `outcome` (decided: POSTED, REJECTED or
    DUPLICATE) and `failure` (undecided, to be retried) is set.
    """

    model_config = ConfigDict(frozen=True)

    message_id: str
    receive_count: int = 1
    # What the emit step needs to hand an undecided record back to the queue in seconds.
    receipt_handle: str | None = None
    # The message body exactly as received: the post step parses it again (cheaper than carrying a
    # second copy through the state machine) and a dead-lettered message keeps it byte for byte.
    body: str
    posting_id: str | None = None
    request_hash: str | None = None
    outcome: Outcome | None = None
    failure: Failure | None = None
    # Who sent this delivery: the record's SenderId, which SQS sets (an IAM role's id and session, a
    # user's id, or an account id) and no sender can choose. And the producer the request is
    # attributed to: the one a redrive named in its `original_producer_id` message attribute, else
    # the sender itself. A dead letter carries both; `posting dlq redrive` checks them.
    producer_id: str | None = None
    original_producer_id: str | None = None
    # The record's message group on a FIFO queue (the producer's MessageGroupId): the post step decides
    # a group's records one after another, and the first it cannot decide holds back the rest. None
    # on a standard queue.
    group_id: str | None = None


class Batch(BaseModel):
    """The workflow state between steps: `{"items": [...]}`."""

    items: list[BatchItem]

    @classmethod
    def from_event(cls, event: dict) -> Batch:
        # Items were validated by the validate step already; strict parsing would refuse the
        # JSON forms (ISO timestamps as text) of the values it produced.
        return cls.model_validate(event, strict=False)

    def to_event(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)


# What a principal id may hold: IAM unique ids, account ids and role session names.
_PRINCIPAL_ID = re.compile(r"[A-Za-z0-9_+=,.@:-]{1,256}", re.ASCII)
# What SQS accepts as a MessageGroupId: 1 to 128 letters, digits and ASCII punctuation.
_GROUP_ID = re.compile(r"[!-~]{1,128}", re.ASCII)


def item_of_record(record: Any, position: int) -> BatchItem:
    """The record's identity and body, read defensively: the pipe's records are trusted, their bodies not."""
    fields = record if isinstance(record, dict) else {}
    message_id = fields.get("messageId")
    receipt_handle = fields.get("receiptHandle")
    body = fields.get("body")
    if not isinstance(body, str):
        body = "" if body is None else json.dumps(body, default=str)
    try:
        receive_count = max(1, int(fields.get("attributes", {}).get("ApproximateReceiveCount", 1)))
    except (AttributeError, TypeError, ValueError):
        receive_count = 1
    system_attributes = fields.get("attributes")
    sender = _principal_id(system_attributes.get("SenderId") if isinstance(system_attributes, dict) else None)
    return BatchItem(
        message_id=message_id if isinstance(message_id, str) and message_id else f"unidentified-record-{position}",
        receive_count=receive_count,
        receipt_handle=receipt_handle if isinstance(receipt_handle, str) and receipt_handle else None,
        body=body,
        producer_id=sender,
        # Only a sender SQS names can stand behind an attribution.
        original_producer_id=(_attributed_producer(fields) or sender) if sender else None,
        group_id=_group_id(fields, system_attributes),
    )


def _group_id(fields: dict[str, Any], system_attributes: Any) -> str | None:
    """The record's MessageGroupId, when it comes from a FIFO queue. A standard queue may carry group
    ids too (fair queues): they promise no order, so its records are never sequenced."""
    source = fields.get("eventSourceARN")
    if not (isinstance(source, str) and is_fifo(source) and isinstance(system_attributes, dict)):
        return None
    group = system_attributes.get("MessageGroupId")
    return group if isinstance(group, str) and _GROUP_ID.fullmatch(group) else None


def _principal_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _PRINCIPAL_ID.fullmatch(value) else None


def _attributed_producer(fields: dict[str, Any]) -> str | None:
    """The producer a redrive named in the record's message attributes (the pipe's record format)."""
    attributes = fields.get("messageAttributes")
    attribute = attributes.get(ORIGINAL_PRODUCER_ID) if isinstance(attributes, dict) else None
    return _principal_id(attribute.get("stringValue")) if isinstance(attribute, dict) else None
