"""The result events' `detail`: one model per detail-type, the published contract for consumers.

Each model is the exact JSON the emit step puts on the bus (field order included); the JSON
Schemas under schema/events/ and the template's schema registry are generated from them
(`make schema`). To publish a new event, define its model here and add it to RESULT_EVENTS.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from posting.domain.outcomes import BalanceAfter, Reason

EVENT_SOURCE = "posting.pipeline"
# Every event id is a UUIDv5 in this namespace, of what the event announces.
EVENT_ID_NAMESPACE = uuid.UUID("7d1c4d36-4a8e-4b55-9a43-6f0c0a3f1e20")

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
    external_ref: str | None = Field(
        default=None, description="Present only when the request carried one: its reference from outside the ledger."
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
    external_ref: str | None = Field(
        default=None,
        description="Present only when the decision recorded for the posting_id carries one (its request's).",
    )


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
    moved: list[MovedLeg] | None = Field(
        default=None,
        description="Present only when the member's balancing leg moved less than it asked: its legs as posted.",
    )


class ChainPosted(PostingPosted):
    """A chain is posted: all its members, in order, in one transaction. `balances` are the accounts'
    figures after the last member; each member's posting_id now has its own decision."""

    detail_type: ClassVar[str] = "Chain Posted"

    kind: Literal["chain"]
    members: list[ChainMember] = Field(description="The members, in the order they were applied.")


class LedgerRecordDetail(EventDetail):
    """Base of the events that announce an operator's act on the ledger (an account's lifecycle, a
    period close): announced by the sweeper from the ledger's outbox, within a minute of the act."""

    event_id: str = Field(
        description="Deterministic id of the act (a UUIDv5 of what it changed and its revision): an "
        "announcement repeated after a failure has the same id. Consumers dedupe on it."
    )
    revision: int = Field(description="The revision the act made: 1 for the first, one more for each act since.")
    recorded_at: str = Field(description="When the act was recorded (ISO 8601, UTC).")
    by: str = Field(description="Who did it: the operator's identity as the ledger was told it.")
    note: str = Field(default="", description="Why, as the operator said it.")


class AccountRecord(LedgerRecordDetail):
    """What an account is after an act on it."""

    account_id: str
    currency: str
    status: Literal["open", "frozen", "closed"]
    overdraft_limit: int | None = Field(description="null: unlimited.")


class AccountOpened(AccountRecord):
    """An account is opened, with zero figures."""

    detail_type: ClassVar[str] = "Account Opened"


class AccountFrozen(AccountRecord):
    """An account is frozen: nothing more is held or posted on it; holds on it may still be released."""

    detail_type: ClassVar[str] = "Account Frozen"


class AccountUnfrozen(AccountRecord):
    """A frozen account is open again."""

    detail_type: ClassVar[str] = "Account Unfrozen"


class AccountClosed(AccountRecord):
    """An account with nothing posted and nothing pending is closed for good."""

    detail_type: ClassVar[str] = "Account Closed"


class AccountLimitChanged(AccountRecord):
    """An account's overdraft limit changed; what is pending on it counts against the new limit."""

    detail_type: ClassVar[str] = "Account Limit Changed"

    previous_limit: int = Field(description="The limit before the change.")


class PeriodClosed(LedgerRecordDetail):
    """The books are closed through an instant: a request dated at or before it is refused with
    PERIOD_CLOSED from `in_force_from` on, and figures as of a value date up to it are final then."""

    detail_type: ClassVar[str] = "Period Closed"

    through: str = Field(description="Closed through this instant (ISO 8601, UTC), inclusive.")
    in_force_from: str = Field(description="From this instant on, nothing dated in the period is decided.")
    previous_through: str | None = Field(description="What was closed before (null: nothing).")


ACCOUNT_EVENTS: dict[str, type[AccountRecord]] = {
    "open": AccountOpened,
    "freeze": AccountFrozen,
    "unfreeze": AccountUnfrozen,
    "close": AccountClosed,
    "limit": AccountLimitChanged,
}


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
    *ACCOUNT_EVENTS.values(),
    PeriodClosed,
)
