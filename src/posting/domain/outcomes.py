"""Outcomes of a posting request, the stable reason codes of rejections, and the recorded decision.

The codes are a public contract (events, results, dashboards): add new ones, never rename.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from posting.domain.model import PostingRequest, differing_fields


class Status(StrEnum):
    POSTED = "POSTED"
    REJECTED = "REJECTED"
    # Same posting_id, same content as a request already decided: nothing changes and the
    # original decision (POSTED or REJECTED) is returned with it.
    DUPLICATE = "DUPLICATE"


class Reason(StrEnum):
    INVALID_REQUEST = "INVALID_REQUEST"
    UNBALANCED = "UNBALANCED"
    ACCOUNT_NOT_FOUND = "ACCOUNT_NOT_FOUND"
    ACCOUNT_NOT_OPEN = "ACCOUNT_NOT_OPEN"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    # Same posting_id, different content: nothing changes, the recorded posting stands.
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"


class PostingRejected(Exception):
    """A business rejection: final for this request, reported, never retried."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TransientPostingError(Exception):
    """Could not decide now (throttling, contention, timeouts): retry later, never reject.

    The post step retries it, then returns the record to the queue; its class name is the failure
    reason a dead-lettered message carries (`failure_error`), so it is part of the contract.
    """


class BalanceAfter(BaseModel):
    """An account's balance right after a posting, with the version (entry count) it reached."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    currency: str
    balance: int
    version: int


class Decision(BaseModel):
    """What the ledger recorded for a posting_id: the first request's fate, final forever."""

    model_config = ConfigDict(frozen=True)

    posting_id: str
    status: Status  # POSTED or REJECTED
    reason: Reason | None = None
    detail: str | None = None
    request_hash: str
    balances: tuple[BalanceAfter, ...] = ()
    decided_at: str
    message_id: str | None = None
    request: dict[str, Any] | None = None  # the accepted request as JSON, when it parsed


class Outcome(BaseModel):
    """The answer to one request: its own status, plus the posting's recorded decision."""

    model_config = ConfigDict(frozen=True)

    status: Status
    reason: Reason | None = None
    detail: str | None = None
    # The decision recorded under posting_id (None when the request had no usable posting_id).
    # For DUPLICATE it is the original decision; for IDEMPOTENCY_CONFLICT, the one that stands.
    posting_status: Status | None = None
    balances: tuple[BalanceAfter, ...] = ()
    decided_at: str | None = None

    @classmethod
    def answering(
        cls, decision: Decision, request_hash: str, *, created: bool, request: PostingRequest | None = None
    ) -> Outcome:
        """The outcome of a request given the decision now recorded under its posting_id.

        `request` is the request being answered, when it parsed: a conflict's detail then names the
        fields that differ from the recorded request (never their values).
        """
        if decision.request_hash != request_hash:
            return cls(
                status=Status.REJECTED,
                reason=Reason.IDEMPOTENCY_CONFLICT,
                detail=f"posting_id {decision.posting_id} was already used for a different request "
                f"({decision.status} at {decision.decided_at}){_differences(decision, request)}",
                posting_status=decision.status,
                decided_at=decision.decided_at,
            )
        return cls(
            status=decision.status if created else Status.DUPLICATE,
            reason=decision.reason,
            detail=decision.detail,
            posting_status=decision.status,
            balances=decision.balances,
            decided_at=decision.decided_at,
        )


def _differences(decision: Decision, request: PostingRequest | None) -> str:
    if request is None or decision.request is None:
        return ""
    try:
        recorded = PostingRequest.model_validate(decision.request, strict=False)
    except ValidationError:
        return ""  # recorded by an older contract: the hashes differ, the fields cannot be named
    fields = differing_fields(recorded.canonical_content(), request.canonical_content())
    return f"; differs in {', '.join(fields[:10])}" + (f" and {len(fields) - 10} more" if len(fields) > 10 else "")
