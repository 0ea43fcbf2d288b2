"""Outcomes of a posting request, the stable reason codes of rejections, and the recorded decision.

The codes are a public contract (events, results, dashboards): add new ones, never rename.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from posting.domain.model import MAX_FIGURE, AccountState, canonical_content, differing_fields
from posting.domain.requests import request_from_record


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
    # The lifecycle: holds, their capture, void and expiry, and reversals.
    HOLD_NOT_FOUND = "HOLD_NOT_FOUND"
    NOT_A_HOLD = "NOT_A_HOLD"
    HOLD_ALREADY_CAPTURED = "HOLD_ALREADY_CAPTURED"
    HOLD_ALREADY_VOIDED = "HOLD_ALREADY_VOIDED"
    HOLD_EXPIRED = "HOLD_EXPIRED"
    EXCEEDS_HOLD = "EXCEEDS_HOLD"
    POSTING_NOT_FOUND = "POSTING_NOT_FOUND"
    NOT_REVERSIBLE = "NOT_REVERSIBLE"
    EXCEEDS_ORIGINAL = "EXCEEDS_ORIGINAL"
    # A string of the request looks like a card number (a Luhn-valid run of 13-19 digits): refused
    # by content like INVALID_REQUEST, so it does not consume the posting_id; never echoed.
    SENSITIVE_DATA = "SENSITIVE_DATA"
    # It would take a balance or a pending figure beyond +/-(2^53 - 1), the integers every JSON
    # reader holds exactly. Decided by content when one request alone moves an account that far.
    BALANCE_OUT_OF_RANGE = "BALANCE_OUT_OF_RANGE"
    # What the request expects of an account (`expect`: its version, what it has available) does not
    # hold when it is decided. Decided on the ledger's state, so it consumes the posting_id.
    PRECONDITION_FAILED = "PRECONDITION_FAILED"
    # A chain names a member posting_id that already has a decision of its own.
    CHAIN_MEMBER_DECIDED = "CHAIN_MEMBER_DECIDED"
    # A chain needs more than the 100 items one DynamoDB transaction holds (its holds' legs included).
    CHAIN_TOO_LARGE = "CHAIN_TOO_LARGE"
    # A request other than a chain needs more than the 100 items of one transaction: only a capture
    # that posts on some of its hold's accounts in many legs and releases the others can.
    TRANSACTION_TOO_LARGE = "TRANSACTION_TOO_LARGE"
    # Its value date (`effective_at`, a chain member's too) falls in a period the books are closed
    # for. Decided on the ledger's state, so it consumes the posting_id.
    PERIOD_CLOSED = "PERIOD_CLOSED"


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
    """An account's figures right after a posting, with the version (entry count) it reached.

    `balance` is the posted balance (the same figure as `posted`); `available` is posted less what
    holds may still take out. Only accounts with a limit that the posting was planned from a read of
    are listed (see events.PostingPosted.balances).
    """

    model_config = ConfigDict(frozen=True)

    account_id: str
    currency: str
    balance: int = Field(ge=-MAX_FIGURE, le=MAX_FIGURE)
    version: int
    posted: int | None = Field(default=None, ge=-MAX_FIGURE, le=MAX_FIGURE)
    pending_debits: int = Field(default=0, ge=0, le=MAX_FIGURE)
    pending_credits: int = Field(default=0, ge=0, le=MAX_FIGURE)
    available: int | None = Field(default=None, ge=-MAX_FIGURE, le=MAX_FIGURE)

    @model_validator(mode="after")
    def _four_figures(self) -> BalanceAfter:
        # Decisions recorded before holds existed carry only `balance`: nothing was pending then.
        if self.posted is None:
            object.__setattr__(self, "posted", self.balance)
        if self.available is None and not (self.pending_debits or self.pending_credits):
            object.__setattr__(self, "available", self.balance)
        return self


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
    # The lifecycle (absent on plain postings, and on everything recorded before kinds existed).
    kind: str | None = None  # hold, capture, void, expiry, reversal; None: a posting
    hold_id: str | None = None  # capture, void, expiry: the hold settled
    reverses: str | None = None  # reversal: the original
    posted_legs: list[dict[str, Any]] | None = None  # what was posted, when not the request's legs
    pending_legs: list[dict[str, Any]] | None = None  # hold: what is (or was) pending
    expires_at: str | None = None  # hold
    hold_state: str | None = None  # hold: open, captured, voided or expired
    settled_by: str | None = None  # hold: the capture, void or expiry that ended it
    reversed: dict[str, int] | None = None  # original: "account|side|currency" -> amount reversed so far
    reversed_by: list[str] | None = None  # original: its reversals
    version: int | None = None  # original: bumped by each reversal (their optimistic lock)
    members: list[dict[str, Any]] | None = None  # chain: its members' posting_id and kind, in order
    chain_id: str | None = None  # a chain's member: the chain it was decided in
    external_ref: str | None = None  # the request's reference from outside the ledger (ByExternalRef index)


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
    kind: str | None = None  # the decision's kind (None: a posting): names the result event
    # A posting with a balancing leg that moved less than it asked: the legs as posted.
    moved: list[dict[str, Any]] | None = None
    members: list[dict[str, Any]] | None = None  # a chain's members, as decided
    external_ref: str | None = None  # the decision's reference from outside the ledger

    @classmethod
    def answering(
        cls, decision: Decision, request_hash: str, *, created: bool, request: BaseModel | None = None
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
                external_ref=decision.external_ref,
            )
        return cls(
            status=decision.status if created else Status.DUPLICATE,
            reason=decision.reason,
            detail=decision.detail,
            posting_status=decision.status,
            balances=decision.balances,
            decided_at=decision.decided_at,
            kind=decision.kind,
            moved=decision.posted_legs if decision.kind is None else None,
            members=decision.members,
            external_ref=decision.external_ref,
        )


def _differences(decision: Decision, request: BaseModel | None) -> str:
    if request is None or decision.request is None:
        return ""
    try:
        recorded = request_from_record(decision.request)
    except ValidationError:
        return ""  # recorded by an older contract: the hashes differ, the fields cannot be named
    fields = differing_fields(canonical_content(recorded), canonical_content(request))
    return f"; differs in {', '.join(fields[:10])}" + (f" and {len(fields) - 10} more" if len(fields) > 10 else "")


class ConcurrentUpdate(Exception):
    """What a plan needs of an account, a hold or an original no longer holds: plan again.

    `accounts` are the accounts whose conditions failed, as DynamoDB found them when it refused.
    """

    def __init__(self, message: str, accounts: Mapping[str, AccountState] | None = None) -> None:
        super().__init__(message)
        self.accounts = dict(accounts or {})


class PostingAlreadyDecided(Exception):
    """The posting_id already has a decision; it comes with the exception."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(f"posting {decision.posting_id} was already {decision.status}")
        self.decision = decision


class AccountAlreadyExists(Exception):
    """An account is opened under an id the ledger already holds."""


# The exceptions whose texts we write ourselves, from ids, error codes and times only, never from a
# request's values: what they say may be logged, dead-lettered and published. Any other exception is
# told by its class name alone (a pydantic ValidationError's text quotes the input it refused, and a
# library's message may quote whatever it was handed).
OWN_ERRORS: tuple[type[Exception], ...] = (TransientPostingError, ConcurrentUpdate, PostingAlreadyDecided)
OWN_ERROR_NAMES = frozenset(error.__name__ for error in OWN_ERRORS)


def error_text(error: BaseException) -> str:
    """What may be said of an error outside the process: its message when it is one of ours (and
    says something), otherwise its class name."""
    text = str(error) if isinstance(error, OWN_ERRORS) else ""
    return text or type(error).__name__
