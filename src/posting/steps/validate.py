"""Validate step: read each SQS record into a posting request, or reject it with a stable reason. Pure."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pydantic import ValidationError

from posting.domain.ledger import check_balanced
from posting.domain.model import POSTING_ID_PATTERN, parse_posting_request
from posting.domain.outcomes import Outcome, PostingRejected, Reason, Status
from posting.steps.items import Batch, BatchItem

_POSTING_ID = re.compile(POSTING_ID_PATTERN)


def validate_batch(records: list[dict[str, Any]]) -> Batch:
    """One item per SQS record, in order, so every record can be accounted for downstream."""
    return Batch(items=[validate_record(record) for record in records])


def validate_record(record: dict[str, Any]) -> BatchItem:
    body = record.get("body")
    if not isinstance(body, str):
        body = "" if body is None else json.dumps(body)
    item = BatchItem(
        message_id=record["messageId"],
        receive_count=int(record.get("attributes", {}).get("ApproximateReceiveCount", 1)),
        body=body,
    )
    try:
        request = parse_posting_request(body)
    except ValidationError as invalid:
        return _rejected(item, _posting_id_of(body), Reason.INVALID_REQUEST, _summarise(invalid))
    try:
        check_balanced(request)
    except PostingRejected as rejection:
        return _rejected(item, request.posting_id, rejection.reason, rejection.detail, request.content_hash())
    return item.model_copy(update={"posting_id": request.posting_id, "request_hash": request.content_hash()})


def _rejected(
    item: BatchItem, posting_id: str | None, reason: Reason, detail: str, request_hash: str | None = None
) -> BatchItem:
    # A rejection with a usable posting_id is recorded by the post step, so a failed id stays failed;
    # for a body that did not parse, the hash of its exact bytes stands in for the content hash.
    if posting_id is not None and request_hash is None:
        request_hash = hashlib.sha256(item.body.encode()).hexdigest()
    return item.model_copy(
        update={
            "posting_id": posting_id,
            "request_hash": request_hash if posting_id is not None else None,
            "outcome": Outcome(status=Status.REJECTED, reason=reason, detail=detail),
        }
    )


def _posting_id_of(body: str) -> str | None:
    """The posting_id of a request that failed validation, if it has a well-formed one."""
    try:
        candidate = json.loads(body).get("posting_id")
    except (ValueError, AttributeError):
        return None
    return candidate if isinstance(candidate, str) and _POSTING_ID.fullmatch(candidate) else None


def _summarise(invalid: ValidationError, limit: int = 5) -> str:
    """A short, stable, human-readable account of what is wrong: field path and message, no input echo."""
    problems = []
    for error in invalid.errors(include_url=False, include_input=False)[:limit]:
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    more = invalid.error_count() - limit
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
