"""Validate step: read each SQS record into a posting request, or refuse it with a stable reason. Pure.

Validation is total: whatever a record holds, it comes out as exactly one item, and nothing raises.
A refusal here is decided from the request's content alone (INVALID_REQUEST, UNBALANCED,
SENSITIVE_DATA), so it is
final for that message but does not consume the posting_id: it is never recorded in the ledger, and
the next request with the same id is decided on its own (Stripe's and TigerBeetle's rule).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from posting.domain.content import check_content
from posting.domain.model import POSTING_ID_PATTERN
from posting.domain.outcomes import Outcome, PostingRejected, Reason, Status
from posting.domain.requests import parse_request
from posting.domain.sensitive import card_number_fields, contains_control_character
from posting.steps.items import Batch, BatchItem, item_of_record

_POSTING_ID = re.compile(POSTING_ID_PATTERN)


def validate_batch(records: list[dict[str, Any]]) -> Batch:
    """One item per SQS record, in order, so every record can be accounted for downstream."""
    return Batch(items=[validate_record(record, position) for position, record in enumerate(records)])


def validate_record(record: Any, position: int = 0) -> BatchItem:  # noqa: PLR0911 - one return per refusal, in order
    """The item for one record: a request to post, or a refusal. Never raises."""
    item = item_of_record(record, position)
    sensitive = _card_number_fields(item.body)
    if sensitive:
        # Neither the event nor the logs may carry the number: the posting_id goes only when it is clean.
        posting_id = None if "posting_id" in sensitive else _posting_id_of(item.body)
        detail = f"{', '.join(sensitive)}: looks like a card number (13-19 digits passing Luhn); send a token instead"
        return _refused(item, posting_id, Reason.SENSITIVE_DATA, detail)
    try:
        request = parse_request(item.body)
    except ValidationError as invalid:
        return _refused(item, _posting_id_of(item.body), Reason.INVALID_REQUEST, _summarise(invalid))
    except Exception as error:  # noqa: BLE001 - a parser bug must be this record's refusal, not the batch's
        return _refused(item, None, Reason.INVALID_REQUEST, f"body: unreadable ({type(error).__name__})")
    free_text = [("description", getattr(request, "description", "") or "")]
    free_text += [("metadata", value) for value in (getattr(request, "metadata", None) or {}).values()]
    controlled = sorted({field for field, text in free_text if contains_control_character(text)})
    if controlled:
        detail = f"{', '.join(controlled)}: control characters are not allowed in free text"
        return _refused(item, request.posting_id, Reason.INVALID_REQUEST, detail)
    try:
        check_content(request)
        request_hash = request.content_hash()
    except PostingRejected as rejection:
        return _refused(item, request.posting_id, rejection.reason, rejection.detail)
    except Exception as error:  # noqa: BLE001 - as above: one record's problem is never another's
        return _refused(
            item, request.posting_id, Reason.INVALID_REQUEST, f"body: not postable ({type(error).__name__})"
        )
    return item.model_copy(update={"posting_id": request.posting_id, "request_hash": request_hash})


def _refused(item: BatchItem, posting_id: str | None, reason: Reason, detail: str) -> BatchItem:
    # No request_hash: a refusal by content is not a decision about the posting_id, so the post step
    # records nothing for it and its result event is about this message alone.
    return item.model_copy(
        update={"posting_id": posting_id, "outcome": Outcome(status=Status.REJECTED, reason=reason, detail=detail)}
    )


def _card_number_fields(body: str) -> list[str]:
    """Top-level fields of a JSON body that hold a card number (a body that is not JSON holds none:
    it is refused as INVALID_REQUEST, with a detail that never echoes it)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return []
    return card_number_fields(document)


def _posting_id_of(body: str) -> str | None:
    """The posting_id of a request that failed validation, if it has a well-formed one."""
    try:
        candidate = json.loads(body).get("posting_id")
    except (ValueError, AttributeError, RecursionError):
        return None
    return candidate if isinstance(candidate, str) and _POSTING_ID.fullmatch(candidate) else None


def _summarise(invalid: ValidationError, limit: int = 5) -> str:
    """A short, stable, human-readable account of what is wrong: field path and message, no input echo."""
    problems = []
    for error in invalid.errors(include_url=False, include_input=False, include_context=False)[:limit]:
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{_printable(where[:200])}: {_printable(error['msg'][:300])}")
    more = invalid.error_count() - limit
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _printable(text: str) -> str:
    """Field names come from the input: keep control characters and lone surrogates out of details."""
    return _UNPRINTABLE.sub("?", text)
