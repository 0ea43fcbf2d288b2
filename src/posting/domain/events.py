"""The result events' `detail`: one model per detail-type, the published contract for consumers.

Each model is the exact JSON the emit step puts on the bus (field order included); the JSON
Schemas under schema/events/ and the template's schema registry are generated from them
(`make schema`). To publish a new event, define its model here and add it to RESULT_EVENTS.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from posting.domain.outcomes import BalanceAfter, Reason

EVENT_SOURCE = "posting.pipeline"

_EVENT_ID = (
    "Deterministic id of what this event announces (a UUIDv5): a redelivery or a client's duplicate "
    "re-announces a decision with the same id. Consumers dedupe on it."
)
_MESSAGE_ID = "The SQS message id of the request this event answers."


class EventDetail(BaseModel):
    """Base of every result event's detail; `detail_type` is the event's EventBridge DetailType."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    detail_type: ClassVar[str]


class MovedLeg(BaseModel):
    """A leg as it was posted, when that is not as it was asked (a balancing leg moved less)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    account_id: str
    side: Literal["debit", "credit"]
    amount: int
    currency: str


class PostingPosted(EventDetail):
    """A posting is recorded as POSTED: this request applied it (POSTED) or repeated it (DUPLICATE)."""

    detail_type: ClassVar[str] = "Posting Posted"

    event_id: str = Field(description=_EVENT_ID)
    posting_id: str
    status: Literal["POSTED", "DUPLICATE"] = Field(description="This request's outcome.")
    reason: None = None
    detail: None = None
    posting_status: Literal["POSTED"] = Field(description="The decision recorded for the posting_id.")
    balances: list[BalanceAfter] = Field(
        description="The figures right after the posting of each account with a limit that it was decided on "
        "from a read of that account. An account without a limit is never listed (its figures are the sum of "
        "its lines; read it with `posting balance`), and neither is one that was busy (several postings "
        "at once): the posting was then added to it without a read."
    )
    decided_at: str | None = Field(description="When the posting was decided (ISO 8601, UTC).")
    message_id: str = Field(description=_MESSAGE_ID)
    moved: list[MovedLeg] | None = Field(
        default=None,
        description="Present only when a balancing leg moved less than it asked: the legs as posted.",
    )


class PostingRejected(EventDetail):
    """A request was refused: its own rejection, a duplicate of a rejected posting, or an id conflict."""

    detail_type: ClassVar[str] = "Posting Rejected"

    event_id: str = Field(description=_EVENT_ID)
    posting_id: str | None = Field(description="Null when the request had no usable posting_id.")
    status: Literal["REJECTED", "DUPLICATE"] = Field(description="This request's outcome.")
    reason: Reason | None = Field(description="The stable reason code (the original's, for a DUPLICATE).")
    detail: str | None = Field(description="Human-readable; names fields, never echoes values.")
    posting_status: Literal["POSTED", "REJECTED"] | None = Field(
        description="The decision recorded for the posting_id (POSTED for an IDEMPOTENCY_CONFLICT with a "
        "posting that stands); null when nothing was recorded."
    )
    balances: list[BalanceAfter] = Field(max_length=0, description="Always empty: nothing moved.")
    decided_at: str | None
    message_id: str = Field(description=_MESSAGE_ID)


class PostingDeadLettered(EventDetail):
    """A request could not be decided within its deliveries and is in the DLQ with its reason."""

    detail_type: ClassVar[str] = "Posting Dead-Lettered"

    event_id: str = Field(description=_EVENT_ID)
    posting_id: str | None
    status: Literal["DEAD_LETTERED"]
    reason: str = Field(description="The failure's error class name, e.g. TransientPostingError.")
    detail: str = Field(description="The failure's message.")
    message_id: str = Field(description=_MESSAGE_ID)
    receive_count: int = Field(description="Deliveries the request had.")


class HoldPlaced(PostingPosted):
    """A hold is recorded: its amounts are pending on their accounts (available lowered on the paying side)."""

    detail_type: ClassVar[str] = "Hold Placed"

    kind: Literal["hold"]


class HoldCaptured(PostingPosted):
    """A hold is captured, whole or for less: the captured legs are posted, the rest released."""

    detail_type: ClassVar[str] = "Hold Captured"

    kind: Literal["capture"]


class HoldVoided(PostingPosted):
    """A hold is voided: all of its pending amounts are released."""

    detail_type: ClassVar[str] = "Hold Voided"

    kind: Literal["void"]


class PostingHoldExpired(PostingPosted):
    """A hold passed its expires_at and is released (posting_id `expire:<hold_id>`, sent by the sweeper)."""

    detail_type: ClassVar[str] = "Posting Hold Expired"

    kind: Literal["expiry"]


class PostingReversed(PostingPosted):
    """A reversal is posted: the mirror of a posted posting or capture, whole or in part."""

    detail_type: ClassVar[str] = "Posting Reversed"

    kind: Literal["reversal"]


class ChainMember(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    posting_id: str
    kind: str = Field(description="posting, hold, capture, void or reversal.")


class ChainPosted(PostingPosted):
    """A chain is posted: all its members, in order, in one transaction. `balances` are the accounts'
    figures after the last member; each member's posting_id now has its own decision."""

    detail_type: ClassVar[str] = "Chain Posted"

    kind: Literal["chain"]
    members: list[ChainMember] = Field(description="The members, in the order they were applied.")


# What an accepted request of each kind announces; a plain posting announces PostingPosted.
LIFECYCLE_EVENTS: dict[str, type[PostingPosted]] = {
    "hold": HoldPlaced,
    "capture": HoldCaptured,
    "void": HoldVoided,
    "expiry": PostingHoldExpired,
    "reversal": PostingReversed,
    "chain": ChainPosted,
}

# Every event the pipeline publishes, in the order they are documented. One line per event.
RESULT_EVENTS: tuple[type[EventDetail], ...] = (
    PostingPosted,
    PostingRejected,
    PostingDeadLettered,
    *LIFECYCLE_EVENTS.values(),
)
